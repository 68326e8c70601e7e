//go:build enginerestart

package main

// A simulated reboot, run alone with the engine-restart test (it stops
// the test suite's own engine): engine and darse stopped, the firewall
// table gone, then scripts/boot.sh's steps in order. The table is back
// before the engine starts any container, and every site answers again.

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestSimulatedReboot(t *testing.T) {
	f := newFront(t, "")
	table := fmt.Sprintf("darse-t%d", os.Getpid())
	var sites []string
	for _, base := range []string{"rba", "rbb"} {
		name := siteName(base)
		f.cleanup(name)
		f.ok("site", "create", name, "--template", "static")
		sites = append(sites, name)
	}
	for _, name := range sites {
		eventually(t, fmt.Sprintf("127.0.0.1:%d", f.http), name+"."+f.domain, 200, "")
	}
	f.ok("fw", "save")
	saved, err := os.ReadFile(filepath.Join(f.srv, "conf", "firewall.nft"))
	if err != nil || !strings.Contains(string(saved), "table inet "+table+"\n") {
		t.Fatalf("saved ruleset: %v\n%s", err, saved)
	}

	// The machine goes down: the engine stops, the kernel's tables are gone.
	stopTestEngine(t)
	if out, err := exec.Command("nft", "delete", "table", "inet", table).CombinedOutput(); err != nil {
		t.Fatalf("delete table: %v %s", err, out)
	}

	// Boot, step by step as the units run it.
	boot := func(step string) {
		t.Helper()
		cmd := exec.Command("sh", "./scripts/boot.sh", step)
		cmd.Dir = "../.."
		cmd.Env = append(os.Environ(), "DARSE_SRV="+f.srv, "DARSE_BIN="+darseBin)
		out, err := runToFile(t, cmd)
		if err != nil {
			t.Fatalf("boot.sh %s: %v\n%s", step, err, out)
		}
		t.Logf("boot.sh %s:\n%s", step, out)
	}
	boot("firewall")
	// Before any container runs, the table is there, as darse-fw left it.
	got, err := exec.Command("nft", "list", "table", "inet", table).CombinedOutput()
	if err != nil {
		t.Fatalf("table not loaded before the engine starts: %v %s", err, got)
	}
	for _, chain := range []string{"chain forward", "chain tenant_host"} {
		if !strings.Contains(string(got), chain) {
			t.Errorf("loaded table lacks %s:\n%s", chain, got)
		}
	}
	startTestEngine(t)
	boot("platform")
	for _, name := range sites {
		eventually(t, fmt.Sprintf("127.0.0.1:%d", f.http), name+"."+f.domain, 200, "")
	}
}

// runToFile runs cmd with its output in a file (a pipe would be held open
// by what an engine start leaves running) and returns the output.
func runToFile(t *testing.T, cmd *exec.Cmd) (string, error) {
	t.Helper()
	out, err := os.CreateTemp(t.TempDir(), "out")
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	cmd.Stdout, cmd.Stderr = out, out
	err = cmd.Run()
	b, _ := os.ReadFile(out.Name())
	return string(b), err
}

// stopTestEngine stops the test suite's own engine by its pid file.
func stopTestEngine(t *testing.T) {
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
		t.Fatal(err)
	}
	for deadline := time.Now().Add(90 * time.Second); syscall.Kill(pid, 0) == nil; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the test engine did not stop")
		}
	}
	os.Remove(pidfile)
}

func startTestEngine(t *testing.T) {
	t.Helper()
	cmd := exec.Command("sh", "-c", ". ./scripts/host.sh && . ./scripts/test-engine.sh && start_test_engine")
	cmd.Dir = "../.."
	if out, err := runToFile(t, cmd); err != nil {
		t.Fatalf("start the test engine: %v %s", err, out)
	}
}
