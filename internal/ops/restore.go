package ops

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"

	"github.com/darse/darse/internal/backup"
	"github.com/darse/darse/internal/site"
	"github.com/darse/darse/internal/store"
)

// Restore brings a site back from a backup: the folder is restored into a
// fresh folder, the site stopped and the new folder swapped in (the old
// one kept aside until the restored site is up), the database's dump
// loaded. A site removed since is stored again from the backup's record:
// Restore is a creating kind, held to its owner's quota.
type Restore struct {
	// Snapshot is what was asked: a run or a snapshot ID; empty: the latest.
	Snapshot string `json:"snapshot,omitempty"`
	// RunID is the run restored, resolved before anything changes.
	RunID string `json:"run,omitempty"`
	// Imported: the store's row came from the backup (undone on failure).
	Imported bool `json:"imported,omitempty"`
	// Swapped: the restored folder is the site's, the old one (if any) aside.
	Swapped bool `json:"swapped,omitempty"`
	Done    bool `json:"done,omitempty"`
}

func (*Restore) Name() string  { return "restore" }
func (*Restore) Title() string { return "Restore" }
func (*Restore) createsSite()  {}

// databaseWaiter waits until the site's database answers (*hosting.Hosting).
type databaseWaiter interface {
	WaitDatabase(ctx context.Context, name string) error
}

var snapshotRE = regexp.MustCompile(`^[A-Za-z0-9-]{1,64}$`)

func (k *Restore) Check(ctx context.Context, e *Env, t Target) error {
	if err := site.ValidateName(t.Site); err != nil {
		return err
	}
	if k.Snapshot != "" && !snapshotRE.MatchString(k.Snapshot) {
		return &site.FieldError{Field: "snapshot", Value: k.Snapshot, Rule: "must be a backup run or a snapshot ID (letters, digits, dashes)"}
	}
	return nil
}

// staging holds the restored folder (new) and the site's previous one (old).
func (k *Restore) staging(cfg *BackupConfig, name string) (dir, fresh, old string) {
	dir = filepath.Join(cfg.Srv, "backup", "restore", name)
	return dir, filepath.Join(dir, "new"), filepath.Join(dir, "old")
}

func (k *Restore) Run(ctx context.Context, e *Env, t Target) error {
	cfg, err := backupConfig(ctx, e)
	if err != nil {
		return err
	}
	set, err := cfg.Service.Find(ctx, t.Site, k.Snapshot)
	if err != nil {
		return err
	}
	k.RunID = set.Run
	if err := e.Save(ctx, k); err != nil {
		return err
	}
	if err := k.restore(ctx, e, cfg, t, set); err != nil {
		return errors.Join(err, k.undo(context.WithoutCancel(ctx), e, cfg, t))
	}
	return nil
}

