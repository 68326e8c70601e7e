package hosting

import (
	"context"
	"fmt"

	"github.com/darse/darse/internal/compose"
	"github.com/darse/darse/internal/reconcile"
)

// Rollout converges the site like Up, except that its routed web service,
// when its container must be replaced (config or image changed), is
// replaced blue/green: the new container started beside the old one,
// healthy and routed before the old one is drained and removed, so that
// no request is lost. Other services are recreated as Up does. If the new
// container does not become ready it is removed, the site stays on the old
// one, and the error matches reconcile.ErrNotReady.
//
// e is the engine with what a rollout needs besides converging; r is the
// front door (nil when there is none).
func (h *Hosting) Rollout(ctx context.Context, name string, e reconcile.RollEngine, r reconcile.Router, opts reconcile.RollOptions) (reconcile.Plan, error) {
	if _, err := h.get(ctx, name); err != nil {
		return nil, err
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
	steps, err := reconcile.Roll(ctx, h.log, e, r, scope(name), p, opts)
	if err != nil {
		return steps, fmt.Errorf("site %q: %w", name, err)
	}
	return steps, nil
}
