package ops

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strconv"
	"time"

	"github.com/darse/darse/internal/backup"
	"github.com/darse/darse/internal/reconcile"
	"github.com/darse/darse/internal/store"
	"github.com/darse/darse/internal/template"
)

// BackupConfig is what the backup kinds run with beside hosting.
type BackupConfig struct {
	Service *backup.Service
	// Srv is the root of the layout: users/, templates/, and backup/
	// where restores are staged (the same file system as users/).
	Srv string
	// Domain is the platform's: a site restored under a new name answers
	// at NAME.Domain.
	Domain string
	// Exec runs cmd in a container as user through the engine's Exec API,
	// stdin (nil: none) and stdout streamed; it fails when cmd exits
	// non-zero (*engine.Engine's Exec).
	Exec func(ctx context.Context, container, user string, cmd []string, stdin io.Reader, stdout io.Writer) error
	// Engine runs a drill's throw-away project (*engine.Engine).
	Engine reconcile.Engine
	// Volumes gives where the site's named volumes live on this host, by
	// volume name (*engine.Engine's SiteVolumes); nil: none are backed up.
	Volumes func(ctx context.Context, site string) (map[string]string, error)
}

// volumes returns the site's named volumes' mountpoints, by name.
func (c *BackupConfig) volumes(ctx context.Context, site string) (map[string]string, error) {
	if c.Volumes == nil {
		return nil, nil
	}
	return c.Volumes(ctx, site)
}

// dump is the database's dump command run in its container.
func (c *BackupConfig) dump(container, user string, cmd []string) backup.Dump {
	return func(ctx context.Context, w io.Writer) error { return c.Exec(ctx, container, user, cmd, nil, w) }
}

// load is the database's load command run in its container.
func (c *BackupConfig) load(container, user string, cmd []string) backup.Load {
	return func(ctx context.Context, r io.Reader) error { return c.Exec(ctx, container, user, cmd, r, io.Discard) }
}

func (c *BackupConfig) siteDir(name string) string { return filepath.Join(c.Srv, "users", name) }

// backupProvider is hosting as the CLI and the panel pass it when darse.yml
// has a backup section.
type backupProvider interface {
	BackupConfig(ctx context.Context) (*BackupConfig, error)
}

// ErrNoBackups is the error of a backup kind where darse.yml configures none.
var ErrNoBackups = errors.New("backups are not configured: add a backup: section (repository, password_file) to darse.yml")

func backupConfig(ctx context.Context, e *Env) (*BackupConfig, error) {
	p, ok := e.Hosting.(backupProvider)
	if !ok {
		return nil, ErrNoBackups
	}
	return p.BackupConfig(ctx)
}

// databaseOf returns the site's template's database (nil: none) and
// the container running it, which must be up to be dumped from or loaded.
func databaseOf(ctx context.Context, e *Env, cfg *BackupConfig, name, tpl string, needContainer bool) (*template.Database, string, error) {
	t, err := template.Load(filepath.Join(cfg.Srv, "templates"), tpl)
	if err != nil {
		return nil, "", err
	}
	if t.Database == nil || !needContainer {
		return t.Database, "", nil
	}
	st, err := e.Hosting.Status(ctx, name)
	if err != nil {
		return nil, "", err
	}
	for _, s := range st.Services {
		if s.Service == t.Database.Service && s.State == "running" && s.Container != "" {
			return t.Database, s.Container, nil
		}
	}
	return nil, "", fmt.Errorf("site %s: its database (service %s) is not running: start the site to back it up", name, t.Database.Service)
}

func dbUser(d *template.Database) string { return strconv.Itoa(d.UID) + ":" + strconv.Itoa(d.GID) }

// Backup takes a snapshot of a site (its folder, its database as a
// streamed dump) and applies the site's retention.
type Backup struct {
	// Run names the run in the repository; recorded before restic is
	// asked, so that a run cut short is found and dropped.
	RunID   string    `json:"run,omitempty"`
	Started time.Time `json:"started,omitzero"`
}

func (*Backup) Name() string  { return "backup" }
func (*Backup) Title() string { return "Back up" }

func (k *Backup) Check(ctx context.Context, e *Env, t Target) error { return onSite{}.Check(ctx, e, t) }

func (k *Backup) Run(ctx context.Context, e *Env, t Target) error {
	cfg, err := backupConfig(ctx, e)
	if err != nil {
		return err
	}
	k.RunID, k.Started = backupRun(time.Now()), time.Now().UTC()
	if err := e.Save(ctx, k); err != nil {
		return err
	}
	return k.record(ctx, e, t, k.take(ctx, e, cfg, t))
}

// Resume keeps a run that got to its folder's snapshot, drops one cut
// short (its dump) and takes the backup again.
func (k *Backup) Resume(ctx context.Context, e *Env, t Target) error {
	cfg, err := backupConfig(ctx, e)
	if err != nil {
		return err
	}
	// The killed run's restic left its lock: the next would wait for it.
	if err := cfg.Service.Restic.Unlock(ctx); err != nil {
		return err
	}
	if k.RunID != "" {
		list, err := cfg.Service.Sets(ctx, t.Site)
		if err != nil {
			return err
		}
		for _, set := range list {
			if set.Run == k.RunID && set.Complete() {
				_, err := cfg.Service.Forget(ctx, t.Site)
				return k.record(ctx, e, t, err)
			}
		}
		if err := cfg.Service.DropRun(ctx, t.Site, k.RunID); err != nil {
			return err
		}
	}
	return k.Run(ctx, e, t)
}

func backupRun(now time.Time) string { return backup.NewRun(now) }

func (k *Backup) take(ctx context.Context, e *Env, cfg *BackupConfig, t Target) error {
	rec, err := e.runner.store.SiteRecord(ctx, t.Site)
	if err != nil {
		return err
	}
	b, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("site record: %w", err)
	}
	db, container, err := databaseOf(ctx, e, cfg, t.Site, rec.Site.Template, true)
	if err != nil {
		return err
	}
	vols, err := cfg.volumes(ctx, t.Site)
	if err != nil {
		return err
	}
	site := backup.Site{Name: t.Site, Dir: cfg.siteDir(t.Site), Record: b, Volumes: vols}
	if db != nil {
		site.DB = cfg.dump(container, dbUser(db), db.Dump)
		site.DBDir = db.Dir
	}
	if _, err := cfg.Service.BackupSite(ctx, site, k.RunID); err != nil {
		return err
	}
	if _, err := cfg.Service.Forget(ctx, t.Site); err != nil {
		return fmt.Errorf("backup %s kept, but %w", k.RunID, err)
	}
	return nil
}

// record notes the run's end in the store (the admin page's last
// backup) and returns err, the run's outcome.
func (k *Backup) record(ctx context.Context, e *Env, t Target, err error) error {
	b := store.Backup{Site: t.Site, Run: k.RunID, State: store.OpDone, StartedAt: k.Started, FinishedAt: time.Now()}
	if err != nil {
		b.State, b.Error = store.OpFailed, err.Error()
	} else if cfg, cerr := backupConfig(ctx, e); cerr == nil {
		if set, ferr := cfg.Service.Find(ctx, t.Site, k.RunID); ferr == nil {
			b.FilesSnapshot, b.DBSnapshot, b.BytesAdded = set.Files, set.DB, set.BytesAdded
		}
	}
	if _, rerr := e.runner.store.RecordBackup(context.WithoutCancel(ctx), b); rerr != nil {
		return errors.Join(err, rerr)
	}
	return err
}
