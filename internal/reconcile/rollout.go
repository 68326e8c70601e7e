package reconcile

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"time"

	"github.com/darse/darse/internal/compose"
)

// The steps of a blue/green replacement, planned by Rollout.
const (
	// StartBeside creates and starts the service's new container beside
	// the old one (the other container number), then waits until it is
	// running, healthy if it has a health check, and routed by the front
	// door. If it is not, it is removed and the old one goes on serving.
	StartBeside Kind = "StartBeside"
	// DrainContainer takes the old container out of the front door's
	// routing while it still runs, and lets it answer what it was sent.
	DrainContainer Kind = "DrainContainer"
)

// BlueGreen reports whether service s can run two containers at once
// while one replaces the other: it is routed by the front door (Traefik
// labels) and publishes no host port (two containers cannot bind one).
// Other services (databases, sshd) are recreated in place.
func BlueGreen(s compose.Service) bool {
	return s.Container.Labels["traefik.enable"] == "true" && len(s.Container.Ports) == 0 && s.Container.NetworkMode == ""
}

// Rollout plans as Up does, except that a running blue/green service whose
// single container must be replaced is replaced without a gap: the new
// container started beside it and routed, then the old one drained and
// removed. Everything else is as Up plans it.
func Rollout(p *compose.Project, obs Observed) Plan {
	up := Up(p, obs)
	byID := map[string]Container{}
	for _, c := range obs.Containers {
		byID[c.ID] = c
	}
	services := map[string]compose.Service{}
	for _, s := range p.Services {
		services[s.Name] = s
	}
	var plan Plan
	for i := 0; i < len(up); i++ {
		s := up[i]
		if i+1 < len(up) && s.Kind == RemoveContainer && up[i+1].Kind == CreateContainer && up[i+1].Service == s.Service {
			old, ok := byID[s.ID]
			if svc, known := services[s.Service]; known && ok && BlueGreen(svc) && old.Running() && old.Health != "unhealthy" && onlyOne(obs, s.Service) {
				number := "2"
				if old.Number == "2" {
					number = "1"
				}
				plan = append(plan,
					Step{Kind: StartBeside, Target: p.Name + "_" + s.Service + "_" + number, Service: s.Service, Number: number, Reason: s.Reason},
					Step{Kind: DrainContainer, Target: s.Target, Service: s.Service, ID: s.ID},
					Step{Kind: RemoveContainer, Target: s.Target, Service: s.Service, ID: s.ID, Reason: "replaced"})
				i++
				continue
			}
		}
		plan = append(plan, s)
	}
	return plan
}

func onlyOne(obs Observed, service string) bool {
	n := 0
	for _, c := range obs.Containers {
		if c.Service == service {
			n++
		}
	}
	return n == 1
}

// RollEngine is what a blue/green replacement needs of the engine, beyond
// converging: reading one container, pausing it.
type RollEngine interface {
	Engine
	ImageResolver
	InspectContainer(ctx context.Context, id string) (Container, error)
	PauseContainer(ctx context.Context, id string) error
	UnpauseContainer(ctx context.Context, id string) error
}

// Router is the front door as a rollout sees it.
type Router interface {
	// Routes reports whether the front door sends the requests of svc to
	// container c.
	Routes(ctx context.Context, svc compose.Service, c Container) (bool, error)
	// Refresh makes the front door read the engine again now.
	Refresh(ctx context.Context, svc compose.Service) error
}

// RollOptions bound the waits of a rollout.
type RollOptions struct {
	// Ready bounds the wait for a new container to be healthy and routed
	// (default 60 s); Unroute the wait for the old one to be unrouted
	// (default 30 s).
	Ready, Unroute time.Duration
	// Drain is how long the old container runs, unrouted, to answer what
	// it was sent before it is stopped (default 1 s).
	Drain time.Duration
	// Poll is the interval between checks (default 100 ms).
	Poll time.Duration
}

func (o RollOptions) withDefaults() RollOptions {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&o.Ready, 60*time.Second)
	def(&o.Unroute, 30*time.Second)
	def(&o.Drain, time.Second)
	def(&o.Poll, 100*time.Millisecond)
	return o
}

// ErrNotReady marks a rollout stopped because a new container did not
// become healthy and routed: it was removed, the old one still serves.
var ErrNotReady = errors.New("new container not ready")

// Roll observes the project, plans with Rollout and applies the plan,
// replacing blue/green services without a gap. r may be nil when there
// is no front door: the new container then only has to run (and be
// healthy), and the old one is not drained.
func Roll(ctx context.Context, log *slog.Logger, e RollEngine, r Router, scope Scope, p *compose.Project, opts RollOptions) (Plan, error) {
	obs, err := observe(ctx, e, scope, p)
	if err != nil {
		return nil, err
	}
	plan := Rollout(p, obs)
	ro := roller{e: e, r: r, log: log, opts: opts.withDefaults()}
	return plan, ro.apply(ctx, p, plan)
}