func (k *Restore) restore(ctx context.Context, e *Env, cfg *BackupConfig, t Target, set backup.Set) error {
	dir, fresh, old := k.staging(cfg, t.Site)
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("restore %s: clear %s: %w", t.Site, dir, err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("restore %s: %w", t.Site, err)
	}
	if err := cfg.Service.RestoreFiles(ctx, set, fresh); err != nil {
		return err
	}
	b, err := cfg.Service.ReadRecord(ctx, set)
	if err != nil {
		return err
	}
	var rec store.SiteRecord
	if err := json.Unmarshal(b, &rec); err != nil || rec.Site.Name != t.Site {
		return fmt.Errorf("restore %s: backup %s holds no record of this site (%v)", t.Site, set.Run, err)
	}
	st := e.runner.store
	if _, err := st.GetSite(ctx, t.Site); errors.Is(err, store.ErrNotFound) {
		if rec.Site.Owner != t.Owner {
			return fmt.Errorf("restore %s: the backup's site belongs to %q, not %q", t.Site, rec.Site.Owner, t.Owner)
		}
		if err := st.ImportSite(ctx, &rec); err != nil {
			return fmt.Errorf("restore %s: %w", t.Site, err)
		}
		k.Imported = true
		if err := e.Save(ctx, k); err != nil {
			return err
		}
	} else if err != nil {
		return err
	}
	db, _, err := databaseOf(ctx, e, cfg, t.Site, rec.Site.Template, false)
	if err != nil {
		return err
	}
	if db != nil {
		p := filepath.Join(fresh, db.Dir)
		if err := os.Mkdir(p, 0o700); err != nil && !os.IsExist(err) {
			return fmt.Errorf("restore %s: %w", t.Site, err)
		}
		if err := os.Chown(p, db.UID, db.GID); err != nil {
			return fmt.Errorf("restore %s: %w", t.Site, err)
		}
	}
	// The site's containers are stopped before the swap: running ones
	// would go on serving the old folder, moved aside.
	live := cfg.siteDir(t.Site)
	if _, err := os.Lstat(live); err == nil {
		if _, err := e.Hosting.Stop(ctx, t.Site); err != nil {
			return err
		}
		if err := os.Rename(live, old); err != nil {
			return fmt.Errorf("restore %s: set the old folder aside: %w", t.Site, err)
		}
	}
	if err := os.MkdirAll(filepath.Dir(live), 0o755); err != nil {
		return err
	}
	if err := os.Rename(fresh, live); err != nil {
		return fmt.Errorf("restore %s: swap the restored folder in: %w", t.Site, err)
	}
	k.Swapped = true
	if err := e.Save(ctx, k); err != nil {
		return err
	}
	if _, err := e.Hosting.Up(ctx, t.Site); err != nil {
		return err
	}
	if db != nil {
		if w, ok := e.Hosting.(databaseWaiter); ok {
			if err := w.WaitDatabase(ctx, t.Site); err != nil {
				return err
			}
		}
		_, container, err := databaseOf(ctx, e, cfg, t.Site, rec.Site.Template, true)
		if err != nil {
			return err
		}
		if err := cfg.Service.LoadDump(ctx, set, cfg.Exec(container, dbUser(db), db.Load)); err != nil {
			return err
		}
	}
	k.Done = true
	if err := e.Save(ctx, k); err != nil {
		return err
	}
	return os.RemoveAll(dir)
}

// undo puts the site back as it was before: its old folder (or none),
// its store row (or none), running as it was found.
func (k *Restore) undo(ctx context.Context, e *Env, cfg *BackupConfig, t Target) error {
	dir, _, old := k.staging(cfg, t.Site)
	live := cfg.siteDir(t.Site)
	var errs []error
	if k.Swapped {
		if _, err := e.Hosting.Stop(ctx, t.Site); err != nil {
			errs = append(errs, err)
		}
		if err := os.RemoveAll(live); err != nil {
			errs = append(errs, err)
		}
		k.Swapped = false
	}
	if _, err := os.Lstat(old); err == nil {
		if _, err := os.Lstat(live); err == nil {
			errs = append(errs, fmt.Errorf("restore %s: both %s and %s exist", t.Site, live, old))
		} else if err := os.Rename(old, live); err != nil {
			errs = append(errs, err)
		} else if _, err := e.Hosting.Up(ctx, t.Site); err != nil {
			errs = append(errs, err)
		}
	}
	if k.Imported {
		if err := e.Hosting.Remove(ctx, t.Site, true); err != nil {
			if derr := e.runner.store.DeleteSite(ctx, t.Site); derr != nil && !errors.Is(derr, store.ErrNotFound) {
				errs = append(errs, err, derr)
			}
		}
		k.Imported = false
	}
	if len(errs) == 0 {
		os.RemoveAll(dir)
	}
	if err := e.Save(ctx, k); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Resume finishes a restore that got to its end, and otherwise undoes
// what was done and restores again from the same run: the site serves
// its old state or the restored one, never a mix.
func (k *Restore) Resume(ctx context.Context, e *Env, t Target) error {
	cfg, err := backupConfig(ctx, e)
	if err != nil {
		return err
	}
	dir, _, _ := k.staging(cfg, t.Site)
	if k.Done {
		return os.RemoveAll(dir)
	}
	if err := k.undo(ctx, e, cfg, t); err != nil {
		return err
	}
	if k.RunID != "" {
		k.Snapshot = k.RunID
	}
	return k.Run(ctx, e, t)
}
