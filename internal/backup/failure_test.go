package backup_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/darse/darse/internal/backup"
	"github.com/darse/darse/internal/backup/backuptest"
	"github.com/darse/darse/internal/testenv"
)

// keepsPrevious checks that the site's only backup is still run.
func keepsPrevious(t *testing.T, s *backup.Service, site, run string) {
	t.Helper()
	list, err := s.Sets(context.Background(), site)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0].Run != run || !list[0].Complete() {
		t.Fatalf("after the failure the repository holds %+v, want run %s alone", list, run)
	}
}

// A repository on a full disk fails the backup with a message saying
// so, and the previous backup stays whole and restorable.
func TestBackupFullDisk(t *testing.T) {
	testenv.NeedRoot(t)
	bin := backuptest.Restic(t)
	dir := t.TempDir()
	disk := filepath.Join(dir, "disk")
	if err := os.Mkdir(disk, 0o700); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=6m", "darse-test-full", disk).CombinedOutput(); err != nil {
		t.Fatalf("mount a small tmpfs: %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", disk).Run() })
	pw := filepath.Join(dir, "password")
	os.WriteFile(pw, []byte("full disk\n"), 0o600)
	r := &backup.Restic{Binary: bin, Repository: filepath.Join(disk, "repo"), PasswordFile: pw, CacheDir: filepath.Join(dir, "cache")}
	s := service(t, r, backup.Keep{Daily: 7})
	ctx := context.Background()
	site := dbSite(t, "big", "v1\n", "echo 'CREATE TABLE t (i int);'")
	if _, err := s.BackupSite(ctx, site, "small"); err != nil {
		t.Fatal(err)
	}
	blob := make([]byte, 12<<20) // random: neither compressed nor deduplicated
	rand.Read(blob)
	if err := os.WriteFile(filepath.Join(site.Dir, "data", "blob"), blob, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := s.BackupSite(ctx, site, "toobig")
	if err == nil || !strings.Contains(err.Error(), "disk is full") {
		t.Fatalf("backup onto a full disk: %v", err)
	}
	// Space comes back (an operator cleans up): the previous run is whole.
	exec.Command("mount", "-o", "remount,size=64m", disk).Run()
	keepsPrevious(t, s, "big", "small")
	set, err := s.Find(ctx, "big", "small")
	if err != nil {
		t.Fatal(err)
	}
	target := filepath.Join(dir, "restored")
	if err := s.RestoreFiles(ctx, set, target); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(target, "data", "index.html")); err != nil || string(b) != "v1\n" {
		t.Fatalf("restored after the failure: %q %v", b, err)
	}
}

// stallAfterLock is a proxy to the REST server that lets one restic take
// its lock and then never answers it again: that restic holds the
// repository's lock for as long as the test wants.
type stallAfterLock struct {
	proxy  *httputil.ReverseProxy
	locked chan struct{}
	once   sync.Once
	stop   chan struct{}
}

func (p *stallAfterLock) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	select {
	case <-p.locked:
		<-p.stop // the lock holder hangs here
		return
	default:
	}
	p.proxy.ServeHTTP(w, r)
	if r.Method == http.MethodPost && strings.Contains(r.URL.Path, "/locks/") {
		p.once.Do(func() { close(p.locked) })
	}
}

// A repository another restic holds locked fails the backup, after
// restic's retries, with a message saying so; the previous backup stays.
func TestBackupLockedRepository(t *testing.T) {
	r := backuptest.Remote(t)
	r.RetryLock = "3s"
	s := service(t, r, backup.Keep{Daily: 7})
	ctx := context.Background()
	site := dbSite(t, "locked", "v1\n", "echo 'CREATE TABLE t (i int);'")
	if _, err := s.BackupSite(ctx, site, "before"); err != nil {
		t.Fatal(err)
	}
	target, err := url.Parse(strings.TrimPrefix(r.Repository, "rest:"))
	if err != nil {
		t.Fatal(err)
	}
	target.Path = ""
	p := &stallAfterLock{proxy: httputil.NewSingleHostReverseProxy(target), locked: make(chan struct{}), stop: make(chan struct{})}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: p}
	go hs.Serve(l)
	// An exclusive lock (prune's), taken through the stalling proxy.
	holder := exec.Command(r.Binary, "prune", "-r", fmt.Sprintf("rest:http://%s/darse", l.Addr()), "-p", r.PasswordFile, "--cache-dir", r.CacheDir+"-holder")
	if err := holder.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		holder.Process.Kill()
		holder.Wait()
		close(p.stop)
		hs.Close()
	})
	select {
	case <-p.locked:
	case <-time.After(30 * time.Second):
		t.Fatal("the holder never took its lock")
	}
	if err := os.WriteFile(filepath.Join(site.Dir, "data", "index.html"), []byte("v2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = s.BackupSite(ctx, site, "while-locked")
	if err == nil || !strings.Contains(err.Error(), "locked") {
		t.Fatalf("backup of a locked repository: %v", err)
	}
	holder.Process.Kill()
	holder.Wait()
	// The holder died holding its lock: restic's unlock clears it (stale).
	if out, err := exec.Command(r.Binary, "unlock", "--remove-all", "-r", r.Repository, "-p", r.PasswordFile).CombinedOutput(); err != nil {
		t.Fatalf("unlock: %v %s", err, out)
	}
	keepsPrevious(t, s, "locked", "before")
}
