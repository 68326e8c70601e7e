package store

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/darse/darse/internal/render"
	"github.com/darse/darse/internal/site"
)

func TestRecordBackups(t *testing.T) {
	s := open(t)
	ctx := context.Background()
	t0 := time.Now().Add(-time.Hour)
	for i, b := range []Backup{
		{Site: "a", Run: "r1", State: OpDone, FilesSnapshot: "f1"},
		{Site: "a", Run: "r2", State: OpFailed, Error: "database dump failed"},
		{Site: "b", Run: "r3", State: OpFailed, Error: "locked"},
		{Site: "", Run: "r4", State: OpDone, FilesSnapshot: "p1"},
	} {
		b.StartedAt, b.FinishedAt = t0.Add(time.Duration(i)*time.Minute), t0.Add(time.Duration(i)*time.Minute+time.Second)
		if _, err := s.RecordBackup(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.RecordBackup(ctx, Backup{Site: "a", State: OpRunning}); err == nil {
		t.Error("a running backup was recorded")
	}
	last, done, err := s.LastBackups(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if last["a"].Run != "r2" || last["a"].Error != "database dump failed" || done["a"].Run != "r1" || done["a"].FilesSnapshot != "f1" {
		t.Errorf("site a: last %+v, last done %+v", last["a"], done["a"])
	}
	if last["b"].Run != "r3" || done["b"] != nil {
		t.Errorf("site b: last %+v, last done %+v", last["b"], done["b"])
	}
	if done[""].Run != "r4" || !done[""].FinishedAt.After(done[""].StartedAt) {
		t.Errorf("platform: %+v", done[""])
	}
}

func TestImportSiteRecord(t *testing.T) {
	s := open(t)
	ctx := context.Background()
	spec := site.Spec{Name: "blog", Template: "static", Owner: "alice", Domain: "blog.example.org", Params: map[string]string{"X": "1"}, Plan: site.Plan{CPUs: "0.5", Memory: "64m", Pids: 32}}
	if err := s.CreateSite(ctx, spec); err != nil {
		t.Fatal(err)
	}
	if err := s.AddDomain(ctx, "blog", "www.blog.net"); err != nil {
		t.Fatal(err)
	}
	if err := s.SetRendered(ctx, "blog", render.Manifest{"docker-compose.yml": "abc"}); err != nil {
		t.Fatal(err)
	}
	f, err := s.AddForward(ctx, Forward{Site: "blog", Service: "ssh", ContainerPort: 22})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.AddKey(ctx, SSHKey{Site: "blog", Fingerprint: "SHA256:x", Key: "ssh-ed25519 AAAA", Comment: "me"}); err != nil {
		t.Fatal(err)
	}
	rec, err := s.SiteRecord(ctx, "blog")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteSite(ctx, "blog"); err != nil {
		t.Fatal(err)
	}
	// Another site took the port meanwhile: refused whole.
	if err := s.CreateSite(ctx, site.Spec{Name: "other", Template: "static", Owner: "bob", Domain: "other.example.org"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AddForward(ctx, Forward{Site: "other", Service: "ssh", ContainerPort: 22}); err != nil {
		t.Fatal(err)
	}
	if err := s.ImportSite(ctx, rec); !errors.Is(err, ErrForwardExists) {
		t.Fatalf("import with its port taken: %v", err)
	}
	if _, err := s.GetSite(ctx, "blog"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("a refused import left the site: %v", err)
	}
	if err := s.DeleteSite(ctx, "other"); err != nil {
		t.Fatal(err)
	}
	if err := s.ImportSite(ctx, rec); err != nil {
		t.Fatal(err)
	}
	got, err := s.SiteRecord(ctx, "blog")
	if err != nil {
		t.Fatal(err)
	}
	if got.Site.Spec.Domain != spec.Domain || got.Site.Params["X"] != "1" || got.Site.Plan != spec.Plan || len(got.Site.Aliases) != 1 ||
		got.Site.Rendered["docker-compose.yml"] != "abc" || len(got.Forwards) != 1 || got.Forwards[0].HostPort != f.HostPort ||
		len(got.Keys) != 1 || got.Keys[0].Comment != "me" {
		t.Errorf("imported record differs: %+v", got)
	}
	if err := s.ImportSite(ctx, rec); !errors.Is(err, ErrSiteExists) {
		t.Errorf("second import: %v", err)
	}
}

func TestVacuumInto(t *testing.T) {
	s := open(t)
	ctx := context.Background()
	if err := s.CreateSite(ctx, site.Spec{Name: "blog", Template: "static", Owner: "alice", Domain: "blog.example.org"}); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "copy.db")
	if err := s.VacuumInto(ctx, path); err != nil {
		t.Fatal(err)
	}
	c, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.GetSite(ctx, "blog"); err != nil {
		t.Errorf("the copy lacks the site: %v", err)
	}
	if err := s.VacuumInto(ctx, path); err == nil {
		t.Error("VACUUM INTO over an existing file succeeded")
	}
}
