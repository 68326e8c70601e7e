package hosting

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/darse/darse/internal/compose"
	"github.com/darse/darse/internal/reconcile"
	"github.com/darse/darse/internal/traefik"
)

// Rollout converges the site like Up, except that its routed web service,
// when its container must be replaced (config or image changed), is
// replaced blue/green: the new container started beside the old one,
// healthy and routed before the old one is drained and removed, so that
// no request is lost. Other services are recreated as Up does. If the new
// container does not become ready it is removed, the site stays on the old
// one, and the error matches reconcile.ErrNotReady.
func (h *Hosting) Rollout(ctx context.Context, name string, opts reconcile.RollOptions) (reconcile.Plan, error) {
	return h.roll(ctx, name, opts, reconcile.Roll)
}

// SettleRollout brings a site whose rollout was cut short (its process
// killed) back to one web container without a gap: the new one if it
// becomes ready, else the old one (reconcile.Settle). Rollout after it
// finishes the rollout.
func (h *Hosting) SettleRollout(ctx context.Context, name string, opts reconcile.RollOptions) (reconcile.Plan, error) {
	return h.roll(ctx, name, opts, reconcile.Settle)
}

type rollFunc func(context.Context, *slog.Logger, reconcile.RollEngine, reconcile.Router, reconcile.Scope, *compose.Project, reconcile.RollOptions) (reconcile.Plan, error)

func (h *Hosting) roll(ctx context.Context, name string, opts reconcile.RollOptions, do rollFunc) (reconcile.Plan, error) {
	if _, err := h.get(ctx, name); err != nil {
		return nil, err
	}
	e, ok := h.engine.(reconcile.RollEngine)
	if !ok {
		return nil, errors.New("rollout: the engine cannot pause nor inspect containers")
	}
	p, err := compose.Load(ctx, h.cfg.SiteDir(name), compose.TenantPolicy)
	if err != nil {
		return nil, err
	}
	if h.cfg.FrontNetwork != "" {
		if err := h.ensureFront(ctx, e, name); err != nil {
			return nil, err
		}
	}
	opts.Drains, opts.LeaveStopped = &h.drains, true
	steps, err := do(ctx, h.log, e, h.router(), scope(name), p, opts)
	if err != nil {
		return steps, fmt.Errorf("site %q: %w", name, err)
	}
	return steps, nil
}

// router is the front door a rollout waits on: Traefik's API, nil where
// the platform has none.
func (h *Hosting) router() reconcile.Router {
	if h.cfg.FrontAPI == "" {
		return nil
	}
	n, _ := h.engine.(traefik.Nudger)
	return &traefik.Router{API: h.cfg.FrontAPI, Nudger: n}
}
