package content

import (
	"archive/tar"
	"context"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/darse/darse/internal/testenv"
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

// oneOld is the previous data/ Install set aside.
func oneOld(t *testing.T, users, name string) string {
	t.Helper()
	olds, err := filepath.Glob(filepath.Join(users, name, ".data-old-*"))
	if err != nil || len(olds) != 1 {
		t.Fatalf("previous data/: %v %v", olds, err)
	}
	return olds[0]
}

// TestMergeSharesNoInode: every file of the merged data/ is its own
// (a copy), except hard links the archive itself made between its
// entries; none is linked to the previous data/ or to anything else.
func TestMergeSharesNoInode(t *testing.T) {
	users := t.TempDir()
	data := filepath.Join(users, "blog", "data")
	mustWrite(t, filepath.Join(data, "index.html"), "old home", 0o644)
	mustWrite(t, filepath.Join(data, "a", "b", "page.html"), "old page", 0o644)
	if err := os.Link(filepath.Join(data, "index.html"), filepath.Join(data, "twin.html")); err != nil {
		t.Fatal(err)
	}
	ownAsSite(t, filepath.Join(users, "blog"))
	arch := tarGz(t,
		member{name: "new.html", body: "new"},
		member{name: "same.html", typ: tar.TypeLink, link: "new.html"},
		member{name: "a/c.html", body: "c"})
	if _, err := (Installer{UsersDir: users}).Install(context.Background(), "blog", arch, "m.tar.gz", Merge); err != nil {
		t.Fatal(err)
	}
	want := []string{"a/", "a/b/", "a/b/page.html = old page", "a/c.html = c", "index.html = old home", "new.html = new", "same.html = new", "twin.html = old home"}
	if got := tree(t, data); strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("after merge: %v", got)
	}
	files := regularFiles(t, data)
	old := regularFiles(t, oneOld(t, users, "blog"))
	for p, st := range files {
		inside := 0
		for _, other := range files {
			if os.SameFile(st, other) {
				inside++
			}
		}
		if n := nlink(st); n != uint64(inside) {
			t.Errorf("%s: %d links, %d of them in data/: linked to something outside", p, n, inside)
		}
		for q, ost := range old {
			if os.SameFile(st, ost) {
				t.Errorf("%s is the previous data/'s %s", p, q)
			}
		}
	}
	if n := nlink(files[filepath.Join(data, "new.html")]); n != 2 {
		t.Errorf("the archive's own hard link is lost: new.html has %d links", n)
	}
}

// TestMergeCopiesAsTheyAre: symlinks are recreated with their target,
// never followed (even one leading out of data/); modes and times are
// kept; fifos and sockets are skipped without blocking the copy; the
// upload's entries win over the current ones of the same name.
func TestMergeCopiesAsTheyAre(t *testing.T) {
	users := t.TempDir()
	data := filepath.Join(users, "blog", "data")
	outside := filepath.Join(users, "other", "data")
	mustWrite(t, filepath.Join(outside, "secret.html"), "OTHER", 0o644)
	mustWrite(t, filepath.Join(data, "run.sh"), "#!/bin/sh", 0o750)
	mustWrite(t, filepath.Join(data, "ro", "keep.html"), "kept", 0o444)
	mustWrite(t, filepath.Join(data, "both", "old.html"), "old", 0o644)
	mustWrite(t, filepath.Join(data, "dir-then-file", "x"), "x", 0o644)
	mustWrite(t, filepath.Join(data, "file-then-dir"), "old file", 0o644)
	mustSymlink(t, outside, filepath.Join(data, "abs"))
	mustSymlink(t, "../../other/data", filepath.Join(data, "up"))
	mustSymlink(t, "run.sh", filepath.Join(data, "latest"))
	if err := syscall.Mkfifo(filepath.Join(data, "fifo"), 0o644); err != nil {
		t.Fatal(err)
	}
	sock, err := net.Listen("unix", filepath.Join(data, "sock"))
	if err != nil {
		t.Fatal(err)
	}
	defer sock.Close()
	if err := os.Chmod(filepath.Join(data, "ro"), 0o555); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { // for TempDir's RemoveAll, without root
		ros, _ := filepath.Glob(filepath.Join(users, "blog", "*", "ro"))
		for _, ro := range ros {
			os.Chmod(ro, 0o755)
		}
	})
	stamp := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
	if err := os.Chtimes(filepath.Join(data, "run.sh"), stamp, stamp); err != nil {
		t.Fatal(err)
	}
	ownAsSite(t, filepath.Join(users, "blog"))
	arch := tarGz(t,
		member{name: "both/new.html", body: "new"},
		member{name: "dir-then-file", body: "upload's file"},
		member{name: "file-then-dir/y", body: "upload's folder"})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := (Installer{UsersDir: users}).Install(ctx, "blog", arch, "m.tar.gz", Merge); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"abs -> " + outside, "both/", "both/new.html = new", "both/old.html = old",
		"dir-then-file = upload's file", "file-then-dir/", "file-then-dir/y = upload's folder",
		"latest -> run.sh", "ro/", "ro/keep.html = kept", "run.sh = #!/bin/sh", "up -> ../../other/data",
	}
	if got := tree(t, data); strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("after merge:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	for name, mode := range map[string]os.FileMode{"run.sh": 0o750, "ro": 0o555 | os.ModeDir, "ro/keep.html": 0o444} {
		st, err := os.Lstat(filepath.Join(data, name))
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode() != mode {
			t.Errorf("%s: mode %v, want %v", name, st.Mode(), mode)
		}
	}
	if st, err := os.Lstat(filepath.Join(data, "run.sh")); err != nil || !st.ModTime().Equal(stamp) {
		t.Errorf("run.sh: modified %v (%v), want %v", st.ModTime(), err, stamp)
	}
}

