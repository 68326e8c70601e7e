package ops

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/darse/darse/internal/backup"
	"github.com/darse/darse/internal/compose"
	"github.com/darse/darse/internal/reconcile"
	"github.com/darse/darse/internal/store"
)

// Drill proves a site's latest backup restores: it restores it into a
// throw-away project (its own folder under <srv>/backup/drill, its own
// containers, on one internal network: no route from Traefik, no
// forwarded port, no way out), loads the database's dump, waits until
// every service runs healthy, and removes it all. The operation's outcome
// is the drill's result. The site itself is not touched.
type Drill struct {
	RunID   string `json:"run,omitempty"`
	Project string `json:"project,omitempty"` // the throw-away project, recorded before it exists
}

func (*Drill) Name() string  { return "drill" }
func (*Drill) Title() string { return "Restore drill" }

func (k *Drill) Check(ctx context.Context, e *Env, t Target) error { return onSite{}.Check(ctx, e, t) }

// drillHealthWait bounds how long the throw-away project may take to run
// healthy (a database's first start included).
const drillHealthWait = 3 * time.Minute

// DrillProject names the throw-away project of a drill of site's run:
// "drill-" and a digest, a valid project name whatever the site's length.
func DrillProject(site, run string) string {
	sum := sha256.Sum256([]byte(site + "\x00" + run))
	return "drill-" + hex.EncodeToString(sum[:6])
}

func (k *Drill) Run(ctx context.Context, e *Env, t Target) error {
	cfg, err := backupConfig(ctx, e)
	if err != nil {
		return err
	}
	if cfg.Engine == nil {
		return errors.New("drill: no engine to run the throw-away project on")
	}
	set, err := cfg.Service.Find(ctx, t.Site, "")
	if err != nil {
		return err
	}
	k.RunID, k.Project = set.Run, DrillProject(t.Site, set.Run)
	if err := e.Save(ctx, k); err != nil {
		return err
	}
	err = k.drill(ctx, e, cfg, t)
	if cerr := k.cleanup(context.WithoutCancel(ctx), cfg); cerr != nil {
		err = errors.Join(err, cerr)
	}
	if err != nil {
		return fmt.Errorf("drill of %s (backup %s): %w", t.Site, k.RunID, err)
	}
	return nil
}

// Resume removes what a drill cut short left, and drills again.
func (k *Drill) Resume(ctx context.Context, e *Env, t Target) error {
	cfg, err := backupConfig(ctx, e)
	if err != nil {
		return err
	}
	if k.Project != "" && cfg.Engine != nil {
		if err := k.cleanup(ctx, cfg); err != nil {
			return err
		}
	}
	return k.Run(ctx, e, t)
}

func (k *Drill) dir(cfg *BackupConfig) string {
	return filepath.Join(cfg.Srv, "backup", "drill", k.Project)
}

func (k *Drill) scope() reconcile.Scope { return reconcile.Scope{Project: k.Project, Site: k.Project} }

func (k *Drill) drill(ctx context.Context, e *Env, cfg *BackupConfig, t Target) error {
	set, err := cfg.Service.Find(ctx, t.Site, k.RunID)
	if err != nil {
		return err
	}
	dir := k.dir(cfg)
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o700); err != nil {
		return err
	}
	if err := cfg.Service.RestoreFiles(ctx, set, dir); err != nil {
		return err
	}
	b, err := cfg.Service.ReadRecord(ctx, set)
	if err != nil {
		return err
	}
	var rec store.SiteRecord
	if err := json.Unmarshal(b, &rec); err != nil {
		return fmt.Errorf("site record: %w", err)
	}
	db, _, err := databaseOf(ctx, e, cfg, t.Site, rec.Site.Template, false)
	if err != nil {
		return err
	}
	if db != nil {
		p := filepath.Join(dir, db.Dir)
		if err := os.MkdirAll(p, 0o700); err != nil {
			return err
		}
		if err := os.Chown(p, db.UID, db.GID); err != nil {
			return err
		}
	}
	if err := renameProject(dir, k.Project); err != nil {
		return err
	}
	p, err := compose.Load(ctx, dir, compose.TenantPolicy)
	if err != nil {
		return err
	}
	isolate(p)
	if _, err := reconcile.Converge(ctx, slog.New(slog.DiscardHandler), cfg.Engine, k.scope(), p, reconcile.Up); err != nil {
		return err
	}
	if err := k.fillVolumes(ctx, cfg, t, p, set); err != nil {
		return err
	}
	if err := k.waitHealthy(ctx, cfg); err != nil {
		return err
	}
	if db != nil {
		container := p.ContainerName(db.Service)
		if err := cfg.Service.LoadDump(ctx, set, cfg.load(container, dbUser(db), db.Load)); err != nil {
			return err
		}
		return k.waitHealthy(ctx, cfg)
	}
	return nil
}

