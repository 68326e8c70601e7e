package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// post sends a form to addr with Host host and returns the code and body,
// without following redirects.
func post(addr, host, path string, form url.Values) (int, string, error) {
	c := &http.Client{Timeout: 30 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	req, _ := http.NewRequest(http.MethodPost, "http://"+addr+path, strings.NewReader(form.Encode()))
	req.Host = host
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := c.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), nil
}

// eventuallyContains retries GET / until the body holds want.
func eventuallyContains(t *testing.T, addr, host, want string) string {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	var body string
	var code int
	var err error
	for time.Now().Before(deadline) {
		code, body, _, err = request(addr, host)
		if err == nil && code == 200 && strings.Contains(body, want) {
			return body
		}
		time.Sleep(500 * time.Millisecond)
	}
	t.Fatalf("GET http://%s/ Host %s: %d (err %v), want %q in %q", addr, host, code, err, want, body)
	return ""
}

// PHP sites with their own MariaDB and PostgreSQL: a note POSTed over IPv4
// through the front door is read back over IPv6; the password is in .env
// only (0600), db/ is the database's; site A cannot reach B's database by
// name or by address; a database parameter out of its rule is refused.
func TestDatabaseSitesWriteAndRead(t *testing.T) {
	needEngine(t, "darse/nginx:bookworm", "darse/php-apps:8.2-bookworm", "darse/mariadb:10.11-bookworm", "darse/postgres:15-bookworm", "traefik:v3.6")
	f := newFront(t, "")
	v4, v6 := fmt.Sprintf("127.0.0.1:%d", f.http), fmt.Sprintf("[::1]:%d", f.http)

	if _, errs, code := f.run("site", "create", siteName("dbbad"), "--template", "php-mariadb", "--set", "DB_BUFFER_POOL=5000G"); code == 0 || !strings.Contains(errs, "DB_BUFFER_POOL") {
		t.Fatalf("out-of-rule DB_BUFFER_POOL: exit %d %q", code, errs)
	}

	sites := map[string]string{"php-mariadb": siteName("dbm"), "php-postgres": siteName("dbp")}
	for tmpl, name := range sites {
		f.cleanup(name)
		f.ok("site", "create", name, "--template", tmpl)
	}
	for tmpl, name := range sites {
		host := name + "." + f.domain
		eventuallyContains(t, v4, host, "is up")
		note := "note-" + tmpl + "-" + fmt.Sprint(os.Getpid())
		if code, body, err := post(v4, host, "/", url.Values{"note": {note}}); err != nil || code != 303 {
			t.Fatalf("%s: POST note: %d %v %q", tmpl, code, err, body)
		}
		eventuallyContains(t, v6, host, `<li class="note">`+note+`</li>`)

		dir := filepath.Join(f.srv, "users", name)
		env, err := os.ReadFile(filepath.Join(dir, ".env"))
		if err != nil {
			t.Fatal(err)
		}
		pw := ""
		for _, l := range strings.Split(string(env), "\n") {
			if v, ok := strings.CutPrefix(l, "DB_PASSWORD="); ok {
				pw = v
			}
		}
		if len(pw) < 32 {
			t.Fatalf("%s: no generated password in .env", tmpl)
		}
		if st, _ := os.Stat(filepath.Join(dir, ".env")); st.Mode().Perm() != 0o600 {
			t.Errorf("%s: .env mode %v", tmpl, st.Mode())
		}
		compose, _ := os.ReadFile(filepath.Join(dir, "docker-compose.yml"))
		override, _ := os.ReadFile(filepath.Join(dir, "docker-compose.override.yml"))
		logs, _ := exec.Command("docker", "logs", name+"_db_1").CombinedOutput()
		if strings.Contains(string(compose)+string(override)+string(logs), pw) {
			t.Errorf("%s: password in the compose files or the database's logs", tmpl)
		}
		st, err := os.Stat(filepath.Join(dir, "db"))
		if err != nil || st.Sys().(*syscall.Stat_t).Uid != 100 || st.Mode().Perm() != 0o700 {
			t.Errorf("%s: db/ %v %v", tmpl, st, err)
		}
	}

	// From A's web and php containers: A's own database answers (from
	// php), B's does not, by B's container name or by its address.
	a, b := sites["php-mariadb"], sites["php-postgres"]
	reach := func(from, target string) bool {
		return exec.Command("docker", "exec", a+"_"+from+"_1", "timeout", "5", "bash", "-c", "exec 3<>/dev/tcp/"+target).Run() == nil
	}
	if !reach("php", "db/3306") {
		t.Fatal("A cannot reach its own database: the probe itself is broken")
	}
	ip, err := exec.Command("docker", "inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}", b+"_db_1").Output()
	if err != nil {
		t.Fatal(err)
	}
	targets := []string{b + "_db_1/5432"}
	for _, i := range strings.Fields(string(ip)) {
		targets = append(targets, i+"/5432")
	}
	for _, from := range []string{"web", "php"} {
		for _, target := range targets {
			if reach(from, target) {
				t.Errorf("site A's %s reaches site B's database at %s", from, target)
			}
		}
	}
}

