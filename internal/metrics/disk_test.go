package metrics

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// blocksOf is what du counts for one path (its allocated blocks).
func blocksOf(t *testing.T, path string) uint64 {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Lstat(path, &st); err != nil {
		t.Fatal(err)
	}
	return uint64(st.Blocks) * 512
}

func writeFile(t *testing.T, path string, size int) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, bytes.Repeat([]byte{'x'}, size), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestDiskUsageCountsInodesOnceAndFollowsNoLink: a hard link (inside the
// site, and between the site and its volume) counts once; a symbolic link
// to a big file outside counts as the link only.
func TestDiskUsageCountsInodesOnceAndFollowsNoLink(t *testing.T) {
	tmp := t.TempDir()
	site, vol, outside := filepath.Join(tmp, "site"), filepath.Join(tmp, "vol"), filepath.Join(tmp, "outside")
	writeFile(t, filepath.Join(site, "data", "a"), 1<<20)
	writeFile(t, filepath.Join(vol, "b"), 256<<10)
	writeFile(t, filepath.Join(outside, "big"), 4<<20)
	for _, l := range [][2]string{
		{filepath.Join(site, "data", "a"), filepath.Join(site, "a-again")},
		{filepath.Join(site, "data", "a"), filepath.Join(vol, "a-in-volume")},
	} {
		if err := os.Link(l[0], l[1]); err != nil {
			t.Fatal(err)
		}
	}
	for _, l := range [][2]string{
		{filepath.Join(outside, "big"), filepath.Join(site, "data", "to-big")},
		{outside, filepath.Join(site, "to-outside")}, // a directory: not walked
	} {
		if err := os.Symlink(l[0], l[1]); err != nil {
			t.Fatal(err)
		}
	}
	var want uint64
	for _, p := range []string{site, filepath.Join(site, "data"), filepath.Join(site, "data", "a"),
		filepath.Join(site, "data", "to-big"), filepath.Join(site, "to-outside"), vol, filepath.Join(vol, "b")} {
		want += blocksOf(t, p)
	}
	if want < (1<<20)+(256<<10) {
		t.Fatalf("the file system allocates less than was written (%d): the test cannot tell", want)
	}
	got, err := DiskUsage(context.Background(), site, vol, filepath.Join(tmp, "no-such-volume"))
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Errorf("disk use %d, want %d (each inode once, links not followed)", got, want)
	}
	if got >= 4<<20 {
		t.Errorf("disk use %d counts the file behind a symbolic link", got)
	}
}

// TestDiskWalkerMeasuresDueSitesAndForgetsDeleted: a new site is walked
// at the next step, a fresh figure is not walked again before Interval,
// and a deleted site's figure goes.
func TestDiskWalkerMeasuresDueSitesAndForgetsDeleted(t *testing.T) {
	users, host := t.TempDir(), t.TempDir()
	writeFile(t, filepath.Join(users, "blog", "data", "index.html"), 100<<10)
	writeFile(t, filepath.Join(host, "var/lib/docker/volumes/blog_db/_data/ibdata"), 300<<10)
	sites := []string{"blog"}
	now := time.Unix(1_700_000_000, 0)
	d := NewDiskWalker(DiskConfig{
		UsersDir: users,
		Sites:    func(context.Context) ([]string, error) { return sites, nil },
		Volumes: func(context.Context) (map[string][]string, error) {
			return map[string][]string{"blog": {"/var/lib/docker/volumes/blog_db/_data"}}, nil
		},
		VolumePrefix: host,
		Now:          func() time.Time { return now },
	}, slog.New(slog.DiscardHandler))
	ctx := context.Background()
	if err := d.Step(ctx); err != nil {
		t.Fatal(err)
	}
	first := d.DiskBytes()["blog"]
	if first < 400<<10 {
		t.Fatalf("blog: %d bytes, want its folder and its volume (≥ 400 KiB)", first)
	}
	writeFile(t, filepath.Join(users, "blog", "data", "more"), 1<<20)
	now = now.Add(time.Minute)
	if err := d.Step(ctx); err != nil {
		t.Fatal(err)
	}
	if got := d.DiskBytes()["blog"]; got != first {
		t.Errorf("walked again a minute later: %d, was %d", got, first)
	}
	now = now.Add(15 * time.Minute)
	if err := d.Step(ctx); err != nil {
		t.Fatal(err)
	}
	if got := d.DiskBytes()["blog"]; got < first+(1<<20) {
		t.Errorf("after the interval: %d, want ≥ %d", got, first+(1<<20))
	}
	sites = nil
	if err := d.Step(ctx); err != nil {
		t.Fatal(err)
	}
	if got, ok := d.DiskBytes()["blog"]; ok {
		t.Errorf("deleted site still measured: %d", got)
	}
}
