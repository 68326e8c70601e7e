package main

import (
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	osexec "os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/darse/darse/internal/backup"
	"github.com/darse/darse/internal/backup/backuptest"
	"github.com/darse/darse/internal/ops"
	"github.com/darse/darse/internal/store"
)

// backupSection is darse.yml's backup section for the repository of r;
// the schedule is off: a panel a test starts backs up only what it asks.
func backupSection(r *backup.Restic) string {
	return fmt.Sprintf("backup:\n  repository: %q\n  password_file: %s\n  keep: {daily: 3}\n  schedule: \"off\"\n  check: \"off\"\n  drill: \"off\"\n", r.Repository, r.PasswordFile)
}

// useRepository points the env's darse.yml at r (replacing any backup
// section) and darse at the tests' restic.
func (e *env) useRepository(r *backup.Restic) {
	e.t.Helper()
	path := filepath.Join(e.srv, "conf", "darse.yml")
	b, err := os.ReadFile(path)
	if err != nil {
		e.t.Fatal(err)
	}
	cfg, _, _ := strings.Cut(string(b), "backup:\n")
	if err := os.WriteFile(path, []byte(cfg+backupSection(r)), 0o644); err != nil {
		e.t.Fatal(err)
	}
	e.t.Setenv("DARSE_RESTIC", r.Binary)
}

// backups lists the site's backups as `darse backup ls --json` prints them.
func (e *env) backups(name string) []backup.Set {
	e.t.Helper()
	var list []backup.Set
	if err := json.Unmarshal([]byte(e.ok("backup", "ls", name, "--json")), &list); err != nil {
		e.t.Fatal(err)
	}
	return list
}

