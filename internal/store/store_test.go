package store

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/darse/darse/internal/render"
	"github.com/darse/darse/internal/site"
)

func open(t *testing.T) *Store {
	t.Helper()
	s, err := Open(context.Background(), filepath.Join(t.TempDir(), "conf", "darse.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func spec(name, domain string) site.Spec {
	return site.Spec{Name: name, Template: "static", Owner: "alice", Domain: domain,
		Params: map[string]string{"A": "1"}, Plan: site.Plan{CPUs: "0.5", Memory: "64m", Pids: 64}}
}

func TestSiteLifecycle(t *testing.T) {
	ctx := context.Background()
	s := open(t)
	if err := s.CreateSite(ctx, spec("blog", "blog.example.org")); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateSite(ctx, spec("blog", "other.example.org")); !errors.Is(err, ErrSiteExists) {
		t.Fatalf("duplicate name: got %v, want ErrSiteExists", err)
	}
	if err := s.CreateSite(ctx, spec("shop", "blog.example.org")); !errors.Is(err, ErrDomainTaken) {
		t.Fatalf("duplicate domain: got %v, want ErrDomainTaken", err)
	}
	// The refused site left nothing behind.
	if _, err := s.GetSite(ctx, "shop"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("refused site stored: %v", err)
	}
	m := render.Manifest{".env": "abc"}
	if err := s.SetRendered(ctx, "blog", m); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetSite(ctx, "blog")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got.Spec, spec("blog", "blog.example.org")) || !reflect.DeepEqual(got.Rendered, m) {
		t.Fatalf("GetSite = %+v", got)
	}
	if owner, err := s.DomainOwner(ctx, "blog.example.org"); err != nil || owner != "blog" {
		t.Fatalf("DomainOwner = %q, %v", owner, err)
	}
	if err := s.DeleteSite(ctx, "blog"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.DomainOwner(ctx, "blog.example.org"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("domain survived its site: %v", err)
	}
	if err := s.DeleteSite(ctx, "blog"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second delete: %v", err)
	}
}

func TestReopenKeepsData(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "darse.db")
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.CreateSite(ctx, spec("a", "a.example.org")); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s, err = Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	sites, err := s.ListSites(ctx)
	if err != nil || len(sites) != 1 || sites[0].Name != "a" {
		t.Fatalf("ListSites after reopen = %v, %v", sites, err)
	}
}

func TestDomains(t *testing.T) {
	ctx := context.Background()
	s := open(t)
	s.CreateSite(ctx, spec("blog", "blog.example.org"))
	s.CreateSite(ctx, spec("shop", "shop.example.org"))
	if err := s.AddDomain(ctx, "blog", "www.blog.net"); err != nil {
		t.Fatal(err)
	}
	if err := s.AddDomain(ctx, "shop", "www.blog.net"); !errors.Is(err, ErrDomainTaken) {
		t.Fatalf("taken custom domain: %v", err)
	}
	if err := s.AddDomain(ctx, "shop", "blog.example.org"); !errors.Is(err, ErrDomainTaken) {
		t.Fatalf("another site's primary domain: %v", err)
	}
	got, _ := s.GetSite(ctx, "blog")
	if got.Domain != "blog.example.org" || len(got.Aliases) != 1 || got.Aliases[0] != "www.blog.net" {
		t.Fatalf("site = %+v", got)
	}
	if err := s.RemoveDomain(ctx, "blog", "blog.example.org"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("removing the primary domain: %v", err)
	}
	if err := s.RemoveDomain(ctx, "shop", "www.blog.net"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("removing another site's domain: %v", err)
	}
	if err := s.RemoveDomain(ctx, "blog", "www.blog.net"); err != nil {
		t.Fatal(err)
	}
}

// The database holds password hashes: readable by its owner only, even
// where an older darse left it world-readable.
func TestStoreFileIsPrivate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "darse.db")
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.ListSites(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		if fi, err := os.Stat(p); err == nil && fi.Mode().Perm() != 0o600 {
			t.Errorf("%s is %v", p, fi.Mode().Perm())
		}
	}
}
