package panel

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"html"
	"io"
	"io/fs"
	"log/slog"
	"mime/multipart"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"golang.org/x/crypto/ssh"

	"github.com/darse/darse"
	"github.com/darse/darse/internal/auth"
	"github.com/darse/darse/internal/content"
	"github.com/darse/darse/internal/engine/enginetest"
	"github.com/darse/darse/internal/hosting"
	"github.com/darse/darse/internal/ops"
	"github.com/darse/darse/internal/site"
	"github.com/darse/darse/internal/store"
)

func TestMain(m *testing.M) {
	gin.SetMode(gin.ReleaseMode)
	os.Exit(m.Run())
}

var cheap = auth.Params{Time: 1, Memory: 64, Threads: 1}

type fixture struct {
	t      *testing.T
	srv    string
	store  *store.Store
	panel  *Server
	http   *httptest.Server
	runner *ops.Runner
	engine *enginetest.Fake // what hosting converges sites on
}

type option func(*Config)

func newFixture(t *testing.T, opts ...option) *fixture {
	t.Helper()
	return buildFixture(t, false, opts...)
}

// newFixtureWithEngine is a fixture whose panel also reads the fake
// engine, as the real one does: site states come from its containers.
func newFixtureWithEngine(t *testing.T, opts ...option) *fixture {
	t.Helper()
	return buildFixture(t, true, opts...)
}

func buildFixture(t *testing.T, panelEngine bool, opts ...option) *fixture {
	t.Helper()
	srv := t.TempDir()
	repoTemplates, _ := filepath.Abs("../../templates")
	if err := os.Symlink(repoTemplates, filepath.Join(srv, "templates")); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	st, err := store.Open(ctx, filepath.Join(srv, "conf", "darse.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	hcfg := hosting.Config{Srv: srv, Domain: "example.org"}
	fake := &enginetest.Fake{}
	h := hosting.New(hcfg, st, fake, log)
	files := struct {
		content.Archiver
		content.Installer
	}{content.Archiver{UsersDir: hcfg.UsersDir(), ArchiveDir: filepath.Join(srv, "archives")}, content.Installer{UsersDir: hcfg.UsersDir()}}
	runner := ops.New(st, h, files, log)
	web, _ := fs.Sub(darse.Web, "web")
	cfg := Config{TemplatesDir: hcfg.TemplatesDir(), UsersDir: hcfg.UsersDir(), PlatformDomain: "example.org", HashParams: cheap,
		UploadsDir: filepath.Join(srv, "conf", "uploads"), UploadMax: 1 << 20}
	for _, o := range opts {
		o(&cfg)
	}
	var eng Engine
	if panelEngine {
		eng = fake
	}
	p, err := New(cfg, st, h, runner, eng, web, log)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(p)
	t.Cleanup(hs.Close)
	return &fixture{t: t, srv: srv, store: st, panel: p, http: hs, runner: runner, engine: fake}
}

// runWorkers carries out the recorded operations for the rest of the test.
func (f *fixture) runWorkers() {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); f.runner.Run(ctx) }()
	f.t.Cleanup(func() { cancel(); wg.Wait() })
}

func (f *fixture) user(name, pw string, admin bool, quota int) {
	f.t.Helper()
	h, _ := auth.Hash(pw, cheap)
	if err := f.store.CreateUser(context.Background(), store.User{Name: name, Hash: h, Admin: admin, Quota: quota}); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) site(name, owner string) {
	f.t.Helper()
	spec := site.Spec{Name: name, Template: "static", Owner: owner, Domain: name + ".example.org",
		Params: map[string]string{}, Plan: site.Plan{CPUs: "0.5", Memory: "64m", Pids: 64}}
	if err := f.store.CreateSite(context.Background(), spec); err != nil {
		f.t.Fatal(err)
	}
}

// browser is one visitor with its own cookies; it does not follow redirects.
type browser struct {
	f *fixture
	c *http.Client
}

func (f *fixture) browser() *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{f: f, c: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}}
}

type page struct {
	code int
	body string
	h    http.Header
}

func (b *browser) do(req *http.Request) page {
	b.f.t.Helper()
	resp, err := b.c.Do(req)
	if err != nil {
		b.f.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return page{resp.StatusCode, string(body), resp.Header}
}

func (b *browser) get(path string) page {
	b.f.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, b.f.http.URL+path, nil)
	return b.do(req)
}

