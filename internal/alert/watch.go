package alert

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/darse/darse/internal/metrics"
	"github.com/darse/darse/internal/store"
)

// Store is what the watcher keeps and reads (*store.Store).
type Store interface {
	OpenIncident(ctx context.Context, in store.Incident) (bool, error)
	ResolveIncident(ctx context.Context, key string, at time.Time) error
	OpenIncidents(ctx context.Context) ([]*store.Incident, error)
	UntoldIncidents(ctx context.Context, mask int) ([]*store.Incident, error)
	MarkIncidentTold(ctx context.Context, id int64, resolved bool, bits int) error
	SitesMeantStopped(ctx context.Context) (map[string]bool, error)
	LastBackups(ctx context.Context) (last, lastDone map[string]*store.Backup, err error)
}

// Passes gives the sites' current figures (*metrics.Collector).
type Passes interface {
	Collect(ctx context.Context) (*metrics.Pass, error)
}

// Kinds of incident.
const (
	KindDown     = "down"
	KindOOM      = "oom"
	KindDisk     = "disk"
	KindFirewall = "firewall"
	KindBackup   = "backup"
	KindCert     = "cert"
)

// Condition is an alert condition holding now.
type Condition struct {
	Key, Kind, Site, Summary string
}

// Watcher checks the conditions and tells the channels.
type Watcher struct {
	cfg      Config
	st       Store
	passes   Passes
	channels []Channel
	diskPath string
	log      *slog.Logger
	http     *http.Client
	Now      func() time.Time
	// ACMEFile is Traefik's acme.json (<srv>/core/front/data/acme.json):
	// its certificates are watched for expiry; empty: not watched.
	ACMEFile string

	downSince map[string]time.Time // site → first seen down
	oomSeen   map[string]uint64    // site → kills counted
	oomLast   map[string]time.Time // site → last kill seen
	fw        *fwState
}

type fwState struct {
	applies, failures float64
	failing           bool
}

// New watches passes' sites and the file system of diskPath (/srv), and
// tells cfg's channels.
func New(cfg Config, st Store, passes Passes, diskPath string, log *slog.Logger) *Watcher {
	cfg = cfg.WithDefaults()
	w := &Watcher{cfg: cfg, st: st, passes: passes, diskPath: diskPath, log: log,
		http: &http.Client{Timeout: 10 * time.Second}, Now: time.Now,
		downSince: map[string]time.Time{}, oomSeen: map[string]uint64{}, oomLast: map[string]time.Time{}}
	if cfg.SMTP != nil {
		w.channels = append(w.channels, NewMailer(*cfg.SMTP))
	}
	if cfg.Webhook != nil {
		w.channels = append(w.channels, NewPoster(*cfg.Webhook))
	}
	return w
}

