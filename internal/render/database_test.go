package render

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/darse/darse/internal/template"
)

// Seed makes db/ beside data/, private to the database's owner; a symlink
// planted at that name is refused, not followed.
func TestSeedDatabaseDir(t *testing.T) {
	tp, err := template.Load("../../templates", "php-mariadb")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := Seed(tp, dir); err != nil {
		t.Fatal(err)
	}
	st, err := os.Lstat(filepath.Join(dir, "db"))
	if err != nil || !st.IsDir() || st.Mode().Perm() != 0o700 {
		t.Fatalf("db/: %v, %v", st, err)
	}
	if os.Geteuid() == 0 {
		s := st.Sys().(*syscall.Stat_t)
		if int(s.Uid) != tp.Database.UID || int(s.Gid) != tp.Database.GID {
			t.Errorf("db/ owned by %d:%d, want %d:%d", s.Uid, s.Gid, tp.Database.UID, tp.Database.GID)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "data", "index.php")); err != nil {
		t.Errorf("data not seeded: %v", err)
	}

	other := t.TempDir()
	if err := os.Symlink("/etc", filepath.Join(other, "db")); err != nil {
		t.Fatal(err)
	}
	if err := Seed(tp, other); err == nil {
		t.Fatal("a symlink at db/ was accepted")
	}
}

// .env holds secrets: written 0600, and an older 0644 one is tightened
// even when its bytes are unchanged.
func TestEnvPerm(t *testing.T) {
	dir := t.TempDir()
	files := Files{EnvFile: []byte("A=1\n"), ComposeFile: []byte("services: {}\n")}
	env := filepath.Join(dir, EnvFile)
	if err := os.WriteFile(env, []byte("A=1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Write(dir, files, nil); err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]os.FileMode{EnvFile: 0o600, ComposeFile: 0o644} {
		st, err := os.Stat(filepath.Join(dir, p))
		if err != nil || st.Mode().Perm() != want {
			t.Errorf("%s: %v, %v; want %v", p, st.Mode(), err, want)
		}
	}
}