func (b *browser) getJSON(path string) page {
	b.f.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, b.f.http.URL+path, nil)
	req.Header.Set("Accept", "application/json")
	return b.do(req)
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// token reads the CSRF token of the forms on a page.
func (b *browser) token(path string) string {
	b.f.t.Helper()
	m := csrfRE.FindStringSubmatch(b.get(path).body)
	if m == nil {
		b.f.t.Fatalf("no CSRF token on %s", path)
	}
	return m[1]
}

func (b *browser) post(path string, form url.Values) page {
	b.f.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, b.f.http.URL+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.do(req)
}

// submit posts a form with the token the page it comes from carries.
func (b *browser) submit(from, path string, form url.Values) page {
	b.f.t.Helper()
	if form == nil {
		form = url.Values{}
	}
	form.Set("csrf", b.token(from))
	return b.post(path, form)
}

func (b *browser) login(name, pw string) page {
	b.f.t.Helper()
	from := "/login"
	if b.cookie("darse_session") != nil {
		from = "/sites" // logged in: /login redirects
	}
	return b.submit(from, "/login", url.Values{"name": {name}, "password": {pw}})
}

func (b *browser) mustLogin(name, pw string) {
	b.f.t.Helper()
	if p := b.login(name, pw); p.code != http.StatusSeeOther {
		b.f.t.Fatalf("login %s: %d\n%s", name, p.code, p.body)
	}
}

func (b *browser) cookie(name string) *http.Cookie {
	u, _ := url.Parse(b.f.http.URL)
	for _, c := range b.c.Jar.Cookies(u) {
		if c.Name == name {
			return c
		}
	}
	return nil
}

func TestNoDefaultCredentialsAndSetupLink(t *testing.T) {
	f := newFixture(t)
	b := f.browser()
	for _, cred := range [][2]string{{"admin", "admin"}, {"admin", ""}, {"root", "root"}, {"darse", "darse"}} {
		if p := b.login(cred[0], cred[1]); p.code != http.StatusUnauthorized {
			t.Fatalf("login %v on a fresh panel: %d", cred, p.code)
		}
	}
	link, err := f.panel.SetupLink(context.Background(), time.Hour)
	if err != nil || !strings.HasPrefix(link, "/setup?token=") {
		t.Fatalf("setup link %q, %v", link, err)
	}
	token := strings.TrimPrefix(link, "/setup?token=")
	if p := b.get("/setup?token=wrong"); p.code != http.StatusNotFound {
		t.Fatalf("wrong setup token: %d", p.code)
	}
	form := url.Values{"token": {token}, "name": {"root"}, "password": {"short"}, "confirm": {"short"}}
	if p := b.submit(link, "/setup", form); p.code != http.StatusUnprocessableEntity || !strings.Contains(p.body, "must be 10 to 256 characters") {
		t.Fatalf("short setup password: %d", p.code)
	}
	form.Set("password", "a long admin password")
	form.Set("confirm", "a long admin password")
	if p := b.submit(link, "/setup", form); p.code != http.StatusSeeOther || p.h.Get("Location") != "/admin" {
		t.Fatalf("setup: %d %s\n%s", p.code, p.h.Get("Location"), p.body)
	}
	if p := b.get("/admin"); p.code != http.StatusOK {
		t.Fatalf("the new admin is not logged in: %d", p.code)
	}
	// The link worked once.
	other := f.browser()
	if p := other.get(link); p.code != http.StatusNotFound || !strings.Contains(p.body, "unknown, used or expired") {
		t.Fatalf("second use of the setup link: %d", p.code)
	}
	// With an admin, no new link is given.
	if l, _ := f.panel.SetupLink(context.Background(), time.Hour); l != "" {
		t.Fatalf("setup link with an admin present: %q", l)
	}
}

