package backup_test

import (
	"context"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/darse/darse/internal/backup"
	"github.com/darse/darse/internal/backup/backuptest"
)

// volume makes a local volume's folder <root>/<name>/_data holding file
// with body, owned by uid (when root), and returns its mountpoint.
func volume(t *testing.T, root, name, body string, uid int) string {
	t.Helper()
	mp := filepath.Join(root, name, "_data")
	if err := os.MkdirAll(filepath.Join(mp, "sub"), 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(mp, "sub", "file"), []byte(body), 0o640); err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() == 0 {
		for _, p := range []string{mp, filepath.Join(mp, "sub"), filepath.Join(mp, "sub", "file")} {
			if err := os.Chown(p, uid, uid); err != nil {
				t.Fatal(err)
			}
		}
	}
	return mp
}

func read(t *testing.T, mp string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(mp, "sub", "file"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// A site's named volumes go into its folder's snapshot and come back in
// place of a volume's files (the previous ones kept aside until dropped,
// or put back), owner and mode kept.
func TestVolumesRoundTrip(t *testing.T) {
	ctx := context.Background()
	s := service(t, backuptest.Local(t), backup.Keep{})
	root := filepath.Join(t.TempDir(), "volumes")
	site := dbSite(t, "blog", "<h1>hello</h1>\n", "echo dump")
	site.Volumes = map[string]string{"blog_uploads": volume(t, root, "blog_uploads", "backed up\n", 1234)}
	if _, err := s.BackupSite(ctx, site, "run1"); err != nil {
		t.Fatal(err)
	}
	set, err := s.Find(ctx, "blog", "run1")
	if err != nil {
		t.Fatal(err)
	}
	if len(set.Volumes) != 1 || set.Volumes["blog_uploads"] == "" {
		t.Fatalf("volumes of the run: %v", set.Volumes)
	}
	// The folder's restore holds the folder only.
	target := filepath.Join(t.TempDir(), "new")
	if err := s.RestoreFiles(ctx, set, target); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(target, "sub")); !os.IsNotExist(err) {
		t.Errorf("the volume's files went into the folder's restore: %v", err)
	}

	// Into a fresh volume of another name (restore --as), beside files
	// the engine put there.
	fresh := volume(t, root, "copy_uploads", "fresh\n", 0)
	if err := s.RestoreVolume(ctx, set, "blog_uploads", fresh); err != nil {
		t.Fatal(err)
	}
	if got := read(t, fresh); got != "backed up\n" {
		t.Fatalf("restored volume holds %q", got)
	}
	st, err := os.Stat(filepath.Join(fresh, "sub", "file"))
	if err != nil || st.Mode().Perm() != 0o640 || os.Geteuid() == 0 && st.Sys().(*syscall.Stat_t).Uid != 1234 {
		t.Errorf("restored file: %v %v", st.Mode(), err)
	}
	if st, err := os.Stat(fresh); err != nil || os.Geteuid() == 0 && st.Sys().(*syscall.Stat_t).Uid != 1234 {
		t.Errorf("the restored volume's root lost its owner: %v", err)
	}
	// Undone: the files before are back; done: the old ones go.
	if err := backup.PutBackVolume(fresh); err != nil {
		t.Fatal(err)
	}
	if got := read(t, fresh); got != "fresh\n" {
		t.Fatalf("volume put back holds %q", got)
	}
	if err := s.RestoreVolume(ctx, set, "blog_uploads", fresh); err != nil {
		t.Fatal(err)
	}
	if err := backup.DropOldVolume(fresh); err != nil {
		t.Fatal(err)
	}
	if got := read(t, fresh); got != "backed up\n" {
		t.Fatalf("restored volume holds %q", got)
	}
	if entries, _ := os.ReadDir(filepath.Dir(fresh)); len(entries) != 1 {
		t.Errorf("the volume's folder holds %v, want _data alone", entries)
	}
	if err := backup.PutBackVolume(fresh); err != nil || read(t, fresh) != "backed up\n" {
		t.Errorf("put back after drop: %v", err)
	}
	if err := s.RestoreVolume(ctx, set, "other", fresh); err == nil {
		t.Error("restored a volume the run does not hold")
	}
	// A mountpoint that is not a local volume's is refused at backup.
	site.Volumes = map[string]string{"blog_x": filepath.Join(root, "elsewhere")}
	if _, err := s.BackupSite(ctx, site, "run2"); err == nil {
		t.Error("backed up a volume whose mountpoint is not <root>/<name>/_data")
	}
	if list, _ := s.Sets(ctx, "blog"); len(list) != 1 {
		t.Errorf("a refused run left snapshots: %+v", list)
	}
}