// WordPress as a member gets it, in a real browser, all through the
// front door: the site created from the panel, the install form
// completed, a post published from wp-admin; an anonymous client reads it
// over IPv4 and IPv6; WordPress reaches its own domain from inside (the
// front door's address); the post survives a restart and its database
// container removed and created again.
func TestWordPressFromPanelInBrowser(t *testing.T) {
	needEngine(t, "darse/wordpress:6.1-bookworm", "darse/mariadb:10.11-bookworm", "traefik:v3.6")
	chromium := needChromium(t)
	// On port 80 (of the test's own network namespace): WordPress keeps
	// the address it was installed at without a port (Debian's nginx
	// passes HTTP_HOST without it), as a member's site is on the Internet.
	f := newFrontOn(t, 80, freePort(t), "")
	f.addUser("alice", "alice's long password")
	name := siteName("wp")
	f.cleanup(name)
	host := name + "." + f.domain
	panelURL := "http://panel." + f.domain
	siteURL := "http://" + host
	v4, v6 := "127.0.0.1:80", "[::1]:80"

	ctx := browserContext(t, chromium, f.domain)
	type css = chromedp.CSS
	fail := func(what string, err error) {
		t.Helper()
		loc, _ := chromedp.Run(ctx, chromedp.Location())
		if png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)); err == nil {
			os.WriteFile(filepath.Join(artifacts(t), "wordpress-failed.png"), png, 0o644)
		}
		logs, _ := exec.Command("docker", "logs", "--tail", "30", name+"_php_1").CombinedOutput()
		panel, _ := exec.Command("docker", "logs", "--tail", "30", fmt.Sprintf("front-t%d-panel_panel_1", os.Getpid())).CombinedOutput()
		t.Fatalf("%s: %v (at %s)\nphp logs:\n%s\npanel logs:\n%s", what, err, loc, logs, panel)
	}
	run := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		sctx, cancel := context.WithTimeout(ctx, 120*time.Second)
		defer cancel()
		if err := chromedp.Do(sctx, steps...); err != nil {
			fail(what, err)
		}
	}
	eval := func(what, js string) string {
		t.Helper()
		sctx, cancel := context.WithTimeout(ctx, 60*time.Second)
		defer cancel()
		v, err := chromedp.Run(sctx, chromedp.Evaluate[string](js, chromedp.EvalAwaitPromise))
		if err != nil {
			fail(what, err)
		}
		return v
	}
	if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("start chromium: %v", err)
	}

	// The panel, through the front door: log in, pick WordPress, name it.
	run("log in to the panel",
		chromedp.Navigate(panelURL+"/sites"),
		chromedp.WaitVisible(css("#name")),
		// Set, not typed: the page's script may move the focus meanwhile.
		chromedp.SetValue(css("#name"), "alice"),
		chromedp.SetValue(css("#password"), "alice's long password"),
		chromedp.Submit(css("#password")),
		chromedp.WaitVisible(css("meter.quota")),
	)
	run("create a WordPress site",
		chromedp.Click(css(`a[href="/sites/new"]`)),
		chromedp.WaitVisible(css("#name")),
		chromedp.Click(css(`input[name="template"][value="wordpress"]`)),
		chromedp.SendKeys(css("#name"), name),
		chromedp.Submit(css("#name")),
		chromedp.WaitVisible(css(`.page-head[data-live-site="`+name+`"]`)),
	)
	deadline := time.Now().Add(120 * time.Second)
	for {
		st, _ := chromedp.Run(ctx, chromedp.Text(css("h1 [data-state]")))
		if st == "Running" {
			break
		}
		if time.Now().After(deadline) {
			fail("site never shown running", fmt.Errorf("state %q", st))
		}
		time.Sleep(time.Second)
	}
	screenshot(t, ctx, "wordpress-site")

	// WordPress's own install form, until its database answers.
	for deadline = time.Now().Add(120 * time.Second); ; time.Sleep(2 * time.Second) {
		run("open the install page", chromedp.Navigate(siteURL+"/wp-admin/install.php"))
		if ok := eval("install form", `String(document.getElementById("setup") !== null)`); ok == "true" {
			break
		}
		if time.Now().After(deadline) {
			fail("no install form", nil)
		}
	}
	screenshot(t, ctx, "wordpress-install")
	const password = "Darse-wp-Passw0rd-4137-zq"
	run("complete the install form",
		chromedp.SetValue(css("#weblog_title"), "darse test"),
		chromedp.SetValue(css("#user_login"), "admin"),
		// The password field is WordPress's script's (it suggests one).
		chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			_, err := chromedp.Evaluate[bool](`(() => { for (const id of ["pass1", "pass2"]) { const e = document.getElementById(id); if (e) e.value = "`+password+`"; }
				const w = document.querySelector('input[name="pw_weak"]'); if (w) w.checked = true; return true; })()`)(ctx, tg)
			return err
		}),
		chromedp.SetValue(css("#admin_email"), "alice@example.org"),
		chromedp.Submit(css("#admin_email")),
		chromedp.WaitVisible(css(".wp-login-log-in, .button-large")),
	)
	if body := eval("install result", `document.body.innerText`); !strings.Contains(body, "Success") {
		msg := eval("install error", `Array.from(document.querySelectorAll(".message, .error, #error-page")).map(e => e.innerText).join(" | ")`)
		fail("install", fmt.Errorf("WordPress says %q", msg))
	}
	run("log in to wp-admin, to the editor",
		chromedp.Navigate(siteURL+"/wp-login.php?redirect_to="+url.QueryEscape(siteURL+"/wp-admin/post-new.php")),
		chromedp.WaitVisible(css("#user_pass")),
		chromedp.SetValue(css("#user_login"), "admin"),
		chromedp.SetValue(css("#user_pass"), password),
		chromedp.Click(css("#wp-submit")),
		chromedp.WaitReady(css("body.wp-admin")),
	)
	// Published from the editor's page, by the editor's own client (what
	// its Publish button calls).
	title := fmt.Sprintf("Hello from darse %d", os.Getpid())
	for deadline = time.Now().Add(60 * time.Second); eval("editor loaded", `String(typeof wp !== "undefined" && typeof wp.apiFetch === "function")`) != "true"; time.Sleep(500 * time.Millisecond) {
		if time.Now().After(deadline) {
			fail("editor never loaded", nil)
		}
	}
	if st := eval("publish", `wp.apiFetch({path: "/wp/v2/posts", method: "POST", data: {title: "`+title+`", content: "Posted from the browser.", status: "publish"}}).then(p => p.status)`); st != "publish" {
		fail("publish", fmt.Errorf("post status %q", st))
	}
	screenshot(t, ctx, "wordpress-editor")

	// An anonymous client, over both families.
	for _, addr := range []string{v4, v6} {
		eventuallyContains(t, addr, host, title)
	}
	// From inside, the site's own domain is the front door.
	out, err := exec.Command("docker", "exec", name+"_php_1", "getent", "hosts", name+"."+f.domain).CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), "172.24.0.1 ") {
		t.Fatalf("%s resolves inside the site to %q (%v), want the front door", name+"."+f.domain, out, err)
	}
	out, err = exec.Command("docker", "exec", name+"_php_1", "php", "-r", `echo file_get_contents("`+siteURL+`/");`).CombinedOutput()
	if err != nil || !strings.Contains(string(out), title) {
		t.Fatalf("WordPress calling itself at %s: %v %.300q", siteURL, err, out)
	}

	f.ok("site", "restart", name)
	eventuallyContains(t, v6, host, title)
	if out, err := exec.Command("docker", "rm", "-f", name+"_db_1").CombinedOutput(); err != nil {
		t.Fatalf("remove database container: %v %s", err, out)
	}
	f.ok("site", "up", name)
	eventuallyContains(t, v4, host, title)
}

