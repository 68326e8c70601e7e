//go:build enginerestart

package main

import (
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/darse/darse/internal/firewall/firewalltest"
)

// The real Docker engine restarted under a running darse-fw: it stops
// every container, brings back those whose policy says so (with addresses
// it may change) and rewrites its own rules. After the restart the
// ruleset is the desired one again, the container that came back is
// reachable and the one that did not is not.
//
// It restarts the engine it runs against, so it is built only with the
// enginerestart tag and run alone, after the rest of the suite, by
// scripts/test.sh against the test suite's own engine.
func TestRealEngineRestart(t *testing.T) {
	l := newLab(t)
	f := l.start()
	portA, portB := hostPort(), hostPort()
	l.run("back", append(exposeArgs("web", 8080, portA, "tcp"), "--restart", "unless-stopped")...)
	l.run("gone", exposeArgs("web", 8080, portB, "tcp")...)
	l.waitDesired(5 * time.Second)
	l.reach(portA)
	l.reach(portB)

	restartEngine(t)
	l.waitDesired(20 * time.Second)
	l.reach(portA)
	l.unreachable(netip.AddrPortFrom(l.client.Host4, uint16(portB)))
	l.unreachable(netip.AddrPortFrom(l.client.Host6, uint16(portB)))
	if !strings.Contains(f.logs.String(), "engine unreachable") {
		t.Errorf("darse-fw did not notice the engine going away")
	}
}

// restartEngine stops the test suite's own engine (scripts/test-engine.sh,
// whose pid file test.sh passes in DARSE_TEST_ENGINE_PIDFILE) and starts it
// again the same way. It never touches an engine it was not given: the
// host's, and the sites a live platform runs on it, are left alone.
func restartEngine(t *testing.T) {
	t.Helper()
	pidfile := os.Getenv("DARSE_TEST_ENGINE_PIDFILE")
	if pidfile == "" {
		t.Fatal("this test restarts the engine: run it through scripts/test.sh, against the test suite's own engine (DARSE_TEST_ENGINE_PIDFILE unset)")
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
	for deadline := time.Now().Add(60 * time.Second); syscall.Kill(pid, 0) == nil; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the test engine did not stop")
		}
	}
	if _, err := firewalltest.Docker("info"); err == nil {
		t.Fatal("the engine still answers after dockerd stopped")
	}
	os.Remove(pidfile)
	// Its output goes to a file: a pipe would be held open by what the
	// engine starts in the background, and never reach its end.
	out, err := os.CreateTemp(t.TempDir(), "start")
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	cmd := exec.Command("sh", "-c", ". ./scripts/host.sh && . ./scripts/test-engine.sh && start_test_engine")
	cmd.Dir = "../.."
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Run(); err != nil {
		b, _ := os.ReadFile(out.Name())
		t.Fatalf("start the test engine: %v %s", err, b)
	}
}
