package ops

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"time"

	"github.com/darse/darse/internal/backup"
	"github.com/darse/darse/internal/hosting"
	"github.com/darse/darse/internal/reconcile"
	"github.com/darse/darse/internal/site"
	"github.com/darse/darse/internal/store"
)

// Restore brings a site back from a backup: the folder is restored into a
// fresh folder, the site stopped and the new folder swapped in (the old
// one kept aside until the restored site is up and healthy, and put back
// if it does not get there), the database's dump loaded into a new
// database folder. A site removed since is stored again from the
// backup's record: Restore is a creating kind, held to its owner's quota.
//
// With From, the backup of site From is restored as a new site, the
// target (restore SITE --as NEWNAME): a fresh project with its own name,
// domain NEWNAME.<platform domain>, database folder and SSH port, the
// original left alone.
type Restore struct {
	// From is the site whose backup is restored; empty: the target's own.
	From string `json:"from,omitempty"`
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

// cloner is what a restore as a new site needs of hosting: whether the
// name is free, and rendering the restored folder under its new name.
type cloner interface {
	CheckName(ctx context.Context, name string) error
	Render(ctx context.Context, name string, force bool) ([]string, reconcile.Plan, error)
}

// source is the site whose backup is restored.
func (k *Restore) source(t Target) string { return cmp.Or(k.From, t.Site) }

// clone says whether the backup goes into a new site of another name.
func (k *Restore) clone(t Target) bool { return k.From != "" && k.From != t.Site }

var snapshotRE = regexp.MustCompile(`^[A-Za-z0-9-]{1,64}$`)

func (k *Restore) Check(ctx context.Context, e *Env, t Target) error {
	if err := site.ValidateName(t.Site); err != nil {
		return err
	}
	if k.Snapshot != "" && !snapshotRE.MatchString(k.Snapshot) {
		return &site.FieldError{Field: "snapshot", Value: k.Snapshot, Rule: "must be a backup run or a snapshot ID (letters, digits, dashes)"}
	}
	if !k.clone(t) {
		return nil
	}
	if err := site.ValidateName(k.From); err != nil {
		return err
	}
	// The new name is checked as a new site's: valid, not reserved, not
	// taken, its host name free. Done is a restore that got there: the
	// name is its own now.
	if e == nil {
		return nil // the name is checked when submitted
	}
	if c, ok := e.Hosting.(cloner); ok && !k.Done {
		if err := c.CheckName(ctx, t.Site); err != nil {
			return fmt.Errorf("restore %s --as %s: %w", k.From, t.Site, err)
		}
	} else if !ok {
		return fmt.Errorf("restore --as: not possible here")
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
	set, err := cfg.Service.Find(ctx, k.source(t), k.Snapshot)
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
	if err := json.Unmarshal(b, &rec); err != nil || rec.Site.Name != k.source(t) {
		return fmt.Errorf("restore %s: backup %s holds no record of this site (%v)", k.source(t), set.Run, err)
	}
	if k.clone(t) {
		asNew(&rec, t.Site, cfg.Domain)
	}
	st := e.runner.store
	if _, err := st.GetSite(ctx, t.Site); err == nil && k.clone(t) {
		return fmt.Errorf("restore %s --as %s: %w", k.From, t.Site, store.ErrSiteExists)
	} else if errors.Is(err, store.ErrNotFound) {
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
	if k.clone(t) {
		// The folder is the original's, rendered for its name: render it
		// again for the new one (which also brings it up).
		c, ok := e.Hosting.(cloner)
		if !ok {
			return errors.New("restore --as: not possible here")
		}
		if _, _, err := c.Render(ctx, t.Site, false); err != nil {
			return err
		}
	}
	if _, err := e.Hosting.Up(ctx, t.Site); err != nil {
		return err
	}
	if err := k.restoreVolumes(ctx, e, cfg, t, set); err != nil {
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
		if err := cfg.Service.LoadDump(ctx, set, cfg.load(container, dbUser(db), db.Load)); err != nil {
			return err
		}
	}
	// The old folder goes only once the restored site runs healthy.
	if err := waitHealthy(ctx, e, t.Site, restoreHealthWait); err != nil {
		return err
	}
	k.Done = true
	if err := e.Save(ctx, k); err != nil {
		return err
	}
	if err := dropOldVolumes(ctx, cfg, t.Site); err != nil {
		return err
	}
	return os.RemoveAll(dir)
}

// restoreVolumes fills the restored site's named volumes (fresh ones,
// made by Up, when the site had none) with the backup's: the site is
// stopped for the swap, then brought up again. The files they held are
// kept aside until the restore is done (putBackVolumes undoes it).
func (k *Restore) restoreVolumes(ctx context.Context, e *Env, cfg *BackupConfig, t Target, set backup.Set) error {
	if len(set.Volumes) == 0 {
		return nil
	}
	mounts, err := cfg.volumes(ctx, t.Site)
	if err != nil {
		return err
	}
	if _, err := e.Hosting.Stop(ctx, t.Site); err != nil {
		return err
	}
	for _, name := range slices.Sorted(maps.Keys(set.Volumes)) {
		key := backup.VolumeKey(k.source(t), name)
		mp, ok := mounts[t.Site+"_"+key]
		if key == "" || !ok {
			return fmt.Errorf("restore %s: the backup's volume %s has no counterpart in the restored site (its compose file declares no volume %q)", t.Site, name, key)
		}
		if err := cfg.Service.RestoreVolume(ctx, set, name, mp); err != nil {
			return err
		}
	}
	_, err = e.Hosting.Up(ctx, t.Site)
	return err
}

// putBackVolumes gives the site's volumes the files a restore set aside.
func putBackVolumes(ctx context.Context, cfg *BackupConfig, site string) error {
	mounts, err := cfg.volumes(ctx, site)
	if err != nil {
		return err
	}
	var errs []error
	for _, mp := range mounts {
		errs = append(errs, backup.PutBackVolume(mp))
	}
	return errors.Join(errs...)
}

// dropOldVolumes removes the files a done restore set aside.
func dropOldVolumes(ctx context.Context, cfg *BackupConfig, site string) error {
	mounts, err := cfg.volumes(ctx, site)
	if err != nil {
		return err
	}
	var errs []error
	for _, mp := range mounts {
		errs = append(errs, backup.DropOldVolume(mp))
	}
	return errors.Join(errs...)
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
		if err := putBackVolumes(ctx, cfg, t.Site); err != nil {
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
	// The killed run's restic left its lock: the next would wait for it.
	if err := cfg.Service.Restic.Unlock(ctx); err != nil {
		return err
	}
	dir, _, _ := k.staging(cfg, t.Site)
	if k.Done {
		if err := dropOldVolumes(ctx, cfg, t.Site); err != nil {
			return err
		}
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

// asNew makes the record of a site that of a new site name: its own
// domain under the platform's (custom domains and host ports stay the
// original's), its SSH keys kept.
func asNew(rec *store.SiteRecord, name, platformDomain string) {
	rec.Site.Name = name
	rec.Site.Domain = site.DefaultDomain(name, platformDomain)
	rec.Site.Aliases = nil
	rec.Forwards = nil
}

// restoreHealthWait bounds how long a restored site may take to run
// healthy before the restore is undone.
const restoreHealthWait = 2 * time.Minute

// waitHealthy waits until every service of the site runs (healthy where
// it has a health check).
func waitHealthy(ctx context.Context, e *Env, name string, budget time.Duration) error {
	deadline := time.Now().Add(budget)
	for {
		st, err := e.Hosting.Status(ctx, name)
		if err != nil {
			return err
		}
		bad := unhealthy(st)
		if bad == "" {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("restored site %s did not come up healthy within %s: %s", name, budget, bad)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

// unhealthy names the first service not running healthy, "" if none.
func unhealthy(st *hosting.Status) string {
	if st.State != hosting.StateRunning {
		return "site is " + st.State
	}
	for _, s := range st.Services {
		if s.Health != "" && s.Health != "healthy" {
			return "service " + s.Service + " is " + s.Health
		}
	}
	return ""
}