// A database that cannot start fails the creation with the database's
// own last log lines, and nothing else of the site is lost: here its
// files, kept by `site rm` and adopted by the same member's new site,
// were damaged meanwhile.
func TestDatabaseThatDoesNotComeUp(t *testing.T) {
	needEngine(t, "darse/nginx:bookworm", "darse/php-apps:8.2-bookworm", "darse/mariadb:10.11-bookworm")
	e := newEnv(t)
	name := siteName("nodb")
	e.cleanup(name)
	e.ok("site", "create", name, "--template", "php-mariadb")
	e.ok("site", "rm", name) // data/ and db/ kept
	dir := filepath.Join(e.srv, "users", name)
	page := filepath.Join(dir, "data", "kept.html")
	if err := os.WriteFile(page, []byte("kept"), 0o644); err != nil {
		t.Fatal(err)
	}
	// The database's system tablespace, overwritten: MariaDB refuses to start.
	var spaces []string
	filepath.WalkDir(filepath.Join(dir, "db"), func(p string, d os.DirEntry, err error) error {
		if err == nil && d.Name() == "ibdata1" {
			spaces = append(spaces, p)
		}
		return nil
	})
	if len(spaces) != 1 {
		t.Fatalf("ibdata1 in db/: %v", spaces)
	}
	if err := os.WriteFile(spaces[0], bytes.Repeat([]byte("not a tablespace "), 4096), 0o600); err != nil {
		t.Fatal(err)
	}
	_, errs, code := e.run("site", "create", name, "--template", "php-mariadb")
	if code == 0 {
		t.Fatal("a creation whose database cannot start succeeded")
	}
	if !strings.Contains(errs, "did not come up") || !strings.Contains(errs, "last log lines") {
		t.Fatalf("the error does not quote the database: %q", errs)
	}
	if strings.Count(strings.TrimSpace(errs), "\n") < 1 {
		t.Fatalf("no log lines in the error: %q", errs)
	}
	if b, err := os.ReadFile(page); err != nil || string(b) != "kept" {
		t.Fatalf("the member's files were lost: %q, %v", b, err)
	}
	if s := e.status(name); s.Name != name {
		t.Fatalf("the site was not kept for a retry: %+v", s)
	}
}