// renameProject names the restored folder's compose project after the
// drill (its .env names the site's).
func renameProject(dir, project string) error {
	path := filepath.Join(dir, ".env")
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("drill: %w", err)
	}
	lines := strings.Split(string(b), "\n")
	for i, l := range lines {
		if strings.HasPrefix(strings.TrimSpace(l), "COMPOSE_PROJECT_NAME=") {
			lines[i] = "COMPOSE_PROJECT_NAME=" + project
		}
	}
	st, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("drill: %w", err)
	}
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")), st.Mode().Perm()); err != nil {
		return fmt.Errorf("drill: %w", err)
	}
	return nil
}

// isolate makes the restored project a throw-away one: no Traefik route,
// no forwarded or published port, every service on one internal network
// of its own (reaching each other by service name, nothing else).
func isolate(p *compose.Project) {
	internal := compose.Network{Key: "drill", Name: p.Name + "_drill", Internal: true, Labels: map[string]string{}}
	for _, n := range p.Networks {
		if !n.External {
			for k, v := range n.Labels {
				internal.Labels[k] = v
			}
			break
		}
	}
	// Its volumes are its own (named after the drill's project), made
	// fresh and removed with it.
	p.Networks = []compose.Network{internal}
	p.Volumes = slices.DeleteFunc(p.Volumes, func(v compose.Volume) bool { return v.External })
	for i := range p.Services {
		c := &p.Services[i].Container
		for key := range c.Labels {
			if strings.HasPrefix(key, "traefik.") || strings.HasPrefix(key, "darse.expose") {
				delete(c.Labels, key)
			}
		}
		c.Labels["traefik.enable"] = "false"
		c.Ports, c.ExposedPorts, c.NetworkMode = nil, nil, ""
		c.Networks = []compose.Attachment{{Network: internal.Name, Aliases: []string{p.Services[i].Name}}}
		c.Restart = "no"
	}
}

// fillVolumes gives the drill's fresh volumes (its own, removed with it)
// the backup's files: the project is stopped for it, then up again.
func (k *Drill) fillVolumes(ctx context.Context, cfg *BackupConfig, t Target, p *compose.Project, set backup.Set) error {
	if len(set.Volumes) == 0 {
		return nil
	}
	log := slog.New(slog.DiscardHandler)
	if _, err := reconcile.Converge(ctx, log, cfg.Engine, k.scope(), p, reconcile.Stop); err != nil {
		return err
	}
	mounts, err := cfg.volumes(ctx, k.Project)
	if err != nil {
		return err
	}
	for _, name := range slices.Sorted(maps.Keys(set.Volumes)) {
		mp, ok := mounts[k.Project+"_"+backup.VolumeKey(t.Site, name)]
		if !ok {
			return fmt.Errorf("drill: the backup's volume %s has no counterpart in the restored project", name)
		}
		if err := cfg.Service.RestoreVolume(ctx, set, name, mp); err != nil {
			return err
		}
	}
	_, err = reconcile.Converge(ctx, log, cfg.Engine, k.scope(), p, reconcile.Up)
	return err
}

// waitHealthy waits until every container of the drill runs, healthy
// where it has a health check.
func (k *Drill) waitHealthy(ctx context.Context, cfg *BackupConfig) error {
	deadline := time.Now().Add(drillHealthWait)
	for {
		obs, err := cfg.Engine.Observe(ctx, k.scope())
		if err != nil {
			return err
		}
		bad := ""
		for _, c := range obs.Containers {
			if c.State != "running" || (c.Health != "" && c.Health != "healthy") {
				bad = c.Service + " is " + strings.TrimSpace(c.State+" "+c.Health)
				break
			}
		}
		if len(obs.Containers) == 0 {
			bad = "no container runs"
		}
		if bad == "" {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the restored copy did not run healthy within %s: %s", drillHealthWait, bad)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

// cleanup removes the throw-away project's containers, network and folder.
func (k *Drill) cleanup(ctx context.Context, cfg *BackupConfig) error {
	if k.Project == "" || !strings.HasPrefix(k.Project, "drill-") {
		return nil
	}
	_, err := reconcile.Converge(ctx, slog.New(slog.DiscardHandler), cfg.Engine, k.scope(), nil, reconcile.DownPlanner(true))
	if err != nil {
		return fmt.Errorf("remove the drill's project %s: %w", k.Project, err)
	}
	if err := os.RemoveAll(k.dir(cfg)); err != nil {
		return fmt.Errorf("remove the drill's folder: %w", err)
	}
	return nil
}

// DrillSample picks which sites a scheduled drill restores: n of names
// (sorted), rotating with round so that every site comes up in turn.
func DrillSample(names []string, n, round int) []string {
	if n <= 0 || len(names) == 0 {
		return nil
	}
	n = min(n, len(names))
	out := make([]string, 0, n)
	for i := range n {
		out = append(out, names[(round*n+i)%len(names)])
	}
	return out
}
