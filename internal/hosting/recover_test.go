package hosting

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/darse/darse/internal/engine/enginetest"
	"github.com/darse/darse/internal/render"
	"github.com/darse/darse/internal/store"
)

func newTestHosting(t *testing.T) (*Hosting, *enginetest.Fake, *store.Store) {
	t.Helper()
	srv := t.TempDir()
	repoTemplates, _ := filepath.Abs("../../templates")
	if err := os.Symlink(repoTemplates, filepath.Join(srv, "templates")); err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(context.Background(), filepath.Join(srv, "conf", "darse.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	eng := &enginetest.Fake{}
	h := New(Config{Srv: srv, Domain: "example.org"}, st, eng, slog.New(slog.NewTextHandler(io.Discard, nil)))
	return h, eng, st
}

func TestRecoverCreate(t *testing.T) {
	ctx := context.Background()
	h, eng, st := newTestHosting(t)
	req := CreateRequest{Name: "blog", Template: "static", Owner: "alice"}

	// Cut after the render was recorded: the site is finished (brought up).
	before, _ := h.Facts(ctx, "blog")
	plan, err := h.Create(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(plan.String(), "CreateContainer blog_web_1") {
		t.Errorf("create returned the plan:\n%s", plan)
	}
	stored, err := st.GetSite(ctx, "blog")
	if err != nil {
		t.Fatal(err)
	}
	spec := stored.Spec
	if _, err := h.Stop(ctx, "blog"); err != nil { // as if cut before it came up
		t.Fatal(err)
	}
	started := eng.Count("StartContainer")
	if err := h.RecoverCreate(ctx, "blog", before); err != nil {
		t.Fatalf("complete creation: %v", err)
	}
	if eng.Count("StartContainer") == started {
		t.Fatal("finished creation was not brought up")
	}

	// Cut before the render was recorded, in a fresh folder: all undone.
	before, _ = h.Facts(ctx, "shop")
	spec.Name, spec.Domain = "shop", "shop.example.org"
	st.CreateSite(ctx, spec)
	os.MkdirAll(filepath.Join(h.cfg.SiteDir("shop"), "conf"), 0o755)
	if err := h.RecoverCreate(ctx, "shop", before); !errors.Is(err, ErrInterrupted) {
		t.Fatalf("half creation: %v", err)
	}
	if _, err := st.GetSite(ctx, "shop"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("row kept: %v", err)
	}
	if _, err := os.Stat(h.cfg.SiteDir("shop")); !os.IsNotExist(err) {
		t.Errorf("folder kept: %v", err)
	}

	// Same in a folder that held kept data/ and a database's db/: both
	// stay, the rest goes.
	wiki := h.cfg.SiteDir("wiki")
	os.MkdirAll(filepath.Join(wiki, "data"), 0o755)
	os.MkdirAll(filepath.Join(wiki, "db"), 0o700)
	os.WriteFile(filepath.Join(wiki, "data", "index.html"), []byte("kept"), 0o644)
	os.WriteFile(filepath.Join(wiki, "db", "ibdata1"), []byte("rows"), 0o600)
	before, _ = h.Facts(ctx, "wiki")
	os.WriteFile(filepath.Join(wiki, ".env"), []byte("half"), 0o644)
	if err := h.RecoverCreate(ctx, "wiki", before); !errors.Is(err, ErrInterrupted) {
		t.Fatalf("half creation over kept data: %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(wiki, "data", "index.html")); string(b) != "kept" {
		t.Error("kept data/ lost")
	}
	if b, _ := os.ReadFile(filepath.Join(wiki, "db", "ibdata1")); string(b) != "rows" {
		t.Error("kept db/ lost")
	}
	if _, err := os.Stat(filepath.Join(wiki, ".env")); !os.IsNotExist(err) {
		t.Error("half-written .env kept")
	}

	// A site that existed before is left alone.
	before, _ = h.Facts(ctx, "blog")
	if !before.RowExisted {
		t.Fatal("Facts missed the stored site")
	}
	if err := h.RecoverCreate(ctx, "blog", before); !errors.Is(err, ErrInterrupted) {
		t.Fatalf("existing site: %v", err)
	}
	if _, err := st.GetSite(ctx, "blog"); err != nil {
		t.Fatalf("existing site removed: %v", err)
	}
}

// A process killed after writing a new render but before recording it
// leaves files that are darse's own, not hand edits; a real edit still is.
func TestDriftIsNotAnInterruptedWrite(t *testing.T) {
	ctx := context.Background()
	h, _, st := newTestHosting(t)
	if _, err := h.Create(ctx, CreateRequest{Name: "blog", Template: "static", Owner: "alice"}); err != nil {
		t.Fatal(err)
	}
	s, err := st.GetSite(ctx, "blog")
	if err != nil {
		t.Fatal(err)
	}
	// The store still holds the render before the one on disk.
	old := render.Manifest{}
	for p := range s.Rendered {
		old[p] = "0000"
	}
	if err := st.SetRendered(ctx, "blog", old); err != nil {
		t.Fatal(err)
	}
	if s, _ = st.GetSite(ctx, "blog"); h.checkDrift(ctx, s) != nil {
		t.Fatalf("the current render taken for a hand edit: %v", h.checkDrift(ctx, s))
	}
	override := filepath.Join(h.cfg.SiteDir("blog"), render.OverrideFile)
	b, _ := os.ReadFile(override)
	os.WriteFile(override, append(b, "# mine\n"...), 0o644)
	if err := h.checkDrift(ctx, s); err == nil || !strings.Contains(err.Error(), "edited by hand (docker-compose.override.yml)") {
		t.Fatalf("a hand edit: %v", err)
	}
}
