// Package testenv decides whether an integration test can run here. A test
// whose real part is missing is skipped with the reason on a developer's
// machine, and fails when DARSE_INTEGRATION=require (set by the README's
// test command, hence in CI), so that nothing is skipped there.
package testenv

import (
	"bytes"
	"os"
	"os/exec"
	"sync"
	"testing"
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
