//go:build enginerestart

package main

import (
	"net/netip"
	"os/exec"
	"strings"
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
// It restarts the engine of the whole machine, so it is built only with
// the enginerestart tag and run alone, after the rest of the suite
// (scripts/test.sh).
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

// restartEngine stops dockerd and starts it again the way scripts/host.sh
// does.
func restartEngine(t *testing.T) {
	t.Helper()
	if out, err := exec.Command("pkill", "-TERM", "-x", "dockerd").CombinedOutput(); err != nil {
		t.Fatalf("pkill dockerd: %v %s", err, out)
	}
	for deadline := time.Now().Add(60 * time.Second); exec.Command("pgrep", "-x", "dockerd").Run() == nil; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("dockerd did not stop")
		}
	}
	if _, err := firewalltest.Docker("info"); err == nil {
		t.Fatal("the engine still answers after dockerd stopped")
	}
	cmd := exec.Command("sh", "-c", ". ./scripts/host.sh && start_engine")
	cmd.Dir = "../.."
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("start the engine: %v %s", err, out)
	}
}