// TestMergeLimits: the archive laid over the current files is bounded as
// before; a refused one leaves data/ as it was.
func TestMergeLimits(t *testing.T) {
	users := t.TempDir()
	data := filepath.Join(users, "blog", "data")
	mustWrite(t, filepath.Join(data, "index.html"), "home", 0o644)
	ownAsSite(t, filepath.Join(users, "blog"))
	in := Installer{UsersDir: users, Limits: Limits{Entries: 2, Bytes: 1 << 20}}
	arch := tarGz(t, member{name: "a", body: "a"}, member{name: "b", body: "b"}, member{name: "c", body: "c"})
	if _, err := in.Install(context.Background(), "blog", arch, "m.tar.gz", Merge); err == nil || !strings.Contains(err.Error(), "more than 2 entries") {
		t.Fatalf("over the limits: %v", err)
	}
	if got := tree(t, data); strings.Join(got, "|") != "index.html = home" {
		t.Fatalf("refused merge changed data/: %v", got)
	}
	if _, err := os.Lstat(filepath.Join(users, "blog", ".data-new")); !os.IsNotExist(err) {
		t.Fatalf("refused merge left its staging folder: %v", err)
	}
}

// TestMergeRunsAsSiteUser: as root, the copy runs as data/'s owner, not
// root: a file only root may read stops the merge, naming it, and data/
// stays as it was; what was copied belongs to the site's user.
func TestMergeRunsAsSiteUser(t *testing.T) {
	testenv.NeedRoot(t)
	users := t.TempDir()
	data := filepath.Join(users, "blog", "data")
	mustWrite(t, filepath.Join(data, "index.html"), "home", 0o644)
	mustWrite(t, filepath.Join(data, "sub", "page.html"), "page", 0o644)
	ownAsSite(t, filepath.Join(users, "blog"))
	mustWrite(t, filepath.Join(data, "sub", "root-only"), "root's", 0o600) // owned by root
	in := Installer{UsersDir: users}
	arch := tarGz(t, member{name: "new.html", body: "new"})
	before := tree(t, data)
	_, err := in.Install(context.Background(), "blog", arch, "m.tar.gz", Merge)
	if err == nil || !strings.Contains(err.Error(), "data/sub/root-only: permission denied") || !strings.Contains(err.Error(), "permission denied") {
		t.Fatalf("merge of a root-only file: %v", err)
	}
	if after := tree(t, data); strings.Join(after, "|") != strings.Join(before, "|") {
		t.Fatalf("refused merge changed data/: %v", after)
	}
	if err := os.Remove(filepath.Join(data, "sub", "root-only")); err != nil {
		t.Fatal(err)
	}
	if _, err := in.Install(context.Background(), "blog", arch, "m.tar.gz", Merge); err != nil {
		t.Fatal(err)
	}
	err = filepath.WalkDir(data, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		st, err := os.Lstat(p)
		if err != nil {
			return err
		}
		if s := st.Sys().(*syscall.Stat_t); s.Uid != testUID || s.Gid != testGID {
			t.Errorf("%s: owned by %d:%d, want %d:%d", p, s.Uid, s.Gid, testUID, testGID)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := RunHelper(context.Background(), io.Discard); err == nil || !strings.Contains(err.Error(), "refuses to run as root") {
		t.Fatalf("helper as root: %v", err)
	}
}

// TestMergeWithoutData: a merge into a site without data/ installs the
// archive; one whose data/ is a symlink is refused, the link untouched.
func TestMergeWithoutData(t *testing.T) {
	users := t.TempDir()
	if err := os.MkdirAll(filepath.Join(users, "blog"), 0o755); err != nil {
		t.Fatal(err)
	}
	in := Installer{UsersDir: users}
	arch := tarGz(t, member{name: "index.html", body: "new"})
	if _, err := in.Install(context.Background(), "blog", arch, "m.tar.gz", Merge); err != nil {
		t.Fatal(err)
	}
	if got := tree(t, filepath.Join(users, "blog", "data")); strings.Join(got, "|") != "index.html = new" {
		t.Fatalf("merge without data/: %v", got)
	}
	mustWrite(t, filepath.Join(users, "other", "data", "secret.html"), "OTHER", 0o644)
	link := filepath.Join(users, "linked", "data")
	if err := os.MkdirAll(filepath.Dir(link), 0o755); err != nil {
		t.Fatal(err)
	}
	mustSymlink(t, filepath.Join(users, "other", "data"), link)
	if _, err := in.Install(context.Background(), "linked", arch, "m.tar.gz", Merge); err == nil {
		t.Fatal("merge through a data/ symlink accepted")
	}
	if st, err := os.Lstat(link); err != nil || st.Mode()&fs.ModeSymlink == 0 {
		t.Fatalf("data/ symlink replaced: %v %v", st, err)
	}
	if got := tree(t, filepath.Join(users, "other", "data")); strings.Join(got, "|") != "secret.html = OTHER" {
		t.Fatalf("the link's target changed: %v", got)
	}
}
