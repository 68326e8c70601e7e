package ops

import (
	"context"

	"github.com/darse/darse/internal/hosting"
	"github.com/darse/darse/internal/reconcile"
)

type creator interface {
	CheckCreate(ctx context.Context, req hosting.CreateRequest) error
	Facts(ctx context.Context, name string) (hosting.CreateFacts, error)
	Create(ctx context.Context, req hosting.CreateRequest) (reconcile.Plan, error)
	RecoverCreate(ctx context.Context, name string, before hosting.CreateFacts) error
}

// Create renders a new site for its owner from a template and brings it up.
type Create struct {
	Template string            `json:"template"`
	Domain   string            `json:"domain,omitempty"` // empty: NAME.<platform domain>
	Set      map[string]string `json:"set,omitempty"`
	// Before is what existed under the name just before the creation
	// began writing, recorded so that Resume can tell its work apart.
	Before *hosting.CreateFacts `json:"before,omitempty"`
}

func (*Create) Name() string  { return "create" }
func (*Create) Title() string { return "Create" }
func (*Create) createsSite()  {}

func (k *Create) request(t Target) hosting.CreateRequest {
	return hosting.CreateRequest{Name: t.Site, Template: k.Template, Domain: k.Domain, Owner: t.Owner, Set: k.Set}
}

func (k *Create) Check(ctx context.Context, e *Env, t Target) error {
	return e.Hosting.CheckCreate(ctx, k.request(t))
}

func (k *Create) Run(ctx context.Context, e *Env, t Target) error {
	facts, err := e.Hosting.Facts(ctx, t.Site)
	if err != nil {
		return err
	}
	k.Before = &facts
	if err := e.Save(ctx, k); err != nil { // before anything is written
		return err
	}
	return e.Plan(e.Hosting.Create(ctx, k.request(t)))
}

// Resume carries out a creation that had not begun writing; one that had
// is finished (row and folder complete: the site is brought up) or undone
// (row, rendered files and new folder removed), never left half-made.
func (k *Create) Resume(ctx context.Context, e *Env, t Target) error {
	if k.Before == nil {
		return k.Run(ctx, e, t)
	}
	return e.Hosting.RecoverCreate(ctx, t.Site, *k.Before)
}
