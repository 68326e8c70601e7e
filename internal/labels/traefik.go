// Package labels builds and reads the container labels of a hosted site:
// Traefik v3 routing labels for its web service, and darse's own namespace
// (darse.*).
//
// Traefik labels are encoded from small typed structs that copy the field
// names of Traefik's dynamic configuration (pkg/config/dynamic), through
// github.com/traefik/paerser — the codec Traefik's Docker provider decodes
// them with. Importing Traefik itself would pull in hundreds of modules.
//
// HTTP-to-HTTPS redirection is not done here: Traefik's static configuration
// redirects the whole "web" entry point
// (entryPoints.web.http.redirections.entryPoint.to=websecure), so a site
// needs only its one router.
package labels

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/traefik/paerser/parser"
)

// Route is what darse knows about a site's web entry.
type Route struct {
	// Site is the unique site name (a DNS label); the router and the
	// service are named after it.
	Site string
	// Domains lists the host names the site answers at, primary first,
	// then custom domains; all fully qualified.
	Domains []string
	// Port is the container port of the web service.
	Port int
	// EntryPoints names the Traefik entry points the router listens on,
	// e.g. ["websecure"]. Empty: Traefik's default entry points (those
	// marked asDefault, or all of them).
	EntryPoints []string
	// CertResolver names the ACME resolver that obtains the certificate,
	// e.g. "le". Empty: no TLS on the router, unless Wildcard is set.
	CertResolver string
	// Wildcard, when set, is the domain whose wildcard certificate
	// (*.Wildcard) the front door orders for itself (acme.dns, see package
	// platform): the router is served over TLS, its domains one label under
	// Wildcard with that certificate and nothing ordered for them, and
	// CertResolver orders one certificate for each of the others (custom
	// domains). ParseTraefik reads it back as the parent of such a domain.
	Wildcard string
	// Network is the Docker network Traefik reaches the service on
	// (traefik.docker.network), e.g. "front". It is the engine's name for
	// the network, not a compose alias. Empty: Traefik's provider default.
	Network string
	// Health, when set, has Traefik probe the service over HTTP and stop
	// routing to it while it fails. It stands in for a Docker healthcheck
	// on routed services: Traefik does not route a container whose Docker
	// health is still "starting", and engine 20.10 runs the first check
	// only after a whole interval, so a new site would wait that long.
	Health *Health
}

// Health is an HTTP probe: GET Path with Host Hostname must answer 2xx/3xx.
type Health struct {
	Path     string
	Hostname string
	Interval string // Go duration, e.g. "10s"
}

// config is the part of Traefik's label configuration darse writes, with
// Traefik's field names: the Docker provider's own labels (Enable, Docker)
// next to the dynamic configuration (HTTP).
type config struct {
	Enable bool
	Docker *dockerConfig
	HTTP   *httpConfig
}

type dockerConfig struct {
	Network string
}

type httpConfig struct {
	Routers  map[string]*router
	Services map[string]*service
}

type router struct {
	EntryPoints []string
	Service     string
	Rule        string
	// allowEmpty: "tls=true" alone turns TLS on, as in Traefik.
	TLS *routerTLS `label:"allowEmpty"`
}

type routerTLS struct {
	CertResolver string
	// Domains, when set, are the only certificates CertResolver orders
	// (one each) instead of one for every host of the rule.
	Domains []tlsDomain
}

type tlsDomain struct {
	Main string
}

type service struct {
	LoadBalancer *loadBalancer
}

type loadBalancer struct {
	// Traefik's labels address one server as "server", not a list.
	Servers     []server `label-slice-as-struct:"server"`
	HealthCheck *healthCheck
}

type healthCheck struct {
	Path     string
	Hostname string
	Interval string
}

type server struct {
	// A string, as in Traefik.
	Port string
}

const (
	rootName   = "traefik"
	namePrefix = "site-"
	hostSep    = " || "
)

