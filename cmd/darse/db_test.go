package main

import (
	"bytes"
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

	// From A's php container: its own database answers, B's does not, by
	// B's container name or by its address.
	a, b := sites["php-mariadb"], sites["php-postgres"]
	reach := func(target string) bool {
		return exec.Command("docker", "exec", a+"_php_1", "timeout", "5", "bash", "-c", "exec 3<>/dev/tcp/"+target).Run() == nil
	}
	if !reach("db/3306") {
		t.Fatal("A cannot reach its own database: the probe itself is broken")
	}
	ip, err := exec.Command("docker", "inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}", b+"_db_1").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, target := range append([]string{b + "_db_1/5432"}, func() (out []string) {
		for _, i := range strings.Fields(string(ip)) {
			out = append(out, i+"/5432")
		}
		return out
	}()...) {
		if reach(target) {
			t.Errorf("site A reaches site B's database at %s", target)
		}
	}
}

// WordPress through the front door: the install form completed, a post
// published (XML-RPC, as a client would), read by an anonymous client over
// IPv4 and IPv6, and still there after a restart and after its database
// container was removed and created again.
func TestWordPressSite(t *testing.T) {
	needEngine(t, "darse/wordpress:6.1-bookworm", "darse/mariadb:10.11-bookworm", "traefik:v3.6")
	f := newFront(t, "")
	v4, v6 := fmt.Sprintf("127.0.0.1:%d", f.http), fmt.Sprintf("[::1]:%d", f.http)
	name := siteName("wp")
	f.cleanup(name)
	f.ok("site", "create", name, "--template", "wordpress")
	host := name + "." + f.domain

	// Until the database answers, WordPress shows its connection error.
	deadline := time.Now().Add(120 * time.Second)
	for {
		code, body, err := post(v4, host, "/wp-admin/install.php?step=2", url.Values{
			"weblog_title": {"darse test"}, "user_name": {"admin"}, "admin_password": {"Correct-Horse-42"},
			"admin_password2": {"Correct-Horse-42"}, "pw_weak": {"1"}, "admin_email": {"admin@example.org"}, "blog_public": {"0"},
		})
		if err == nil && code == 200 && (strings.Contains(body, "Success!") || strings.Contains(body, "Already Installed")) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("install: %d %v %.500q", code, err, body)
		}
		time.Sleep(2 * time.Second)
	}
	title := fmt.Sprintf("Hello from darse %d", os.Getpid())
	rpc := `<?xml version="1.0"?><methodCall><methodName>wp.newPost</methodName><params>
<param><value><int>1</int></value></param><param><value><string>admin</string></value></param>
<param><value><string>Correct-Horse-42</string></value></param>
<param><value><struct><member><name>post_title</name><value><string>` + title + `</string></value></member>
<member><name>post_content</name><value><string>Posted by the test.</string></value></member>
<member><name>post_status</name><value><string>publish</string></value></member></struct></value></param>
</params></methodCall>`
	c := &http.Client{Timeout: 30 * time.Second}
	req, _ := http.NewRequest(http.MethodPost, "http://"+v4+"/xmlrpc.php", strings.NewReader(rpc))
	req.Host = host
	req.Header.Set("Content-Type", "text/xml")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || strings.Contains(string(b), "faultCode") {
		t.Fatalf("wp.newPost: %d %s", resp.StatusCode, b)
	}
	for _, addr := range []string{v4, v6} {
		eventuallyContains(t, addr, host, title)
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
