// Package testenv decides whether an integration test can run here. A test
// whose real part is missing is skipped with the reason on a developer's
// machine, and fails when DARSE_INTEGRATION=require (set by the README's
// test command, hence in CI), so that nothing is skipped there.
package testenv

import (
	"bytes"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Required reports whether missing real parts are failures rather than skips.
func Required() bool { return os.Getenv("DARSE_INTEGRATION") == "require" }

func skip(t testing.TB, why string) {
	t.Helper()
	if Required() {
		t.Fatalf("integration test cannot run: %s (DARSE_INTEGRATION=require)", why)
	}
	t.Skip("integration test: " + why)
}

// NeedRoot skips (or fails) unless running as root.
func NeedRoot(t testing.TB) {
	t.Helper()
	if testing.Short() {
		t.Skip("integration test: skipped with -short")
	}
	if os.Geteuid() != 0 {
		skip(t, "needs root")
	}
}

// NeedEngine skips (or fails) unless the Docker engine, Debian's
// docker-compose and the given images are there.
func NeedEngine(t testing.TB, images ...string) {
	t.Helper()
	NeedRoot(t)
	if err := exec.Command("docker", "info").Run(); err != nil {
		skip(t, "the Docker engine is not reachable")
	}
	if _, err := exec.LookPath("docker-compose"); err != nil {
		skip(t, "docker-compose is not installed")
	}
	for _, img := range images {
		if err := exec.Command("docker", "image", "inspect", img).Run(); err != nil {
			skip(t, "image "+img+" is missing (darse images build)")
		}
	}
}

// Buffer collects a subprocess's output, written and read from several
// goroutines, for failure messages.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *Buffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *Buffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// StopTestEngine stops the test suite's own engine, whose pid file
// scripts/test.sh passes in DARSE_TEST_ENGINE_PIDFILE, and waits until it
// has stopped. Without it the test fails: only that engine may be
// stopped, never the host's (a live platform's sites run there).
func StopTestEngine(t testing.TB) {
	t.Helper()
	pidfile := os.Getenv("DARSE_TEST_ENGINE_PIDFILE")
	if pidfile == "" {
		t.Fatal("this test stops the engine: run it through scripts/test.sh, against the test suite's own engine (DARSE_TEST_ENGINE_PIDFILE unset)")
	}
	b, err := os.ReadFile(pidfile)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 1 {
		t.Fatalf("%s: no pid: %q", pidfile, b)
	}
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		t.Fatalf("stop the test engine (%d): %v", pid, err)
	}
	for deadline := time.Now().Add(90 * time.Second); syscall.Kill(pid, 0) == nil; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the test engine did not stop")
		}
	}
	os.Remove(pidfile)
}

// StartTestEngine starts the test suite's own engine again, as
// scripts/test.sh does; repo is the repository's root.
func StartTestEngine(t testing.TB, repo string) {
	t.Helper()
	// Output to a file: a pipe would be held open by what the engine
	// starts in the background, and never reach its end.
	out, err := os.CreateTemp("", "darse-start-engine")
	if err != nil {
		t.Fatal(err)
	}
	defer os.Remove(out.Name())
	defer out.Close()
	cmd := exec.Command("sh", "-c", ". ./scripts/host.sh && . ./scripts/test-engine.sh && start_test_engine")
	cmd.Dir = repo
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Run(); err != nil {
		b, _ := os.ReadFile(out.Name())
		t.Fatalf("start the test engine: %v %s", err, b)
	}
}
