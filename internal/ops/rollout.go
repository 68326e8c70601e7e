package ops

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/darse/darse/internal/reconcile"
	"github.com/darse/darse/internal/site"
)

// roller is hosting as a rollout needs it (*hosting.Hosting).
type roller interface {
	Rollout(ctx context.Context, name string, opts reconcile.RollOptions) (reconcile.Plan, error)
	SettleRollout(ctx context.Context, name string, opts reconcile.RollOptions) (reconcile.Plan, error)
}

// Rollout brings a site onto the images and configuration it names now,
// its routed web service replaced blue/green (no request lost), the rest
// recreated as Up does. A site whose new web container does not become
// healthy and routed stays on its old one, and the operation fails saying
// so. Resumed after a crash, it first brings the web service back to one
// container (the new one if it is ready, else the old one, never one left
// paused), then rolls out what is left.
type Rollout struct {
	// Ready bounds the wait for the new container (0: 60 s); Drain is how
	// long the old one answers, unrouted, before it stops (0: 1 s).
	Ready time.Duration `json:"ready,omitempty"`
	Drain time.Duration `json:"drain,omitempty"`
}

// The bounds of a rollout's waits, so that an operation cannot hold its
// site's queue for hours.
const (
	maxReady = 10 * time.Minute
	maxDrain = 5 * time.Minute
)

func (*Rollout) Name() string  { return "rollout" }
func (*Rollout) Title() string { return "Update" }

func (k *Rollout) Check(ctx context.Context, e *Env, t Target) error {
	switch {
	case k.Ready < 0 || k.Ready > maxReady:
		return &site.FieldError{Field: "ready timeout", Value: k.Ready.String(), Rule: "must be between 0 and " + maxReady.String()}
	case k.Drain < 0 || k.Drain > maxDrain:
		return &site.FieldError{Field: "drain", Value: k.Drain.String(), Rule: "must be between 0 and " + maxDrain.String()}
	}
	if _, err := rollerOf(e); err != nil {
		return err
	}
	_, err := e.Hosting.SiteOwner(ctx, t.Site)
	return err
}

func (k *Rollout) Run(ctx context.Context, e *Env, t Target) error {
	r, err := rollerOf(e)
	if err != nil {
		return err
	}
	plan, err := r.Rollout(ctx, t.Site, k.options())
	return e.Plan(plan, notReady(err))
}

func (k *Rollout) Resume(ctx context.Context, e *Env, t Target) error {
	r, err := rollerOf(e)
	if err != nil {
		return err
	}
	settled, err := r.SettleRollout(ctx, t.Site, k.options())
	if err != nil {
		return e.Plan(settled, err)
	}
	plan, err := r.Rollout(ctx, t.Site, k.options())
	return e.Plan(append(settled, plan...), notReady(err))
}

func (k *Rollout) options() reconcile.RollOptions {
	return reconcile.RollOptions{Ready: k.Ready, Drain: k.Drain}
}

// notReady says where a site whose new container was not ready is left.
func notReady(err error) error {
	if errors.Is(err, reconcile.ErrNotReady) {
		return fmt.Errorf("%w; left on its old container", err)
	}
	return err
}

func rollerOf(e *Env) (roller, error) {
	r, ok := e.Hosting.(roller)
	if !ok {
		return nil, errors.New("rollout: not possible here (no engine to replace containers with)")
	}
	return r, nil
}