func TestLoginSessionLogout(t *testing.T) {
	f := newFixture(t)
	f.user("alice", "alice's long password", false, 3)
	b := f.browser()
	if p := b.get("/sites"); p.code != http.StatusSeeOther || !strings.HasPrefix(p.h.Get("Location"), "/login?next=") {
		t.Fatalf("anonymous dashboard: %d %s", p.code, p.h.Get("Location"))
	}
	if p := b.login("alice", "wrong password!"); p.code != http.StatusUnauthorized || !strings.Contains(p.body, "wrong member name or password") {
		t.Fatalf("wrong password: %d", p.code)
	}
	p := b.login("alice", "alice's long password")
	if p.code != http.StatusSeeOther || p.h.Get("Location") != "/sites" {
		t.Fatalf("login: %d %s", p.code, p.h.Get("Location"))
	}
	setCookie := p.h.Get("Set-Cookie")
	for _, want := range []string{"darse_session=", "HttpOnly", "SameSite=Lax", "Path=/"} {
		if !strings.Contains(setCookie, want) {
			t.Errorf("session cookie %q lacks %s", setCookie, want)
		}
	}
	if strings.Contains(setCookie, "Secure") {
		t.Errorf("Secure cookie on plain HTTP: %q", setCookie)
	}
	first := b.cookie("darse_session").Value
	if p := b.get("/sites"); p.code != http.StatusOK || !strings.Contains(p.body, "Your sites") {
		t.Fatalf("dashboard: %d", p.code)
	}
	// Logging in again rotates the session: the old token is dead.
	b.mustLogin("alice", "alice's long password")
	second := b.cookie("darse_session").Value
	if first == second {
		t.Fatal("session token not rotated at login")
	}
	stale := f.browser()
	u, _ := url.Parse(f.http.URL)
	stale.c.Jar.SetCookies(u, []*http.Cookie{{Name: "darse_session", Value: first}})
	if p := stale.get("/sites"); p.code != http.StatusSeeOther {
		t.Fatalf("old session still works: %d", p.code)
	}
	// The store keeps only a hash of the token.
	if _, _, err := f.store.GetSession(context.Background(), second, time.Now()); err == nil {
		t.Fatal("the session token itself is a store key")
	}
	if p := b.submit("/sites", "/logout", nil); p.code != http.StatusSeeOther {
		t.Fatalf("logout: %d", p.code)
	}
	stale.c.Jar.SetCookies(u, []*http.Cookie{{Name: "darse_session", Value: second}})
	if p := stale.get("/sites"); p.code != http.StatusSeeOther {
		t.Fatalf("session alive after logout: %d", p.code)
	}
}

func TestSecureCookies(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.SecureCookies = true })
	f.user("alice", "alice's long password", false, 3)
	b := f.browser()
	// The jar does not send Secure cookies over http: carry the pre-login cookie by hand.
	req, _ := http.NewRequest(http.MethodGet, f.http.URL+"/login", nil)
	p := b.do(req)
	pre := ""
	for _, c := range (&http.Response{Header: p.h}).Cookies() {
		if c.Name == preCookie {
			pre = c.Value
		}
	}
	form := url.Values{"name": {"alice"}, "password": {"alice's long password"}, "csrf": {csrfRE.FindStringSubmatch(p.body)[1]}}
	req, _ = http.NewRequest(http.MethodPost, f.http.URL+"/login", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.AddCookie(&http.Cookie{Name: preCookie, Value: pre})
	p = b.do(req)
	sc := p.h.Get("Set-Cookie")
	if p.code != http.StatusSeeOther || !strings.HasPrefix(sc, "__Host-darse_session=") || !strings.Contains(sc, "; Secure") {
		t.Fatalf("login behind TLS: %d, cookie %q", p.code, sc)
	}
	if p.h.Get("Strict-Transport-Security") == "" {
		t.Error("no HSTS behind TLS")
	}
}

