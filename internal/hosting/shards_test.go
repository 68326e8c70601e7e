package hosting

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/darse/darse/internal/compose"
	"github.com/darse/darse/internal/site"
	"github.com/darse/darse/internal/store"
)

// newShardHosting is newTestHosting with a front door of shards of two sites.
func newShardHosting(t *testing.T) (*Hosting, *store.Store, func(string) int) {
	t.Helper()
	h, eng, st := newTestHosting(t)
	cfg := h.cfg
	cfg.FrontNetwork, cfg.ShardSites = compose.FrontNetwork, 2
	h = New(cfg, st, eng, slog.New(slog.NewTextHandler(io.Discard, nil)))
	return h, st, eng.Count
}

// override is the site's rendered override, the file that names its networks.
func override(t *testing.T, h *Hosting, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(h.cfg.SiteDir(name), compose.OverrideFile))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// onShard fails unless every place the site's front network is named
// names net, and no other shard.
func onShard(t *testing.T, h *Hosting, name, net string) {
	t.Helper()
	o := override(t, h, name)
	if !strings.Contains(o, "traefik.docker.network: "+net+"\n") {
		t.Errorf("site %s: Traefik's network is not %s:\n%s", name, net, o)
	}
	if !strings.Contains(o, "- "+net+"\n") || !strings.Contains(o, "  "+net+":\n    external: true") {
		t.Errorf("site %s: %s is not its external network:\n%s", name, net, o)
	}
	for _, other := range compose.FrontNetworks() {
		if other != net && (strings.Contains(o, " "+other+"\n") || strings.Contains(o, " "+other+":")) {
			t.Errorf("site %s on %s also names %s:\n%s", name, net, other, o)
		}
	}
	st, err := h.Status(context.Background(), name)
	if err != nil || st.Front != net {
		t.Errorf("site %s: status front %q, %v; want %s", name, st.Front, err, net)
	}
}

func TestSitesSpreadOverShards(t *testing.T) {
	ctx := context.Background()
	h, st, count := newShardHosting(t)
	create := func(name string) {
		t.Helper()
		if _, err := h.Create(ctx, CreateRequest{Name: name, Template: "static", Owner: "alice"}); err != nil {
			t.Fatalf("create %s: %v", name, err)
		}
	}
	for _, n := range []string{"a", "b", "c", "d", "e"} {
		create(n)
	}
	for name, net := range map[string]string{"a": "front", "b": "front", "c": "front-1", "d": "front-1", "e": "front-2"} {
		onShard(t, h, name, net)
	}
	// The shard's network is made before its first site comes up.
	for _, net := range []string{"front", "front-1", "front-2"} {
		if count("CreateNetwork "+net) == 0 {
			t.Errorf("network %s never created", net)
		}
	}
	if count("CreateNetwork front-3") != 0 {
		t.Error("front-3 created with no site on it")
	}

	// Re-rendered (a domain added, a forced render), a site stays put.
	if _, err := h.AddDomain(ctx, "c", "www.c-shop.net"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := h.Render(ctx, "e", true); err != nil {
		t.Fatal(err)
	}
	onShard(t, h, "c", "front-1")
	onShard(t, h, "e", "front-2")

	// A removed site frees its place: the next site takes the lowest.
	if err := h.Remove(ctx, "b", true); err != nil {
		t.Fatal(err)
	}
	create("f")
	onShard(t, h, "f", "front")
	create("g")
	onShard(t, h, "g", "front-2")
	if k, err := st.FrontShard(ctx, "d"); err != nil || k != 1 {
		t.Errorf("d moved: shard %d, %v", k, err)
	}
}

// When every shard is full, creation is refused and leaves nothing behind.
func TestCreateRefusedWhenShardsFull(t *testing.T) {
	ctx := context.Background()
	h, st, _ := newShardHosting(t)
	for k := 0; k <= compose.MaxShard; k++ {
		for i := 0; i < 2; i++ {
			name := fmt.Sprintf("s%d-%d", k, i)
			if err := st.CreateSite(ctx, site.Spec{Name: name, Template: "static", Owner: "alice", Domain: name + ".example.org"}); err != nil {
				t.Fatal(err)
			}
			if _, err := st.AssignShard(ctx, name, 2, compose.MaxShard); err != nil {
				t.Fatal(err)
			}
		}
	}
	_, err := h.Create(ctx, CreateRequest{Name: "late", Template: "static", Owner: "alice"})
	if !errors.Is(err, store.ErrShardsFull) {
		t.Fatalf("create on a full host: %v, want ErrShardsFull", err)
	}
	if _, err := st.GetSite(ctx, "late"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("refused site's row: %v", err)
	}
	if _, err := os.Stat(h.cfg.SiteDir("late")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("refused site's folder: %v", err)
	}
}