// The cycle for static, php, php-mariadb and wordpress: create,
// write content (and a database row), back up, `site rm --purge`,
// restore: the same content and row are served through Traefik. The
// static, php and wordpress sites go to a local repository, the database
// site to restic's REST server on loopback (off the host).
func TestBackupRestoreCycle(t *testing.T) {
	needEngine(t, "darse/nginx:bookworm", "darse/php-fpm:8.2-bookworm", "darse/php-apps:8.2-bookworm", "darse/mariadb:10.11-bookworm", "darse/wordpress:6.1-bookworm", "traefik:v3.6")
	local, remote := backuptest.Local(t), backuptest.Remote(t)
	f := newFront(t, "")
	v4 := fmt.Sprintf("127.0.0.1:%d", f.http)
	mark := fmt.Sprintf("restored-%d", os.Getpid())
	// file writes body into the site's data/ and returns what it serves.
	file := func(name, body, want string) func(t *testing.T, site, host string) string {
		return func(t *testing.T, site, host string) string {
			if err := os.WriteFile(filepath.Join(f.srv, "users", site, "data", name), []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
			return want
		}
	}
	for _, c := range []struct {
		template string
		repo     *backup.Restic
		db       bool
		// write puts content (and a row) in the site and returns what
		// its home page then shows.
		write func(t *testing.T, site, host string) string
	}{
		{"static", local, false, file("index.html", "<p>"+mark+" static</p>\n", mark+" static")},
		{"php", local, false, file("index.php", "<?php echo '<p>' . '"+mark+" php' . '</p>';\n", "<p>"+mark+" php</p>")},
		{"php-mariadb", remote, true, func(t *testing.T, site, host string) string {
			eventuallyContains(t, v4, host, "is up")
			if code, body, err := post(v4, host, "/", url.Values{"note": {mark}}); err != nil || code != 303 {
				t.Fatalf("POST note: %d %v %q", code, err, body)
			}
			return `<li class="note">` + mark + `</li>`
		}},
		{"wordpress", local, true, func(t *testing.T, site, host string) string {
			title := "Post " + mark
			wordpressInstall(t, v4, host)
			wordpressPublish(t, v4, host, title)
			return title
		}},
	} {
		t.Run(c.template, func(t *testing.T) {
			f.t = t
			f.useRepository(c.repo)
			name := siteName("bk" + strings.ReplaceAll(c.template, "-", ""))
			host := name + "." + f.domain
			f.cleanup(name)
			t.Cleanup(func() {
				if t.Failed() {
					for _, svc := range []string{"web", "php", "db"} {
						out, _ := osexec.Command("docker", "logs", "--tail", "30", name+"_"+svc+"_1").CombinedOutput()
						t.Logf("%s logs:\n%s", svc, out)
					}
				}
			})
			f.ok("site", "create", name, "--template", c.template)
			want := c.write(t, name, host)
			eventuallyContains(t, v4, host, want)

			out := f.ok("backup", "run", name)
			if !strings.Contains(out, name+": backed up") {
				t.Fatalf("backup run: %q", out)
			}
			list := f.backups(name)
			if len(list) != 1 || !list[0].Complete() || c.db != (list[0].DB != "") {
				t.Fatalf("backups of %s: %+v", name, list)
			}

			f.ok("site", "rm", name, "--purge", "--yes")
			if _, err := os.Stat(filepath.Join(f.srv, "users", name)); !os.IsNotExist(err) {
				t.Fatalf("purged site's folder: %v", err)
			}
			eventually(t, v4, host, 404, "")

			out = f.ok("backup", "restore", name)
			if !strings.Contains(out, name+": restored") {
				t.Fatalf("backup restore: %q", out)
			}
			eventuallyContains(t, v4, host, want)
			if s := f.status(name); s.Template != c.template || len(s.Drift) != 0 {
				t.Errorf("restored site: template %s, drift %v", s.Template, s.Drift)
			}
			if _, err := os.Stat(filepath.Join(f.srv, "backup", "restore", name)); !os.IsNotExist(err) {
				t.Errorf("the restore's staging folder was left: %v", err)
			}
		})
	}
}

// wordpressInstall completes WordPress's install form through the front
// door, once its database answers (the form shows only then).
func wordpressInstall(t *testing.T, addr, host string) {
	t.Helper()
	c := &http.Client{Timeout: 30 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	deadline := time.Now().Add(120 * time.Second)
	for {
		req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/wp-admin/install.php", nil)
		req.Host = host
		resp, err := c.Do(req)
		var body []byte
		if err == nil {
			body, _ = io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 200 && strings.Contains(string(body), `id="setup"`) {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("WordPress's install form never showed: %v %.300q", err, body)
		}
		time.Sleep(2 * time.Second)
	}
	code, body, err := post(addr, host, "/wp-admin/install.php?step=2", url.Values{
		"weblog_title": {"darse backup test"}, "user_name": {"admin"},
		"admin_password": {wordpressPassword}, "admin_password2": {wordpressPassword}, "pw_weak": {"on"},
		"admin_email": {"admin@example.org"}, "blog_public": {"0"}, "language": {""},
	})
	if err != nil || code != 200 || !strings.Contains(body, "Success") {
		t.Fatalf("WordPress install: %d %v %.500q", code, err, body)
	}
}

const wordpressPassword = "Darse-wp-Passw0rd-4137-zq"

// wordpressPublish publishes a post through WordPress's XML-RPC API
// (wp.newPost, as the admin), through the front door.
func wordpressPublish(t *testing.T, addr, host, title string) {
	t.Helper()
	call := `<?xml version="1.0"?><methodCall><methodName>wp.newPost</methodName><params>
<param><value><int>1</int></value></param>
<param><value><string>admin</string></value></param>
<param><value><string>` + wordpressPassword + `</string></value></param>
<param><value><struct>
<member><name>post_title</name><value><string>` + title + `</string></value></member>
<member><name>post_content</name><value><string>Published before the backup.</string></value></member>
<member><name>post_status</name><value><string>publish</string></value></member>
</struct></value></param></params></methodCall>`
	c := &http.Client{Timeout: 30 * time.Second}
	req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/xmlrpc.php", strings.NewReader(call))
	req.Host = host
	req.Header.Set("Content-Type", "text/xml")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("XML-RPC wp.newPost: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || strings.Contains(string(b), "<fault>") || !strings.Contains(string(b), "<string>") {
		t.Fatalf("XML-RPC wp.newPost: %d %.500q", resp.StatusCode, b)
	}
}

// A dump that fails fails the operation with its message, and the
// previous backup stays the latest.
func TestBackupFailingDump(t *testing.T) {
	needEngine(t, "darse/nginx:bookworm", "darse/php-apps:8.2-bookworm", "darse/mariadb:10.11-bookworm")
	e := newEnv(t)
	e.useRepository(backuptest.Local(t))
	name := siteName("bkfail")
	e.cleanup(name)
	e.ok("site", "create", name, "--template", "php-mariadb")
	e.ok("backup", "run", name)
	before := e.backups(name)
	// The dump now fails (mariadb-dump: unknown database, exit 2) while
	// the database runs.
	if out, err := osexec.Command("docker", "exec", "-u", "100:101", name+"_db_1", "mariadb", "-e", "DROP DATABASE site").CombinedOutput(); err != nil {
		t.Fatalf("drop the database: %v %s", err, out)
	}
	_, errs, code := e.run("backup", "run", name)
	if code != 1 || !strings.Contains(errs, "database dump of "+name+" failed") || !strings.Contains(errs, "exit status 2") {
		t.Fatalf("backup with its database down: exit %d %q", code, errs)
	}
	if after := e.backups(name); len(after) != len(before) || after[0].Run != before[0].Run {
		t.Fatalf("backups after a failed dump: %+v, before %+v", after, before)
	}
	out := e.ok("op", "ls", "--site", name, "--state", "failed")
	if !strings.Contains(out, "backup") {
		t.Errorf("the failed backup is not in the operations log:\n%s", out)
	}
}

// restore SITE --as NEWNAME: the backup goes into a new site, a fresh
// project with its own folder, database and host name, serving the same
// content and row through Traefik beside the original, left alone. The
// new name is checked as a new site's.
func TestBackupRestoreAs(t *testing.T) {
	needEngine(t, "darse/nginx:bookworm", "darse/php-apps:8.2-bookworm", "darse/mariadb:10.11-bookworm", "darse/sftp:bookworm", "traefik:v3.6")
	f := newFront(t, "reserved: [bkreserved]\n")
	f.useRepository(backuptest.Local(t))
	v4 := fmt.Sprintf("127.0.0.1:%d", f.http)
	name, copyName := siteName("bkas"), siteName("bkascopy")
	f.cleanup(name)
	f.cleanup(copyName)
	f.ok("site", "create", name, "--template", "php-mariadb")
	host, copyHost := name+"."+f.domain, copyName+"."+f.domain
	eventuallyContains(t, v4, host, "is up")
	mark := fmt.Sprintf("cloned-%d", os.Getpid())
	if code, body, err := post(v4, host, "/", url.Values{"note": {mark}}); err != nil || code != 303 {
		t.Fatalf("POST note: %d %v %q", code, err, body)
	}
	f.ok("backup", "run", name)
	// Written after the backup: in the original only.
	if code, body, err := post(v4, host, "/", url.Values{"note": {"after-" + mark}}); err != nil || code != 303 {
		t.Fatalf("POST note: %d %v %q", code, err, body)
	}

	for _, c := range []struct{ as, want string }{
		{"Bad_Name", "site name"},
		{"bkreserved", "reserved"},
	} {
		if _, errs, code := f.run("backup", "restore", name, "--as", c.as); code == 0 || !strings.Contains(errs, c.want) {
			t.Errorf("restore --as %s: exit %d %q, want an error naming %q", c.as, code, errs, c.want)
		}
	}
	f.ok("site", "create", copyName+"x", "--template", "static")
	f.cleanup(copyName + "x")
	if _, errs, code := f.run("backup", "restore", name, "--as", copyName+"x"); code == 0 || !strings.Contains(errs, "already taken") {
		t.Errorf("restore --as a taken name: exit %d %q", code, errs)
	}

	out := f.ok("backup", "restore", name, "--as", copyName)
	if !strings.Contains(out, name+": restored as "+copyName) {
		t.Fatalf("restore --as: %q", out)
	}
	body := eventuallyContains(t, v4, copyHost, `<li class="note">`+mark+`</li>`)
	if strings.Contains(body, "after-"+mark) {
		t.Errorf("the copy holds a note written after its backup:\n%s", body)
	}
	if body := eventuallyContains(t, v4, host, `<li class="note">after-`+mark+`</li>`); !strings.Contains(body, mark) {
		t.Errorf("the original lost its notes:\n%s", body)
	}
	s := f.status(copyName)
	if s.Template != "php-mariadb" || len(s.Drift) != 0 || s.State != "running" {
		t.Errorf("the copy: %+v", s)
	}
	// Its own database folder and compose project, not the original's.
	b, err := os.ReadFile(filepath.Join(f.srv, "users", copyName, "docker-compose.override.yml"))
	if err != nil || strings.Contains(string(b), name+".") || !strings.Contains(string(b), copyHost) {
		t.Errorf("the copy's override still names the original: %v\n%s", err, b)
	}
	if out, _ := osexec.Command("docker", "ps", "-q", "--filter", "label=com.docker.compose.project="+copyName).Output(); len(strings.Fields(string(out))) < 3 {
		t.Errorf("the copy's project runs %q", out)
	}
}

// backup check verifies the repository as an operation, and with --prune
// first removes the data of the runs retention forgot (the repository
// shrinks by it, another site's backups intact); a damaged pack fails it,
// with restic's message in the operations log.
func TestBackupCheck(t *testing.T) {
	needEngine(t, "darse/nginx:bookworm")
	e := newEnv(t)
	r := backuptest.Local(t)
	e.useRepository(r)
	name := siteName("bkchk")
	e.cleanup(name)
	e.ok("site", "create", name, "--template", "static")
	other := siteName("bkchko")
	e.cleanup(other)
	e.ok("site", "create", other, "--template", "static")
	// Three runs of distinct 4 MiB blobs: the third's retention (keep
	// daily 3: one run a day, and restic keeps the oldest too while days
	// are left) forgets the second, whose blob then only takes space
	// until a prune.
	blob := make([]byte, 4<<20)
	for _, n := range []string{name, other, name, name} {
		rand.Read(blob)
		if err := os.WriteFile(filepath.Join(e.srv, "users", n, "data", "blob"), blob, 0o644); err != nil {
			t.Fatal(err)
		}
		e.ok("backup", "run", n)
	}
	if list := e.backups(name); len(list) != 2 {
		t.Fatalf("backups of %s after retention: %+v, want the first and the last", name, list)
	}
	before := repoBytes(t, r)
	if out := e.ok("backup", "check", "--read-data", "--prune"); !strings.Contains(out, "no errors found") {
		t.Fatalf("backup check --prune: %q", out)
	}
	if freed := before - repoBytes(t, r); freed < 4<<20*9/10 {
		t.Fatalf("check --prune freed %d bytes, want the forgotten run's 4 MiB", freed)
	}
	if list := e.backups(other); len(list) != 1 || !list[0].Complete() {
		t.Fatalf("the other site's backups after the prune: %+v", list)
	}
	packs, err := filepath.Glob(filepath.Join(r.Repository, "data", "*", "*"))
	if err != nil || len(packs) == 0 {
		t.Fatalf("packs: %v %v", packs, err)
	}
	for _, p := range packs {
		if err := os.WriteFile(p, []byte("damaged"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	_, errs, code := e.run("backup", "check", "--read-data")
	if code == 0 || !strings.Contains(errs, "repository check failed") {
		t.Fatalf("check of a damaged repository: exit %d %q", code, errs)
	}
	if out := e.ok("op", "ls", "--state", "failed"); !strings.Contains(out, "backup-check") {
		t.Errorf("the failed check is not in the operations log:\n%s", out)
	}
}

// On a brand-new srv folder and store, backup restore-platform from the
// same repository brings back every member, key and site, serving
// through Traefik.
func TestRestorePlatform(t *testing.T) {
	needEngine(t, "darse/nginx:bookworm", "darse/php-apps:8.2-bookworm", "darse/mariadb:10.11-bookworm", "darse/sftp:bookworm", "traefik:v3.6")
	old := newFront(t, "")
	repo := backuptest.Remote(t) // off the host: the old host is lost
	old.useRepository(repo)
	v4 := fmt.Sprintf("127.0.0.1:%d", old.http)
	member := fmt.Sprintf("bkm%d", os.Getpid())
	old.addUser(member, "correct horse battery")
	static, db := siteName("bkpls"), siteName("bkpld")
	old.cleanup(static)
	old.cleanup(db)
	old.ok("site", "create", static, "--template", "static", "--owner", member)
	old.ok("site", "create", db, "--template", "php-mariadb", "--owner", member)
	page := fmt.Sprintf("<p>platform %d</p>\n", os.Getpid())
	if err := os.WriteFile(filepath.Join(old.srv, "users", static, "data", "index.html"), []byte(page), 0o644); err != nil {
		t.Fatal(err)
	}
	key := newClientKey(t, t.TempDir(), "bkplatform")
	old.ok("key", "add", db, key.file+".pub")
	eventuallyContains(t, v4, db+"."+old.domain, "is up")
	mark := fmt.Sprintf("platform-note-%d", os.Getpid())
	if code, body, err := post(v4, db+"."+old.domain, "/", url.Values{"note": {mark}}); err != nil || code != 303 {
		t.Fatalf("POST note: %d %v %q", code, err, body)
	}
	if out := old.ok("backup", "run", "--all"); !strings.Contains(out, "platform: backed up") {
		t.Fatalf("backup run --all: %q", out)
	}
	// The old host is lost: its sites and front door go.
	for _, n := range []string{static, db} {
		old.ok("site", "rm", n, "--purge", "--yes")
	}
	cfg, err := os.ReadFile(filepath.Join(old.srv, "conf", "darse.yml"))
	if err != nil {
		t.Fatal(err)
	}
	old.ok("platform", "down")

	// A new host: a new srv folder with the same darse.yml (the same
	// repository), its platform up, its store empty.
	fresh := newEnvWith(t, string(cfg))
	fresh.t.Setenv("DARSE_RESTIC", repo.Binary)
	t.Cleanup(func() { fresh.run("platform", "down") })
	fresh.cleanup(static)
	fresh.cleanup(db)
	fresh.ok("platform", "up")
	out := fresh.ok("backup", "restore-platform")
	for _, want := range []string{"platform: store restored", static + ": restored", db + ": restored"} {
		if !strings.Contains(out, want) {
			t.Errorf("restore-platform printed %q, want %q", out, want)
		}
	}
	var users []userJSON
	if err := json.Unmarshal([]byte(fresh.ok("user", "ls", "--json")), &users); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, u := range users {
		found = found || u.Name == member && u.Sites == 2
	}
	if !found {
		t.Errorf("members after restore-platform: %+v, want %s owning 2 sites", users, member)
	}
	var keys []keyJSON
	if err := json.Unmarshal([]byte(fresh.ok("key", "ls", db, "--json")), &keys); err != nil {
		t.Fatal(err)
	}
	if len(keys) != 1 || !strings.HasPrefix(key.line, keys[0].Key) {
		t.Errorf("keys of %s after restore-platform: %+v, want %s", db, keys, key.line)
	}
	if b, err := os.ReadFile(filepath.Join(fresh.srv, "users", db, "ssh", "authorized_keys")); err != nil || !strings.Contains(string(b), strings.Fields(key.line)[1]) {
		t.Errorf("the restored site's authorized_keys: %v %q", err, b)
	}
	eventually(t, v4, static+"."+old.domain, 200, page)
	eventuallyContains(t, v4, db+"."+old.domain, `<li class="note">`+mark+`</li>`)
	// It is for a new host: a second run, with sites in the store, is refused.
	if _, errs, code := fresh.run("backup", "restore-platform"); code == 0 || !strings.Contains(errs, "new host") {
		t.Errorf("restore-platform over a store with sites: exit %d %q", code, errs)
	}
}

// SIGKILL at points through a restore, then the next run (op recover):
// the site's folder is at every moment its old state or the restored
// one, never a mix of files from both, and once settled it serves the
// restored state.
func TestKilledRestoreServesOneState(t *testing.T) {
	needEngine(t, "darse/nginx:bookworm", "darse/sftp:bookworm")
	e := newEnv(t)
	e.useRepository(backuptest.Local(t))
	name := siteName("bkkr")
	e.cleanup(name)
	e.ok("site", "create", name, "--template", "static")
	data := filepath.Join(e.srv, "users", name, "data")
	blob := make([]byte, 16<<20) // slows the restore down enough to be cut
	if _, err := rand.Read(blob); err != nil {
		t.Fatal(err)
	}
	write := func(v string) {
		t.Helper()
		for i := range 40 {
			if err := os.WriteFile(filepath.Join(data, fmt.Sprintf("f%02d.html", i)), []byte(v+"\n"), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.WriteFile(filepath.Join(data, "index.html"), []byte(v+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(data, "blob"), append([]byte(v+"\n"), blob...), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// state reads the version every file of the live folder holds: "" when
	// there is no folder, a failure when its files disagree.
	state := func() string {
		t.Helper()
		if _, err := os.Stat(data); os.IsNotExist(err) {
			return ""
		}
		seen := map[string]bool{}
		for _, f := range []string{"index.html", "blob", "f00.html", "f20.html", "f39.html"} {
			b, err := os.ReadFile(filepath.Join(data, f))
			if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			v, _, _ := strings.Cut(string(b), "\n")
			seen[v] = true
		}
		if len(seen) != 1 {
			t.Fatalf("the site's folder mixes states: %v", seen)
		}
		for v := range seen {
			return v
		}
		return ""
	}
	write("backed-up")
	e.ok("backup", "run", name)
	for i, delay := range []time.Duration{0, 150 * time.Millisecond, 400 * time.Millisecond, 800 * time.Millisecond, 1500 * time.Millisecond} {
		write(fmt.Sprintf("changed-%d", i))
		id := e.record(name, new(ops.Restore))
		cli := osexec.Command(darseBin, "op", "run", strconv.FormatInt(id, 10))
		cli.Env = append(os.Environ(), "DARSE_SRV="+e.srv)
		if err := cli.Start(); err != nil {
			t.Fatal(err)
		}
		e.waitBegun(name, id)
		time.Sleep(delay)
		cli.Process.Kill()
		cli.Wait()
		if v := state(); v != "" && v != "backed-up" && v != fmt.Sprintf("changed-%d", i) {
			t.Fatalf("killed %v in: the folder holds %q", delay, v)
		}
		e.ok("op", "recover")
		if op := e.opByID(name, id); op.State != store.OpDone {
			t.Fatalf("restore killed %v in, then settled: %s %q", delay, op.State, op.Error)
		}
		if v := state(); v != "backed-up" {
			t.Fatalf("restore killed %v in, then settled: the folder holds %q", delay, v)
		}
		running(e, name)
		if body := get(t, name+"_web_1", "/f20.html", 200); body != "backed-up\n" {
			t.Fatalf("restore killed %v in, then settled: serves %q", delay, body)
		}
	}
}

// repoBytes is what the local repository's packs take.
func repoBytes(t *testing.T, r *backup.Restic) int64 {
	t.Helper()
	var n int64
	err := filepath.WalkDir(filepath.Join(r.Repository, "data"), func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		info, err := d.Info()
		if err == nil {
			n += info.Size()
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// noDrillLeft fails when a drill left a container, a network or a folder.
func noDrillLeft(e *env) {
	e.t.Helper()
	if entries, _ := os.ReadDir(filepath.Join(e.srv, "backup", "drill")); len(entries) != 0 {
		e.t.Fatalf("a drill left its folder: %v", entries)
	}
	for _, what := range [][]string{{"ps", "-a"}, {"network", "ls"}} {
		out, err := osexec.Command("docker", append(what, "-q", "--filter", "label=com.docker.compose.project")...).Output()
		if err != nil {
			e.t.Fatal(err)
		}
		for _, id := range strings.Fields(string(out)) {
			b, _ := osexec.Command("docker", "inspect", "-f", `{{index .Config.Labels "com.docker.compose.project"}}{{index .Labels "com.docker.compose.project"}}`, id).Output()
			if p := strings.TrimSpace(string(b)); strings.HasPrefix(p, "drill-") && drillOf(e, p) {
				e.t.Fatalf("a drill left %s %s of project %s", what[0], id, p)
			}
		}
	}
	out, err := osexec.Command("docker", "volume", "ls", "-q", "--filter", "label=com.docker.compose.project").Output()
	if err != nil {
		e.t.Fatal(err)
	}
	for _, v := range strings.Fields(string(out)) {
		b, _ := osexec.Command("docker", "volume", "inspect", "-f", `{{index .Labels "com.docker.compose.project"}}`, v).Output()
		if p := strings.TrimSpace(string(b)); strings.HasPrefix(p, "drill-") && drillOf(e, p) {
			e.t.Fatalf("a drill left volume %s of project %s", v, p)
		}
	}
}

// drillOf says whether project is a drill of one of this env's sites'
// backups (other tests' drills run beside).
func drillOf(e *env, project string) bool {
	var list []backup.Set
	out, _, code := e.run("backup", "ls", "--json")
	if code != 0 || json.Unmarshal([]byte(out), &list) != nil {
		return false
	}
	for _, s := range list {
		if ops.DrillProject(s.Site, s.Run) == project {
			return true
		}
	}
	return false
}

// A drill restores the latest backup of a site with a database into a
// throw-away project, loads its dump, waits for its health and removes
// it; the site itself is left as it was.
func TestBackupDrill(t *testing.T) {
	needEngine(t, "darse/nginx:bookworm", "darse/php-apps:8.2-bookworm", "darse/mariadb:10.11-bookworm", "darse/sftp:bookworm")
	e := newEnv(t)
	e.useRepository(backuptest.Local(t))
	name := siteName("bkdrill")
	e.cleanup(name)
	e.ok("site", "create", name, "--template", "php-mariadb")
	before := pid(t, name+"_db_1")
	if _, errs, code := e.run("backup", "drill", name); code == 0 || !strings.Contains(errs, "no complete backup") {
		t.Fatalf("drill without a backup: exit %d %q", code, errs)
	}
	e.ok("backup", "run", name)
	out := e.ok("backup", "drill", name)
	if !strings.Contains(out, name+": drill passed") {
		t.Fatalf("drill: %q", out)
	}
	noDrillLeft(e)
	if pid(t, name+"_db_1") != before {
		t.Error("the drill restarted the site's own database")
	}
	running(e, name)
	if out := e.ok("op", "ls", "--site", name, "--state", "done"); !strings.Contains(out, "drill") {
		t.Errorf("the drill is not in the operations log:\n%s", out)
	}
}

// volumeTemplate installs a copy of the static template whose web service
// serves a named volume of the site's (pages) instead of data/.
func volumeTemplate(t *testing.T, srv, name string) {
	t.Helper()
	rolloutTemplate(t, srv, name, "darse/nginx:bookworm")
	dir := filepath.Join(srv, "templates", name)
	edit := func(file, old, new string) {
		t.Helper()
		p := filepath.Join(dir, file)
		b, err := os.ReadFile(p)
		if err != nil || !strings.Contains(string(b), old) {
			t.Fatalf("%s: %v, or no %q in it", file, err, old)
		}
		if err := os.WriteFile(p, []byte(strings.Replace(string(b), old, new, 1)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	edit("docker-compose.yml", "      - ./data:/srv/data:ro\n", "      - ./data:/srv/data:ro\n      - pages:/srv/pages:ro\n")
	b, err := os.ReadFile(filepath.Join(dir, "docker-compose.yml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "docker-compose.yml"), append(b, "\nvolumes:\n  pages: {}\n"...), 0o644); err != nil {
		t.Fatal(err)
	}
	edit("conf/nginx.conf", "root /srv/data;", "root /srv/pages;")
}

// volumeMount is where the engine keeps the named volume's files.
func volumeMount(t *testing.T, name string) string {
	t.Helper()
	out, err := osexec.Command("docker", "volume", "inspect", "-f", "{{.Mountpoint}}", name).CombinedOutput()
	if err != nil {
		t.Fatalf("volume %s: %v %s", name, err, out)
	}
	return strings.TrimSpace(string(out))
}

func writePage(t *testing.T, mountpoint, body string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(mountpoint, "index.html"), []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

// A site's named volumes are in its snapshot, read from the host at the
// engine's mountpoint, and are restored: in place (the files they hold
// now replaced), into a fresh volume after `site rm --purge`, and into the
// new site's own fresh volume with --as, served through Traefik each time.
func TestBackupNamedVolume(t *testing.T) {
	needEngine(t, "darse/nginx:bookworm", "traefik:v3.6")
	f := newFront(t, "")
	f.useRepository(backuptest.Local(t))
	v4 := fmt.Sprintf("127.0.0.1:%d", f.http)
	tpl := fmt.Sprintf("volpages%d", os.Getpid())
	volumeTemplate(t, f.srv, tpl)
	name, copyName := siteName("bkvol"), siteName("bkvolcopy")
	host, copyHost := name+"."+f.domain, copyName+"."+f.domain
	f.cleanup(name)
	f.cleanup(copyName)
	f.ok("site", "create", name, "--template", tpl)
	mark := fmt.Sprintf("<p>in a volume %d</p>\n", os.Getpid())
	writePage(t, volumeMount(t, name+"_pages"), mark)
	eventuallyContains(t, v4, host, mark)

	// The panel, which runs scheduled backups and members' restores,
	// sees the volumes where the engine keeps them.
	vols := filepath.Dir(filepath.Dir(volumeMount(t, name+"_pages")))
	panelC := fmt.Sprintf("front-t%d-panel_panel_1", os.Getpid())
	if m := inspect(t, panelC, `{{range .Mounts}}{{if eq .Destination "`+vols+`"}}{{.Source}} {{.RW}}{{end}}{{end}}`); m != vols+" true" {
		t.Errorf("the panel mounts %q at %s, want the engine's volumes folder, writable", m, vols)
	}

	f.ok("backup", "run", name)
	list := f.backups(name)
	if len(list) != 1 || list[0].Volumes[name+"_pages"] == "" {
		t.Fatalf("backups of %s: %+v, want its volume %s_pages in", name, list, name)
	}

	// A drill restores it into a volume of its own, removed with it.
	if out := f.ok("backup", "drill", name); !strings.Contains(out, name+": drill passed") {
		t.Fatalf("drill: %q", out)
	}
	noDrillLeft(f.env)

	// In place: the volume's files now are replaced by the backup's.
	writePage(t, volumeMount(t, name+"_pages"), "<p>changed since</p>\n")
	eventuallyContains(t, v4, host, "changed since")
	f.ok("backup", "restore", name)
	eventuallyContains(t, v4, host, mark)
	if entries, err := os.ReadDir(filepath.Dir(volumeMount(t, name+"_pages"))); err != nil || len(entries) != 1 {
		t.Errorf("the restored volume's folder holds %v (%v), want _data alone", entries, err)
	}

	// As a new site: its own fresh volume, the original's left alone.
	writePage(t, volumeMount(t, name+"_pages"), "<p>original after</p>\n")
	f.ok("backup", "restore", name, "--as", copyName)
	eventuallyContains(t, v4, copyHost, mark)
	if a, b := volumeMount(t, name+"_pages"), volumeMount(t, copyName+"_pages"); a == b {
		t.Fatalf("the copy shares the original's volume %s", a)
	}
	eventuallyContains(t, v4, host, "original after")

	// Purged, volume and all: restored into a fresh volume.
	f.ok("site", "rm", name, "--purge", "--yes")
	if out, err := osexec.Command("docker", "volume", "inspect", name+"_pages").CombinedOutput(); err == nil {
		t.Fatalf("purge left the volume: %s", out)
	}
	eventually(t, v4, host, 404, "")
	f.ok("backup", "restore", name)
	eventuallyContains(t, v4, host, mark)
}

// SIGKILL at points through the restore of a site with a named volume
// (before the folder's swap, after it, while the volume's copy is
// restored, once it is swapped in), then the next run (op recover): the
// volume holds at every moment its files before the restore or the
// backup's, never a mix, and once settled the backup's, with nothing set
// aside left in its folder.
func TestKilledVolumeRestore(t *testing.T) {
	needEngine(t, "darse/nginx:bookworm")
	e := newEnv(t)
	e.useRepository(backuptest.Local(t))
	tpl := fmt.Sprintf("volkill%d", os.Getpid())
	volumeTemplate(t, e.srv, tpl)
	name := siteName("bkkv")
	e.cleanup(name)
	e.ok("site", "create", name, "--template", tpl)
	files := []string{"index.html", "a.html", "b.html", "c.html"}
	write := func(v string) {
		t.Helper()
		mp := volumeMount(t, name+"_pages")
		for _, f := range files {
			if err := os.WriteFile(filepath.Join(mp, f), []byte(v+"\n"), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	// state reads the version the volume's files hold, failing on a mix:
	// "" between the swap's two renames, when it has no files.
	state := func() string {
		t.Helper()
		mp := volumeMount(t, name+"_pages")
		if _, err := os.Stat(mp); os.IsNotExist(err) {
			return ""
		}
		seen := map[string]bool{}
		for _, f := range files {
			b, err := os.ReadFile(filepath.Join(mp, f))
			if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			seen[strings.TrimSpace(string(b))] = true
		}
		if len(seen) != 1 {
			t.Fatalf("the volume mixes states: %v", seen)
		}
		for v := range seen {
			return v
		}
		return ""
	}
	exists := func(p string) bool { _, err := os.Lstat(p); return err == nil }
	write("backed-up")
	e.ok("backup", "run", name)
	volDir := filepath.Dir(volumeMount(t, name+"_pages"))
	for _, point := range []struct {
		what string
		at   func(id int64) bool // when to kill
	}{
		{"before the folder's swap", func(int64) bool { return true }},
		{"once the folder is swapped", func(id int64) bool { return strings.Contains(string(e.opByID(name, id).Args), `"swapped": true`) }},
		{"while the volume's copy is restored", func(int64) bool { return exists(filepath.Join(volDir, "_data.darse-restore")) }},
		{"once the volume is swapped", func(int64) bool { return exists(filepath.Join(volDir, "_data.darse-old")) }},
	} {
		changed := "changed " + point.what
		write(changed)
		id := e.record(name, new(ops.Restore))
		cli := osexec.Command(darseBin, "op", "run", strconv.FormatInt(id, 10))
		cli.Env = append(os.Environ(), "DARSE_SRV="+e.srv)
		if err := cli.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan error, 1)
		go func() { exited <- cli.Wait() }()
		e.waitBegun(name, id)
		for deadline := time.Now().Add(90 * time.Second); !point.at(id); time.Sleep(5 * time.Millisecond) {
			select {
			case <-exited:
				t.Fatalf("the restore ended before it got %s", point.what)
			default:
			}
			if time.Now().After(deadline) {
				cli.Process.Kill()
				<-exited
				t.Fatalf("the restore never got %s", point.what)
			}
		}
		cli.Process.Kill()
		<-exited
		if v := state(); v != "" && v != "backed-up" && v != changed {
			t.Fatalf("killed %s: the volume holds %q", point.what, v)
		}
		e.ok("op", "recover")
		if op := e.opByID(name, id); op.State != store.OpDone {
			t.Fatalf("restore killed %s, then settled: %s %q", point.what, op.State, op.Error)
		}
		if v := state(); v != "backed-up" {
			t.Fatalf("restore killed %s, then settled: the volume holds %q", point.what, v)
		}
		if entries, _ := os.ReadDir(volDir); len(entries) != 1 {
			t.Fatalf("restore killed %s, then settled: the volume's folder holds %v", point.what, entries)
		}
		running(e, name)
		if body := get(t, name+"_web_1", "/a.html", 200); body != "backed-up\n" {
			t.Fatalf("restore killed %s, then settled: serves %q", point.what, body)
		}
	}
}
