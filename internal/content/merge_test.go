package content

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// siteUID:siteGID own every site's files in production; tests running as
// root give them the same owner, so that the merge's copy, which runs as
// the owner of data/, meets what it meets on a real host.
const testUID, testGID = 33, 33

func mustWrite(t *testing.T, p, body string, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(body), mode); err != nil {
		t.Fatal(err)
	}
}

func mustSymlink(t *testing.T, target, p string) {
	t.Helper()
	if err := os.Symlink(target, p); err != nil {
		t.Fatal(err)
	}
}

// ownAsSite gives a tree to the sites' user when running as root.
func ownAsSite(t *testing.T, root string) {
	t.Helper()
	if os.Geteuid() != 0 {
		return
	}
	err := filepath.WalkDir(root, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, testUID, testGID)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// regularFiles lists the regular files under root, without following any
// symlink.
func regularFiles(t *testing.T, root string) map[string]os.FileInfo {
	t.Helper()
	out := map[string]os.FileInfo{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			st, err := os.Lstat(p)
			if err != nil {
				return err
			}
			out[p] = st
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func nlink(st os.FileInfo) uint64 {
	if s, ok := st.Sys().(*syscall.Stat_t); ok {
		return uint64(s.Nlink)
	}
	return 0
}

// flip is a folder of data/ (a real folder at first) and the names it is
// exchanged with in turn: symlinks to another site's data/, to the
// platform's conf/ or to its store.
type flip struct {
	name   string
	spares []string
}

// flipper keeps exchanging the flips' folders with their spares, as a
// member could from the site's SFTP or PHP, until stopped. One goroutine
// for all: the merge needs the other core.
func flipper(data string, flips ...flip) (stop func() int) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	var n int
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-done:
				return
			default:
			}
			f := flips[i%len(flips)]
			spare := f.spares[(i/len(flips))%len(f.spares)]
			// Errors are expected while Install swaps data/ itself.
			if exchange(filepath.Join(data, f.name), filepath.Join(data, spare)) == nil {
				n++
			}
			// A short pause, spun (a sleep lasts a millisecond or more):
			// each rename makes every path lookup on the host retry, and
			// without one the merge crawls; this still flips many times
			// during each merge.
			for t0 := time.Now(); time.Since(t0) < 50*time.Microsecond; {
			}
		}
	}()
	return func() int { close(done); wg.Wait(); return n }
}

// TestMergeRaceStaysInsideData: while a merge walks the site's current
// files, the member flips a folder of data/ into symlinks to another
// site's data/ and to the platform store. Nothing of either may end up in
// the site's folder, as a copy or as a hard link, and both stay unchanged.
func TestMergeRaceStaysInsideData(t *testing.T) {
	ctx := context.Background()
	srv := t.TempDir()
	users := filepath.Join(srv, "users")
	conf := filepath.Join(srv, "conf")
	store := filepath.Join(conf, "darse.db")
	mustWrite(t, store, "STORE password hashes", 0o644)
	other := filepath.Join(users, "other", "data")
	data := filepath.Join(users, "blog", "data")
	const n = 30
	for i := 0; i < n; i++ {
		name := fmt.Sprintf("secret%02d.html", i)
		mustWrite(t, filepath.Join(other, name), "OTHER "+name, 0o644)
		// The member's own folder holds the same names, so that a walk
		// that lists the real folder and then links through the symlink
		// reaches the other site's files.
		mustWrite(t, filepath.Join(data, "flip", name), "blog "+name, 0o644)
		mustWrite(t, filepath.Join(data, "flipconf", name), "blog "+name, 0o644)
	}
	mustWrite(t, filepath.Join(data, "flipconf", "darse.db"), "blog's own db", 0o644)
	mustSymlink(t, other, filepath.Join(data, "to-other"))
	mustSymlink(t, conf, filepath.Join(data, "to-conf"))
	mustSymlink(t, store, filepath.Join(data, "to-store"))
	ownAsSite(t, filepath.Join(users, "blog"))
	ownAsSite(t, filepath.Join(users, "other"))
	outside := regularFiles(t, other)
	for p, st := range regularFiles(t, conf) {
		outside[p] = st
	}
	before := map[string]string{}
	for p := range outside {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		before[p] = string(b)
	}

	in := Installer{UsersDir: users}
	// Two folders flip at once: one to the other site, one to the store's
	// folder and to the store itself.
	stop := flipper(data, flip{"flip", []string{"to-other"}}, flip{"flipconf", []string{"to-conf", "to-store"}})
	var merged int
	var refusals []string
	for round := 0; round < 40; round++ {
		arch := tarGz(t, member{name: "index.html", body: fmt.Sprintf("round %d", round)})
		if _, err := in.Install(ctx, "blog", arch, "m.tar.gz", Merge); err != nil {
			// A folder that keeps changing may make the merge give up:
			// that is fine, as long as nothing leaked.
			refusals = append(refusals, err.Error())
			continue
		}
		merged++
	}
	flips := stop()
	t.Logf("%d merges, %d refused, %d flips", merged, len(refusals), flips)
	if merged == 0 {
		t.Fatalf("no merge succeeded, the test proves nothing: %v", refusals)
	}
	if flips == 0 {
		t.Fatal("the folder never flipped, the test proves nothing")
	}

	for p, st := range regularFiles(t, filepath.Join(users, "blog")) {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(string(b), "OTHER ") || strings.HasPrefix(string(b), "STORE ") {
			t.Errorf("%s holds %q, a file of another site or of the store", p, b)
		}
		for q, ost := range outside {
			if os.SameFile(st, ost) {
				t.Errorf("%s is a hard link to %s", p, q)
			}
		}
	}
	for p, st := range outside {
		now, err := os.Lstat(p)
		if err != nil {
			t.Fatal(err)
		}
		if n := nlink(now); n != 1 {
			t.Errorf("%s has %d links, want 1 (was hard-linked somewhere)", p, n)
		}
		if !os.SameFile(st, now) {
			t.Errorf("%s was replaced", p)
		}
		if b, _ := os.ReadFile(p); string(b) != before[p] {
			t.Errorf("%s changed: %q, was %q", p, b, before[p])
		}
	}
}

// TestMain lets the test binary be the merge's helper, as darse is in
// production: as root, Install re-executes /proc/self/exe HelperCommand.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == HelperCommand {
		if err := RunHelper(context.Background(), os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, "darse:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}