func TestCSRF(t *testing.T) {
	f := newFixture(t)
	f.user("alice", "alice's long password", false, 3)
	f.user("bob", "bob's long password!", false, 3)
	f.site("blog", "alice")
	a, b := f.browser(), f.browser()
	a.mustLogin("alice", "alice's long password")
	b.mustLogin("bob", "bob's long password!")
	bobs := b.token("/sites")
	for _, c := range []struct {
		name string
		form url.Values
	}{
		{"no token", url.Values{}},
		{"empty token", url.Values{"csrf": {""}}},
		{"forged token", url.Values{"csrf": {"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}}},
		{"another session's token", url.Values{"csrf": {bobs}}},
	} {
		for _, path := range []string{"/sites/blog/stop", "/sites", "/logout", "/account/password"} {
			if p := a.post(path, c.form); p.code != http.StatusForbidden {
				t.Errorf("%s to %s: %d, want 403", c.name, path, p.code)
			}
		}
	}
	// Nothing was recorded.
	if list, _ := f.store.ListOps(context.Background(), store.OpFilter{}); len(list) != 0 {
		t.Fatalf("refused POSTs recorded %d operations", len(list))
	}
	// Pre-login forms are protected too.
	anon := f.browser()
	if p := anon.post("/login", url.Values{"name": {"alice"}, "password": {"alice's long password"}}); p.code != http.StatusForbidden {
		t.Fatalf("login without token: %d", p.code)
	}
	// The header works for scripts.
	req, _ := http.NewRequest(http.MethodPost, f.http.URL+"/sites/blog/stop", nil)
	req.Header.Set("X-CSRF-Token", a.token("/sites"))
	req.Header.Set("Accept", "application/json")
	if p := a.do(req); p.code != http.StatusAccepted {
		t.Fatalf("POST with the header token: %d %s", p.code, p.body)
	}
}

func TestLoginRateLimit(t *testing.T) {
	f := newFixture(t)
	f.user("alice", "alice's long password", false, 3)
	b := f.browser()
	for i := 1; i <= 5; i++ {
		if p := b.login("alice", "guess number "+string(rune('0'+i))); p.code != http.StatusUnauthorized {
			t.Fatalf("failure %d: %d", i, p.code)
		}
	}
	p := b.login("alice", "guess number 6")
	if p.code != http.StatusTooManyRequests || p.h.Get("Retry-After") == "" || !strings.Contains(p.body, "too many failed logins: wait") {
		t.Fatalf("6th failure: %d, Retry-After %q\n%s", p.code, p.h.Get("Retry-After"), p.body)
	}
	// Even the right password waits: the limit is checked first.
	if p := b.login("alice", "alice's long password"); p.code != http.StatusTooManyRequests {
		t.Fatalf("right password while limited: %d", p.code)
	}
	// The member name is limited from other addresses too (httptest clients share 127.0.0.1).
	f.user("bob", "bob's long password!", false, 3)
	if p := f.browser().login("bob", "bob's long password!"); p.code != http.StatusTooManyRequests {
		t.Fatalf("other member from the limited address: %d", p.code)
	}
}

func TestOwnership(t *testing.T) {
	f := newFixture(t)
	f.user("alice", "alice's long password", false, 3)
	f.user("bob", "bob's long password!", false, 3)
	f.user("root", "root's long password", true, 3)
	f.site("alices", "alice")
	f.site("bobs", "bob")
	id, err := f.runner.Submit(context.Background(), ops.Request{Site: "alices", User: "alice"}, &ops.Stop{})
	if err != nil {
		t.Fatal(err)
	}
	a, b, root := f.browser(), f.browser(), f.browser()
	a.mustLogin("alice", "alice's long password")
	b.mustLogin("bob", "bob's long password!")
	root.mustLogin("root", "root's long password")

	opPath := "/ops/" + itoa(int(id))
	for _, path := range []string{"/sites/alices", "/sites/alices/status", "/sites/alices/delete", "/sites/alices/logs", "/sites/alices/usage", opPath, "/admin", "/admin/members", "/admin/containers", "/admin/ops"} {
		if p := b.get(path); p.code != http.StatusNotFound {
			t.Errorf("bob GET %s: %d, want 404", path, p.code)
		}
	}
	// Exactly like a site that does not exist.
	if p, q := b.get("/sites/alices"), b.get("/sites/nosuchsite"); p.body != q.body {
		t.Error("another member's site and a missing site answer differently")
	}
	for _, action := range []string{"start", "stop", "restart", "delete"} {
		if p := b.submit("/sites", "/sites/alices/"+action, url.Values{"confirm": {"alices"}}); p.code != http.StatusNotFound {
			t.Errorf("bob POST %s on alice's site: %d, want 404", action, p.code)
		}
	}
	if list, _ := f.store.ListOps(context.Background(), store.OpFilter{User: "bob"}); len(list) != 0 {
		t.Fatalf("bob's refused actions recorded: %d", len(list))
	}
	if p := b.get("/sites"); strings.Contains(p.body, "alices") {
		t.Error("bob's dashboard lists alice's site")
	}
	for _, path := range []string{"/sites/alices", "/sites/alices/status", "/sites/alices/logs", opPath} {
		if p := a.get(path); p.code != http.StatusOK {
			t.Errorf("alice GET %s: %d", path, p.code)
		}
	}
	for _, path := range []string{"/sites/alices", "/sites/bobs", "/admin", "/admin/members", "/admin/ops", "/admin/containers", opPath} {
		if p := root.get(path); p.code != http.StatusOK {
			t.Errorf("admin GET %s: %d", path, p.code)
		}
	}
}

func TestCreateSiteValidation(t *testing.T) {
	f := newFixture(t)
	f.user("alice", "alice's long password", false, 2)
	f.site("taken", "bob")
	b := f.browser()
	b.mustLogin("alice", "alice's long password")
	for _, c := range []struct {
		form url.Values
		code int
		want string
	}{
		{url.Values{"name": {"Bad;Name"}, "template": {"static"}}, 422, "must be 1-63 lowercase letters"},
		{url.Values{"name": {"www"}, "template": {"static"}}, 422, "is reserved for the platform"},
		{url.Values{"name": {"taken"}, "template": {"static"}}, 422, "is already taken"},
		{url.Values{"name": {"fine"}, "template": {"nope"}}, 422, "unknown template"},
		{url.Values{"name": {"fine"}, "template": {"static"}, "domain": {"*.example.net"}}, 422, "must be a fully qualified domain name"},
		{url.Values{"name": {"fine"}, "template": {"php"}, "param.PHP_MEMORY_LIMIT": {"lots"}}, 422, "PHP_MEMORY_LIMIT"},
	} {
		p := b.submit("/sites/new", "/sites", c.form)
		if p.code != c.code || !strings.Contains(p.body, c.want) {
			t.Errorf("create %v: %d, want %d with %q", c.form, p.code, c.code, c.want)
			continue
		}
		// The error sits next to its field, and the form keeps what was typed.
		if !strings.Contains(p.body, `class="field-error"`) || !strings.Contains(p.body, `value="`+c.form.Get("name")+`"`) {
			t.Errorf("create %v: error not shown in the form", c.form)
		}
	}
	// As-you-type check: same rules.
	for name, want := range map[string]string{"Bad;Name": "must be 1-63", "www": "reserved", "taken": "already taken", "fine": ""} {
		p := b.getJSON("/sites/check?name=" + url.QueryEscape(name))
		if p.code != 200 || (want == "" && !strings.Contains(p.body, `"ok":true`)) || (want != "" && !strings.Contains(p.body, want)) {
			t.Errorf("check %q: %d %s", name, p.code, p.body)
		}
	}
	// Quota: two creations pass, the third is refused next to the name.
	for _, n := range []string{"one", "two"} {
		if p := b.submit("/sites/new", "/sites", url.Values{"name": {n}, "template": {"static"}}); p.code != http.StatusSeeOther || !strings.HasPrefix(p.h.Get("Location"), "/ops/") {
			t.Fatalf("create %s: %d %s", n, p.code, p.body)
		}
	}
	p := b.submit("/sites", "/sites", url.Values{"name": {"three"}, "template": {"static"}})
	if p.code != http.StatusUnprocessableEntity {
		t.Fatalf("over quota: %d", p.code)
	}
	if !strings.Contains(p.body, "quota") {
		t.Fatalf("over quota page does not say so:\n%s", p.body)
	}
	if list, _ := f.store.ListOps(context.Background(), store.OpFilter{}); len(list) != 2 {
		t.Fatalf("%d operations recorded, want 2", len(list))
	}
}

func TestCreateStopDeleteThroughOperations(t *testing.T) {
	f := newFixture(t)
	f.runWorkers()
	f.user("alice", "alice's long password", false, 3)
	b := f.browser()
	b.mustLogin("alice", "alice's long password")
	p := b.submit("/sites/new", "/sites", url.Values{"name": {"blog"}, "template": {"static"}})
	if p.code != http.StatusSeeOther {
		t.Fatalf("create: %d\n%s", p.code, p.body)
	}
	opURL := p.h.Get("Location")
	waitOp(t, b, opURL, "done")
	if _, err := os.Stat(filepath.Join(f.srv, "users", "blog", "docker-compose.yml")); err != nil {
		t.Fatalf("site folder not rendered: %v", err)
	}
	if p := b.get("/sites/blog"); p.code != 200 || !strings.Contains(p.body, "blog.example.org") {
		t.Fatalf("site page: %d", p.code)
	}
	if p := b.submit("/sites/blog", "/sites/blog/stop", nil); p.code != http.StatusSeeOther || p.h.Get("Location") != "/sites/blog" {
		t.Fatalf("stop: %d %s", p.code, p.h.Get("Location"))
	}
	// Delete needs the name typed; without it nothing is recorded.
	if p := b.submit("/sites/blog/delete", "/sites/blog/delete", url.Values{"confirm": {"nope"}}); p.code != http.StatusUnprocessableEntity || !strings.Contains(p.body, "type the site") {
		t.Fatalf("delete unconfirmed: %d", p.code)
	}
	p = b.submit("/sites/blog/delete", "/sites/blog/delete", url.Values{"confirm": {"blog"}, "discard": {"on"}})
	if p.code != http.StatusSeeOther {
		t.Fatalf("delete: %d", p.code)
	}
	waitOp(t, b, p.h.Get("Location"), "done")
	if _, err := os.Stat(filepath.Join(f.srv, "users", "blog")); !os.IsNotExist(err) {
		t.Fatalf("deleted site's folder: %v", err)
	}
	if p := b.get("/sites/blog"); p.code != http.StatusNotFound {
		t.Fatalf("deleted site page: %d", p.code)
	}
}

func waitOp(t *testing.T, b *browser, path, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		p := b.getJSON(path)
		if strings.Contains(p.body, `"state":"`+want+`"`) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never %s: %d %s", path, want, p.code, p.body)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestPasswordChange(t *testing.T) {
	f := newFixture(t)
	f.user("alice", "alice's long password", false, 3)
	a, other := f.browser(), f.browser()
	a.mustLogin("alice", "alice's long password")
	other.mustLogin("alice", "alice's long password")
	if p := a.submit("/account", "/account/password", url.Values{"current": {"wrong"}, "password": {"a brand new password"}, "confirm": {"a brand new password"}}); p.code != 422 || !strings.Contains(p.body, "is not your current password") {
		t.Fatalf("wrong current password: %d", p.code)
	}
	if p := a.submit("/account", "/account/password", url.Values{"current": {"alice's long password"}, "password": {"a brand new password"}, "confirm": {"another one entirely"}}); p.code != 422 || !strings.Contains(p.body, "does not match") {
		t.Fatalf("mismatched confirmation: %d", p.code)
	}
	if p := a.submit("/account", "/account/password", url.Values{"current": {"alice's long password"}, "password": {"a brand new password"}, "confirm": {"a brand new password"}}); p.code != http.StatusSeeOther {
		t.Fatalf("change: %d", p.code)
	}
	if p := a.get("/account?changed=1"); p.code != 200 || !strings.Contains(p.body, "Password changed") {
		t.Fatalf("this browser stays logged in: %d", p.code)
	}
	if p := other.get("/sites"); p.code != http.StatusSeeOther {
		t.Fatalf("the other session survived: %d", p.code)
	}
	if p := f.browser().login("alice", "alice's long password"); p.code != http.StatusUnauthorized {
		t.Fatalf("old password: %d", p.code)
	}
	f.browser().mustLogin("alice", "a brand new password")
}

func TestAdminMembers(t *testing.T) {
	f := newFixture(t)
	f.user("root", "root's long password", true, 3)
	root := f.browser()
	root.mustLogin("root", "root's long password")
	if p := root.submit("/admin/members", "/admin/members", url.Values{"name": {"Bad Name"}, "password": {"carol's long password"}}); p.code != 422 || !strings.Contains(p.body, "must start with a lowercase letter") {
		t.Fatalf("bad member name: %d", p.code)
	}
	if p := root.submit("/admin/members", "/admin/members", url.Values{"name": {"carol"}, "password": {"carol's long password"}, "quota": {"5"}}); p.code != http.StatusSeeOther {
		t.Fatalf("create member: %d\n%s", p.code, p.body)
	}
	if p := root.submit("/admin/members", "/admin/members", url.Values{"name": {"carol"}, "password": {"carol's long password"}}); p.code != 422 || !strings.Contains(p.body, "is taken") {
		t.Fatalf("duplicate member: %d", p.code)
	}
	carol := f.browser()
	carol.mustLogin("carol", "carol's long password")
	if p := root.submit("/admin/members", "/admin/members/carol/quota", url.Values{"quota": {"7"}}); p.code != http.StatusSeeOther {
		t.Fatalf("quota: %d", p.code)
	}
	if u, _ := f.store.GetUser(context.Background(), "carol"); u.Quota != 7 {
		t.Fatalf("quota = %d", u.Quota)
	}
	if p := root.submit("/admin/members", "/admin/members/carol/disable", nil); p.code != http.StatusSeeOther {
		t.Fatalf("disable: %d", p.code)
	}
	if p := carol.get("/sites"); p.code != http.StatusSeeOther {
		t.Fatalf("disabled member's session still works: %d", p.code)
	}
	if p := f.browser().login("carol", "carol's long password"); p.code == http.StatusSeeOther {
		t.Fatal("disabled member logged in")
	}
	if p := root.submit("/admin/members", "/admin/members/root/revoke-admin", nil); p.code != http.StatusConflict || !strings.Contains(p.body, "last active admin") {
		t.Fatalf("revoke the last admin: %d", p.code)
	}
	if p := root.submit("/admin/members", "/admin/members/carol/grant-admin", nil); p.code != http.StatusSeeOther {
		t.Fatalf("grant admin: %d", p.code)
	}
}

func tarGz(t *testing.T, files map[string]string, symlinks map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for name, body := range files {
		tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg})
		tw.Write([]byte(body))
	}
	for name, target := range symlinks {
		tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeSymlink, Linkname: target})
	}
	tw.Close()
	zw.Close()
	return buf.Bytes()
}

