package panel

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"html"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"golang.org/x/crypto/ssh"

	"github.com/darse/darse/internal/store"
)

// tenants is two members with a site each, and alice's things on hers:
// an SSH key, a port forward, operations. Built through the panel.
type tenants struct {
	f          *fixture
	alice, bob *browser
	keyFP      string // alice's key
	keyID      string
	keyComment string
	hostPort   int   // alice's forward
	opID       int64 // an operation on alice's site
	bobKey     string
}

func newTenants(t *testing.T) *tenants {
	t.Helper()
	f := newFixture(t)
	f.runWorkers()
	f.user("alice", "alice's long password", false, 3)
	f.user("bob", "bob's long password!", false, 3)
	tn := &tenants{f: f, alice: f.browser(), bob: f.browser(), keyComment: "alice-laptop-7f3a"}
	tn.alice.mustLogin("alice", "alice's long password")
	tn.bob.mustLogin("bob", "bob's long password!")
	tn.create(tn.alice, "alices")
	tn.create(tn.bob, "bobs")

	key, fp := newKey(t)
	if p := tn.alice.submit("/sites/alices", "/sites/alices/key-add", url.Values{"key": {key + " " + tn.keyComment}}); p.code != http.StatusSeeOther {
		t.Fatalf("alice adds a key: %d\n%s", p.code, p.body)
	}
	tn.keyFP = fp
	tn.bobKey, _ = newKey(t)
	if p := tn.alice.submit("/sites/alices", "/sites/alices/forward-add", url.Values{"port": {"8080"}, "proto": {"tcp"}}); p.code != http.StatusSeeOther {
		t.Fatalf("alice adds a forward: %d\n%s", p.code, p.body)
	}
	if p := tn.alice.submit("/sites/alices", "/sites/alices/stop", nil); p.code != http.StatusSeeOther {
		t.Fatalf("alice stops her site: %d", p.code)
	}
	tn.settle()
	ctx := context.Background()
	keys, err := f.store.ListKeys(ctx, "alices")
	if err != nil || len(keys) != 1 {
		t.Fatalf("alice's keys: %v, %v", keys, err)
	}
	tn.keyID = strconv.FormatInt(keys[0].ID, 10)
	fws, err := f.store.ListForwards(ctx, "alices")
	if err != nil {
		t.Fatal(err)
	}
	for _, fw := range fws {
		if fw.ContainerPort == 8080 {
			tn.hostPort = fw.HostPort
		}
	}
	ops, err := f.store.ListOps(ctx, store.OpFilter{Site: "alices", Limit: 1})
	if err != nil || len(ops) != 1 || tn.hostPort == 0 {
		t.Fatalf("alice's operations %v (%v), forward port %d", ops, err, tn.hostPort)
	}
	tn.opID = ops[0].ID
	return tn
}

func newKey(t *testing.T) (line, fingerprint string) {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pk, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(pk))), ssh.FingerprintSHA256(pk)
}

func (tn *tenants) create(b *browser, name string) {
	tn.f.t.Helper()
	p := b.submit("/sites/new", "/sites", url.Values{"name": {name}, "template": {"static"}})
	if p.code != http.StatusSeeOther {
		tn.f.t.Fatalf("create %s: %d\n%s", name, p.code, p.body)
	}
	waitOp(tn.f.t, b, p.h.Get("Location"), "done")
}

