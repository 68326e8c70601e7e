package hosting

import (
	"context"

	"github.com/darse/darse/internal/reconcile"
)

// Render renders the site again from its stored spec, the template as it
// is now and the platform's configuration, and converges it when a file
// changed. Files edited by hand are not overwritten unless force.
func (h *Hosting) Render(ctx context.Context, name string, force bool) (changed []string, plan reconcile.Plan, err error) {
	s, err := h.get(ctx, name)
	if err != nil {
		return nil, nil, err
	}
	files, err := h.renderStored(ctx, s)
	if err != nil {
		return nil, nil, err
	}
	if !force {
		if err := h.checkDrift(ctx, s); err != nil {
			return nil, nil, err
		}
	}
	return h.write(ctx, s, files)
}
