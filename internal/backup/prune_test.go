package backup_test

import (
	"context"
	"crypto/rand"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/darse/darse/internal/backup"
	"github.com/darse/darse/internal/backup/backuptest"
)

// dirBytes is what the files under dir take.
func dirBytes(t *testing.T, dir string) int64 {
	t.Helper()
	var n int64
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		info, err := d.Info()
		n += info.Size()
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func writeBlob(t *testing.T, dir string, size int) {
	t.Helper()
	b := make([]byte, size)
	rand.Read(b)
	if err := os.WriteFile(filepath.Join(dir, "data", "blob"), b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// Once retention forgot a site's run, a prune removes the data only that
// run held (the repository shrinks by it), and every other snapshot,
// another site's included, stays whole and restorable.
func TestPruneRemovesForgottenData(t *testing.T) {
	ctx := context.Background()
	r := backuptest.Local(t)
	s := service(t, r, backup.Keep{Daily: 1}) // one run a day: the newer replaces the older
	a, b := dbSite(t, "alpha", "<p>a</p>\n", "echo a"), dbSite(t, "beta", "<p>b</p>\n", "echo b")
	const blob = 4 << 20
	writeBlob(t, a.Dir, blob)
	writeBlob(t, b.Dir, blob)
	for _, c := range []struct {
		site backup.Site
		run  string
	}{{a, "a1"}, {b, "b1"}} {
		if _, err := s.BackupSite(ctx, c.site, c.run); err != nil {
			t.Fatal(err)
		}
	}
	writeBlob(t, a.Dir, blob) // a1's blob is now in a1 alone
	if _, err := s.BackupSite(ctx, a, "a2"); err != nil {
		t.Fatal(err)
	}
	if runs, err := s.Forget(ctx, "alpha"); err != nil || len(runs) != 1 || runs[0] != "a1" {
		t.Fatalf("retention of alpha forgot %v (%v), want [a1]", runs, err)
	}
	data := filepath.Join(r.Repository, "data")
	before := dirBytes(t, data)
	if err := r.Prune(ctx); err != nil {
		t.Fatal(err)
	}
	after := dirBytes(t, data)
	if before-after < blob*9/10 {
		t.Fatalf("prune freed %d bytes (%d → %d), want at least the forgotten run's %d", before-after, before, after, blob)
	}
	if err := r.Check(ctx, true); err != nil {
		t.Fatalf("check after prune: %v", err)
	}
	for site, run := range map[string]string{"alpha": "a2", "beta": "b1"} {
		set, err := s.Find(ctx, site, "")
		if err != nil || set.Run != run {
			t.Fatalf("latest of %s: %+v %v, want run %s", site, set, err, run)
		}
		target := filepath.Join(t.TempDir(), site)
		if err := s.RestoreFiles(ctx, set, target); err != nil {
			t.Fatalf("restore %s after prune: %v", site, err)
		}
		if st, err := os.Stat(filepath.Join(target, "data", "blob")); err != nil || st.Size() != blob {
			t.Errorf("%s's blob after prune: %v", site, err)
		}
	}
	if list, _ := s.Sets(ctx, "beta"); len(list) != 1 {
		t.Errorf("beta's runs after alpha's prune: %+v", list)
	}
}

// Unlock removes the lock a killed restic left, so that the next command
// does not wait for it.
func TestUnlockStaleLock(t *testing.T) {
	ctx := context.Background()
	r := backuptest.Local(t)
	if err := r.Init(ctx); err != nil {
		t.Fatal(err)
	}
	// A lock file as restic writes it, of a process of this host that is gone.
	locks := filepath.Join(r.Repository, "locks")
	stale := staleLock(t, r)
	if entries, _ := os.ReadDir(locks); len(entries) != 1 {
		t.Fatalf("locks before: %v (%s)", entries, stale)
	}
	if err := r.Unlock(ctx); err != nil {
		t.Fatal(err)
	}
	if entries, _ := os.ReadDir(locks); len(entries) != 0 {
		t.Fatalf("locks after unlock: %v", entries)
	}
}

// staleLock leaves the lock of a restic killed (SIGKILL) while it held
// one: a backup from its standard input, which never comes.
func staleLock(t *testing.T, r *backup.Restic) string {
	t.Helper()
	cmd := exec.Command(r.Binary, "backup", "--stdin", "--stdin-filename", "never")
	cmd.Env = append(os.Environ(), "RESTIC_REPOSITORY="+r.Repository, "RESTIC_PASSWORD_FILE="+r.PasswordFile, "RESTIC_CACHE_DIR="+r.CacheDir)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	defer stdin.Close()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	defer cmd.Process.Kill()
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if entries, _ := os.ReadDir(filepath.Join(r.Repository, "locks")); len(entries) > 0 {
			cmd.Process.Kill()
			return entries[0].Name()
		}
		if time.Now().After(deadline) {
			t.Fatal("restic took no lock")
		}
	}
}
