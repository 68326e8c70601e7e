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
	"strings"
	"testing"

	"github.com/darse/darse/internal/testenv"
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
	testenv.StopTestEngine(t)
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
	testenv.StartTestEngine(t, "../..")
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
