package panel

import (
	"context"
	"errors"
	"html"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/darse/darse/internal/site"
	"github.com/darse/darse/internal/store"
)

// eventually retries check until it reports true: site states are read
// from the engine's container list, which the panel keeps for a second.
func eventually(t *testing.T, what string, check func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ok, got := check()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never happened; last seen:\n%s", what, got)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// createSite creates a static site through the panel and waits for its
// operation to end in want (done or failed); it returns the operation's page.
func createSite(t *testing.T, b *browser, name, want string) string {
	t.Helper()
	p := b.submit("/sites/new", "/sites", url.Values{"name": {name}, "template": {"static"}})
	if p.code != http.StatusSeeOther {
		t.Fatalf("create %s: %d\n%s", name, p.code, p.body)
	}
	waitOp(t, b, p.h.Get("Location"), want)
	return p.h.Get("Location")
}

func TestSiteLinks(t *testing.T) {
	for _, c := range []struct {
		name   string
		scheme string
		port   string
		want   string
	}{
		{"default install: plain HTTP", "", "", "http://blog.example.org/"},
		{"ACME on", "https", "", "https://blog.example.org/"},
		{"ACME on, default port", "https", "443", "https://blog.example.org/"},
		{"front door on another port", "http", "8080", "http://blog.example.org:8080/"},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t, func(cfg *Config) { cfg.SiteScheme, cfg.SitePort = c.scheme, c.port })
			f.user("alice", "alice's long password", false, 3)
			f.site("blog", "alice")
			if err := f.store.AddDomain(context.Background(), "blog", "www.blog.test"); err != nil {
				t.Fatal(err)
			}
			b := f.browser()
			b.mustLogin("alice", "alice's long password")
			alias := strings.Replace(c.want, "blog.example.org", "www.blog.test", 1)
			for _, path := range []string{"/sites", "/sites/blog"} {
				body := b.get(path).body
				if !strings.Contains(body, `href="`+c.want+`"`) || !strings.Contains(body, `href="`+alias+`"`) {
					t.Errorf("%s links to neither %s nor %s:\n%s", path, c.want, alias, body)
				}
				other := "https://"
				if strings.HasPrefix(c.want, "https") {
					other = "http://"
				}
				if strings.Contains(body, `href="`+other+`blog.example.org`) {
					t.Errorf("%s links to the site with %s", path, other)
				}
			}
		})
	}
	for _, bad := range []Config{{SiteScheme: "ftp"}, {SitePort: "http"}, {SitePort: "70000"}} {
		if _, err := New(bad, nil, nil, nil, nil, nil, nil); err == nil || !strings.Contains(err.Error(), "panel site") {
			t.Errorf("New(%+v) = %v, want an error naming the bad field", bad, err)
		}
	}
}

// cliHint is in the engine's error below: members must never be told to
// run a command (command finds one).
const cliHint = "run `darse site up blog` on the server"

var command = regexp.MustCompile("`|darse (site|op|user|panel|fw|images|platform) ")

