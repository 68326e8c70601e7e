package backup_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/darse/darse/internal/backup"
	"github.com/darse/darse/internal/backup/backuptest"
)

// repos runs f against a local repository and one on restic's REST
// server on loopback (off the host, as production would).
func repos(t *testing.T, f func(t *testing.T, r *backup.Restic)) {
	t.Run("local", func(t *testing.T) { f(t, backuptest.Local(t)) })
	t.Run("rest", func(t *testing.T) { f(t, backuptest.Remote(t)) })
}

func service(t *testing.T, r *backup.Restic, keep backup.Keep) *backup.Service {
	return &backup.Service{Restic: r, Host: "darse-test", Keep: keep, MetaDir: filepath.Join(t.TempDir(), "meta")}
}

// siteDir writes a small site folder, with a database folder that must
// not go into the snapshot.
func siteDir(t *testing.T, name, content string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "users", name)
	for path, body := range map[string]string{
		"docker-compose.yml":          "services: {}\n",
		"docker-compose.override.yml": "services: {}\n",
		".env":                        "DB_PASSWORD=secret\n",
		"conf/nginx.conf":             "events {}\n",
		"ssh/authorized_keys":         "",
		"data/index.html":             content,
		"db/ibdata1":                  "raw database files\n",
	} {
		p := filepath.Join(dir, path)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func dbSite(t *testing.T, name, content, dump string) backup.Site {
	return backup.Site{Name: name, Dir: siteDir(t, name, content), Record: json.RawMessage(`{"site":{"name":"` + name + `"}}`),
		DB: backuptest.Command("sh", "-c", dump), DBDir: "db"}
}

func TestSiteRoundTrip(t *testing.T) {
	repos(t, func(t *testing.T, r *backup.Restic) {
		ctx := context.Background()
		s := service(t, r, backup.Keep{Daily: 7})
		site := dbSite(t, "blog", "<h1>hello</h1>\n", "printf 'INSERT INTO t VALUES (42);\\n'")
		set, err := s.BackupSite(ctx, site, "run1")
		if err != nil {
			t.Fatal(err)
		}
		if set.Files == "" || set.DB == "" || set.BytesAdded == 0 {
			t.Fatalf("set = %+v", set)
		}
		got, err := s.Find(ctx, "blog", "")
		if err != nil {
			t.Fatal(err)
		}
		if got.Run != "run1" || got.Files != set.Files || got.DB != set.DB {
			t.Fatalf("latest = %+v, want %+v", got, set)
		}
		if byID, err := s.Find(ctx, "blog", set.Files[:8]); err != nil || byID.Run != "run1" {
			t.Errorf("find by snapshot ID: %+v %v", byID, err)
		}
		if _, err := s.Find(ctx, "blog", "nope"); !errors.Is(err, backup.ErrNoBackup) {
			t.Errorf("find an unknown run: %v", err)
		}
		target := filepath.Join(t.TempDir(), "new")
		if err := s.RestoreFiles(ctx, got, target); err != nil {
			t.Fatal(err)
		}
		for path, want := range map[string]string{"data/index.html": "<h1>hello</h1>\n", ".env": "DB_PASSWORD=secret\n", "conf/nginx.conf": "events {}\n", "docker-compose.override.yml": "services: {}\n"} {
			if b, err := os.ReadFile(filepath.Join(target, path)); err != nil || string(b) != want {
				t.Errorf("restored %s = %q, %v; want %q", path, b, err, want)
			}
		}
		if _, err := os.Stat(filepath.Join(target, "ssh", "authorized_keys")); err != nil {
			t.Errorf("ssh/ not restored: %v", err)
		}
		if _, err := os.Stat(filepath.Join(target, "db")); !os.IsNotExist(err) {
			t.Errorf("the database's raw files went into the snapshot: %v", err)
		}
		if err := s.RestoreFiles(ctx, got, target); err == nil {
			t.Error("restored over an existing folder")
		}
		rec, err := s.ReadRecord(ctx, got)
		if err != nil || string(rec) != string(site.Record) {
			t.Errorf("record = %s, %v", rec, err)
		}
		out := filepath.Join(t.TempDir(), "loaded.sql")
		if err := s.LoadDump(ctx, got, backuptest.Loader("sh", "-c", "cat > "+out)); err != nil {
			t.Fatal(err)
		}
		if b, _ := os.ReadFile(out); string(b) != "INSERT INTO t VALUES (42);\n" {
			t.Errorf("loaded dump = %q", b)
		}
		err = s.LoadDump(ctx, got, backuptest.Loader("sh", "-c", "cat >/dev/null; echo 'ERROR 1064: syntax' >&2; exit 1"))
		if err == nil || !strings.Contains(err.Error(), "ERROR 1064") {
			t.Errorf("a failing load: %v", err)
		}
	})
}

func TestFailingDumpKeepsPrevious(t *testing.T) {
	repos(t, func(t *testing.T, r *backup.Restic) {
		ctx := context.Background()
		s := service(t, r, backup.Keep{Daily: 7})
		good := dbSite(t, "shop", "v1\n", "echo 'CREATE TABLE t (i int);'")
		if _, err := s.BackupSite(ctx, good, "good"); err != nil {
			t.Fatal(err)
		}
		bad := good
		bad.DB = backuptest.Command("sh", "-c", "echo 'half a dump'; echo 'mariadb-dump: Got error: 2002' >&2; exit 2")
		_, err := s.BackupSite(ctx, bad, "bad")
		if err == nil || !strings.Contains(err.Error(), "database dump of shop failed") || !strings.Contains(err.Error(), "exit status 2") {
			t.Fatalf("backup with a failing dump: %v", err)
		}
		// A dump failing after megabytes went into restic: restic is
		// interrupted before its input ends, and keeps neither a
		// snapshot nor its lock.
		big := good
		big.DB = backuptest.Command("sh", "-c", "head -c 8000000 /dev/urandom; sleep 1; exit 3")
		if _, err := s.BackupSite(ctx, big, "big"); err == nil || !strings.Contains(err.Error(), "exit status 3") {
			t.Fatalf("backup with a dump failing late: %v", err)
		}
		var locks strings.Builder
		if out, err := exec.Command(r.Binary, "list", "locks", "--no-lock", "-r", r.Repository, "-p", r.PasswordFile).Output(); err != nil {
			t.Fatal(err)
		} else {
			locks.Write(out)
		}
		if locks.Len() != 0 {
			t.Errorf("the interrupted restic left locks: %q", locks.String())
		}
		list, err := s.Sets(ctx, "shop")
		if err != nil {
			t.Fatal(err)
		}
		if len(list) != 1 || list[0].Run != "good" || !list[0].Complete() || list[0].DB == "" {
			t.Fatalf("after a failed dump the repository holds %+v, want the previous run only", list)
		}
		// A folder that cannot be read fails the run after its dump: the
		// dump's snapshot is forgotten too.
		gone := good
		gone.Dir = filepath.Join(t.TempDir(), "missing")
		if _, err := s.BackupSite(ctx, gone, "nofolder"); err == nil || !strings.Contains(err.Error(), "cannot be read") {
			t.Fatalf("backup of a missing folder: %v", err)
		}
		unreadable := good
		unreadable.DBDir = "" // db/ goes in too, and cannot be read
		if err := os.Chmod(filepath.Join(good.Dir, "db"), 0); err != nil {
			t.Fatal(err)
		}
		defer os.Chmod(filepath.Join(good.Dir, "db"), 0o755)
		if os.Geteuid() != 0 { // root reads it anyway
			if _, err := s.BackupSite(ctx, unreadable, "unreadable"); err == nil {
				t.Fatal("backup of an unreadable folder succeeded")
			}
		}
		if list, err := s.Sets(ctx, "shop"); err != nil || len(list) != 1 {
			t.Fatalf("after a failed folder snapshot: %+v, %v", list, err)
		}
	})
}

func TestRetentionIsPerSite(t *testing.T) {
	ctx := context.Background()
	r := backuptest.Local(t)
	s := service(t, r, backup.Keep{Daily: 1}) // one per day: same-day runs but the newest go
	for _, name := range []string{"a", "b"} {
		site := dbSite(t, name, "content of "+name, "echo dump of "+name)
		for _, run := range []string{"1", "2", "3"} {
			if err := os.WriteFile(filepath.Join(site.Dir, "data", "index.html"), []byte(name+run), 0o644); err != nil {
				t.Fatal(err)
			}
			if _, err := s.BackupSite(ctx, site, name+run); err != nil {
				t.Fatal(err)
			}
		}
	}
	dropped, err := s.Forget(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(dropped, []string{"a1", "a2"}) {
		t.Errorf("forgotten runs of a: %v, want a1 a2", dropped)
	}
	runs := func(site string) (out []string) {
		list, err := s.Sets(ctx, site)
		if err != nil {
			t.Fatal(err)
		}
		for _, set := range list {
			if set.Site != site || !set.Complete() || set.DB == "" {
				t.Errorf("site %s: run %+v incomplete", site, set)
			}
			out = append(out, set.Run)
		}
		return out
	}
	if got := runs("a"); !slices.Equal(got, []string{"a3"}) {
		t.Errorf("a keeps %v, want its newest a3", got)
	}
	if got := runs("b"); !slices.Equal(got, []string{"b3", "b2", "b1"}) {
		t.Errorf("retention of a touched b: %v", got)
	}
	snaps, err := r.Snapshots(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(snaps) != 2+6 {
		t.Errorf("repository holds %d snapshots, want 2 of a and 6 of b", len(snaps))
	}
}

func TestPlatformBackup(t *testing.T) {
	ctx := context.Background()
	s := service(t, backuptest.Local(t), backup.Keep{})
	cfg := filepath.Join(t.TempDir(), "darse.yml")
	if err := os.WriteFile(cfg, []byte("domain: example.org\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	copied := ""
	p, err := s.BackupPlatform(ctx, func(ctx context.Context, path string) error {
		copied = path
		return os.WriteFile(path, []byte("SQLite format 3\x00"), 0o600)
	}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if p.ID == "" {
		t.Fatal("no snapshot")
	}
	if _, err := os.Stat(copied); !os.IsNotExist(err) {
		t.Errorf("the store's copy was left at %s", copied)
	}
	snaps, err := s.Restic.Snapshots(ctx, "platform")
	if err != nil || len(snaps) != 1 || len(snaps[0].Paths) != 2 {
		t.Fatalf("platform snapshots: %+v, %v", snaps, err)
	}
	if list, err := s.Sets(ctx, ""); err != nil || len(list) != 0 {
		t.Errorf("the platform's snapshot is listed as a site's: %+v %v", list, err)
	}
	_, err = s.BackupPlatform(ctx, func(ctx context.Context, path string) error { return errors.New("database is locked") }, cfg)
	if err == nil || !strings.Contains(err.Error(), "database is locked") {
		t.Errorf("a failed store copy: %v", err)
	}
}

func TestWrongPassword(t *testing.T) {
	ctx := context.Background()
	r := backuptest.Local(t)
	if err := r.Init(ctx); err != nil {
		t.Fatal(err)
	}
	wrong := *r
	wrong.PasswordFile = filepath.Join(t.TempDir(), "p")
	os.WriteFile(wrong.PasswordFile, []byte("nope\n"), 0o600)
	_, err := wrong.Snapshots(ctx)
	if err == nil || !strings.Contains(err.Error(), "wrong repository password") {
		t.Errorf("wrong password: %v", err)
	}
}
