package ops

import (
	"context"

	"github.com/darse/darse/internal/reconcile"
)

// siteChecker names a site's owner, and answers that a site does not
// exist with an error naming it.
type siteChecker interface {
	SiteOwner(ctx context.Context, name string) (string, error)
}

type converger interface {
	Up(ctx context.Context, name string) (reconcile.Plan, error)
	Stop(ctx context.Context, name string) (reconcile.Plan, error)
	Restart(ctx context.Context, name string) (reconcile.Plan, error)
}

// onSite is the check of kinds that act on an existing site and take no
// argument of their own.
type onSite struct{}

func (onSite) Check(ctx context.Context, e *Env, t Target) error {
	_, err := e.Hosting.SiteOwner(ctx, t.Site)
	return err
}

// Up converges the site's folder, as it is on disk, on the engine. Run
// again after a crash, it plans what is left.
type Up struct{ onSite }

func (*Up) Name() string  { return "up" }
func (*Up) Title() string { return "Start" }
func (*Up) Run(ctx context.Context, e *Env, t Target) error {
	return e.Plan(e.Hosting.Up(ctx, t.Site))
}
func (k *Up) Resume(ctx context.Context, e *Env, t Target) error { return k.Run(ctx, e, t) }

// Stop stops the site's containers; safe to repeat.
type Stop struct{ onSite }

func (*Stop) Name() string  { return "stop" }
func (*Stop) Title() string { return "Stop" }
func (*Stop) Run(ctx context.Context, e *Env, t Target) error {
	return e.Plan(e.Hosting.Stop(ctx, t.Site))
}
func (k *Stop) Resume(ctx context.Context, e *Env, t Target) error { return k.Run(ctx, e, t) }

// Restart brings the site up and restarts what already ran; safe to repeat.
type Restart struct{ onSite }

func (*Restart) Name() string  { return "restart" }
func (*Restart) Title() string { return "Restart" }
func (*Restart) Run(ctx context.Context, e *Env, t Target) error {
	return e.Plan(e.Hosting.Restart(ctx, t.Site))
}
func (k *Restart) Resume(ctx context.Context, e *Env, t Target) error { return k.Run(ctx, e, t) }
