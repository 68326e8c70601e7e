package images_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/darse/darse/internal/engine"
	"github.com/darse/darse/internal/images"
	"github.com/darse/darse/internal/testenv"
)

var _ images.Engine = (*engine.Engine)(nil)

// TestImagesInEngine builds the repository's images into the local engine
// only if they are missing (a cold build takes minutes; run
// `darse images build` first to keep this test quick), then checks that
// each carries its definition's configuration.
func TestImagesInEngine(t *testing.T) {
	testenv.NeedRoot(t) // debootstrap needs root
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	e, err := engine.New(ctx)
	if err != nil {
		if testenv.Required() {
			t.Fatalf("no Docker engine: %v", err)
		}
		t.Skipf("integration test: no Docker engine: %v", err)
	}
	defer e.Close()

	b := &images.Builder{Engine: e}
	for _, d := range repoDefinitions(t) {
		t.Run(d.Name, func(t *testing.T) {
			res, err := b.Ensure(ctx, d, false)
			if err != nil {
				t.Fatal(err)
			}
			if res.Built {
				t.Logf("built %s in %s", d.Tag, res.Took.Round(time.Second))
			}
			img, err := e.ImageInspect(ctx, d.Tag)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Contains(img.Tags, d.Tag) {
				t.Errorf("tags %q lack %s", img.Tags, d.Tag)
			}
			if !slices.Equal(img.Cmd, d.Config.Cmd) || !slices.Equal(img.Entrypoint, d.Config.Entrypoint) {
				t.Errorf("entrypoint %q cmd %q, want %q %q", img.Entrypoint, img.Cmd, d.Config.Entrypoint, d.Config.Cmd)
			}
			if img.User != d.Config.User || img.WorkingDir != d.Config.Workdir {
				t.Errorf("user %q workdir %q, want %q %q", img.User, img.WorkingDir, d.Config.User, d.Config.Workdir)
			}
			for _, env := range d.Config.Env {
				if !slices.Contains(img.Env, env) {
					t.Errorf("env %q lacks %q", img.Env, env)
				}
			}
			var expose []string
			for _, p := range d.Config.Expose {
				if !strings.Contains(p, "/") {
					p += "/tcp" // the engine's default
				}
				expose = append(expose, p)
			}
			slices.Sort(expose)
			if !slices.Equal(img.ExposedPorts, expose) {
				t.Errorf("exposed %q, want %q", img.ExposedPorts, expose)
			}
		})
	}
}
