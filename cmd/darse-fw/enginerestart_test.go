//go:build enginerestart

package main

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/darse/darse/internal/firewall/firewalltest"
	"github.com/darse/darse/internal/testenv"
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

// restartEngine stops the test suite's own engine and starts it again
// the same way; the host's engine is never touched.
func restartEngine(t *testing.T) {
	t.Helper()
	testenv.StopTestEngine(t)
	if _, err := firewalltest.Docker("info"); err == nil {
		t.Fatal("the engine still answers after dockerd stopped")
	}
	testenv.StartTestEngine(t, "../..")
}