func (b *browser) upload(site, filename string, archive []byte, mode string) page {
	b.f.t.Helper()
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	mw.WriteField("csrf", b.token("/sites/"+site))
	mw.WriteField("mode", mode)
	w, _ := mw.CreateFormFile("archive", filename)
	w.Write(archive)
	mw.Close()
	req, _ := http.NewRequest(http.MethodPost, b.f.http.URL+"/sites/"+site+"/content", &body)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	return b.do(req)
}

func TestUpload(t *testing.T) {
	f := newFixture(t)
	f.runWorkers()
	f.user("alice", "alice's long password", false, 3)
	f.user("bob", "bob's long password!", false, 3)
	b := f.browser()
	b.mustLogin("alice", "alice's long password")
	p := b.submit("/sites/new", "/sites", url.Values{"name": {"blog"}, "template": {"static"}})
	waitOp(t, b, p.h.Get("Location"), "done")
	data := filepath.Join(f.srv, "users", "blog", "data")
	before, _ := os.ReadFile(filepath.Join(data, "index.html"))

	for name, archive := range map[string][]byte{
		"dotdot.tar.gz":  tarGz(t, map[string]string{"index.html": "pwned", "../evil": "x"}, nil),
		"abs.tar.gz":     tarGz(t, map[string]string{"index.html": "pwned", "/etc/cron.d/evil": "x"}, nil),
		"symlink.tar.gz": tarGz(t, map[string]string{"index.html": "pwned"}, map[string]string{"root": "/"}),
		"garbage.zip":    []byte("this is not an archive"),
	} {
		p := b.upload("blog", name, archive, "replace")
		if p.code != http.StatusUnprocessableEntity || !strings.Contains(p.body, `archive &#34;`+name+`&#34;`) && !strings.Contains(p.body, "nothing was changed") {
			t.Errorf("%s: %d\n%s", name, p.code, p.body)
		}
		if !strings.Contains(p.body, `class="field-error"`) {
			t.Errorf("%s: the reason is not next to the field", name)
		}
	}
	if after, _ := os.ReadFile(filepath.Join(data, "index.html")); !bytes.Equal(before, after) {
		t.Fatal("a refused upload changed data/")
	}
	if list, _ := f.store.ListOps(context.Background(), store.OpFilter{Site: "blog"}); len(list) != 1 {
		t.Fatalf("refused uploads recorded operations: %d", len(list))
	}
	if p := b.upload("blog", "big.tar.gz", bytes.Repeat([]byte("x"), 2<<20), "replace"); p.code != http.StatusRequestEntityTooLarge || !strings.Contains(p.body, "larger than 1 MiB") {
		t.Errorf("too large: %d", p.code)
	}
	// Another member's site: 404, nothing saved.
	bob := f.browser()
	bob.mustLogin("bob", "bob's long password!")
	req := tarGz(t, map[string]string{"index.html": "bob was here"}, nil)
	if p := bob.uploadWithToken("blog", req, bob.token("/sites")); p.code != http.StatusNotFound {
		t.Errorf("bob uploading to alice's site: %d", p.code)
	}
	// A good one replaces data/ through an operation.
	if p := b.upload("blog", "site.tar.gz", tarGz(t, map[string]string{"index.html": "<h1>new</h1>", "css/a.css": "a{}"}, nil), "replace"); p.code != http.StatusSeeOther {
		t.Fatalf("good upload: %d\n%s", p.code, p.body)
	}
	list, _ := f.store.ListOps(context.Background(), store.OpFilter{Site: "blog", Limit: 1})
	waitOp(t, b, "/ops/"+itoa(int(list[0].ID)), "done")
	if got, _ := os.ReadFile(filepath.Join(data, "index.html")); string(got) != "<h1>new</h1>" {
		t.Fatalf("data/index.html = %q", got)
	}
	if ups, _ := os.ReadDir(filepath.Join(f.srv, "conf", "uploads")); len(ups) != 0 {
		t.Errorf("uploads kept: %v", ups)
	}
}

