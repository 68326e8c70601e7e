// Package reconcile converges a compose project on the engine: observe what
// runs under the project's compose labels, plan (a pure function, printable
// and golden-tested), then apply the plan step by step.
package reconcile

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/darse/darse/internal/compose"
)

// Scope names what one project owns on the engine: the objects carrying
// its compose project label and, for a hosted site, darse.site=Site too,
// so that a site never sees (nor removes) another project's objects that
// share its name.
type Scope struct {
	Project string
	Site    string // empty for the platform's own projects
}

// Observed is what the engine runs for one project.
type Observed struct {
	Containers []Container
	Networks   []string // engine names of the project's networks that exist
	Volumes    []string // engine names of the project's volumes that exist
	// Images maps the image references the project's services name to the
	// IDs of the images the engine has under them now. A container whose
	// image is not that one runs an image since rebuilt: it is recreated.
	// A reference missing here (nil: not resolved) compares as unchanged.
	Images map[string]string
}

// Container is an observed container of the project.
type Container struct {
	ID        string
	Name      string
	Service   string
	Number    string
	Hash      string
	Image     string // as the engine lists it: the ID once the tag moved on
	ImageID   string // the ID of the image it runs
	State     string // created, running, exited, ...
	Health    string // healthy, unhealthy, starting, or "" without healthcheck
	Addresses []Address
}

// Running reports whether the container's process is up.
func (c Container) Running() bool { return c.State == "running" || c.State == "restarting" }

// Address is one of a container's addresses on one network.
type Address struct {
	Network string `json:"network"`
	IPv4    string `json:"ipv4,omitempty"`
	IPv6    string `json:"ipv6,omitempty"`
}

// Kind names a step.
type Kind string

// The steps a plan is made of.
const (
	CreateNetwork    Kind = "CreateNetwork"
	CreateVolume     Kind = "CreateVolume"
	CreateContainer  Kind = "CreateContainer" // create, attach networks, start
	StartContainer   Kind = "StartContainer"
	StopContainer    Kind = "StopContainer"
	RestartContainer Kind = "RestartContainer"
	RemoveContainer  Kind = "RemoveContainer" // stop and remove
	RemoveNetwork    Kind = "RemoveNetwork"
	RemoveVolume     Kind = "RemoveVolume"
)

// Step is one action on the engine.
type Step struct {
	Kind    Kind
	Target  string // network, volume or container name
	Service string // for container steps
	ID      string // existing container id, when there is one
	Number  string // StartBeside: the new container's number
	Reason  string
}

// Plan is an ordered list of steps.
type Plan []Step

// String prints the plan one step a line, as tests compare it.
func (p Plan) String() string {
	if len(p) == 0 {
		return "(nothing to do)\n"
	}
	var b strings.Builder
	for i, s := range p {
		fmt.Fprintf(&b, "[%d] %s %s", i+1, s.Kind, s.Target)
		if s.Service != "" {
			fmt.Fprintf(&b, " service:%s", s.Service)
		}
		if s.Reason != "" {
			fmt.Fprintf(&b, " (%s)", s.Reason)
		}
		b.WriteByte('\n')
	}
	return b.String()
}

// Up plans what brings the project to its declared state: missing networks
// and volumes created, containers missing or with another config hash
// (re)created, stopped ones started, containers of services no longer in
// the project removed. A converged project plans nothing.
func Up(p *compose.Project, obs Observed) Plan {
	var plan Plan
	seen := map[string]int{}
	for _, n := range obs.Networks {
		seen[n]++
	}
	for _, n := range p.Networks {
		switch {
		case n.External:
		case seen[n.Name] == 0:
			plan = append(plan, Step{Kind: CreateNetwork, Target: n.Name})
		case seen[n.Name] > 1:
			// The engine let a name be taken twice (a create still in
			// flight when its client died): creating again keeps one.
			plan = append(plan, Step{Kind: CreateNetwork, Target: n.Name, Reason: "duplicate names"})
		}
	}
	have := map[string]bool{}
	have = set(obs.Volumes)
	for _, v := range p.Volumes {
		if !v.External && !have[v.Name] {
			plan = append(plan, Step{Kind: CreateVolume, Target: v.Name})
		}
	}
	byService := map[string][]Container{}
	for _, c := range obs.Containers {
		byService[c.Service] = append(byService[c.Service], c)
	}
	for _, s := range p.Services {
		name := p.ContainerName(s.Name)
		cs := byService[s.Name]
		delete(byService, s.Name)
		keep := -1
		for i, c := range cs {
			if staleness(s, c, obs.Images) == "" && keep < 0 {
				keep = i
			}
		}
		why := ""
		for i, c := range cs {
			if i == keep {
				continue
			}
			reason := staleness(s, c, obs.Images)
			if keep >= 0 {
				reason = "extra container"
			} else if why == "" {
				why = reason
			}
			plan = append(plan, Step{Kind: RemoveContainer, Target: c.Name, Service: s.Name, ID: c.ID, Reason: reason})
		}
		switch {
		case keep < 0 && len(cs) == 0:
			plan = append(plan, Step{Kind: CreateContainer, Target: name, Service: s.Name, Reason: "missing"})
		case keep < 0:
			plan = append(plan, Step{Kind: CreateContainer, Target: name, Service: s.Name, Reason: why})
		case !cs[keep].Running():
			plan = append(plan, Step{Kind: StartContainer, Target: cs[keep].Name, Service: s.Name, ID: cs[keep].ID, Reason: cs[keep].State})
		}
	}
	for _, svc := range sortedKeys(byService) {
		for _, c := range byService[svc] {
			plan = append(plan, Step{Kind: RemoveContainer, Target: c.Name, Service: svc, ID: c.ID, Reason: "orphan: service not in project"})
		}
	}
	return plan
}