// name is the router and the service name of a site. Site names are unique
// DNS labels, so no two sites share one.
func name(site string) string { return namePrefix + site }

// Traefik returns the Traefik labels routing r's domains to its port:
// traefik.enable=true, traefik.docker.network when r.Network is set, and one
// router and one service named "site-<Site>".
func Traefik(r Route) (map[string]string, error) {
	if err := r.validate(); err != nil {
		return nil, fmt.Errorf("traefik labels for site %q: %w", r.Site, err)
	}
	labels, err := parser.Encode(r.config(), rootName)
	if err != nil {
		return nil, fmt.Errorf("traefik labels for site %q: %w", r.Site, err)
	}
	// paerser writes Go field names (traefik.HTTP.Routers…). Traefik matches
	// keys case-insensitively, and every name we put in a key is already
	// lowercase, so lowercasing only brings the keys to the form Traefik's
	// documentation uses.
	lower := make(map[string]string, len(labels))
	for k, v := range labels {
		lower[strings.ToLower(k)] = v
	}
	return lower, nil
}

func (r Route) config() *config {
	n := name(r.Site)
	rt := &router{
		EntryPoints: r.EntryPoints,
		Service:     n,
		Rule:        hostRule(r.Domains),
	}
	rt.TLS = r.routerTLS()
	lb := &loadBalancer{Servers: []server{{Port: strconv.Itoa(r.Port)}}}
	if h := r.Health; h != nil {
		lb.HealthCheck = &healthCheck{Path: h.Path, Hostname: h.Hostname, Interval: h.Interval}
	}
	c := &config{
		Enable: true,
		HTTP: &httpConfig{
			Routers:  map[string]*router{n: rt},
			Services: map[string]*service{n: {LoadBalancer: lb}},
		},
	}
	if r.Network != "" {
		c.Docker = &dockerConfig{Network: r.Network}
	}
	return c
}

// routerTLS is the router's TLS: the resolver ordering one certificate for
// the rule's hosts; with a wildcard covering some, one certificate for each
// other host, or none (tls=true: served from the front door's store).
func (r Route) routerTLS() *routerTLS {
	covered, own := r.splitWildcard()
	switch {
	case len(covered) == 0 && r.CertResolver == "":
		return nil
	case len(covered) == 0:
		return &routerTLS{CertResolver: r.CertResolver}
	case len(own) == 0:
		return &routerTLS{}
	}
	t := &routerTLS{CertResolver: r.CertResolver}
	for _, d := range own {
		t.Domains = append(t.Domains, tlsDomain{Main: d})
	}
	return t
}

// splitWildcard parts Domains into those *.Wildcard covers and the others.
func (r Route) splitWildcard() (covered, own []string) {
	for _, d := range r.Domains {
		if r.Wildcard != "" && underWildcard(d, r.Wildcard) {
			covered = append(covered, d)
		} else {
			own = append(own, d)
		}
	}
	return covered, own
}

// underWildcard reports whether *.wildcard matches d: one label more.
func underWildcard(d, wildcard string) bool {
	label, ok := strings.CutSuffix(d, "."+wildcard)
	return ok && label != "" && !strings.Contains(label, ".")
}

// hostRule joins Host matchers; domains must be validated first.
func hostRule(domains []string) string {
	hosts := make([]string, len(domains))
	for i, d := range domains {
		hosts[i] = "Host(`" + d + "`)"
	}
	return strings.Join(hosts, hostSep)
}

// ParseTraefik reads back the Route that Traefik encoded into labels.
// Labels outside traefik.* are ignored; any traefik.* label darse does not
// write, or a rule not of the form Traefik builds, is an error.
func ParseTraefik(labels map[string]string) (Route, error) {
	var c config
	// The filter skips other roots (darse.*, com.docker.compose.*), which
	// paerser would otherwise reject.
	if err := parser.Decode(labels, &c, rootName, rootName+"."); err != nil {
		return Route{}, fmt.Errorf("parse traefik labels: %w", err)
	}
	r, err := c.route()
	if err != nil {
		return Route{}, fmt.Errorf("parse traefik labels: %w", err)
	}
	if err := r.validate(); err != nil {
		return Route{}, fmt.Errorf("parse traefik labels for site %q: %w", r.Site, err)
	}
	return r, nil
}

