package main

import (
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	osexec "os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/darse/darse/internal/backup"
	"github.com/darse/darse/internal/backup/backuptest"
)

// backupSection is darse.yml's backup section for the repository of r.
func backupSection(r *backup.Restic) string {
	return fmt.Sprintf("backup:\n  repository: %q\n  password_file: %s\n  keep: {daily: 3}\n", r.Repository, r.PasswordFile)
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

// The cycle for static, php and php-mariadb: create, write content
// (and a database row), back up, `site rm --purge`, restore: the same
// content and row are served through Traefik. The static and php sites go
// to a local repository, the database site to restic's REST server on
// loopback (off the host).
func TestBackupRestoreCycle(t *testing.T) {
	needEngine(t, "darse/nginx:bookworm", "darse/php-fpm:8.2-bookworm", "darse/php-apps:8.2-bookworm", "darse/mariadb:10.11-bookworm", "traefik:v3.6")
	local, remote := backuptest.Local(t), backuptest.Remote(t)
	f := newFront(t, "")
	v4 := fmt.Sprintf("127.0.0.1:%d", f.http)
	mark := fmt.Sprintf("restored-%d", os.Getpid())
	for _, c := range []struct {
		template string
		repo     *backup.Restic
		file     string // written in data/, then served
		body     string
	}{
		{"static", local, "index.html", "<p>" + mark + " static</p>\n"},
		{"php", local, "index.php", "<?php echo '<p>' . '" + mark + " php' . '</p>';\n"},
		{"php-mariadb", remote, "", ""},
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
			want := mark + " " + c.template
			if c.file != "" {
				if err := os.WriteFile(filepath.Join(f.srv, "users", name, "data", c.file), []byte(c.body), 0o644); err != nil {
					t.Fatal(err)
				}
			} else {
				eventuallyContains(t, v4, host, "is up")
				if code, body, err := post(v4, host, "/", url.Values{"note": {mark}}); err != nil || code != 303 {
					t.Fatalf("POST note: %d %v %q", code, err, body)
				}
				want = `<li class="note">` + mark + `</li>`
			}
			eventuallyContains(t, v4, host, want)

			out := f.ok("backup", "run", name)
			if !strings.Contains(out, name+": backed up") {
				t.Fatalf("backup run: %q", out)
			}
			list := f.backups(name)
			if len(list) != 1 || !list[0].Complete() || (c.file == "") != (list[0].DB != "") {
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
