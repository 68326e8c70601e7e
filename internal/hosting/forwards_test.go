package hosting

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestForwardsRenderedAsExposures(t *testing.T) {
	ctx := context.Background()
	h, _, _ := newTestHosting(t)
	if _, err := h.Create(ctx, CreateRequest{Name: "blog", Template: "static", Owner: "alice"}); err != nil {
		t.Fatal(err)
	}
	override := func() string {
		b, _ := os.ReadFile(filepath.Join(h.cfg.SiteDir("blog"), "docker-compose.override.yml"))
		return string(b)
	}
	// The site's SSH access holds 40000 from its creation.
	f, _, err := h.AddForward(ctx, "blog", ForwardRequest{Port: 2222})
	if err != nil {
		t.Fatal(err)
	}
	if f.HostPort != 40001 || f.Proto != "tcp" || f.Service != "web" {
		t.Fatalf("forward %+v", f)
	}
	for _, want := range []string{"darse.expose.fwd40001.port: \"2222\"", "darse.expose.fwd40001.hostport: \"40001\"", "darse.expose.fwd40001.protocol: tcp"} {
		if !strings.Contains(override(), want) {
			t.Errorf("override lacks %s:\n%s", want, override())
		}
	}
	if again, _, err := h.AddForward(ctx, "blog", ForwardRequest{Port: 2222, Proto: "tcp"}); err != nil || again.HostPort != 40001 {
		t.Fatalf("same port twice: %+v, %v", again, err)
	}
	if _, _, err := h.AddForward(ctx, "blog", ForwardRequest{Port: 70000, Proto: "tcp"}); !errors.Is(err, ErrInput) {
		t.Fatalf("port 70000: %v", err)
	}
	if _, _, err := h.AddForward(ctx, "blog", ForwardRequest{Port: 53, Proto: "sctp"}); !errors.Is(err, ErrInput) {
		t.Fatalf("sctp: %v", err)
	}
	if _, _, err := h.AddForward(ctx, "nope", ForwardRequest{Port: 22, Proto: "tcp"}); !errors.Is(err, ErrInput) {
		t.Fatalf("unknown site: %v", err)
	}
	if _, err := h.RemoveForward(ctx, "blog", 40001); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(override(), "darse.expose.fwd") {
		t.Fatalf("removed forward still rendered:\n%s", override())
	}
	if _, err := h.RemoveForward(ctx, "blog", 40001); !errors.Is(err, ErrInput) {
		t.Fatalf("second removal: %v", err)
	}
}