// Run checks every Interval until ctx ends.
func (w *Watcher) Run(ctx context.Context) {
	t := time.NewTicker(w.cfg.Interval)
	defer t.Stop()
	for {
		if err := w.Check(ctx); err != nil && ctx.Err() == nil {
			w.log.Warn("alerts", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Check evaluates every condition once, opens and resolves incidents in
// the store, and tells what was not told yet. A condition that could not
// be evaluated (its source failed) leaves its incidents as they are.
func (w *Watcher) Check(ctx context.Context) error {
	now := w.Now()
	firing := map[string]Condition{}
	evaluated := map[string]bool{}
	var errs []error
	for _, c := range []struct {
		kinds []string
		eval  func(context.Context, time.Time) ([]Condition, error)
	}{
		{[]string{KindDown, KindOOM}, w.sites},
		{[]string{KindDisk}, w.disk},
		{[]string{KindFirewall}, w.firewall},
		{[]string{KindBackup}, w.backups},
		{[]string{KindCert}, w.certs},
	} {
		conds, err := c.eval(ctx, now)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, k := range c.kinds {
			evaluated[k] = true
		}
		for _, cond := range conds {
			firing[cond.Key] = cond
		}
	}
	if err := w.settle(ctx, now, firing, evaluated); err != nil {
		errs = append(errs, err)
	}
	if err := w.tell(ctx); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// settle opens an incident for each condition firing and resolves the
// open ones of an evaluated kind that no longer fire.
func (w *Watcher) settle(ctx context.Context, now time.Time, firing map[string]Condition, evaluated map[string]bool) error {
	for _, c := range firing {
		fresh, err := w.st.OpenIncident(ctx, store.Incident{Key: c.Key, Kind: c.Kind, Site: c.Site, Message: c.Summary, OpenedAt: now})
		if err != nil {
			return err
		}
		if fresh {
			w.log.Warn("incident opened", "site", c.Site, "kind", c.Kind, "summary", c.Summary)
		}
	}
	open, err := w.st.OpenIncidents(ctx)
	if err != nil {
		return err
	}
	for _, in := range open {
		if _, ok := firing[in.Key]; ok || !evaluated[in.Kind] {
			continue
		}
		if err := w.st.ResolveIncident(ctx, in.Key, now); err != nil {
			return err
		}
		w.log.Info("incident resolved", "site", in.Site, "kind", in.Kind, "summary", in.Message)
	}
	return nil
}

// tell sends each untold opening and resolution on each channel that has
// not told it yet; a failure is tried again at the next check.
func (w *Watcher) tell(ctx context.Context) error {
	mask := 0
	for _, ch := range w.channels {
		mask |= ch.Bit()
	}
	if mask == 0 {
		return nil
	}
	untold, err := w.st.UntoldIncidents(ctx, mask)
	if err != nil {
		return err
	}
	var errs []error
	for _, in := range untold {
		m := Message{Incident: in.ID, Kind: in.Kind, Site: in.Site, Summary: in.Message, Opened: in.OpenedAt, Host: hostname()}
		for _, resolved := range []bool{false, true} {
			told := in.ToldOpen
			m.State = "open"
			if resolved {
				if in.ResolvedAt.IsZero() {
					continue
				}
				told, m.State, m.Resolved = in.ToldResolved, "resolved", in.ResolvedAt
			}
			for _, ch := range w.channels {
				if told&ch.Bit() != 0 {
					continue
				}
				if err := ch.Send(ctx, m); err != nil {
					errs = append(errs, fmt.Errorf("tell incident %d on %s: %w", in.ID, ch.Name(), err))
					continue
				}
				if err := w.st.MarkIncidentTold(ctx, in.ID, resolved, ch.Bit()); err != nil {
					return err
				}
			}
		}
	}
	return errors.Join(errs...)
}

// sites: down (should run, does not, for DownAfter) and OOM kills (one
// incident from a kill until OOMQuiet without another).
func (w *Watcher) sites(ctx context.Context, now time.Time) ([]Condition, error) {
	p, err := w.passes.Collect(ctx)
	if err != nil {
		return nil, fmt.Errorf("alerts: read sites: %w", err)
	}
	stopped, err := w.st.SitesMeantStopped(ctx)
	if err != nil {
		return nil, err
	}
	var out []Condition
	seen := map[string]bool{}
	for _, s := range p.Sites {
		seen[s.Name] = true
		down := !s.Up() || s.Unhealthy > 0
		if !down || stopped[s.Name] {
			delete(w.downSince, s.Name)
		} else {
			since, ok := w.downSince[s.Name]
			if !ok {
				since = now
				w.downSince[s.Name] = now
			}
			if now.Sub(since) >= w.cfg.DownAfter {
				out = append(out, Condition{Key: KindDown + ":" + s.Name, Kind: KindDown, Site: s.Name, Summary: downSummary(s)})
			}
		}
		if prev, ok := w.oomSeen[s.Name]; ok && s.OOMKills > prev {
			w.oomLast[s.Name] = now
		}
		w.oomSeen[s.Name] = s.OOMKills
		if last, ok := w.oomLast[s.Name]; ok {
			if now.Sub(last) < w.cfg.OOMQuiet {
				out = append(out, Condition{Key: KindOOM + ":" + s.Name, Kind: KindOOM, Site: s.Name,
					Summary: fmt.Sprintf("site %s: a process was killed for exceeding the site's memory limit (%d kills counted)", s.Name, s.OOMKills)})
			} else {
				delete(w.oomLast, s.Name)
			}
		}
	}
	for name := range w.oomSeen { // deleted sites
		if !seen[name] {
			delete(w.oomSeen, name)
			delete(w.oomLast, name)
			delete(w.downSince, name)
		}
	}
	return out, nil
}

func downSummary(s metrics.Site) string {
	switch {
	case s.Containers == 0:
		return fmt.Sprintf("site %s is down: it has no container", s.Name)
	case s.Running < s.Containers:
		return fmt.Sprintf("site %s is down: %d of its %d containers not running", s.Name, s.Containers-s.Running, s.Containers)
	}
	return fmt.Sprintf("site %s is down: %d of its containers unhealthy", s.Name, s.Unhealthy)
}

// disk: the file system holding the sites has less free space than
// DiskFreePercent.
func (w *Watcher) disk(ctx context.Context, now time.Time) ([]Condition, error) {
	if w.cfg.DiskFreePercent < 0 || w.diskPath == "" {
		return nil, nil
	}
	var fs syscall.Statfs_t
	if err := syscall.Statfs(w.diskPath, &fs); err != nil {
		return nil, fmt.Errorf("alerts: free space of %s: %w", w.diskPath, err)
	}
	total, free := float64(fs.Blocks)*float64(fs.Bsize), float64(fs.Bavail)*float64(fs.Bsize)
	if total == 0 || free/total*100 >= float64(w.cfg.DiskFreePercent) {
		return nil, nil
	}
	return []Condition{{Key: KindDisk + ":" + w.diskPath, Kind: KindDisk,
		Summary: fmt.Sprintf("disk of %s filling: %.1f%% free (%.1f GiB), less than %d%%", w.diskPath, free/total*100, free/(1<<30), w.cfg.DiskFreePercent)}}, nil
}

// firewall: darse-fw's applies failing (failures grew, no apply since)
// or its metrics not answering.
func (w *Watcher) firewall(ctx context.Context, now time.Time) ([]Condition, error) {
	if w.cfg.FirewallMetrics == "" {
		return nil, nil
	}
	key := KindFirewall + ":watcher"
	vals, err := w.scrape(ctx, w.cfg.FirewallMetrics, "darse_fw_applies_total", "darse_fw_apply_failures_total")
	if err != nil {
		w.fw = nil
		return []Condition{{Key: key, Kind: KindFirewall, Summary: fmt.Sprintf("firewall watcher does not answer: %v", err)}}, nil
	}
	cur := &fwState{applies: vals[0], failures: vals[1]}
	if prev := w.fw; prev != nil {
		switch {
		case cur.applies > prev.applies || cur.failures < prev.failures: // applied, or restarted
			cur.failing = false
		case cur.failures > prev.failures:
			cur.failing = true
		default:
			cur.failing = prev.failing
		}
	}
	w.fw = cur
	if !cur.failing {
		return nil, nil
	}
	return []Condition{{Key: key, Kind: KindFirewall, Summary: fmt.Sprintf("firewall rules not applying: %.0f failures, the previous rules stay", cur.failures)}}, nil
}

// scrape reads the named unlabelled samples of a Prometheus text page.
func (w *Watcher) scrape(ctx context.Context, url string, names ...string) ([]float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := w.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: %s", url, resp.Status)
	}
	out := make([]float64, len(names))
	found := make([]bool, len(names))
	sc := bufio.NewScanner(io.LimitReader(resp.Body, 4<<20))
	for sc.Scan() {
		name, val, ok := strings.Cut(sc.Text(), " ")
		if !ok {
			continue
		}
		for i, n := range names {
			if name == n {
				if v, err := strconv.ParseFloat(strings.TrimSpace(val), 64); err == nil {
					out[i], found[i] = v, true
				}
			}
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	for i, ok := range found {
		if !ok {
			return nil, fmt.Errorf("%s: no %s", url, names[i])
		}
	}
	return out, nil
}

// backups: a site backed up before whose last success is older than
// BackupMaxAge (a site never backed up is not watched: backups may be
// off for it).
func (w *Watcher) backups(ctx context.Context, now time.Time) ([]Condition, error) {
	if w.cfg.BackupMaxAge == 0 {
		return nil, nil
	}
	last, lastDone, err := w.st.LastBackups(ctx)
	if err != nil {
		return nil, err
	}
	var out []Condition
	for site, b := range last {
		what := "the platform"
		if site != "" {
			what = "site " + site
		}
		done := lastDone[site]
		switch {
		case done == nil:
			out = append(out, Condition{Key: KindBackup + ":" + site, Kind: KindBackup, Site: site,
				Summary: fmt.Sprintf("backup of %s stale: no backup succeeded (last run %s: %s)", what, b.FinishedAt.UTC().Format(time.RFC3339), oneLine(b.Error))})
		case now.Sub(done.FinishedAt) > w.cfg.BackupMaxAge:
			out = append(out, Condition{Key: KindBackup + ":" + site, Kind: KindBackup, Site: site,
				Summary: fmt.Sprintf("backup of %s stale: the last success is %s old", what, now.Sub(done.FinishedAt).Round(time.Minute))})
		}
	}
	return out, nil
}
