package reconcile

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
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
// removed. Everything else is as Up plans it, except that a project none
// of whose containers runs (a stopped site) plans nothing: a rollout does
// not start what was stopped, which gets the new images when started.
func Rollout(p *compose.Project, obs Observed) Plan {
	if !slices.ContainsFunc(obs.Containers, Container.Running) {
		return nil
	}
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
	// Poll is the interval between checks (default 50 ms: less than the
	// front door's throttle, 100 ms, so that a drain sees every routing).
	Poll time.Duration
	// Serial, when set, is held while an old container is drained, so
	// that the rollouts of one process drain one at a time.
	Serial sync.Locker
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
		case RemoveContainer:
			if i > 0 && plan[i-1].Kind == DrainContainer && plan[i-1].ID == s.ID {
				err = ro.removeDrained(ctx, services[s.Service], s.ID)
				break
			}
			fallthrough
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
// refusing a request, and leaves it paused, unrouted and with nothing
// sent to it that it has not answered: the removal that follows kills it.
// Paused, it is no longer routed once the front door reads the engine
// again (Refresh), and whatever reached it meanwhile waits in its
// sockets; unpaused for the drain time, it answers that. But the front
// door routes it again whenever it reads the engine while it runs (on any
// container's start or die), so it is watched while it runs, and paused
// again: once it was not routed during a whole drain time, it was sent
// nothing more, and goes paused.
func (ro roller) drain(ctx context.Context, svc compose.Service, s Step) (err error) {
	if ro.r == nil {
		return sleep(ctx, ro.opts.Drain)
	}
	if l := ro.opts.Serial; l != nil {
		// Each drain's refresh of the front door routes the others' old
		// containers again: one at a time.
		l.Lock()
		defer l.Unlock()
	}
	paused := false
	defer func() {
		if err != nil && paused {
			uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
			defer cancel()
			if uerr := ro.e.UnpauseContainer(uctx, s.ID); uerr != nil {
				err = errors.Join(err, uerr)
			}
		}
	}()
	sent := true // what it was sent before its first pause
	for attempt := 0; attempt < 10; attempt++ {
		paused = true
		if err := ro.unroute(ctx, svc, s.ID); err != nil {
			return err
		}
		if !sent {
			return nil
		}
		if err := ro.e.UnpauseContainer(ctx, s.ID); err != nil {
			return err
		}
		paused = false
		if sent, err = ro.watch(ctx, svc, s.ID); err != nil {
			return err
		}
		if sent {
			ro.log.Info("old container routed again during its drain; draining again", "container", s.Target)
		}
	}
	return fmt.Errorf("the front door kept routing to it")
}

// unroute pauses the container and refreshes the front door until it no
// longer routes there: the front door's last reading of the engine was
// made while it was paused.
func (ro roller) unroute(ctx context.Context, svc compose.Service, id string) error {
	if err := ro.e.PauseContainer(ctx, id); err != nil {
		return err
	}
	if err := ro.r.Refresh(ctx, svc); err != nil {
		return err
	}
	deadline := time.Now().Add(ro.opts.Unroute)
	for {
		routed, err := ro.routed(ctx, svc, id)
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

// watch lets the drain time pass, reporting whether the front door routed
// the container at any time meanwhile. It asks at every poll, more often
// than the front door applies a new reading (the throttle of
// core/front's traefik.yml), so that no routing goes unseen.
func (ro roller) watch(ctx context.Context, svc compose.Service, id string) (bool, error) {
	end := time.Now().Add(ro.opts.Drain)
	sent := false
	for {
		routed, err := ro.routed(ctx, svc, id)
		if err != nil {
			return sent, err
		}
		sent = sent || routed
		left := time.Until(end)
		if left <= 0 {
			return sent, nil
		}
		if err := sleep(ctx, min(left, ro.opts.Poll)); err != nil {
			return sent, err
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

// removeDrained removes a container drain left paused: it answers nothing
// any more, so it is killed at once rather than after its stop timeout
// (a paused process cannot act on the stop signal).
func (ro roller) removeDrained(ctx context.Context, svc compose.Service, id string) error {
	timeout := svc.Container.StopTimeout
	if ro.r != nil {
		zero := 0
		timeout = &zero
	}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 60*time.Second)
	defer cancel()
	return ro.e.RemoveContainer(rctx, id, timeout)
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
		if c.Running() {
			s := Step{Kind: DrainContainer, Target: c.Name, Service: svc.Name, ID: c.ID}
			plan = append(plan, s)
			if err := ro.drain(ctx, svc, s); err != nil {
				return plan, fmt.Errorf("%s %s: %w", s.Kind, s.Target, err)
			}
		}
		plan = append(plan, Step{Kind: RemoveContainer, Target: c.Name, Service: svc.Name, ID: c.ID, Reason: "rollout cut short"})
		if err := ro.removeDrained(ctx, svc, c.ID); err != nil {
			return plan, fmt.Errorf("%s %s: %w", RemoveContainer, c.Name, err)
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
