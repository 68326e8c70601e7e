// Package traefik reads the front door's routing from Traefik's API (on
// the host's loopback): which containers a site's service sends requests
// to. A rollout asks it before it stops an old container.
package traefik

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/darse/darse/internal/compose"
	"github.com/darse/darse/internal/labels"
	"github.com/darse/darse/internal/reconcile"
)

// Nudger makes Traefik's Docker provider read the engine again
// (*engine.Engine: a throwaway container's start and die).
type Nudger interface {
	Nudge(ctx context.Context, image string, cmd ...string) error
}

// Router is reconcile.Router over Traefik's API.
type Router struct {
	// API is Traefik's API address, host:port (darse.yml front.api).
	API    string
	Nudger Nudger
	// NudgeCmd is what the nudge runs in the service's image: `true` when
	// empty (an image without it, such as darse's own, names another).
	NudgeCmd []string
	Client   *http.Client // http.DefaultClient when nil
}

var _ reconcile.Router = (*Router)(nil)

// service is what Traefik's API answers for one HTTP service.
type service struct {
	LoadBalancer struct {
		Servers []struct {
			URL string `json:"url"`
		} `json:"servers"`
	} `json:"loadBalancer"`
	// ServerStatus is "UP" or "DOWN" by URL, from the load balancer's
	// health check.
	ServerStatus map[string]string `json:"serverStatus"`
}

// ErrNoRoute marks a service that carries no Traefik route darse wrote.
var ErrNoRoute = errors.New("no route")

// Routes reports whether Traefik sends svc's requests to c: c's address
// on the route's network is one of the service's servers, and not marked
// down by its health check.
func (r *Router) Routes(ctx context.Context, svc compose.Service, c reconcile.Container) (bool, error) {
	route, err := labels.ParseTraefik(svc.Container.Labels)
	if err != nil {
		return false, fmt.Errorf("service %s: %w: %w", svc.Name, ErrNoRoute, err)
	}
	url := ServerURL(route, c)
	if url == "" {
		return false, nil
	}
	s, found, err := r.service(ctx, "site-"+route.Site+"@docker")
	if err != nil || !found {
		return false, err
	}
	return s.serves(url), nil
}

// ServerURL is the URL Traefik gives container c as a server of route:
// its IPv4 address on the route's network (Traefik's choice), empty when
// it has none.
func ServerURL(route labels.Route, c reconcile.Container) string {
	for _, a := range c.Addresses {
		if a.Network == route.Network && a.IPv4 != "" {
			return "http://" + net.JoinHostPort(a.IPv4, strconv.Itoa(route.Port))
		}
	}
	return ""
}

func (s service) serves(url string) bool {
	for _, sv := range s.LoadBalancer.Servers {
		if sv.URL == url {
			return s.ServerStatus[url] != "DOWN"
		}
	}
	return false
}

// Refresh nudges Traefik into reading the engine with a throwaway
// container of the service's own image (present: the service runs it).
// The nudge's start and its die each make Traefik read the engine, one
// after the other: Refresh returns once the second reading has likely
// been applied too (a wait as long as the nudge took, the engine's pace,
// twice, plus Traefik's throttle), so that the caller's next change is
// not read by it.
func (r *Router) Refresh(ctx context.Context, svc compose.Service) error {
	if r.Nudger == nil {
		return errors.New("traefik: no way to make it read the engine")
	}
	start := time.Now()
	if err := r.Nudger.Nudge(ctx, svc.Container.Image, r.NudgeCmd...); err != nil {
		return err
	}
	wait := min(2*time.Since(start)+Throttle, 2*time.Second)
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Throttle is how long Traefik waits before applying a new reading of the
// engine (providersThrottleDuration in core/front/conf/traefik.yml.tmpl).
const Throttle = 100 * time.Millisecond

// service asks the API for one HTTP service; found is false when Traefik
// has none of that name (no container of it routed).
func (r *Router) service(ctx context.Context, name string) (service, bool, error) {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+r.API+"/api/http/services/"+name, nil)
	if err != nil {
		return service{}, false, err
	}
	c := r.Client
	if c == nil {
		c = http.DefaultClient
	}
	resp, err := c.Do(req)
	if err != nil {
		return service{}, false, fmt.Errorf("traefik api: %w", err)
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusNotFound:
		return service{}, false, nil
	default:
		return service{}, false, fmt.Errorf("traefik api: service %s: %s", name, resp.Status)
	}
	var s service
	if err := json.NewDecoder(resp.Body).Decode(&s); err != nil {
		return service{}, false, fmt.Errorf("traefik api: service %s: %w", name, err)
	}
	return s, true, nil
}
