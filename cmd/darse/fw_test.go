package main

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func runFw(t *testing.T, args ...string) (string, error) {
	t.Helper()
	a := &app{log: slog.New(slog.DiscardHandler)}
	root := newRootCmd(a)
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(args)
	err := root.ExecuteContext(context.Background())
	a.close()
	return out.String(), err
}

// darse fw render prints exactly the core's ruleset for a state, touching
// nothing (no engine, no nftables needed with --state).
func TestFwRenderFromState(t *testing.T) {
	dir := filepath.Join("..", "..", "internal", "firewall", "testdata", "member-forward")
	got, err := runFw(t, "--srv", "/srv", "fw", "render", "--state", filepath.Join(dir, "containers.json"), "--docker-forward", "accept",
		"--table", "darse", "--input", "accept")
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile(filepath.Join(dir, "ruleset.golden"))
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Errorf("darse fw render differs from %s:\n%s", dir, got)
	}
}

func TestFwRenderRejectsBadFlags(t *testing.T) {
	state := filepath.Join("..", "..", "internal", "firewall", "testdata", "empty", "containers.json")
	for _, args := range [][]string{
		{"fw", "render", "--state", state, "--input", "reject"},
		{"fw", "render", "--state", state, "--input-allow", "tcp/99999"},
		{"fw", "render", "--state", state, "--docker-forward", "maybe"},
	} {
		if _, err := runFw(t, args...); err == nil || strings.Contains(err.Error(), "\n") {
			t.Errorf("darse %s: err %v, want a one-line error", strings.Join(args, " "), err)
		}
	}
}
