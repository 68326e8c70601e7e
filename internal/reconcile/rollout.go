package reconcile

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
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
	DisconnectNetwork(ctx context.Context, network, id string) error
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
	// Poll is the interval between checks (default 50 ms: less than the
	// front door's throttle, 100 ms, so that a drain sees every routing).
	Poll time.Duration
	// LeaveStopped has Roll plan nothing for a project none of whose
	// containers runs (a stopped site): a rollout does not start what was
	// stopped, which gets the new images when it is started.
	LeaveStopped bool
	// Drains, when set, gathers the drains of the process's concurrent
	// rollouts into rounds (nil: each rollout drains alone).
	Drains *Drains
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
	def(&o.Poll, 50*time.Millisecond)
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
	if opts.LeaveStopped && !slices.ContainsFunc(obs.Containers, Container.Running) {
		return nil, nil
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
	for i := 0; i < len(plan); i++ {
		s := plan[i]
		var err error
		start := time.Now()
		switch s.Kind {
		case StartBeside:
			err = ro.startBeside(ctx, services[s.Service], s)
		case DrainContainer:
			if i+1 < len(plan) && plan[i+1].Kind == RemoveContainer && plan[i+1].ID == s.ID {
				i++ // the removal is part of the drain
			}
			err = ro.drainAndRemove(ctx, services[s.Service], s)
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
	// Its start makes the front door read the engine: not while old
	// containers are drained.
	id, err := ro.opts.Drains.starting(func() (string, error) { return ro.e.RunContainer(ctx, s.Target, c) })
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

func (ro roller) routed(ctx context.Context, svc compose.Service, id string) (bool, error) {
	c, err := ro.e.InspectContainer(ctx, id)
	if err != nil {
		return false, err
	}
	return ro.r.Routes(ctx, svc, c)
}

// drainAndRemove drains the old container and removes it. Without a
// front door it only answers for the drain time. With one, its drain is
// one of a round (Drains) with those of the other rollouts of the process.
func (ro roller) drainAndRemove(ctx context.Context, svc compose.Service, s Step) error {
	if ro.r == nil {
		if err := sleep(ctx, ro.opts.Drain); err != nil {
			return err
		}
		return ro.removeDrained(ctx, svc, s.ID)
	}
	d := ro.opts.Drains
	if d == nil {
		d = new(Drains)
	}
	return d.drain(ctx, ro, svc, s)
}

// removeDrained removes a container drain left paused, unrouted and
// with nothing sent to it unanswered. It is first taken off its networks,
// then let run to stop as it should (SIGTERM, its stop timeout: a panel
// finishes its operation): running, without an address, the front door
// has nothing of it to route to, whenever it reads the engine.
func (ro roller) removeDrained(ctx context.Context, svc compose.Service, id string) error {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
	defer cancel()
	if ro.r != nil {
		c, err := ro.e.InspectContainer(rctx, id)
		if err != nil {
			return err
		}
		if c.State == "paused" {
			for _, a := range c.Addresses {
				if err := ro.e.DisconnectNetwork(rctx, a.Network, id); err != nil {
					return err
				}
			}
			if err := ro.e.UnpauseContainer(rctx, id); err != nil {
				return err
			}
		}
	}
	return ro.e.RemoveContainer(rctx, id, svc.Container.StopTimeout)
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

// UnpauseContainer is the step of Settle that lets a container paused by
// a rollout cut short run again.
const UnpauseContainer Kind = "UnpauseContainer"

// Settle brings back to one container each blue/green service that a
// rollout cut short (its process killed) left with two, without a gap:
// paused containers are let run again; if the current one (the config
// and image the project names now) becomes ready, the others are drained
// and removed; if it does not, it goes (drained first, should it be
// routed) and the old one serves on. What is left is Roll's to plan: Roll
// after Settle finishes the rollout.
func Settle(ctx context.Context, log *slog.Logger, e RollEngine, r Router, scope Scope, p *compose.Project, opts RollOptions) (Plan, error) {
	obs, err := observe(ctx, e, scope, p)
	if err != nil {
		return nil, err
	}
	ro := roller{e: e, r: r, log: log, opts: opts.withDefaults()}
	var plan Plan
	for _, svc := range p.Services {
		if !BlueGreen(svc) {
			continue
		}
		var cs []Container
		for _, c := range obs.Containers {
			if c.Service == svc.Name {
				cs = append(cs, c)
			}
		}
		steps, err := ro.settle(ctx, svc, cs, obs.Images)
		plan = append(plan, steps...)
		if err == nil && len(steps) > 0 && r != nil {
			// The one kept may be unrouted since it was paused.
			if err = r.Refresh(ctx, svc); err != nil {
				err = fmt.Errorf("refresh the front door: %w", err)
			}
		}
		if err != nil {
			return plan, err
		}
	}
	return plan, nil
}

// settle is Settle for one service and its containers.
func (ro roller) settle(ctx context.Context, svc compose.Service, cs []Container, images map[string]string) (Plan, error) {
	var plan Plan
	for i, c := range cs {
		if c.State != "paused" {
			continue
		}
		plan = append(plan, Step{Kind: UnpauseContainer, Target: c.Name, Service: svc.Name, ID: c.ID, Reason: "rollout cut short"})
		if err := ro.e.UnpauseContainer(ctx, c.ID); err != nil {
			return plan, fmt.Errorf("%s %s: %w", UnpauseContainer, c.Name, err)
		}
		cs[i].State = "running"
	}
	if len(cs) < 2 {
		return plan, nil
	}
	keep := ro.keeper(ctx, svc, cs, images)
	if keep < 0 {
		return plan, nil // nothing serves: Roll recreates it as Up does
	}
	for i, c := range cs {
		if i == keep {
			continue
		}
		rm := Step{Kind: RemoveContainer, Target: c.Name, Service: svc.Name, ID: c.ID, Reason: "rollout cut short"}
		if !c.Running() {
			plan = append(plan, rm)
			if err := ro.removeDrained(ctx, svc, c.ID); err != nil {
				return plan, fmt.Errorf("%s %s: %w", RemoveContainer, c.Name, err)
			}
			continue
		}
		s := Step{Kind: DrainContainer, Target: c.Name, Service: svc.Name, ID: c.ID}
		plan = append(plan, s, rm)
		if err := ro.drainAndRemove(ctx, svc, s); err != nil {
			return plan, fmt.Errorf("%s %s: %w", s.Kind, s.Target, err)
		}
	}
	return plan, nil
}

// keeper picks the container of cs that goes on serving: the current one
// if it becomes ready, else one that runs (the old one), else none (-1).
func (ro roller) keeper(ctx context.Context, svc compose.Service, cs []Container, images map[string]string) int {
	cur := slices.IndexFunc(cs, func(c Container) bool { return staleness(svc, c, images) == "" })
	if cur >= 0 {
		err := ro.waitReady(ctx, svc, cs[cur].ID)
		if err == nil {
			return cur
		}
		ro.log.Info("the new container of a rollout cut short is not ready: the old one stays", "container", cs[cur].Name, "err", err)
	}
	// Not asked whether it is routed: one just unpaused is not, until
	// the front door reads the engine again (settle has it do so).
	for i, c := range cs {
		if i != cur && c.Running() && c.Health != "unhealthy" {
			return i
		}
	}
	return -1
}
