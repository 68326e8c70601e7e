package panel

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/darse/darse/internal/auth"
	"github.com/darse/darse/internal/store"
)

// setupTokens counts the setup links the database still holds, read
// behind the store's back: "refused" is not enough, they must be gone.
func (f *fixture) setupTokens() int {
	f.t.Helper()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(f.srv, "conf", "darse.db")+"?_pragma=busy_timeout(10000)")
	if err != nil {
		f.t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRow(`SELECT COUNT(*) FROM setup_tokens`).Scan(&n); err != nil {
		f.t.Fatal(err)
	}
	return n
}

func TestSetupLinkDiesWithTheFirstAdmin(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		name  string
		admin func(f *fixture)
	}{
		{"darse user add root --admin", func(f *fixture) { f.user("root", "root's long password", true, 3) }},
		{"a member made admin", func(f *fixture) {
			f.user("carol", "carol's long password", false, 3)
			if err := f.store.SetAdmin(ctx, "carol", true); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t)
			link, err := f.panel.SetupLink(ctx, 24*time.Hour)
			if err != nil || link == "" {
				t.Fatalf("setup link %q, %v", link, err)
			}
			token := strings.TrimPrefix(link, "/setup?token=")
			c.admin(f)
			if n := f.setupTokens(); n != 0 {
				t.Errorf("%d setup links kept once an admin exists", n)
			}
			b := f.browser()
			if p := b.get(link); p.code != http.StatusNotFound || !strings.Contains(p.body, "unknown, used or expired") {
				t.Errorf("setup page with an admin present: %d", p.code)
			}
			form := url.Values{"token": {token}, "name": {"mallory"}, "password": {"mallory's long password"}, "confirm": {"mallory's long password"}}
			if p := b.submit("/login", "/setup", form); p.code != http.StatusNotFound {
				t.Errorf("setup with an admin present: %d %s", p.code, p.h.Get("Location"))
			}
			if _, err := f.store.GetUser(ctx, "mallory"); err == nil {
				t.Fatal("the setup link created a second admin")
			}
		})
	}
}

// A link made while no admin existed is refused at use when one appeared
// since, even if nothing deleted it (another process, an older binary).
func TestSetupRefusedOnceAnAdminExists(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	f.user("root", "root's long password", true, 3)
	if err := f.store.CreateSetupToken(ctx, auth.TokenHash("stale"), time.Now().Add(time.Hour)); err == nil {
		t.Error("a setup link was stored while an admin exists")
	}
	if ok, err := f.store.SetupTokenValid(ctx, auth.TokenHash("stale"), time.Now()); ok || err != nil {
		t.Errorf("setup link valid with an admin present: %v, %v", ok, err)
	}
	err := f.store.ClaimSetup(ctx, auth.TokenHash("stale"), time.Now(), store.User{Name: "mallory", Hash: "x"})
	if err == nil {
		t.Fatal("setup claimed with an admin present")
	}
	if n := f.setupTokens(); n != 0 {
		t.Errorf("%d setup links kept", n)
	}
}

// loginRace sends n wrong passwords for name at once, with one pre-login
// cookie and its token, and returns how many got each status.
func loginRace(t *testing.T, f *fixture, name string, n int) map[int]int {
	t.Helper()
	b := f.browser()
	token := b.token("/login")
	pre := b.cookie(preCookie)
	if pre == nil {
		t.Fatal("no pre-login cookie")
	}
	start := make(chan struct{})
	codes := make(chan int, n)
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			form := url.Values{"csrf": {token}, "name": {name}, "password": {fmt.Sprintf("guess number %d", i)}}
			req, _ := http.NewRequest(http.MethodPost, f.http.URL+"/login", strings.NewReader(form.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.AddCookie(pre)
			<-start
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				errs <- err
				return
			}
			resp.Body.Close()
			codes <- resp.StatusCode
		}()
	}
	close(start)
	wg.Wait()
	close(codes)
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	got := map[int]int{}
	for c := range codes {
		got[c]++
	}
	return got
}

