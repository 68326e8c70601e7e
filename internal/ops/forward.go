package ops

import (
	"context"
	"errors"

	"github.com/darse/darse/internal/hosting"
	"github.com/darse/darse/internal/reconcile"
	"github.com/darse/darse/internal/store"
)

type forwarder interface {
	CheckForward(ctx context.Context, name string, req hosting.ForwardRequest, queued []hosting.ForwardRequest) error
	AddForward(ctx context.Context, name string, req hosting.ForwardRequest) (*store.Forward, reconcile.Plan, error)
	CheckRemoveForward(ctx context.Context, name string, hostPort int) error
	RemoveForward(ctx context.Context, name string, hostPort int) (reconcile.Plan, error)
	Render(ctx context.Context, name string, force bool) ([]string, reconcile.Plan, error)
	Up(ctx context.Context, name string) (reconcile.Plan, error)
}

// Forward exposes a container port of the site's web service on a host
// port allocated from 40000-50000.
type Forward struct {
	Port     int    `json:"port"`                // container port
	Proto    string `json:"proto"`               // tcp or udp
	HostPort int    `json:"host_port,omitempty"` // once allocated
}

func (*Forward) Name() string  { return "forward" }
func (*Forward) Title() string { return "Forward a port" }

func (k *Forward) request() hosting.ForwardRequest {
	return hosting.ForwardRequest{Port: k.Port, Proto: k.Proto}
}

// Check counts the forwards still queued beside those stored: a burst of
// requests cannot pass the per-site limit nor ask for one port twice.
func (k *Forward) Check(ctx context.Context, e *Env, t Target) error {
	queued, err := e.Queued(ctx, t.Site, k)
	if err != nil {
		return err
	}
	var reqs []hosting.ForwardRequest
	for _, q := range queued {
		reqs = append(reqs, q.(*Forward).request())
	}
	return e.Hosting.CheckForward(ctx, t.Site, k.request(), reqs)
}

// Run stores the forward and renders the site with it; the host port
// allocated is recorded in the operation. Asked again for the same port
// (after a crash), hosting returns the forward already made.
func (k *Forward) Run(ctx context.Context, e *Env, t Target) error {
	f, plan, err := e.Hosting.AddForward(ctx, t.Site, k.request())
	if f != nil {
		k.HostPort = f.HostPort
		if serr := e.Save(ctx, k); serr != nil && err == nil {
			err = serr
		}
	}
	return e.Plan(plan, err)
}

// Resume forwards again (the forward already stored is returned), then
// converges: the crash may have cut the recreation short after the files
// were written, and a render that changes nothing converges nothing.
func (k *Forward) Resume(ctx context.Context, e *Env, t Target) error {
	if err := k.Run(ctx, e, t); err != nil {
		return err
	}
	return e.Plan(e.Hosting.Up(ctx, t.Site))
}

// Unforward stops forwarding one of the site's host ports.
type Unforward struct {
	HostPort int `json:"host_port"`
}

func (*Unforward) Name() string  { return "unforward" }
func (*Unforward) Title() string { return "Remove a forward" }

func (k *Unforward) Check(ctx context.Context, e *Env, t Target) error {
	return e.Hosting.CheckRemoveForward(ctx, t.Site, k.HostPort)
}

func (k *Unforward) Run(ctx context.Context, e *Env, t Target) error {
	return e.Plan(e.Hosting.RemoveForward(ctx, t.Site, k.HostPort))
}

// Resume removes again; already gone from the store means the removal got
// that far, and the site is rendered and converged without it (the crash
// may have cut the render or the recreation short).
func (k *Unforward) Resume(ctx context.Context, e *Env, t Target) error {
	err := k.Run(ctx, e, t)
	if !errors.Is(err, hosting.ErrInput) {
		return err
	}
	if _, _, err := e.Hosting.Render(ctx, t.Site, false); err != nil {
		return err
	}
	return e.Plan(e.Hosting.Up(ctx, t.Site))
}
