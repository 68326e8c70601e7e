package reconcile

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/darse/darse/internal/compose"
)

// Drains gathers the drains of one process's concurrent rollouts into
// rounds. An old container is unrouted by pausing it and having the front
// door read the engine (Router.Refresh), and it answers what it was sent
// once let run again; but the front door routes it again whenever it reads
// the engine while it runs, on any container's start or die: another
// rollout's refresh or new container. So the drains of a round share
// their refreshes, and no new container starts during a round. The zero
// value is ready to use; one Drains serves every rollout of the process.
type Drains struct {
	round   sync.Mutex // held by the round running, and by a new container's start
	mu      sync.Mutex
	pending []*drainReq
}

type drainReq struct {
	svc    compose.Service
	step   Step
	done   chan error
	sent   bool // routed since it last ran: it may hold requests
	paused bool
	over   bool
}

// starting runs start (a new container's) between rounds.
func (d *Drains) starting(start func() (string, error)) (string, error) {
	if d == nil {
		return start()
	}
	d.round.Lock()
	defer d.round.Unlock()
	return start()
}

// drain drains and removes the container of step s: in the next round,
// which whoever comes first runs for every drain pending then.
func (d *Drains) drain(ctx context.Context, ro roller, svc compose.Service, s Step) error {
	q := &drainReq{svc: svc, step: s, done: make(chan error, 1), sent: true}
	d.mu.Lock()
	d.pending = append(d.pending, q)
	d.mu.Unlock()
	d.round.Lock()
	d.mu.Lock()
	batch := d.pending
	d.pending = nil
	d.mu.Unlock()
	if len(batch) > 0 {
		ro.round(ctx, batch)
	}
	d.round.Unlock()
	return <-q.done // filled by this round or an earlier one
}

// round drains the batch's containers together, and leaves each removed
// or (failed) running: paused, every one is unrouted by one refresh;
// unpaused for the drain time, each answers what it was sent, watched for
// being routed again; paused again and unrouted, those never routed since
// they last ran were sent nothing more, and are removed; the others go
// round again.
func (ro roller) round(ctx context.Context, batch []*drainReq) {
	live := batch
	for attempt := 0; attempt < 10 && len(live) > 0; attempt++ {
		for _, q := range live {
			q.paused = true
			if err := ro.e.PauseContainer(ctx, q.step.ID); err != nil {
				q.paused = false
				ro.finish(ctx, q, err)
			}
		}
		if live = pending(live); len(live) == 0 {
			return
		}
		if err := ro.r.Refresh(ctx, live[0].svc); err != nil {
			for _, q := range live {
				ro.finish(ctx, q, err)
			}
			return
		}
		ro.waitUnrouted(ctx, live)
		// Those done go first, the others still paused: a removal makes
		// the front door read the engine.
		removed := 0
		for _, q := range pending(live) {
			if !q.sent {
				removed++
				err := ro.removeDrained(ctx, q.svc, q.step.ID)
				if err != nil {
					err = fmt.Errorf("%s %s: %w", RemoveContainer, q.step.Target, err)
				}
				q.paused = false // removed, or as the removal left it
				ro.finish(ctx, q, err)
			}
		}
		if p := pending(live); len(p) > 0 && removed > 0 {
			// Read again, the others paused, before they run.
			if err := ro.r.Refresh(ctx, p[0].svc); err != nil {
				for _, q := range p {
					ro.finish(ctx, q, err)
				}
				return
			}
		}
		var rest []*drainReq
		for _, q := range pending(live) {
			if err := ro.e.UnpauseContainer(ctx, q.step.ID); err != nil {
				ro.finish(ctx, q, err)
				continue
			}
			q.paused = false
			rest = append(rest, q)
		}
		live = rest
		if len(live) > 0 {
			ro.watchAll(ctx, live)
		}
	}
	for _, q := range live {
		ro.finish(ctx, q, errors.New("the front door kept routing to it"))
	}
}

// finish ends q's drain with err; a drain that fails leaves its container
// running, never paused.
func (ro roller) finish(ctx context.Context, q *drainReq, err error) {
	if q.over {
		return
	}
	if err != nil && q.paused {
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		if uerr := ro.e.UnpauseContainer(uctx, q.step.ID); uerr != nil {
			err = errors.Join(err, uerr)
		}
		cancel()
	}
	q.over = true
	q.done <- err
}

func pending(qs []*drainReq) []*drainReq {
	var out []*drainReq
	for _, q := range qs {
		if !q.over {
			out = append(out, q)
		}
	}
	return out
}

// waitUnrouted waits until the front door routes none of the paused
// containers; those still routed after opts.Unroute fail.
func (ro roller) waitUnrouted(ctx context.Context, qs []*drainReq) {
	deadline := time.Now().Add(ro.opts.Unroute)
	for {
		left := 0
		for _, q := range pending(qs) {
			routed, err := ro.routed(ctx, q.svc, q.step.ID)
			switch {
			case err != nil:
				ro.finish(ctx, q, err)
			case routed && time.Now().After(deadline):
				ro.finish(ctx, q, fmt.Errorf("still routed %s after it was paused", ro.opts.Unroute))
			case routed:
				left++
			}
		}
		if left == 0 {
			return
		}
		if err := sleep(ctx, ro.opts.Poll); err != nil {
			for _, q := range pending(qs) {
				ro.finish(ctx, q, err)
			}
			return
		}
	}
}

// watchAll lets the drain time pass with the containers running, noting
// which the front door routes at any time meanwhile. It asks at every
// poll, more often than the front door applies a new reading (the
// throttle of core/front's traefik.yml), so that no routing goes unseen.
func (ro roller) watchAll(ctx context.Context, qs []*drainReq) {
	for _, q := range qs {
		q.sent = false
	}
	end := time.Now().Add(ro.opts.Drain)
	for {
		for _, q := range pending(qs) {
			routed, err := ro.routed(ctx, q.svc, q.step.ID)
			if err != nil {
				ro.finish(ctx, q, err)
				continue
			}
			if routed && !q.sent {
				ro.log.Info("old container routed again during its drain; draining again", "container", q.step.Target)
			}
			q.sent = q.sent || routed
		}
		left := time.Until(end)
		if left <= 0 {
			return
		}
		if err := sleep(ctx, min(left, ro.opts.Poll)); err != nil {
			for _, q := range pending(qs) {
				ro.finish(ctx, q, err)
			}
			return
		}
	}
}
