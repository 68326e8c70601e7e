package panel

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/darse/darse/internal/backup"
	"github.com/darse/darse/internal/store"
)

// fakeBackups is a repository holding fixed backups per site.
type fakeBackups struct {
	sets   map[string][]backup.Set
	period time.Duration
}

func (f *fakeBackups) Sets(ctx context.Context, site string) ([]backup.Set, error) {
	return f.sets[site], nil
}

func (f *fakeBackups) Period() time.Duration { return f.period }

func backupsFixture(t *testing.T) (*fixture, *fakeBackups) {
	now := time.Now().UTC()
	fb := &fakeBackups{period: 24 * time.Hour, sets: map[string][]backup.Set{
		"alices": {
			{Site: "alices", Run: "20260301T020000Z-aaaaaa", Time: now.Add(-time.Hour), Files: "f1", DB: "d1", Size: 3 << 19},
			{Site: "alices", Run: "20260228T020000Z-bbbbbb", Time: now.Add(-25 * time.Hour), Files: "f2", Size: 2048},
			{Site: "alices", Run: "20260227T020000Z-cccccc", Time: now.Add(-49 * time.Hour)}, // cut short: no folder snapshot
		},
		"bobs": {{Site: "bobs", Run: "20260301T020000Z-dddddd", Time: now, Files: "f3", Size: 10}},
	}}
	f := newFixture(t, func(c *Config) { c.Backups = fb })
	f.runWorkers()
	f.user("alice", "alice's long password", false, 1) // at her quota: a restore adds no site
	f.user("bob", "bob's long password!", false, 3)
	f.site("alices", "alice")
	f.site("bobs", "bob")
	return f, fb
}

