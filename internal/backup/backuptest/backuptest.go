// Package backuptest gives tests the real restic and a restic REST
// server on loopback, both built from the Go module proxy (or found in
// the build cache), and a repository to back up to.
package backuptest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/darse/darse/internal/backup"
	"github.com/darse/darse/internal/images"
	"github.com/darse/darse/internal/testenv"
)

var (
	once  sync.Map // tool name → *built
	short = "integration test: skipped with -short (needs restic)"
)

type built struct {
	once sync.Once
	path string
	err  error
}

// tool builds g once per test binary.
func tool(t testing.TB, g images.GoModule) string {
	t.Helper()
	if testing.Short() {
		t.Skip(short)
	}
	v, _ := once.LoadOrStore(g.Package, new(built))
	b := v.(*built)
	b.once.Do(func() {
		b.path, b.err = (&images.Builder{}).EnsureTool(context.Background(), g)
	})
	if b.err != nil {
		why := fmt.Sprintf("%s could not be built from the module proxy: %v", g.Module, b.err)
		if testenv.Required() {
			t.Fatalf("integration test cannot run: %s (DARSE_INTEGRATION=require)", why)
		}
		t.Skip("integration test: " + why)
	}
	return b.path
}

// Restic returns the path of restic: $DARSE_RESTIC, or the pinned
// version from the build cache (built there the first time).
func Restic(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("DARSE_RESTIC"); p != "" && !testing.Short() {
		return p
	}
	return tool(t, images.Restic())
}

// Local returns a restic on a fresh local repository.
func Local(t testing.TB) *backup.Restic {
	t.Helper()
	bin := Restic(t)
	dir := t.TempDir()
	return &backup.Restic{Binary: bin, Repository: filepath.Join(dir, "repo"), PasswordFile: password(t, dir), CacheDir: filepath.Join(dir, "cache")}
}

// Remote starts restic's REST server on loopback (killed when the test
// ends) and returns a restic on a fresh repository there.
func Remote(t testing.TB) *backup.Restic {
	t.Helper()
	bin := Restic(t)
	server := tool(t, images.RestServer())
	dir := t.TempDir()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	cmd := exec.Command(server, "--listen", addr, "--path", filepath.Join(dir, "data"), "--no-auth")
	cmd.Stdout, cmd.Stderr = &testenv.Buffer{}, &testenv.Buffer{}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/")
		if err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("rest-server on %s did not answer: %v", addr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return &backup.Restic{Binary: bin, Repository: "rest:http://" + addr + "/darse", PasswordFile: password(t, dir), CacheDir: filepath.Join(dir, "cache")}
}

func password(t testing.TB, dir string) string {
	t.Helper()
	p := filepath.Join(dir, "password")
	if err := os.WriteFile(p, []byte("correct horse battery staple\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// Command is a dump made by a local command (its stdout), failing as it
// does: what a database's dump through the engine's Exec API looks like
// to the backup package.
func Command(args ...string) backup.Dump {
	return func(ctx context.Context, w io.Writer) error {
		cmd := exec.CommandContext(ctx, args[0], args[1:]...)
		var stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = w, &stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("%s: %w: %s", args[0], err, strings.TrimSpace(stderr.String()))
		}
		return nil
	}
}

// Loader is a load into a local command (its stdin).
func Loader(args ...string) backup.Load {
	return func(ctx context.Context, r io.Reader) error {
		cmd := exec.CommandContext(ctx, args[0], args[1:]...)
		var stderr bytes.Buffer
		cmd.Stdin, cmd.Stdout, cmd.Stderr = r, io.Discard, &stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("%s: %w: %s", args[0], err, strings.TrimSpace(stderr.String()))
		}
		return nil
	}
}