func (b *browser) uploadWithToken(site string, archive []byte, token string) page {
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	mw.WriteField("csrf", token)
	w, _ := mw.CreateFormFile("archive", "x.tar.gz")
	w.Write(archive)
	mw.Close()
	req, _ := http.NewRequest(http.MethodPost, b.f.http.URL+"/sites/"+site+"/content", &body)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	return b.do(req)
}

func TestKeysAndForwards(t *testing.T) {
	f := newFixture(t)
	f.runWorkers()
	f.user("alice", "alice's long password", false, 3)
	f.user("bob", "bob's long password!", false, 3)
	a := f.browser()
	a.mustLogin("alice", "alice's long password")
	waitOp(t, a, a.submit("/sites/new", "/sites", url.Values{"name": {"blog"}, "template": {"static"}}).h.Get("Location"), "done")

	edPub, _, _ := ed25519.GenerateKey(rand.Reader)
	pk, _ := ssh.NewPublicKey(edPub)
	key := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(pk)))
	fp := ssh.FingerprintSHA256(pk)

	if p := a.submit("/sites/blog", "/sites/blog/key-add", url.Values{"key": {`command="/bin/sh" ` + key}}); p.code != 422 || !strings.Contains(p.body, "options such as command=") {
		t.Fatalf("key with command=: %d", p.code)
	}
	if p := a.submit("/sites/blog", "/sites/blog/key-add", url.Values{"key": {key + " a\n" + key + " b"}}); p.code != 422 || !strings.Contains(p.body, "more than one key") {
		t.Fatalf("two keys: %d", p.code)
	}
	if p := a.submit("/sites/blog", "/sites/blog/key-add", url.Values{"key": {key + " alice@laptop"}}); p.code != http.StatusSeeOther {
		t.Fatalf("add key: %d", p.code)
	}
	if p := a.get("/sites/blog"); !strings.Contains(html.UnescapeString(p.body), fp) || !strings.Contains(p.body, "alice@laptop") {
		t.Fatal("site page does not show the key's fingerprint")
	}
	if p := a.submit("/sites/blog", "/sites/blog/key-add", url.Values{"key": {key}}); p.code != 422 || !strings.Contains(p.body, "already authorized") {
		t.Fatalf("same key twice: %d", p.code)
	}

	// Bob can neither add nor remove keys or forwards on alice's site.
	b := f.browser()
	b.mustLogin("bob", "bob's long password!")
	for action, form := range map[string]url.Values{
		"key-add": {"key": {key}}, "key-remove": {"fingerprint": {fp}},
		"forward-add": {"port": {"22"}}, "forward-remove": {"host_port": {"40001"}},
	} {
		if p := b.submit("/sites", "/sites/blog/"+action, form); p.code != http.StatusNotFound {
			t.Errorf("bob %s on alice's site: %d", action, p.code)
		}
	}

	if p := a.submit("/sites/blog", "/sites/blog/forward-add", url.Values{"port": {"99999"}}); p.code != 422 || !strings.Contains(p.body, "from 1 to 65535") {
		t.Fatalf("bad port: %d", p.code)
	}
	if p := a.submit("/sites/blog", "/sites/blog/forward-add", url.Values{"port": {"22"}, "proto": {"tcp"}}); p.code != http.StatusSeeOther {
		t.Fatalf("forward: %d", p.code)
	}
	list, _ := f.store.ListOps(context.Background(), store.OpFilter{Site: "blog", Limit: 1})
	waitOp(t, a, "/ops/"+itoa(int(list[0].ID)), "done")
	if p := a.get("/sites/blog"); !strings.Contains(p.body, "<strong class=\"mono\">40001</strong>") || !strings.Contains(p.body, "sftp -P 40000 www-data@blog.") {
		t.Fatalf("forward or SSH access not shown:\n%s", p.body)
	}
	override, _ := os.ReadFile(filepath.Join(f.srv, "users", "blog", "docker-compose.override.yml"))
	if !strings.Contains(string(override), "darse.expose.fwd40001.port: \"22\"") {
		t.Fatalf("forward not rendered:\n%s", override)
	}
	if p := a.submit("/sites/blog", "/sites/blog/forward-add", url.Values{"port": {"22"}}); p.code != 422 || !strings.Contains(p.body, "already forwarded, on host port 40001") {
		t.Fatalf("same forward twice: %d", p.code)
	}
	if p := a.submit("/sites/blog", "/sites/blog/forward-remove", url.Values{"host_port": {"40001"}}); p.code != http.StatusSeeOther {
		t.Fatalf("remove forward: %d", p.code)
	}
	list, _ = f.store.ListOps(context.Background(), store.OpFilter{Site: "blog", Limit: 1})
	waitOp(t, a, "/ops/"+itoa(int(list[0].ID)), "done")
	if fs, _ := f.store.ListForwards(context.Background(), "blog"); len(fs) != 1 || fs[0].Service != "ssh" {
		t.Fatalf("forwards left: %+v (want the SSH access only)", fs)
	}
	if p := a.submit("/sites/blog", "/sites/blog/key-remove", url.Values{"fingerprint": {fp}}); p.code != http.StatusSeeOther {
		t.Fatalf("remove key: %d", p.code)
	}
	if ks, _ := f.store.ListKeys(context.Background(), "blog"); len(ks) != 0 {
		t.Fatal("key kept")
	}
}