func (c *config) route() (Route, error) {
	if !c.Enable {
		return Route{}, errors.New("traefik.enable is not true")
	}
	if c.HTTP == nil || len(c.HTTP.Routers) != 1 || len(c.HTTP.Services) != 1 {
		return Route{}, errors.New("want exactly one HTTP router and one HTTP service")
	}
	var r Route
	for n, rt := range c.HTTP.Routers {
		site, ok := strings.CutPrefix(n, namePrefix)
		if !ok {
			return Route{}, fmt.Errorf("router %q: name does not start with %q", n, namePrefix)
		}
		r.Site = site
		if rt.Service != n {
			return Route{}, fmt.Errorf("router %q: service is %q, want %q", n, rt.Service, n)
		}
		domains, err := parseHostRule(rt.Rule)
		if err != nil {
			return Route{}, fmt.Errorf("router %q: %w", n, err)
		}
		r.Domains = domains
		r.EntryPoints = rt.EntryPoints
		if err := r.parseTLS(rt.TLS); err != nil {
			return Route{}, fmt.Errorf("router %q: %w", n, err)
		}
	}
	svc, ok := c.HTTP.Services[name(r.Site)]
	if !ok {
		return Route{}, fmt.Errorf("no service named %q", name(r.Site))
	}
	if svc.LoadBalancer == nil || len(svc.LoadBalancer.Servers) != 1 {
		return Route{}, fmt.Errorf("service %q: want one loadBalancer server", name(r.Site))
	}
	port, err := strconv.Atoi(svc.LoadBalancer.Servers[0].Port)
	if err != nil {
		return Route{}, fmt.Errorf("service %q: port: %w", name(r.Site), err)
	}
	r.Port = port
	if h := svc.LoadBalancer.HealthCheck; h != nil {
		r.Health = &Health{Path: h.Path, Hostname: h.Hostname, Interval: h.Interval}
	}
	if c.Docker != nil {
		r.Network = c.Docker.Network
	}
	return r, nil
}

// parseTLS is routerTLS's inverse: r.Domains are set.
func (r *Route) parseTLS(t *routerTLS) error {
	if t == nil {
		return nil
	}
	r.CertResolver = t.CertResolver
	if t.CertResolver == "" && len(t.Domains) > 0 {
		return errors.New("tls.domains without a certResolver")
	}
	if t.CertResolver != "" && len(t.Domains) == 0 {
		return nil
	}
	own := map[string]bool{}
	for _, d := range t.Domains {
		if !slices.Contains(r.Domains, d.Main) {
			return fmt.Errorf("tls domain %q is not in the rule", d.Main)
		}
		own[d.Main] = true
	}
	for _, d := range r.Domains {
		if !own[d] {
			// The one domain darse leaves to a wildcard it names.
			if _, parent, ok := strings.Cut(d, "."); ok {
				r.Wildcard = parent
				return nil
			}
		}
	}
	return errors.New("tls.domains list every host of the rule: want certResolver alone")
}

// parseHostRule is hostRule's inverse. It accepts only what hostRule writes;
// the domains are validated by the caller.
func parseHostRule(rule string) ([]string, error) {
	var domains []string
	for _, h := range strings.Split(rule, hostSep) {
		d, ok := strings.CutPrefix(h, "Host(`")
		if ok {
			d, ok = strings.CutSuffix(d, "`)")
		}
		if !ok || strings.Contains(d, "`") {
			return nil, fmt.Errorf("rule %q: want Host(`domain`) joined by %q", rule, hostSep)
		}
		domains = append(domains, d)
	}
	return domains, nil
}