// TestFailedCreation: a creation whose containers cannot start leaves the
// site shown failed (not "Stopped") on the dashboard, its page and the
// admin list, in the member's terms without the engine's error or any
// command; admins see the error; a retry once the cause is gone starts it.
func TestFailedCreation(t *testing.T) {
	f := newFixtureWithEngine(t)
	var broken atomic.Bool
	broken.Store(true)
	engineErr := "Error response from daemon: port is already allocated; " + cliHint
	f.engine.Fail = func(call string) error {
		if broken.Load() && strings.HasPrefix(call, "RunContainer blog_") {
			return errors.New(engineErr)
		}
		return nil
	}
	f.runWorkers()
	f.user("alice", "alice's long password", false, 3)
	f.user("root", "root's long password", true, 3)
	alice, root := f.browser(), f.browser()
	alice.mustLogin("alice", "alice's long password")
	root.mustLogin("root", "root's long password")
	opPage := createSite(t, alice, "blog", "failed")
	if _, err := f.store.GetSite(context.Background(), "blog"); err != nil {
		t.Fatalf("the site's row is gone after its start failed: %v", err)
	}

	memberSees := func(path string, want ...string) string {
		t.Helper()
		p := alice.get(path)
		body := html.UnescapeString(p.body)
		if p.code != http.StatusOK {
			t.Fatalf("alice GET %s: %d", path, p.code)
		}
		for _, w := range want {
			if !strings.Contains(body, w) {
				t.Errorf("alice's %s lacks %q:\n%s", path, w, body)
			}
		}
		for _, never := range []string{"port is already allocated", "Stopped"} {
			if strings.Contains(body, never) {
				t.Errorf("alice's %s shows %q", path, never)
			}
		}
		if cmd := command.FindString(body); cmd != "" {
			t.Errorf("alice's %s tells her to run %q", path, cmd)
		}
		return body
	}
	retry := `action="/sites/blog/start"`
	memberSees(opPage, "The site was created but could not be started. You can try again; if it keeps failing, contact an admin.", retry, "Try again")
	if p := alice.getJSON(opPage); strings.Contains(p.body, "allocated") || !strings.Contains(p.body, "could not be started") {
		t.Errorf("alice's operation JSON: %s", p.body)
	}
	eventually(t, "the dashboard shows the failure", func() (bool, string) {
		body := alice.get("/sites").body
		return strings.Contains(body, "Creation failed") && strings.Contains(body, "state-failed"), body
	})
	memberSees("/sites", "Creation failed", "could not be started", retry)
	memberSees("/sites/blog", "Creation failed", "could not be started", retry)
	if p := alice.getJSON("/sites/blog/status"); !strings.Contains(p.body, `"state":"failed"`) || !strings.Contains(p.body, `"label":"Creation failed"`) {
		t.Errorf("live status: %s", p.body)
	}

	// Admins see the engine's error, and the site among the failing.
	for _, path := range []string{"/admin", "/admin?state=failed", opPage, "/sites/blog"} {
		body := html.UnescapeString(root.get(path).body)
		if !strings.Contains(body, engineErr) || !strings.Contains(body, "Creation failed") && path != opPage {
			t.Errorf("root's %s lacks the failure and its error:\n%s", path, body)
		}
	}
	if body := root.get("/admin").body; !strings.Contains(body, `class="tone-bad"`) {
		t.Errorf("the admin list does not show blog as failing:\n%s", body)
	}
	if body := root.get("/admin?state=running").body; strings.Contains(body, `data-site-row="blog"`) {
		t.Error("a failed site is listed among the running")
	}

	// The cause fixed, the retry (an Up) starts it.
	broken.Store(false)
	p := alice.submit("/sites/blog", "/sites/blog/start", nil)
	if p.code != http.StatusSeeOther {
		t.Fatalf("retry: %d", p.code)
	}
	list, err := f.store.ListOps(context.Background(), store.OpFilter{Site: "blog", Limit: 1})
	if err != nil || len(list) != 1 || list[0].Kind != "up" {
		t.Fatalf("the retry recorded %v (%v), want an up", list, err)
	}
	waitOp(t, alice, "/ops/"+itoa(int(list[0].ID)), "done")
	eventually(t, "the site shown running", func() (bool, string) {
		body := alice.get("/sites").body
		return strings.Contains(body, "state-running") && !strings.Contains(body, "could not be started"), body
	})
	if body := root.get("/admin").body; strings.Contains(body, engineErr) || !strings.Contains(body, `class="tone-ok"`) {
		t.Errorf("the admin list still shows the failure:\n%s", body)
	}

	// Stopped by its owner: at rest (grey), not failing (red).
	if p := alice.submit("/sites/blog", "/sites/blog/stop", nil); p.code != http.StatusSeeOther {
		t.Fatalf("stop: %d", p.code)
	}
	list, _ = f.store.ListOps(context.Background(), store.OpFilter{Site: "blog", Limit: 1})
	waitOp(t, alice, "/ops/"+itoa(int(list[0].ID)), "done")
	eventually(t, "the admin list shows blog stopped, quietly", func() (bool, string) {
		body := root.get("/admin").body
		return strings.Contains(body, `class="tone-quiet"`) && strings.Contains(body, "state-stopped") && !strings.Contains(body, "tone-bad"), body
	})
}

