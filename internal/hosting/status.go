package hosting

import (
	"context"

	"github.com/darse/darse/internal/compose"
	"github.com/darse/darse/internal/engine"
	"github.com/darse/darse/internal/reconcile"
	"github.com/darse/darse/internal/render"
	"github.com/darse/darse/internal/store"
)

// Site states, as shown to members and operators.
const (
	StateRunning   = "running"   // every service running
	StateStopped   = "stopped"   // no service running
	StatePartial   = "partial"   // some services running
	StateUnhealthy = "unhealthy" // running, but a healthcheck fails
)

// Status is a site as it stands: its spec, each service on the engine and
// whether its folder drifted from the last render.
type Status struct {
	Name     string          `json:"name"`
	Template string          `json:"template"`
	Owner    string          `json:"owner"`
	Domain   string          `json:"domain"`
	Aliases  []string        `json:"aliases,omitempty"`
	State    string          `json:"state"`
	Services []ServiceStatus `json:"services"`
	Drift    []string        `json:"drift"`
	SSH      *SSHAccess      `json:"ssh,omitempty"`   // Status only, not List
	Front    string          `json:"front,omitempty"` // its front network (shard); Status only
	Error    string          `json:"error,omitempty"` // why the folder could not be read
}

// ServiceStatus is one service's container.
type ServiceStatus struct {
	Service     string              `json:"service"`
	State       string              `json:"state"` // running, exited, created, ..., or missing
	Health      string              `json:"health,omitempty"`
	Image       string              `json:"image,omitempty"`
	ContainerID string              `json:"container_id,omitempty"`
	Container   string              `json:"container,omitempty"`
	UpToDate    bool                `json:"up_to_date"` // config hash matches the folder
	Addresses   []reconcile.Address `json:"addresses,omitempty"`
}

// Status reports one site.
func (h *Hosting) Status(ctx context.Context, name string) (*Status, error) {
	s, err := h.get(ctx, name)
	if err != nil {
		return nil, err
	}
	st, err := h.status(ctx, s)
	if err != nil {
		return nil, err
	}
	if st.SSH, err = h.sshAccess(ctx, s); err != nil {
		return nil, err
	}
	if st.Front, err = h.frontName(ctx, name); err != nil {
		return nil, err
	}
	return st, nil
}

// List reports every site as a list of many shows it (QuickStates): each
// service's container, state, health and image, and the folder's drift;
// whether a container runs the folder's current configuration, and its
// addresses, are Status's to tell.
func (h *Hosting) List(ctx context.Context) ([]*Status, error) {
	sites, err := h.store.ListSites(ctx)
	if err != nil {
		return nil, err
	}
	lister, ok := h.engine.(containerLister)
	if !ok {
		return h.listEach(ctx, sites)
	}
	// One listing of the engine's containers and one query of the store
	// for all sites: with 1,000 sites, asking the engine and loading the
	// project per site took a minute.
	cs, err := lister.Containers(ctx)
	if err != nil {
		return nil, err
	}
	names := make([]string, len(sites))
	for i, s := range sites {
		names[i] = s.Name
	}
	quick := h.QuickStates(names, cs)
	drifts, problems, err := h.Drifts(ctx, names)
	if err != nil {
		return nil, err
	}
	out := make([]*Status, 0, len(sites))
	for _, s := range sites {
		q := quick[s.Name]
		st := &Status{Name: s.Name, Template: s.Template, Owner: s.Owner, Domain: s.Domain, Aliases: s.Aliases,
			State: q.State, Services: q.Services, Drift: drifts[s.Name], Error: q.Problem}
		if st.Drift == nil {
			st.Drift = []string{}
		}
		if err := problems[s.Name]; err != nil && st.Error == "" {
			st.Error = err.Error()
		}
		out = append(out, st)
	}
	return out, nil
}

// containerLister is an engine that lists every container in one call.
type containerLister interface {
	Containers(ctx context.Context) ([]engine.ContainerInfo, error)
}

// listEach is List for an engine that cannot list every container at
// once: each site asked on its own.
func (h *Hosting) listEach(ctx context.Context, sites []*store.Site) ([]*Status, error) {
	out := make([]*Status, 0, len(sites))
	for _, s := range sites {
		st, err := h.status(ctx, s)
		if err != nil {
			return nil, err
		}
		out = append(out, st)
	}
	return out, nil
}

func (h *Hosting) status(ctx context.Context, s *store.Site) (*Status, error) {
	st := &Status{Name: s.Name, Template: s.Template, Owner: s.Owner, Domain: s.Domain, Aliases: s.Aliases, Drift: []string{}}
	dir := h.cfg.SiteDir(s.Name)
	drift, err := render.Drift(dir, s.Rendered)
	if err != nil {
		return nil, err
	}
	if drift != nil {
		st.Drift = drift
	}
	p, err := compose.Load(ctx, dir, compose.TenantPolicy)
	if err != nil {
		st.Error = err.Error()
	}
	obs, err := h.engine.Observe(ctx, scope(s.Name))
	if err != nil {
		return nil, err
	}
	st.Services = services(p, obs)
	st.State = summarize(st.Services)
	return st, nil
}

// services matches declared services with observed containers; a project
// that cannot be loaded shows what runs under its labels.
func services(p *compose.Project, obs reconcile.Observed) []ServiceStatus {
	var out []ServiceStatus
	seen := map[string]bool{}
	if p != nil {
		for _, svc := range p.Services {
			ss := ServiceStatus{Service: svc.Name, State: "missing", Image: svc.Container.Image}
			for _, c := range obs.Containers {
				if c.Service == svc.Name {
					seen[c.ID] = true
					ss.State, ss.Health, ss.Image, ss.ContainerID, ss.Container = c.State, c.Health, c.Image, c.ID, c.Name
					ss.UpToDate = c.Hash == svc.Hash
					ss.Addresses = c.Addresses
					break
				}
			}
			out = append(out, ss)
		}
	}
	for _, c := range obs.Containers {
		if !seen[c.ID] && (p == nil || !declared(p, c.Service)) {
			out = append(out, ServiceStatus{Service: c.Service, State: c.State, Health: c.Health, Image: c.Image,
				ContainerID: c.ID, Container: c.Name, Addresses: c.Addresses})
		}
	}
	return out
}

func declared(p *compose.Project, service string) bool {
	for _, s := range p.Services {
		if s.Name == service {
			return true
		}
	}
	return false
}

func summarize(ss []ServiceStatus) string {
	running, unhealthy := 0, false
	for _, s := range ss {
		if s.State == "running" {
			running++
			if s.Health == "unhealthy" {
				unhealthy = true
			}
		}
	}
	switch {
	case running == 0:
		return StateStopped
	case unhealthy:
		return StateUnhealthy
	case running < len(ss):
		return StatePartial
	}
	return StateRunning
}