func TestLoginLimiterHoldsUnderParallelAttempts(t *testing.T) {
	var reached atomic.Int32
	slowVerify := func(pw, hash string) (bool, error) {
		reached.Add(1)
		time.Sleep(20 * time.Millisecond) // what argon2 costs with the real parameters
		return auth.Verify(pw, hash)
	}
	f := newFixture(t, func(c *Config) { c.verify = slowVerify })
	f.user("alice", "alice's long password", false, 3)
	got := loginRace(t, f, "alice", 100)
	if n := reached.Load(); n > 5 {
		t.Errorf("%d of 100 parallel wrong passwords reached password verification, want at most 5", n)
	}
	if got[http.StatusUnauthorized] != int(reached.Load()) || got[http.StatusTooManyRequests] != 100-int(reached.Load()) {
		t.Errorf("answers %v for %d verifications", got, reached.Load())
	}
	// The right password waits too.
	if p := f.browser().login("alice", "alice's long password"); p.code != http.StatusTooManyRequests {
		t.Fatalf("right password after the burst: %d", p.code)
	}
}

// A successful login no longer counts, but does not wipe the failures of
// its address either: a member of their own cannot reset the address's
// count between guesses at others.
func TestLoginSuccessKeepsTheAddressFailures(t *testing.T) {
	f := newFixture(t)
	f.user("mallory", "mallory's long password", false, 3)
	f.user("alice", "alice's long password", false, 3)
	f.user("bob", "bob's long password!", false, 3)
	b := f.browser()
	for i := 0; i < 3; i++ {
		if p := b.login("alice", "a guess at alice"); p.code != http.StatusUnauthorized {
			t.Fatalf("guess %d: %d", i, p.code)
		}
	}
	for i := 0; i < 3; i++ { // successes do not use up the address's allowance...
		if p := f.browser().login("mallory", "mallory's long password"); p.code != http.StatusSeeOther {
			t.Fatalf("mallory's login %d: %d", i, p.code)
		}
	}
	for i := 0; i < 2; i++ { // ...nor give it back
		if p := b.login("bob", "a guess at bob"); p.code != http.StatusUnauthorized {
			t.Fatalf("guess at bob %d: %d", i, p.code)
		}
	}
	if p := b.login("bob", "another guess at bob"); p.code != http.StatusTooManyRequests {
		t.Fatalf("6th failure from the address, after successes in between: %d", p.code)
	}
}

func TestLoginNextStaysOnThePanel(t *testing.T) {
	f := newFixture(t)
	f.user("alice", "alice's long password", false, 3)
	cases := map[string]string{
		"/account":                   "/account",
		"/sites/blog?tab=keys":       "/sites/blog?tab=keys",
		"":                           "/sites",
		"//evil.example/":            "/sites",
		"/\\evil.example/":           "/sites",
		"\\\\evil.example/":          "/sites",
		"https://evil.example/":      "/sites",
		"http:/evil.example/":        "/sites",
		"javascript:alert(1)":        "/sites",
		"/\t/evil.example/":          "/sites", // browsers drop tabs and newlines: //evil.example/
		"/\n/evil.example/":          "/sites",
		"/\r\n/evil.example/":        "/sites",
		"/a\\..\\..\\/evil.example/": "/sites",
		"/\x00/evil.example/":        "/sites",
		"evil.example":               "/sites",
	}
	for next, want := range cases {
		b := f.browser()
		form := url.Values{"name": {"alice"}, "password": {"alice's long password"}, "next": {next}}
		p := b.submit("/login", "/login", form)
		if p.code != http.StatusSeeOther || p.h.Get("Location") != want {
			t.Errorf("login with next=%q: %d to %q, want %q", next, p.code, p.h.Get("Location"), want)
		}
		// Already logged in, /login?next= redirects at once.
		p = b.get("/login?next=" + url.QueryEscape(next))
		if p.code != http.StatusSeeOther || p.h.Get("Location") != want {
			t.Errorf("logged in, /login?next=%q: %d to %q, want %q", next, p.code, p.h.Get("Location"), want)
		}
	}
}

func setCookies(h http.Header) map[string]*http.Cookie {
	out := map[string]*http.Cookie{}
	for _, c := range (&http.Response{Header: h}).Cookies() {
		out[c.Name] = c
	}
	return out
}

