package images

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/darse/darse/internal/testenv"
)

func TestWithRestic(t *testing.T) {
	dir := t.TempDir()
	bins := []string{filepath.Join(dir, "darse"), filepath.Join(dir, "darse-fw")}
	if got := withRestic(bins); !slices.Equal(got, bins) {
		t.Errorf("no restic beside darse: %v", got)
	}
	if err := os.WriteFile(filepath.Join(dir, "restic"), []byte("x"), 0o755); err != nil {
		t.Fatal(err)
	}
	got := withRestic(bins)
	if want := append(slices.Clone(bins), filepath.Join(dir, "restic")); !slices.Equal(got, want) {
		t.Errorf("restic beside darse: %v, want %v", got, want)
	}
	if len(bins) != 2 {
		t.Error("withRestic changed its argument")
	}
	if again := withRestic(got); len(again) != 3 {
		t.Errorf("restic added twice: %v", again)
	}
	// The image's tag follows restic's bytes too.
	t1, _ := SelfTag(got)
	os.WriteFile(filepath.Join(dir, "restic"), []byte("y"), 0o755)
	os.WriteFile(bins[0], nil, 0o755)
	os.WriteFile(bins[1], nil, 0o755)
	if t2, err := SelfTag(got); err != nil || t1 == t2 {
		t.Errorf("tag unchanged by another restic: %s %s %v", t1, t2, err)
	}
}

func TestToolDefinitions(t *testing.T) {
	for _, g := range []GoModule{Restic(), RestServer()} {
		var bad []string
		g.validate(func(f string, a ...any) { bad = append(bad, f) })
		if len(bad) > 0 {
			t.Errorf("%s: %v", g.Module, bad)
		}
	}
	if _, err := (&Builder{GoCacheDir: t.TempDir()}).EnsureTool(context.Background(), GoModule{Module: "x", Version: "latest"}); err == nil || !strings.Contains(err.Error(), "gomodule.version") {
		t.Errorf("a tool without an exact version: %v", err)
	}
}

// TestResticBuilds builds restic from the module proxy (or finds it in
// the build cache) and runs it: the pinned version is the one that runs.
func TestResticBuilds(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test: builds restic (minutes cold)")
	}
	if _, err := exec.LookPath("go"); err != nil {
		if testenv.Required() {
			t.Fatal("go is needed to build restic")
		}
		t.Skip("go is needed to build restic")
	}
	dir := t.TempDir()
	bin, err := (&Builder{}).InstallTool(context.Background(), Restic(), dir)
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bin, "version").CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), "restic 0.18.1 ") {
		t.Fatalf("restic version: %s %v", out, err)
	}
	if err := checkStatic(bin); err != nil {
		t.Error(err)
	}
}
