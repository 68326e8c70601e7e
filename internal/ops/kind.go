package ops

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/darse/darse/internal/content"
	"github.com/darse/darse/internal/reconcile"
	"github.com/darse/darse/internal/store"
)

// Kind is one kind of operation, as a typed value holding its arguments
// (recorded as JSON with the operation). It answers bad input before
// anything is recorded (Check), carries the operation out (Run) and
// settles it when the process running it died (Resume). Adding a kind is
// one file with its type and one line in registry.
type Kind interface {
	// Name is the kind as recorded and listed: "create", "up", ...
	Name() string
	// Title is how the panel names it: "Create", "Start", ...
	Title() string
	// Check is the early answer the panel and the CLI give at once: an
	// error naming the field that is wrong, with nothing recorded.
	Check(ctx context.Context, e *Env, t Target) error
	// Run carries the operation out. What must survive a crash is
	// recorded first with e.Save.
	Run(ctx context.Context, e *Env, t Target) error
	// Resume settles an operation whose process died while running it:
	// it finishes it or cleanly undoes it.
	Resume(ctx context.Context, e *Env, t Target) error
}

// creating kinds make a new site: Submit holds the owner to their quota
// and refuses a second pending one for the same name.
type creating interface{ createsSite() }

// platformWide kinds act on no site (the backup repository): they are
// recorded under the empty site name, with no owner.
type platformWide interface{ platformWide() }

// registry lists every kind: the runner decodes recorded operations with
// it, and the tests that kill a process mid-operation go through it.
func registry() []func() Kind {
	return []func() Kind{
		func() Kind { return new(Create) },
		func() Kind { return new(Up) },
		func() Kind { return new(Stop) },
		func() Kind { return new(Restart) },
		func() Kind { return new(Remove) },
		func() Kind { return new(Content) },
		func() Kind { return new(Forward) },
		func() Kind { return new(Unforward) },
		func() Kind { return new(Backup) },
		func() Kind { return new(Restore) },
		func() Kind { return new(BackupCheck) },
		func() Kind { return new(Drill) },
		func() Kind { return new(Rollout) },
	}
}

// Title names the kind recorded as name as the panel shows it; the name
// itself when no kind has it.
func Title(name string) string {
	for _, mk := range registry() {
		if k := mk(); k.Name() == name {
			return k.Title()
		}
	}
	return name
}

// Names lists the name of every kind, in the registry's order.
func Names() []string {
	var out []string
	for _, k := range registry() {
		out = append(out, k().Name())
	}
	return out
}

// Decode returns the kind of a recorded operation, its arguments filled in.
func Decode(op *store.Operation) (Kind, error) {
	for _, mk := range registry() {
		k := mk()
		if k.Name() != op.Kind {
			continue
		}
		if len(op.Args) > 0 {
			if err := json.Unmarshal(op.Args, k); err != nil {
				return nil, fmt.Errorf("operation %d (%s) arguments: %w", op.ID, op.Kind, err)
			}
		}
		return k, nil
	}
	return nil, fmt.Errorf("operation %d: unknown kind %q", op.ID, op.Kind)
}

// Target is what an operation acts on, and for whom.
type Target struct {
	Site  string
	Owner string // the member the site is (or is to be) theirs
	User  string // who asked: a member, or cli:<OS user>
}

func target(op *store.Operation) Target {
	return Target{Site: op.Site, Owner: op.Owner, User: op.User}
}

// Env is what a kind checks and runs with.
type Env struct {
	Hosting Hosting
	Files   Files // nil where no archive nor upload is possible

	runner *Runner
	op     *store.Operation // nil while checking
}

// Save records k's arguments as they stand now, for whoever resumes the
// operation after a crash.
func (e *Env) Save(ctx context.Context, k Kind) error {
	b, err := json.Marshal(k)
	if err != nil {
		return fmt.Errorf("operation %d arguments: %w", e.op.ID, err)
	}
	return e.runner.store.SetOpArgs(ctx, e.op.ID, b)
}

// Plan shows the plan an operation carried out to the runner's Plans
// (the CLI prints them): always on success (an empty plan: the site was
// up to date), on failure only the steps it got to. It returns err.
func (e *Env) Plan(plan reconcile.Plan, err error) error {
	if r := e.runner; r.Plans != nil && e.op != nil && (err == nil || len(plan) > 0) {
		r.Plans(e.op, plan)
	}
	return err
}

// Queued returns the queued operations of k's kind on the site, decoded:
// what a Check counts beside what is already stored.
func (e *Env) Queued(ctx context.Context, site string, k Kind) ([]Kind, error) {
	list, err := e.runner.store.ListOps(ctx, store.OpFilter{Site: site, Kind: k.Name(), States: []string{store.OpQueued}, Limit: 1000})
	if err != nil {
		return nil, err
	}
	out := make([]Kind, 0, len(list))
	for _, op := range list {
		q, err := Decode(op)
		if err != nil {
			return nil, err
		}
		out = append(out, q)
	}
	return out, nil
}

// Files moves sites' files (package content).
type Files interface {
	// ArchiveData keeps a final archive of a site's data/ before it is deleted.
	ArchiveData(ctx context.Context, name string) (string, error)
	// Install swaps an uploaded archive's content in as data/.
	Install(ctx context.Context, name, archive, displayName, mode string) (content.Summary, error)
	// Cleanup drops the data/ folders Install set aside.
	Cleanup(name string) error
}

// Hosting is what the kinds are carried out with (*hosting.Hosting); each
// kind's file declares the part it uses.
type Hosting interface {
	siteChecker
	creator
	converger
	remover
	statuser
	forwarder
}