// staleness says why container c no longer matches service s: its config
// hash differs, or the image it runs is no longer the one s's image
// reference names (rebuilt, e.g. with security updates). Empty when c is
// current. The image counts only when both IDs are known, so an engine
// that reports none plans as before.
func staleness(s compose.Service, c Container, images map[string]string) string {
	if c.Hash != s.Hash {
		return "config changed"
	}
	if want := images[s.Container.Image]; want != "" && c.ImageID != "" && c.ImageID != want {
		return "image changed"
	}
	return ""
}

// ImageRefs lists the image references of p's services, sorted, once each.
func ImageRefs(p *compose.Project) []string {
	seen := map[string]bool{}
	for _, s := range p.Services {
		seen[s.Container.Image] = true
	}
	return sortedKeys(seen)
}

// Stop plans stopping every running container, dependents first.
func Stop(p *compose.Project, obs Observed) Plan {
	var plan Plan
	for _, c := range reverseDeps(p, obs.Containers) {
		if c.Running() {
			plan = append(plan, Step{Kind: StopContainer, Target: c.Name, Service: c.Service, ID: c.ID})
		}
	}
	return plan
}

// Restart plans the Up steps, then restarts the containers Up leaves as they
// were and already running.
func Restart(p *compose.Project, obs Observed) Plan {
	plan := Up(p, obs)
	touched := map[string]bool{}
	for _, s := range plan {
		touched[s.Service] = true
	}
	for _, s := range p.Services {
		if touched[s.Name] {
			continue
		}
		for _, c := range obs.Containers {
			if c.Service == s.Name && c.Running() {
				plan = append(plan, Step{Kind: RestartContainer, Target: c.Name, Service: c.Service, ID: c.ID})
			}
		}
	}
	return plan
}

// Down plans removing the project's containers and networks, and its
// volumes when volumes is true. p may be nil when the folder is gone:
// everything observed under the project's labels is then removed.
func Down(p *compose.Project, obs Observed, volumes bool) Plan {
	var plan Plan
	for _, c := range reverseDeps(p, obs.Containers) {
		plan = append(plan, Step{Kind: RemoveContainer, Target: c.Name, Service: c.Service, ID: c.ID})
	}
	external := map[string]bool{}
	if p != nil {
		for _, n := range p.Networks {
			external[n.Name] = n.External
		}
		for _, v := range p.Volumes {
			external[v.Name] = v.External
		}
	}
	for _, n := range obs.Networks {
		if !external[n] {
			plan = append(plan, Step{Kind: RemoveNetwork, Target: n})
		}
	}
	if volumes {
		for _, v := range obs.Volumes {
			if !external[v] {
				plan = append(plan, Step{Kind: RemoveVolume, Target: v})
			}
		}
	}
	return plan
}

// DownPlanner is Down as a Planner.
func DownPlanner(volumes bool) Planner {
	return func(p *compose.Project, obs Observed) Plan { return Down(p, obs, volumes) }
}

// reverseDeps orders containers so that dependents come before what they
// depend on; containers of unknown services come first.
func reverseDeps(p *compose.Project, cs []Container) []Container {
	rank := func(service string) int {
		if p != nil {
			for i, s := range p.Services {
				if s.Name == service {
					return i
				}
			}
			return len(p.Services)
		}
		return 0
	}
	out := append([]Container(nil), cs...)
	sort.SliceStable(out, func(i, j int) bool {
		ri, rj := rank(out[i].Service), rank(out[j].Service)
		if ri != rj {
			return ri > rj
		}
		return out[i].Name < out[j].Name
	})
	return out
}

