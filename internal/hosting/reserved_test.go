package hosting

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/darse/darse/internal/compose"
)

// Issue 10, hole 3: a member cannot create a site at the platform's own
// host names, nor named like its compose projects, nor take a name
// reserved in darse.yml; each refusal names the rule and writes nothing.
func TestPlatformNamesRefused(t *testing.T) {
	ctx := context.Background()
	h, _, st := newTestHosting(t)
	h.cfg.Reserved = map[string]string{"darse-panel": "the panel's compose project", "banned": "reserved in darse.yml"}
	h.cfg.ReservedHosts = map[string]string{"example.org": "the platform domain", "panel.example.org": "the panel's host name",
		"traefik.example.org": "the front door's host name", "banned.example.org": "reserved in darse.yml", "wikix.example.org": "reserved in darse.yml", "evil.example.net": "reserved in darse.yml"}
	for _, tc := range []struct {
		req  CreateRequest
		want string
	}{
		{CreateRequest{Name: "darse-panel"}, `site name "darse-panel": is reserved: the panel's compose project`},
		{CreateRequest{Name: "banned"}, `site name "banned": is reserved: reserved in darse.yml`},
		{CreateRequest{Name: "traefik"}, `site name "traefik": is reserved`},
		{CreateRequest{Name: "wikix"}, `domain "wikix.example.org": is reserved: reserved in darse.yml`},
		{CreateRequest{Name: "blog", Domain: "panel.example.org"}, `domain "panel.example.org": is under the platform domain`},
		{CreateRequest{Name: "blog", Domain: "example.org"}, `domain "example.org": is under the platform domain`},
		{CreateRequest{Name: "blog", Domain: "shop.example.org"}, `domain "shop.example.org": is under the platform domain`},
		{CreateRequest{Name: "blog", Domain: "evil.example.net"}, `domain "evil.example.net": is reserved: reserved in darse.yml`},
	} {
		tc.req.Template, tc.req.Owner = "static", "alice"
		err := h.CheckCreate(ctx, tc.req)
		if !errors.Is(err, ErrInput) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("create %+v: %v, want %q", tc.req, err, tc.want)
		}
		if _, err := h.Create(ctx, tc.req); !errors.Is(err, ErrInput) {
			t.Errorf("Create itself let %+v through: %v", tc.req, err)
		}
	}
	if sites, _ := st.ListSites(ctx); len(sites) != 0 {
		t.Fatalf("refused creates stored %d sites", len(sites))
	}
	if _, err := h.Create(ctx, CreateRequest{Name: "blog", Template: "static", Owner: "alice", Domain: "blog.example.net"}); err != nil {
		t.Fatalf("a custom domain outside the platform's: %v", err)
	}
	for _, d := range []string{"panel.example.org", "evil.example.net"} {
		if _, err := h.AddDomain(ctx, "blog", d); !errors.Is(err, ErrInput) {
			t.Errorf("domain add %s: %v", d, err)
		}
	}
}

// Issue 10, hole 2: a site named like another compose project neither
// takes nor touches that project's containers, networks or volumes; a
// name already used by another project is refused at create.
func TestSiteTouchesOnlyItsOwnObjects(t *testing.T) {
	ctx := context.Background()
	h, eng, _ := newTestHosting(t)
	foreign := map[string]string{compose.LabelProject: "shop", compose.LabelService: "db"}
	if _, err := eng.RunContainer(ctx, "shop_db_1", compose.Container{Labels: foreign}); err != nil {
		t.Fatal(err)
	}
	if err := eng.CreateVolume(ctx, compose.Volume{Name: "shop_data", Labels: map[string]string{compose.LabelProject: "shop"}}); err != nil {
		t.Fatal(err)
	}
	err := h.CheckCreate(ctx, CreateRequest{Name: "shop", Template: "static", Owner: "alice"})
	if !errors.Is(err, ErrInput) || !strings.Contains(err.Error(), "another compose project") || !strings.Contains(err.Error(), "shop_db_1") {
		t.Fatalf("create over another project: %v", err)
	}

	// A site that came first, then another project under its name: the
	// site's up, stop and removal leave the other project's objects be.
	if _, err := h.Create(ctx, CreateRequest{Name: "blog", Template: "static", Owner: "alice"}); err != nil {
		t.Fatal(err)
	}
	if _, err := eng.RunContainer(ctx, "blog_intruder_1", compose.Container{Labels: map[string]string{compose.LabelProject: "blog", compose.LabelService: "intruder"}}); err != nil {
		t.Fatal(err)
	}
	if err := eng.CreateVolume(ctx, compose.Volume{Name: "blog_panel", Labels: map[string]string{compose.LabelProject: "blog"}}); err != nil {
		t.Fatal(err)
	}
	before := len(eng.Calls())
	for _, step := range []func() error{
		func() error { _, err := h.Up(ctx, "blog"); return err },
		func() error { _, err := h.Stop(ctx, "blog"); return err },
		func() error { return h.Remove(ctx, "blog", true) },
	} {
		if err := step(); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range eng.Calls()[before:] {
		if strings.Contains(c, "intruder") || strings.Contains(c, "blog_panel") || strings.Contains(c, "shop_") {
			t.Errorf("touched another project's object: %s", c)
		}
	}
	if eng.Count("RemoveContainer blog_web_1") != 1 {
		t.Errorf("the site's own container was not removed: %v", eng.Calls())
	}
}