type roller struct {
	e    RollEngine
	r    Router
	log  *slog.Logger
	opts RollOptions
}

func (ro roller) apply(ctx context.Context, p *compose.Project, plan Plan) error {
	services := map[string]compose.Service{}
	for _, s := range p.Services {
		services[s.Name] = s
	}
	for i, s := range plan {
		var err error
		start := time.Now()
		switch s.Kind {
		case StartBeside:
			err = ro.startBeside(ctx, services[s.Service], s)
		case DrainContainer:
			err = ro.drain(ctx, services[s.Service], s)
		default:
			err = Apply(ctx, ro.log, ro.e, p, plan[i:i+1])
			if err != nil {
				return err // already names the step
			}
			continue
		}
		if err != nil {
			return fmt.Errorf("%s %s: %w", s.Kind, s.Target, err)
		}
		ro.log.Info("step done", "step", string(s.Kind), "target", s.Target, "took", time.Since(start).Round(time.Millisecond))
	}
	return nil
}

// startBeside runs the new container under the other number and waits
// until it serves; if it does not, it is removed.
func (ro roller) startBeside(ctx context.Context, svc compose.Service, s Step) error {
	c := svc.Container
	c.Labels = maps.Clone(c.Labels)
	c.Labels[compose.LabelNumber] = s.Number
	id, err := ro.e.RunContainer(ctx, s.Target, c)
	if err == nil {
		err = ro.waitReady(ctx, svc, id)
	}
	if err != nil && id != "" {
		// The old container never stopped serving: only the new goes.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		if rerr := ro.e.RemoveContainer(rctx, id, svc.Container.StopTimeout); rerr != nil {
			err = errors.Join(err, fmt.Errorf("remove the new container: %w", rerr))
		}
	}
	return err
}

func (ro roller) waitReady(ctx context.Context, svc compose.Service, id string) error {
	deadline := time.Now().Add(ro.opts.Ready)
	why := "not running"
	for {
		c, err := ro.e.InspectContainer(ctx, id)
		if err != nil {
			return err
		}
		switch {
		case !c.Running():
			return fmt.Errorf("%w: it is %s", ErrNotReady, c.State)
		case c.Health == "unhealthy":
			return fmt.Errorf("%w: its health check fails", ErrNotReady)
		case c.Health == "starting":
			why = "its health check has not passed yet"
		case ro.r == nil:
			return nil
		default:
			ok, err := ro.r.Routes(ctx, svc, c)
			if err != nil {
				return err
			}
			if ok {
				return nil
			}
			why = "the front door does not route to it yet"
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%w within %s: %s", ErrNotReady, ro.opts.Ready, why)
		}
		if err := sleep(ctx, ro.opts.Poll); err != nil {
			return err
		}
	}
}

// drain takes the old container out of the routing without it ever
// refusing a request: paused, it is no longer routed once the front door
// reads the engine again (Refresh), and whatever reached it meanwhile
// waits in its sockets; unpaused, it answers that, unrouted, for the drain
// time. Should the front door have routed it again meanwhile (it reads the
// engine on any container's start or stop, and sees it running), the
// drain is done again, a few times at most.
func (ro roller) drain(ctx context.Context, svc compose.Service, s Step) error {
	if ro.r == nil {
		return sleep(ctx, ro.opts.Drain)
	}
	for attempt := 0; attempt < 3; attempt++ {
		if err := ro.unroute(ctx, svc, s.ID); err != nil {
			return err
		}
		if err := sleep(ctx, ro.opts.Drain); err != nil {
			return err
		}
		c, err := ro.e.InspectContainer(ctx, s.ID)
		if err != nil {
			return err
		}
		again, err := ro.r.Routes(ctx, svc, c)
		if err != nil || !again {
			return err
		}
		ro.log.Info("old container routed again during its drain; draining again", "container", s.Target)
	}
	return fmt.Errorf("the front door kept routing to it")
}

// unroute pauses the container, refreshes the front door until it no
// longer routes there, and unpauses it, whatever happened.
func (ro roller) unroute(ctx context.Context, svc compose.Service, id string) (err error) {
	if err := ro.e.PauseContainer(ctx, id); err != nil {
		return err
	}
	defer func() {
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		if uerr := ro.e.UnpauseContainer(uctx, id); uerr != nil {
			err = errors.Join(err, uerr)
		}
	}()
	if err := ro.r.Refresh(ctx, svc); err != nil {
		return err
	}
	deadline := time.Now().Add(ro.opts.Unroute)
	for {
		c, err := ro.e.InspectContainer(ctx, id)
		if err != nil {
			return err
		}
		routed, err := ro.r.Routes(ctx, svc, c)
		if err != nil {
			return err
		}
		if !routed {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("still routed %s after it was paused", ro.opts.Unroute)
		}
		if err := sleep(ctx, ro.opts.Poll); err != nil {
			return err
		}
	}
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