// TestFailedCreationUndone: a creation undone whole (its files could not
// be written) leaves no site; its page offers the form filled in again.
func TestFailedCreationUndone(t *testing.T) {
	f := newFixtureWithEngine(t)
	f.user("alice", "alice's long password", false, 3)
	alice := f.browser()
	alice.mustLogin("alice", "alice's long password")
	p := alice.submit("/sites/new", "/sites", url.Values{"name": {"blog"}, "template": {"static"}})
	if p.code != http.StatusSeeOther {
		t.Fatalf("create: %d\n%s", p.code, p.body)
	}
	opPage := p.h.Get("Location")
	// Recorded, then a file appears where the site's folder goes: the
	// creation fails without keeping the site.
	if err := os.MkdirAll(filepath.Join(f.srv, "users"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(f.srv, "users", "blog"), []byte("in the way"), 0o644); err != nil {
		t.Fatal(err)
	}
	f.runWorkers()
	waitOp(t, alice, opPage, "failed")
	if _, err := f.store.GetSite(context.Background(), "blog"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("undone creation left the site: %v", err)
	}
	body := html.UnescapeString(alice.get(opPage).body)
	if !strings.Contains(body, "The site could not be created. You can try again") || !strings.Contains(body, `href="/sites/new?name=blog&template=static"`) {
		t.Errorf("operation page of an undone creation:\n%s", body)
	}
	if strings.Contains(body, "in the way") || strings.Contains(body, "not a directory") || command.MatchString(body) {
		t.Errorf("alice is shown the raw error:\n%s", body)
	}
	if p := alice.get("/sites/new?name=blog&template=static"); !strings.Contains(p.body, `name="name" value="blog"`) {
		t.Errorf("the create form is not filled in again:\n%s", p.body)
	}
}

// TestSitePageForMembersAndAdmins: logs open on the web service; the
// files' folder is the platform's; the hand-edit warning is for admins.
func TestSitePageForMembersAndAdmins(t *testing.T) {
	f := newFixtureWithEngine(t)
	f.runWorkers()
	f.user("alice", "alice's long password", false, 3)
	f.user("root", "root's long password", true, 3)
	alice, root := f.browser(), f.browser()
	alice.mustLogin("alice", "alice's long password")
	root.mustLogin("root", "root's long password")
	createSite(t, alice, "blog", "done")

	// With a key the ssh service runs too, and comes first by name.
	key, _ := newKey(t)
	if p := alice.submit("/sites/blog", "/sites/blog/key-add", url.Values{"key": {key}}); p.code != http.StatusSeeOther {
		t.Fatalf("add a key: %d", p.code)
	}
	(&tenants{f: f}).settle()
	p := alice.get("/sites/blog/logs")
	if !strings.Contains(p.body, `?service=ssh"`) {
		t.Fatalf("the logs page does not offer the ssh service:\n%s", p.body)
	}
	if p.code != http.StatusOK || !strings.Contains(p.body, `?service=web" aria-current="page"`) {
		t.Fatalf("logs open on another service than web: %d\n%s", p.code, p.body)
	}
	if p := alice.get("/sites/blog/logs?service=ssh"); !strings.Contains(p.body, `?service=ssh" aria-current="page"`) {
		t.Errorf("logs of the ssh service cannot be chosen: %d\n%s", p.code, p.body)
	}
	dir := filepath.Join(f.srv, "users", "blog")
	if body := html.UnescapeString(alice.get("/sites/blog").body); !strings.Contains(body, filepath.Join(dir, "data")) || strings.Contains(body, "/srv/users") {
		t.Errorf("the site page does not name the site's folder %s:\n%s", filepath.Join(dir, "data"), body)
	}
	compose, err := os.ReadFile(filepath.Join(dir, "docker-compose.yml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "docker-compose.yml"), append(compose, "# edited by an operator\n"...), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/sites", "/sites/blog"} {
		if body := alice.get(path).body; strings.Contains(body, "dited by hand") || strings.Contains(body, "docker-compose.yml") {
			t.Errorf("alice's %s warns of files edited by hand", path)
		}
	}
	if body := root.get("/sites/blog").body; !strings.Contains(body, "Files edited by hand on the server: <strong>docker-compose.yml</strong>") {
		t.Errorf("root's site page lacks the hand-edit warning:\n%s", body)
	}
	if body := root.get("/sites/blog").body; !strings.Contains(body, `<a class="back" href="/admin">← All sites</a>`) {
		t.Error("an admin on another's site page is not led back to the admin list")
	}
	if body := root.get("/admin").body; !strings.Contains(body, `<span class="tag tag-warn">docker-compose.yml</span>`) {
		t.Errorf("the admin list does not show the drift:\n%s", body)
	}
}

// A site's generated database credentials are on its owner's page only.
func TestSecretsShownToOwnerOnly(t *testing.T) {
	f := newFixture(t)
	f.user("alice", "alice's long password", false, 3)
	f.user("root", "root's long password", true, 3)
	spec := site.Spec{Name: "shop", Template: "php-mariadb", Owner: "alice", Domain: "shop.example.org",
		Params: map[string]string{"DB_PASSWORD": "s3cretVALUEforTEST"}, Plan: site.Plan{CPUs: "0.5", Memory: "64m", Pids: 64}}
	if err := f.store.CreateSite(context.Background(), spec); err != nil {
		t.Fatal(err)
	}
	a, root := f.browser(), f.browser()
	a.mustLogin("alice", "alice's long password")
	root.mustLogin("root", "root's long password")
	if p := a.get("/sites/shop"); p.code != 200 || !strings.Contains(p.body, "s3cretVALUEforTEST") || !strings.Contains(p.body, "DB_PASSWORD") {
		t.Fatalf("owner's page: %d, password shown = %v", p.code, strings.Contains(p.body, "s3cretVALUEforTEST"))
	}
	if p := root.get("/sites/shop"); p.code != 200 || strings.Contains(p.body, "s3cretVALUEforTEST") {
		t.Fatalf("an admin's view of the site: %d, password shown = %v", p.code, strings.Contains(p.body, "s3cretVALUEforTEST"))
	}
}

// The new-site page says what each template runs, as `darse templates ls`.
func TestNewSitePageSaysWhatTemplatesRun(t *testing.T) {
	f := newFixture(t)
	f.user("alice", "alice's long password", false, 3)
	b := f.browser()
	b.mustLogin("alice", "alice's long password")
	p := b.get("/sites/new")
	for _, want := range []string{"WordPress", "darse/mariadb:10.11-bookworm", "darse/postgres:15-bookworm", "darse/nginx:bookworm"} {
		if !strings.Contains(p.body, want) {
			t.Errorf("new-site page lacks %q", want)
		}
	}
}
