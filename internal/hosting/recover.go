package hosting

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/darse/darse/internal/render"
	"github.com/darse/darse/internal/store"
)

// ErrInterrupted reports a creation that a crash cut short and that was
// undone: nothing of it is left, and it may simply be asked again.
var ErrInterrupted = errors.New("interrupted by a restart of darse; undone, nothing was kept")

// CreateFacts is what a caller notes before calling Create, so that an
// interrupted creation can be told apart from what was there before it.
type CreateFacts struct {
	RowExisted    bool `json:"row_existed"`    // a site of that name was already stored
	FolderExisted bool `json:"folder_existed"` // its folder existed (data/ kept by `site rm`)
	// Kept are the folder's entries then (data/, a database's folder, the
	// owner note): an undone creation leaves exactly those.
	Kept []string `json:"kept,omitempty"`
}

// Facts observes what CreateFacts records.
func (h *Hosting) Facts(ctx context.Context, name string) (CreateFacts, error) {
	var f CreateFacts
	if _, err := h.store.GetSite(ctx, name); err == nil {
		f.RowExisted = true
	} else if !errors.Is(err, store.ErrNotFound) {
		return f, err
	}
	entries, err := os.ReadDir(h.cfg.SiteDir(name))
	switch {
	case err == nil:
		f.FolderExisted = true
		for _, e := range entries {
			f.Kept = append(f.Kept, e.Name())
		}
	case !errors.Is(err, os.ErrNotExist):
		return f, err
	}
	return f, nil
}

// RecoverCreate settles a Create that was cut short by a crash, given the
// facts noted before it began, so that the store and the site folder agree:
//
//   - the row and every rendered file are there: the site is brought up
//     (what Create had left to do) and nil is returned;
//   - otherwise what the creation left — its row, its rendered files, and
//     the folder itself when it did not exist before — is removed and
//     ErrInterrupted returned.
//
// A site that existed before the creation is never touched.
func (h *Hosting) RecoverCreate(ctx context.Context, name string, before CreateFacts) error {
	if before.RowExisted {
		return fmt.Errorf("site %q: %w", name, ErrInterrupted)
	}
	dir := h.cfg.SiteDir(name)
	s, err := h.store.GetSite(ctx, name)
	switch {
	case errors.Is(err, store.ErrNotFound):
		s = nil
	case err != nil:
		return err
	}
	if s != nil && len(s.Rendered) > 0 && complete(dir, s.Rendered) {
		if _, err := h.Up(ctx, name); err != nil {
			return fmt.Errorf("site %q created but not started: %w", name, err)
		}
		adopted(dir)
		h.log.Info("interrupted creation finished", "site", name)
		return nil
	}
	if before.FolderExisted {
		keep := before.Kept
		if len(keep) == 0 { // noted by an older darse
			keep = []string{render.DataDir, keptFile}
		}
		if err := removeAllBut(dir, keep...); err != nil {
			return fmt.Errorf("undo create of site %q: %w", name, err)
		}
	} else if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("undo create of site %q: %w", name, err)
	}
	if s != nil {
		if err := h.store.DeleteSite(ctx, name); err != nil {
			return fmt.Errorf("undo create of site %q: %w", name, err)
		}
	}
	h.log.Info("interrupted creation undone", "site", name)
	return fmt.Errorf("site %q: %w", name, ErrInterrupted)
}

// complete reports whether every file of the manifest is in the folder.
func complete(dir string, m render.Manifest) bool {
	for p := range m {
		if _, err := os.Stat(filepath.Join(dir, filepath.FromSlash(p))); err != nil {
			return false
		}
	}
	return true
}

// removeAllBut empties dir except for the entries keep.
func removeAllBut(dir string, keep ...string) error {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, e := range entries {
		if slices.Contains(keep, e.Name()) {
			continue
		}
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			return err
		}
	}
	return nil
}
