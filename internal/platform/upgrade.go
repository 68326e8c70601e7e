package platform

import (
	"context"
	"net/http"
	"time"

	"github.com/darse/darse/internal/compose"
	"github.com/darse/darse/internal/reconcile"
	"github.com/darse/darse/internal/traefik"
)

// A new darse binary is a new darse image (its tag is the binaries'
// hash), and `platform up` then replaces what runs from it without a gap:
//
//   - Traefik runs its own image, and its configuration does not name the
//     darse image: it is left running, its sockets never closed (it is
//     recreated only when its own configuration changes).
//   - docker-proxy is recreated: meanwhile Traefik keeps the routing it
//     has and reads the engine again once the proxy answers.
//   - darse-fw is recreated: its table stays in place while it restarts
//     and the new one replaces it in one transaction.
//   - the panel is replaced blue/green, as a site's web service is.

// rollEngine is the engine as replacing the panel blue/green needs it.
type rollEngine interface {
	reconcile.RollEngine
	traefik.Nudger
}

// upPanel converges the panel project, its container replaced blue/green
// when the front door answers (else, as on the first platform up, as Up
// does).
func (p *Platform) upPanel(ctx context.Context, proj *compose.Project) (reconcile.Plan, error) {
	e, ok := p.Engine.(rollEngine)
	if !ok {
		return reconcile.Converge(ctx, p.Log, p.Engine, reconcile.Scope{Project: proj.Name}, proj, reconcile.Up)
	}
	var r reconcile.Router
	if p.frontAnswers(ctx) {
		// The darse image holds darse's binaries only: no `true`.
		r = &traefik.Router{API: p.Config.Front.API, Nudger: e, NudgeCmd: []string{"darse", "version"}}
	}
	// The old panel stops as it always did: its operation finishes
	// (stop_grace_period), its requests answered before it is unrouted.
	return reconcile.Roll(ctx, p.Log, e, r, reconcile.Scope{Project: proj.Name}, proj, reconcile.RollOptions{Ready: 2 * time.Minute})
}

// frontAnswers reports whether Traefik's ping answers on its API address.
func (p *Platform) frontAnswers(ctx context.Context) bool {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+p.Config.Front.API+"/ping", nil)
	if err != nil {
		return false
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}