func opsOf(t *testing.T, f *fixture, site string) []*store.Operation {
	t.Helper()
	list, err := f.store.ListOps(context.Background(), store.OpFilter{Site: site, Kind: "restore", Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	return list
}

// A member sees their site's complete backups (date, size) and restores
// one as an operation; another member sees none of it and restores
// nothing, nor may the owner name a run that is not the site's.
func TestBackupsPage(t *testing.T) {
	f, _ := backupsFixture(t)
	alice, bob := f.browser(), f.browser()
	alice.mustLogin("alice", "alice's long password")
	bob.mustLogin("bob", "bob's long password!")

	p := alice.get("/sites/alices/backups")
	if p.code != http.StatusOK {
		t.Fatalf("alice's backups page: %d\n%s", p.code, p.body)
	}
	for _, want := range []string{`data-run="20260301T020000Z-aaaaaa"`, `data-run="20260228T020000Z-bbbbbb"`, "1.5 MiB", "2.0 KiB"} {
		if !strings.Contains(p.body, want) {
			t.Errorf("alice's backups page lacks %q", want)
		}
	}
	if strings.Contains(p.body, "cccccc") || strings.Contains(p.body, "dddddd") {
		t.Error("the page lists a cut-short run or another site's")
	}
	if p := alice.get("/sites/alices"); !strings.Contains(p.body, `href="/sites/alices/backups"`) {
		t.Error("the site's page has no link to its backups")
	}

	if p := bob.get("/sites/alices/backups"); p.code != http.StatusNotFound {
		t.Errorf("bob reads alice's backups: %d", p.code)
	}
	if p := bob.submit("/sites/bobs/backups", "/sites/alices/backups/restore", url.Values{"run": {"20260301T020000Z-aaaaaa"}}); p.code != http.StatusNotFound {
		t.Errorf("bob restores alice's site: %d", p.code)
	}
	for _, run := range []string{"20260301T020000Z-dddddd", "20260227T020000Z-cccccc", "", "../../x"} {
		if p := alice.submit("/sites/alices/backups", "/sites/alices/backups/restore", url.Values{"run": {run}}); p.code != http.StatusNotFound {
			t.Errorf("alice restores run %q, not one of her site's complete backups: %d", run, p.code)
		}
	}
	if list := opsOf(t, f, "alices"); len(list) != 0 {
		t.Fatalf("refused restores were recorded: %+v", list)
	}

	p = alice.submit("/sites/alices/backups", "/sites/alices/backups/restore", url.Values{"run": {"20260228T020000Z-bbbbbb"}})
	if p.code != http.StatusSeeOther || !regexp.MustCompile(`^/ops/\d+$`).MatchString(p.h.Get("Location")) {
		t.Fatalf("alice restores a backup: %d %q", p.code, p.h.Get("Location"))
	}
	list := opsOf(t, f, "alices")
	if len(list) != 1 || list[0].User != "alice" || list[0].Owner != "alice" || !strings.Contains(string(list[0].Args), `"snapshot":"20260228T020000Z-bbbbbb"`) {
		t.Fatalf("the restore recorded: %+v", list)
	}
	// Its page shows its progress; here it fails, the fixture's hosting
	// having no repository.
	waitOp(t, alice, p.h.Get("Location"), "failed")
	if list := opsOf(t, f, "alices"); !strings.Contains(list[0].Error, "backups are not configured") {
		t.Errorf("the restore failed with %q", list[0].Error)
	}
}

// Admins see every site's last successful backup; one older than twice
// the schedule (or none) is red, with the last failure's message.
func TestAdminBackups(t *testing.T) {
	f, _ := backupsFixture(t)
	f.user("root", "root's long password", true, 3)
	ctx := context.Background()
	now := time.Now()
	for _, b := range []store.Backup{
		{Site: "alices", Run: "r1", State: store.OpDone, StartedAt: now.Add(-2 * time.Hour), FinishedAt: now.Add(-2 * time.Hour)},
		{Site: "alices", Run: "r2", State: store.OpFailed, Error: "restic backup: the repository is locked by another restic", StartedAt: now.Add(-time.Hour), FinishedAt: now.Add(-time.Hour)},
		{Site: "bobs", Run: "r3", State: store.OpDone, StartedAt: now.Add(-72 * time.Hour), FinishedAt: now.Add(-72 * time.Hour)},
		{Site: "", Run: "platform-1", State: store.OpDone, StartedAt: now.Add(-time.Hour), FinishedAt: now.Add(-time.Hour)},
	} {
		if _, err := f.store.RecordBackup(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	f.site("never", "bob")
	admin, alice := f.browser(), f.browser()
	admin.mustLogin("root", "root's long password")
	alice.mustLogin("alice", "alice's long password")
	if p := alice.get("/admin/backups"); p.code != http.StatusNotFound {
		t.Errorf("a member reads the admin's backups page: %d", p.code)
	}
	p := admin.get("/admin/backups")
	if p.code != http.StatusOK {
		t.Fatalf("admin backups: %d\n%s", p.code, p.body)
	}
	row := func(site string) string {
		i := strings.Index(p.body, `data-site="`+site+`"`)
		if i < 0 {
			t.Fatalf("no row for %q", site)
		}
		j := strings.Index(p.body[i:], "</tr>")
		return p.body[i : i+j]
	}
	if r := row("alices"); strings.Contains(r, "overdue") || !strings.Contains(r, "repository is locked") {
		t.Errorf("alices (backed up 2 h ago, then failed): %s", r)
	}
	if r := row("bobs"); !strings.Contains(r, "overdue") {
		t.Errorf("bobs (last success 3 days ago, daily schedule) not red: %s", r)
	}
	if r := row("never"); !strings.Contains(r, "overdue") || !strings.Contains(r, "never") {
		t.Errorf("a site never backed up not red: %s", r)
	}
	if r := row(""); strings.Contains(r, "overdue") {
		t.Errorf("the platform (backed up 1 h ago) red: %s", r)
	}
	// The row tag of an overdue site carries its class; count them.
	if n := strings.Count(p.body, `class="overdue"`); n != 2 {
		t.Errorf("%d rows red, want 2 (bobs, never)", n)
	}
}

// The admin's backups page shows each site's last restore drill, passed
// or failed and when; a site whose last drill failed is shown red, one
// whose failure was followed by a pass is not.
func TestAdminBackupsDrills(t *testing.T) {
	fb := &fakeBackups{period: 24 * time.Hour}
	f := newFixture(t, func(c *Config) { c.Backups = fb }) // no workers: the drills stay as recorded
	f.user("root", "root's long password", true, 3)
	f.user("alice", "alice's long password", false, 3)
	for _, s := range []string{"passes", "fails", "mended", "undrilled"} {
		f.site(s, "alice")
	}
	ctx := context.Background()
	drill := func(site string, cause error) {
		t.Helper()
		id, err := f.store.EnqueueOp(ctx, store.Operation{Kind: "drill", Site: site, User: "schedule", Args: []byte(`{}`)})
		if err != nil {
			t.Fatal(err)
		}
		if err := f.store.FinishOp(ctx, id, cause); err != nil {
			t.Fatal(err)
		}
	}
	drill("fails", nil)
	drill("passes", nil)
	drill("fails", errors.New("the restored copy did not run healthy within 3m0s: db is running unhealthy"))
	drill("mended", errors.New("no complete backup"))
	drill("mended", nil)
	// Still running: not a result yet.
	if _, err := f.store.EnqueueOp(ctx, store.Operation{Kind: "drill", Site: "passes", User: "schedule", Args: []byte(`{}`)}); err != nil {
		t.Fatal(err)
	}
	admin := f.browser()
	admin.mustLogin("root", "root's long password")
	p := admin.get("/admin/backups")
	if p.code != http.StatusOK {
		t.Fatalf("admin backups: %d\n%s", p.code, p.body)
	}
	cell := func(site string) string {
		t.Helper()
		i := strings.Index(p.body, `data-site="`+site+`"`)
		if i < 0 {
			t.Fatalf("no row for %q", site)
		}
		row := p.body[i : i+strings.Index(p.body[i:], "</tr>")]
		j := strings.Index(row, `<td class="drill`)
		if j < 0 {
			t.Fatalf("no drill cell in the row of %q: %s", site, row)
		}
		return row[j:]
	}
	today := time.Now().Format("2006-01-02")
	for site, want := range map[string]struct {
		text []string
		red  bool
	}{
		"passes":    {[]string{"passed", today}, false},
		"fails":     {[]string{"failed", today, "did not run healthy"}, true},
		"mended":    {[]string{"passed", today}, false},
		"undrilled": {[]string{"none yet"}, false},
	} {
		c := cell(site)
		for _, s := range want.text {
			if !strings.Contains(c, s) {
				t.Errorf("drill of %s: %q not in %s", site, s, c)
			}
		}
		if red := strings.Contains(c, "drill-failed"); red != want.red {
			t.Errorf("drill of %s shown red: %v, want %v: %s", site, red, want.red, c)
		}
	}
	if c := cell("mended"); strings.Contains(c, "no complete backup") {
		t.Errorf("an older failed drill shown after a pass: %s", c)
	}
	if n := strings.Count(p.body, "drill-failed"); n != 1 {
		t.Errorf("%d drills shown red, want 1", n)
	}
}