func TestSecurePreLoginCookie(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.SecureCookies = true })
	f.user("alice", "alice's long password", false, 3)
	f.user("mallory", "mallory's long password", false, 3)
	b := f.browser()
	b.c.Jar = nil // cookies by hand only
	p := b.get("/login")
	pre := setCookies(p.h)["__Host-darse_pre"]
	if pre == nil || !pre.Secure || pre.Path != "/" || pre.Domain != "" || !pre.HttpOnly {
		t.Fatalf("pre-login cookie behind TLS: %q", p.h.Values("Set-Cookie"))
	}
	if c := setCookies(p.h)["darse_pre"]; c != nil {
		t.Fatalf("a pre-login cookie without the __Host- prefix: %q", p.h.Values("Set-Cookie"))
	}
	// A tenant's site on a sibling domain can toss a plain cookie at the
	// panel, one whose form token it learnt: a login with it is refused.
	tossed := &http.Cookie{Name: "darse_pre", Value: strings.Repeat("t", 43)}
	req, _ := http.NewRequest(http.MethodGet, f.http.URL+"/login", nil)
	req.AddCookie(tossed)
	p = b.do(req)
	token := csrfRE.FindStringSubmatch(p.body)[1]
	form := url.Values{"name": {"mallory"}, "password": {"mallory's long password"}, "csrf": {token}}
	req, _ = http.NewRequest(http.MethodPost, f.http.URL+"/login", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.AddCookie(tossed)
	if p := b.do(req); p.code != http.StatusForbidden {
		t.Fatalf("login with a tossed plain pre-login cookie: %d", p.code)
	}
	// The prefixed one works.
	p = b.get("/login")
	form.Set("csrf", csrfRE.FindStringSubmatch(p.body)[1])
	req, _ = http.NewRequest(http.MethodPost, f.http.URL+"/login", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.AddCookie(&http.Cookie{Name: "__Host-darse_pre", Value: setCookies(p.h)["__Host-darse_pre"].Value})
	if p := b.do(req); p.code != http.StatusSeeOther {
		t.Fatalf("login with the __Host- pre-login cookie: %d", p.code)
	}
}

func TestCrossOriginPostsRefused(t *testing.T) {
	f := newFixture(t)
	f.user("alice", "alice's long password", false, 3)
	f.site("blog", "alice")
	a := f.browser()
	a.mustLogin("alice", "alice's long password")
	token := a.token("/sites")
	stop := func(h map[string]string) page {
		req, _ := http.NewRequest(http.MethodPost, f.http.URL+"/sites/blog/stop", strings.NewReader(url.Values{"csrf": {token}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		for k, v := range h {
			req.Header.Set(k, v)
		}
		return a.do(req)
	}
	for _, h := range []map[string]string{
		{"Origin": "https://evil.example"},
		{"Sec-Fetch-Site": "cross-site"},
		{"Sec-Fetch-Site": "same-site", "Origin": "https://blog.example.org"}, // a tenant's site
		{"Sec-Fetch-Site": "cross-site", "Origin": f.http.URL},
		{"Origin": "null"},
	} {
		if p := stop(h); p.code != http.StatusForbidden || !strings.Contains(p.body, "another site") {
			t.Errorf("POST with %v and a valid token: %d\n%s", h, p.code, p.body)
		}
	}
	if list, _ := f.store.ListOps(context.Background(), store.OpFilter{}); len(list) != 0 {
		t.Fatalf("cross-origin POSTs recorded %d operations", len(list))
	}
	anon := f.browser()
	form := url.Values{"name": {"alice"}, "password": {"alice's long password"}, "csrf": {anon.token("/login")}}
	req, _ := http.NewRequest(http.MethodPost, f.http.URL+"/login", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	if p := anon.do(req); p.code != http.StatusForbidden {
		t.Errorf("cross-site login: %d", p.code)
	}
	// The panel's own pages, and scripts that send neither header, work.
	for i, h := range []map[string]string{
		{"Origin": f.http.URL, "Sec-Fetch-Site": "same-origin"},
		{"Origin": f.http.URL},
		{"Sec-Fetch-Site": "same-origin"},
		{},
	} {
		if p := stop(h); p.code != http.StatusSeeOther {
			t.Errorf("POST with %v: %d", h, p.code)
		}
		if list, _ := f.store.ListOps(context.Background(), store.OpFilter{}); len(list) != i+1 {
			t.Fatalf("same-origin POST %d: %d operations recorded", i, len(list))
		}
	}
	// Reading stays open to links from elsewhere.
	req, _ = http.NewRequest(http.MethodGet, f.http.URL+"/sites/blog", nil)
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	if p := a.do(req); p.code != http.StatusOK {
		t.Errorf("GET from a link on another site: %d", p.code)
	}
}

func TestHTTPServerDeadlines(t *testing.T) {
	f := newFixture(t)
	hs := f.panel.HTTPServer()
	if hs.ReadHeaderTimeout <= 0 || hs.ReadTimeout <= 0 || hs.WriteTimeout <= 0 || hs.IdleTimeout <= 0 ||
		hs.MaxHeaderBytes <= 0 || hs.MaxHeaderBytes >= http.DefaultMaxHeaderBytes {
		t.Fatalf("deadlines: header %v, read %v, write %v, idle %v, header bytes %d",
			hs.ReadHeaderTimeout, hs.ReadTimeout, hs.WriteTimeout, hs.IdleTimeout, hs.MaxHeaderBytes)
	}
	if hs.WriteTimeout <= hs.ReadTimeout {
		t.Errorf("write deadline %v: a request that takes its read deadline %v has no time left to be answered", hs.WriteTimeout, hs.ReadTimeout)
	}
	if hs.Handler != f.panel {
		t.Fatal("the server does not serve the panel")
	}

	// The same server with the deadlines shortened, to see them act.
	hs.ReadHeaderTimeout, hs.ReadTimeout, hs.WriteTimeout = 200*time.Millisecond, 300*time.Millisecond, 500*time.Millisecond
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go hs.Serve(ln)
	t.Cleanup(func() { hs.Close() })
	base := "http://" + ln.Addr().String()

	// Headers that never end: the connection is closed.
	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.Write([]byte("GET /login HTTP/1.1\r\nHost: panel\r\n"))
	conn.SetReadDeadline(time.Now().Add(3 * time.Second))
	start := time.Now()
	if _, err := io.ReadAll(conn); err != nil || time.Since(start) > 2*time.Second {
		t.Errorf("stalled headers: connection open after %v (%v)", time.Since(start), err)
	}

	f.user("alice", "alice's long password", false, 3)
	f.site("blog", "alice")
	b := f.browser()
	b.mustLogin("alice", "alice's long password")
	token := b.token("/sites/blog")
	session := b.cookie("darse_session")
	// drip sends body in four parts 300 ms apart, longer than the read
	// and write deadlines.
	drip := func(path, contentType string, body []byte) (int, error) {
		pr, pw := io.Pipe()
		defer pr.Close()
		go func() {
			n := len(body) / 4
			for i := 0; i < 4; i++ {
				part := body[i*n:]
				if i < 3 {
					part = part[:n]
				}
				if _, err := pw.Write(part); err != nil {
					return
				}
				time.Sleep(300 * time.Millisecond)
			}
			pw.Close()
		}()
		req, _ := http.NewRequest(http.MethodPost, base+path, pr)
		req.ContentLength = int64(len(body))
		req.Header.Set("Content-Type", contentType)
		req.AddCookie(session)
		resp, err := b.c.Do(req)
		if err != nil {
			return 0, err
		}
		resp.Body.Close()
		return resp.StatusCode, nil
	}
	form := url.Values{"csrf": {token}}.Encode()
	if code, err := drip("/sites/blog/stop", "application/x-www-form-urlencoded", []byte(form)); err == nil && code == http.StatusSeeOther {
		t.Error("a form sent slower than the read deadline was taken")
	}
	if list, _ := f.store.ListOps(context.Background(), store.OpFilter{}); len(list) != 0 {
		t.Fatalf("the slow form recorded %d operations", len(list))
	}
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	mw.WriteField("csrf", token)
	w, _ := mw.CreateFormFile("archive", "site.tar.gz")
	w.Write(tarGz(t, map[string]string{"index.html": "<h1>slow</h1>"}, nil))
	mw.Close()
	if code, err := drip("/sites/blog/content", mw.FormDataContentType(), body.Bytes()); err != nil || code != http.StatusSeeOther {
		t.Fatalf("an upload slower than the read and write deadlines: %d, %v", code, err)
	}
	if list, _ := f.store.ListOps(context.Background(), store.OpFilter{}); len(list) != 1 {
		t.Fatalf("the slow upload recorded %d operations, want 1", len(list))
	}
}