func set(xs []string) map[string]bool {
	m := make(map[string]bool, len(xs))
	for _, x := range xs {
		m[x] = true
	}
	return m
}

func sortedKeys[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }

// Engine is what applying a plan needs from the Docker engine.
type Engine interface {
	Observe(ctx context.Context, s Scope) (Observed, error)
	CreateNetwork(ctx context.Context, n compose.Network) error
	CreateVolume(ctx context.Context, v compose.Volume) error
	RunContainer(ctx context.Context, name string, c compose.Container) (string, error)
	StartContainer(ctx context.Context, id string) error
	StopContainer(ctx context.Context, id string, timeout *int) error
	RestartContainer(ctx context.Context, id string, timeout *int) error
	RemoveContainer(ctx context.Context, id string, timeout *int) error
	RemoveNetwork(ctx context.Context, name string) error
	RemoveVolume(ctx context.Context, name string) error
}

// ImageResolver is what an engine implements to have the images of a
// project compared: the IDs of the images it has under references
// (Observed.Images). An engine without it plans on config hashes alone.
type ImageResolver interface {
	ImageIDs(ctx context.Context, refs []string) (map[string]string, error)
}

// observe observes the scope and, when the engine can resolve images,
// the images p's services name now.
func observe(ctx context.Context, e Engine, scope Scope, p *compose.Project) (Observed, error) {
	obs, err := e.Observe(ctx, scope)
	if err != nil {
		return obs, err
	}
	if r, ok := e.(ImageResolver); ok && p != nil {
		if obs.Images, err = r.ImageIDs(ctx, ImageRefs(p)); err != nil {
			return obs, fmt.Errorf("resolve images of %s: %w", scope.Project, err)
		}
	}
	return obs, nil
}

// Planner plans from a project (nil when its folder could not be read:
// Down then removes whatever runs under its labels) and what runs for it.
type Planner func(p *compose.Project, obs Observed) Plan

// Converge observes what the engine runs for the project, plans with
// plan, and applies the plan. It returns the plan; on failure Apply
// stopped at a step, and the next Converge plans what is left.
func Converge(ctx context.Context, log *slog.Logger, e Engine, scope Scope, p *compose.Project, plan Planner) (Plan, error) {
	obs, err := observe(ctx, e, scope, p)
	if err != nil {
		return nil, err
	}
	steps := plan(p, obs)
	return steps, Apply(ctx, log, e, p, steps)
}

// Apply carries out the plan in order and stops at the first failure; the
// next Up observes what was done and plans the rest.
func Apply(ctx context.Context, log *slog.Logger, e Engine, p *compose.Project, plan Plan) error {
	services := map[string]compose.Service{}
	if p != nil {
		for _, s := range p.Services {
			services[s.Name] = s
		}
	}
	for _, s := range plan {
		if err := ctx.Err(); err != nil {
			return err
		}
		var err error
		start := time.Now()
		svc := services[s.Service]
		switch s.Kind {
		case CreateNetwork:
			err = e.CreateNetwork(ctx, find(p.Networks, func(n compose.Network) bool { return n.Name == s.Target }))
		case CreateVolume:
			err = e.CreateVolume(ctx, find(p.Volumes, func(v compose.Volume) bool { return v.Name == s.Target }))
		case CreateContainer:
			_, err = e.RunContainer(ctx, s.Target, svc.Container)
		case StartContainer:
			err = e.StartContainer(ctx, s.ID)
		case StopContainer:
			err = e.StopContainer(ctx, s.ID, svc.Container.StopTimeout)
		case RestartContainer:
			err = e.RestartContainer(ctx, s.ID, svc.Container.StopTimeout)
		case RemoveContainer:
			err = e.RemoveContainer(ctx, s.ID, svc.Container.StopTimeout)
		case RemoveNetwork:
			err = e.RemoveNetwork(ctx, s.Target)
		case RemoveVolume:
			err = e.RemoveVolume(ctx, s.Target)
		default:
			err = fmt.Errorf("unknown step kind %q", s.Kind)
		}
		if err != nil {
			return fmt.Errorf("%s %s: %w", s.Kind, s.Target, err)
		}
		log.Debug("step done", "step", string(s.Kind), "target", s.Target, "took", time.Since(start))
	}
	return nil
}

func find[T any](xs []T, ok func(T) bool) T {
	for _, x := range xs {
		if ok(x) {
			return x
		}
	}
	var zero T
	return zero
}
