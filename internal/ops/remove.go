package ops

import (
	"context"
	"errors"
	"fmt"

	"github.com/darse/darse/internal/hosting"
)

type remover interface {
	Remove(ctx context.Context, name string, purge bool) error
}

// errNoArchive refuses a removal asking for an archive where none can be kept.
var errNoArchive = errors.New("no archive can be kept here; remove with purge or without archive")

// Remove takes a site down and deletes it, keeping a final archive of
// its data/ first when asked (the panel's default).
type Remove struct {
	// Purge deletes data/ too; without it the folder is kept as `site rm` does.
	Purge bool `json:"purge"`
	// Archive writes a final archive of data/ first.
	Archive bool   `json:"archive"`
	Path    string `json:"archive_path,omitempty"` // set once written
}

func (*Remove) Name() string  { return "remove" }
func (*Remove) Title() string { return "Delete" }

func (k *Remove) Check(ctx context.Context, e *Env, t Target) error {
	if k.Archive && e.Files == nil {
		return errNoArchive
	}
	return onSite{}.Check(ctx, e, t)
}

func (k *Remove) Run(ctx context.Context, e *Env, t Target) error { return k.remove(ctx, e, t, false) }

// Resume removes again (an archive already written is kept); a site
// already gone means the removal got to its last step.
func (k *Remove) Resume(ctx context.Context, e *Env, t Target) error {
	return k.remove(ctx, e, t, true)
}

func (k *Remove) remove(ctx context.Context, e *Env, t Target, resumed bool) error {
	if k.Archive && k.Path == "" {
		if e.Files == nil {
			return errNoArchive
		}
		p, err := e.Files.ArchiveData(ctx, t.Site)
		if err != nil {
			return fmt.Errorf("keep a final archive of data/: %w", err)
		}
		k.Path = p
		if err := e.Save(ctx, k); err != nil {
			return err
		}
	}
	err := e.Hosting.Remove(ctx, t.Site, k.Purge)
	if resumed && errors.Is(err, hosting.ErrInput) {
		return nil
	}
	return err
}