// settle waits until no operation is queued or running.
func (tn *tenants) settle() {
	tn.f.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		list, err := tn.f.store.ListOps(context.Background(), store.OpFilter{States: []string{store.OpQueued, store.OpRunning}})
		if err != nil {
			tn.f.t.Fatal(err)
		}
		if len(list) == 0 {
			return
		}
		if time.Now().After(deadline) {
			tn.f.t.Fatalf("operation %d (%s %s) never finished", list[0].ID, list[0].Kind, list[0].Site)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// state is what the store holds of sites, keys, forwards, operations and
// members, as text to compare; alicesOnly keeps what is alice's.
func (tn *tenants) state(alicesOnly bool) string {
	tn.f.t.Helper()
	ctx := context.Background()
	st := tn.f.store
	var out []string
	sites, err := st.ListSites(ctx)
	if err != nil {
		tn.f.t.Fatal(err)
	}
	for _, s := range sites {
		if !alicesOnly || s.Owner == "alice" {
			out = append(out, fmt.Sprintf("site %s owner=%s domain=%s aliases=%v plan=%+v params=%v updated=%v", s.Name, s.Owner, s.Domain, s.Aliases, s.Plan, s.Params, s.UpdatedAt))
		}
	}
	keys, err := st.ListKeys(ctx, "")
	if err != nil {
		tn.f.t.Fatal(err)
	}
	for _, k := range keys {
		if !alicesOnly || k.Site == "alices" {
			out = append(out, fmt.Sprintf("key %+v", *k))
		}
	}
	fws, err := st.ListForwards(ctx, "")
	if err != nil {
		tn.f.t.Fatal(err)
	}
	for _, fw := range fws {
		if !alicesOnly || fw.Site == "alices" {
			out = append(out, fmt.Sprintf("forward %+v", *fw))
		}
	}
	ops, err := st.ListOps(ctx, store.OpFilter{Limit: 100000})
	if err != nil {
		tn.f.t.Fatal(err)
	}
	for _, op := range ops {
		if !alicesOnly || op.Site == "alices" || op.User == "alice" {
			out = append(out, fmt.Sprintf("op %d %s %s by %s %s %s", op.ID, op.Kind, op.Site, op.User, op.State, op.Args))
		}
	}
	users, err := st.ListUsers(ctx)
	if err != nil {
		tn.f.t.Fatal(err)
	}
	for _, u := range users {
		if !alicesOnly || u.Name == "alice" {
			out = append(out, fmt.Sprintf("member %s admin=%v disabled=%v quota=%d hash=%s", u.Name, u.Admin, u.Disabled, u.Quota, u.Hash))
		}
	}
	sort.Strings(out)
	return strings.Join(out, "\n")
}

// fill puts alice's ids in a route's parameters; ok is false for a
// parameter the test does not know.
func (tn *tenants) fill(path, site string) (string, string, bool) {
	segs := strings.Split(path, "/")
	for i, seg := range segs {
		if seg == "" || (seg[0] != ':' && seg[0] != '*') {
			continue
		}
		switch seg[1:] {
		case "site":
			segs[i] = site
		case "id":
			segs[i] = strconv.FormatInt(tn.opID, 10)
		case "member":
			segs[i] = "alice"
		case "filepath":
			segs[i] = "app.css"
		default:
			return "", seg, false
		}
	}
	return strings.Join(segs, "/"), "", true
}

// form is what bob sends to every POST: alice's ids in every field a
// handler reads them from, and values that would change something if the
// handler let him through.
func (tn *tenants) form(token, confirm string) url.Values {
	return url.Values{
		"csrf":        {token},
		"fingerprint": {tn.keyFP},
		"host_port":   {strconv.Itoa(tn.hostPort)},
		"id":          {strconv.FormatInt(tn.opID, 10)},
		"key":         {tn.bobKey + " bob@laptop"},
		"port":        {"9090"},
		"proto":       {"tcp"},
		"confirm":     {confirm},
		"discard":     {"on"},
		"mode":        {"replace"},
		"quota":       {"99"},
		"name":        {"bobsnew"},
		"template":    {"static"},
		"current":     {"not bob's password"},
		"password":    {"a brand new password"},
	}
}

// call sends bob's request; a POST carries form(token, confirm).
func (tn *tenants) call(b *browser, method, path, confirm string, asJSON bool) page {
	tn.f.t.Helper()
	var req *http.Request
	if method == http.MethodPost {
		token := b.token("/account")
		req, _ = http.NewRequest(method, tn.f.http.URL+path, strings.NewReader(tn.form(token, confirm).Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("X-CSRF-Token", token)
	} else {
		req, _ = http.NewRequest(method, tn.f.http.URL+path, nil)
	}
	if asJSON {
		req.Header.Set("Accept", "application/json")
	}
	return b.do(req)
}

// mustStayLoggedIn logs bob in again after a route that logged him out.
func (tn *tenants) mustStayLoggedIn() {
	tn.f.t.Helper()
	if p := tn.bob.get("/account"); p.code != http.StatusOK {
		tn.bob.mustLogin("bob", "bob's long password!")
	}
}

// leaks names what of alice's a page shows.
func (tn *tenants) leaks(body string) []string {
	body = html.UnescapeString(body)
	var out []string
	for _, m := range []string{"alices", tn.keyFP, tn.keyComment, "alice's", `"alice"`, ">alice<"} {
		if strings.Contains(body, m) {
			out = append(out, m)
		}
	}
	return out
}

// Routes without parameters: what each must show bob.
const (
	public = "public" // the same for anyone; nothing of alice's
	own    = "own"    // bob's own things only
	admin  = "admin"  // 404 to a member
)

var globalRoutes = map[string]string{
	"GET /":                  public,
	"GET /favicon.ico":       public,
	"GET /healthz":           public,
	"GET /readyz":            public,
	"GET /login":             public,
	"GET /setup":             public,
	"POST /login":            public,
	"POST /setup":            public,
	"GET /static/*filepath":  public,
	"HEAD /static/*filepath": public,
	"GET /sites":             own,
	"GET /sites/new":         own,
	"GET /sites/check":       own,
	"GET /account":           own,
	"POST /sites":            own,
	"POST /logout":           own,
	"POST /account/password": own,
	"GET /admin":             admin,
	"GET /admin/containers":  admin,
	"GET /admin/members":     admin,
	"GET /admin/ops":         admin,
	"GET /admin/history.svg": admin,
	"GET /admin/backups":     admin,
	"POST /admin/members":    admin,
}

// TestEveryRouteIsTheOwners calls every route of the panel, as listed by
// the router itself, as bob with alice's site, key, forward, operation
// and name: each answers 404 and changes nothing. A new route is covered
// without being listed here; one with a parameter this test cannot fill,
// or a new route without parameters, fails until the test is taught it.
func TestEveryRouteIsTheOwners(t *testing.T) {
	tn := newTenants(t)
	engine, ok := tn.f.panel.handler.(*gin.Engine)
	if !ok {
		t.Fatalf("the panel's handler is a %T, not the gin router this test reads routes from", tn.f.panel.handler)
	}
	routes := engine.Routes()
	if len(routes) < 20 {
		t.Fatalf("only %d routes", len(routes))
	}
	seen := map[string]bool{}
	for _, r := range routes {
		route := r.Method + " " + r.Path
		seen[route] = true
		if kind, global := globalRoutes[route]; global {
			tn.global(t, r.Method, r.Path, kind)
			continue
		}
		path, param, ok := tn.fill(r.Path, "alices")
		if !ok {
			t.Errorf("%s: no value for parameter %s: teach fill() another member's", route, param)
			continue
		}
		if !strings.Contains(r.Path, ":") {
			t.Errorf("%s: a route without parameters: add it to globalRoutes with what it may show", route)
			continue
		}
		before := tn.state(false)
		for _, asJSON := range []bool{false, true} {
			if p := tn.call(tn.bob, r.Method, path, "alices", asJSON); p.code != http.StatusNotFound {
				t.Errorf("bob %s %s (json %v): %d, want 404\n%.300s", r.Method, path, asJSON, p.code, p.body)
			} else if l := tn.leaks(p.body); len(l) > 0 {
				t.Errorf("bob %s %s: the 404 shows %q", r.Method, path, l)
			}
		}
		tn.settle()
		if after := tn.state(false); after != before {
			t.Fatalf("bob %s %s changed the store:\nbefore:\n%s\nafter:\n%s", r.Method, path, before, after)
		}
	}
	for route := range globalRoutes {
		if !seen[route] {
			t.Errorf("globalRoutes lists %s, which the router does not have", route)
		}
	}

	// Bob's own site with alice's ids in the form: nothing of alice's changes.
	aliceBefore := tn.state(true)
	for _, r := range routes {
		if !strings.Contains(r.Path, ":site") {
			continue
		}
		path, _, _ := tn.fill(r.Path, "bobs")
		p := tn.call(tn.bob, r.Method, path, "", false) // any status: bob's own site (pages reading the engine fail: the fixture has none)
		if l := tn.leaks(p.body); len(l) > 0 {
			t.Errorf("bob %s %s with alice's ids shows %q", r.Method, path, l)
		}
		tn.settle()
		if after := tn.state(true); after != aliceBefore {
			t.Fatalf("bob %s %s with alice's ids changed her things:\nbefore:\n%s\nafter:\n%s", r.Method, path, aliceBefore, after)
		}
	}
	// Removing alice's key or forward through bob's site is not found.
	for _, c := range []struct {
		path string
		form url.Values
	}{
		{"/sites/bobs/key-remove", url.Values{"fingerprint": {tn.keyFP}}},
		{"/sites/bobs/key-remove", url.Values{"fingerprint": {tn.keyID}}},
		{"/sites/bobs/forward-remove", url.Values{"host_port": {strconv.Itoa(tn.hostPort)}}},
	} {
		if p := tn.bob.submit("/account", c.path, c.form); p.code != http.StatusNotFound {
			t.Errorf("bob %s with alice's %v: %d, want 404", c.path, c.form, p.code)
		}
	}
	tn.settle()
	if after := tn.state(true); after != aliceBefore {
		t.Fatalf("bob changed alice's things:\nbefore:\n%s\nafter:\n%s", aliceBefore, after)
	}
}

// global checks a route without parameters as bob: it shows nothing of
// alice's, and changes nothing of hers.
func (tn *tenants) global(t *testing.T, method, path, kind string) {
	t.Helper()
	path, _, _ = tn.fill(path, "")
	aliceBefore := tn.state(true)
	for _, asJSON := range []bool{false, true} {
		p := tn.call(tn.bob, method, path, "", asJSON)
		switch {
		case kind == admin && p.code != http.StatusNotFound:
			t.Errorf("bob %s %s (json %v): %d, want 404", method, path, asJSON, p.code)
		case p.code >= 500:
			t.Errorf("bob %s %s (json %v): %d", method, path, asJSON, p.code)
		}
		if l := tn.leaks(p.body); len(l) > 0 {
			t.Errorf("bob %s %s (json %v) shows alice's %q", method, path, asJSON, l)
		}
		tn.mustStayLoggedIn()
	}
	if kind == own && method == http.MethodGet {
		if p := tn.bob.get(path); p.code == http.StatusOK && path != "/sites/check" && !strings.Contains(p.body, "bob") {
			t.Errorf("bob GET %s does not show his own page", path)
		}
	}
	tn.settle()
	if after := tn.state(true); after != aliceBefore {
		t.Errorf("bob %s %s changed alice's things:\nbefore:\n%s\nafter:\n%s", method, path, aliceBefore, after)
	}
}
