package store

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/darse/darse/internal/render"
)

func TestUsers(t *testing.T) {
	ctx := context.Background()
	s := open(t)
	if ok, err := s.HasAdmin(ctx); err != nil || ok {
		t.Fatalf("fresh store HasAdmin = %v, %v", ok, err)
	}
	if err := s.CreateUser(ctx, User{Name: "root", Hash: "h", Admin: true, Quota: DefaultQuota}); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateUser(ctx, User{Name: "root", Hash: "h"}); !errors.Is(err, ErrUserExists) {
		t.Fatalf("duplicate member: %v", err)
	}
	if err := s.CreateUser(ctx, User{Name: "alice", Hash: "h", Quota: DefaultQuota}); err != nil {
		t.Fatal(err)
	}
	if ok, _ := s.HasAdmin(ctx); !ok {
		t.Fatal("HasAdmin false with an admin")
	}
	// The last admin stays an admin and enabled.
	if err := s.SetAdmin(ctx, "root", false); !errors.Is(err, ErrLastAdmin) {
		t.Fatalf("revoke last admin: %v", err)
	}
	if err := s.SetDisabled(ctx, "root", true); !errors.Is(err, ErrLastAdmin) {
		t.Fatalf("disable last admin: %v", err)
	}
	if err := s.SetAdmin(ctx, "alice", true); err != nil {
		t.Fatal(err)
	}
	if err := s.SetDisabled(ctx, "root", true); err != nil {
		t.Fatalf("disable an admin while another remains: %v", err)
	}
	if err := s.SetQuota(ctx, "alice", 5); err != nil {
		t.Fatal(err)
	}
	u, err := s.GetUser(ctx, "alice")
	if err != nil || !u.Admin || u.Quota != 5 || u.Disabled {
		t.Fatalf("alice = %+v, %v", u, err)
	}
	if err := s.SetQuota(ctx, "nobody", 1); !errors.Is(err, ErrNotFound) {
		t.Fatalf("quota of unknown member: %v", err)
	}
	us, _ := s.ListUsers(ctx)
	if len(us) != 2 || us[0].Name != "alice" || !us[1].Disabled {
		t.Fatalf("ListUsers = %+v", us)
	}
}

func TestSessions(t *testing.T) {
	ctx := context.Background()
	s := open(t)
	now := time.Now()
	s.CreateUser(ctx, User{Name: "alice", Hash: "h", Admin: true})
	s.CreateUser(ctx, User{Name: "bob", Hash: "h"})
	for _, se := range []Session{
		{TokenHash: "a1", User: "alice", CSRF: "c", CreatedAt: now, ExpiresAt: now.Add(time.Hour)},
		{TokenHash: "a2", User: "alice", CSRF: "c", CreatedAt: now, ExpiresAt: now.Add(-time.Second)},
		{TokenHash: "b1", User: "bob", CSRF: "c", CreatedAt: now, ExpiresAt: now.Add(time.Hour)},
	} {
		if err := s.CreateSession(ctx, se); err != nil {
			t.Fatal(err)
		}
	}
	se, u, err := s.GetSession(ctx, "a1", now)
	if err != nil || se.User != "alice" || !u.Admin || se.CSRF != "c" {
		t.Fatalf("GetSession = %+v %+v %v", se, u, err)
	}
	if _, _, err := s.GetSession(ctx, "a2", now); !errors.Is(err, ErrNotFound) {
		t.Fatalf("expired session: %v", err)
	}
	// Disabling bob ends his session; a new password ends alice's.
	s.SetDisabled(ctx, "bob", true)
	if _, _, err := s.GetSession(ctx, "b1", now); !errors.Is(err, ErrNotFound) {
		t.Fatalf("disabled member's session: %v", err)
	}
	s.SetPassword(ctx, "alice", "h2")
	if _, _, err := s.GetSession(ctx, "a1", now); !errors.Is(err, ErrNotFound) {
		t.Fatalf("session survived a password change: %v", err)
	}
}

func TestSetupToken(t *testing.T) {
	ctx := context.Background()
	s := open(t)
	now := time.Now()
	if err := s.CreateSetupToken(ctx, "old", now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	s.CreateSetupToken(ctx, "tok", now.Add(time.Hour))
	if ok, _ := s.SetupTokenValid(ctx, "old", now); ok {
		t.Fatal("a new link leaves the old one valid")
	}
	if err := s.ClaimSetup(ctx, "tok", now.Add(2*time.Hour), User{Name: "root", Hash: "h"}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("expired link: %v", err)
	}
	// A failed claim does not consume the link.
	if err := s.CreateUser(ctx, User{Name: "carol", Hash: "h"}); err != nil {
		t.Fatal(err)
	}
	if err := s.ClaimSetup(ctx, "tok", now, User{Name: "carol", Hash: "h"}); !errors.Is(err, ErrUserExists) {
		t.Fatalf("claim with a taken name: %v", err)
	}
	if ok, _ := s.SetupTokenValid(ctx, "tok", now); !ok {
		t.Fatal("failed claim consumed the link")
	}
	if err := s.ClaimSetup(ctx, "tok", now, User{Name: "root", Hash: "h"}); err != nil {
		t.Fatal(err)
	}
	if u, err := s.GetUser(ctx, "root"); err != nil || !u.Admin {
		t.Fatalf("setup admin = %+v, %v", u, err)
	}
	if err := s.ClaimSetup(ctx, "tok", now, User{Name: "eve", Hash: "h"}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second use of the link: %v", err)
	}
	// With an admin, no link is stored any more.
	if err := s.CreateSetupToken(ctx, "tok2", now.Add(time.Hour)); !errors.Is(err, ErrAdminExists) {
		t.Fatalf("setup link with an admin present: %v", err)
	}
	if err := s.ClaimSetup(ctx, "tok2", now, User{Name: "eve", Hash: "h"}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("claim with an admin present: %v", err)
	}
}

func TestOperations(t *testing.T) {
	ctx := context.Background()
	s := open(t)
	s.CreateSite(ctx, spec("blog", "blog.example.org")) // owned by alice
	id1, err := s.EnqueueCreate(ctx, Operation{Kind: "create", Site: "shop", Owner: "alice", User: "alice"}, 3)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.EnqueueCreate(ctx, Operation{Kind: "create", Site: "shop", Owner: "alice", User: "alice"}, 3); !errors.Is(err, ErrPending) {
		t.Fatalf("second pending create of one name: %v", err)
	}
	if _, err := s.EnqueueCreate(ctx, Operation{Kind: "create", Site: "wiki", Owner: "alice", User: "alice"}, 3); err != nil {
		t.Fatal(err)
	}
	// blog + shop + wiki pending = 3: the fourth is over quota, with nothing recorded.
	if _, err := s.EnqueueCreate(ctx, Operation{Kind: "create", Site: "news", Owner: "alice", User: "alice"}, 3); !errors.Is(err, ErrQuota) {
		t.Fatalf("over quota: %v", err)
	}
	if _, err := s.EnqueueCreate(ctx, Operation{Kind: "create", Site: "news", Owner: "alice", User: "root"}, -1); err != nil {
		t.Fatalf("no quota: %v", err)
	}
	id4, _ := s.EnqueueOp(ctx, Operation{Kind: "stop", Site: "shop", User: "alice"})

	// Claims go in order, one running operation per site.
	claimed := []int64{}
	for {
		op, err := s.ClaimOp(ctx)
		if errors.Is(err, ErrNotFound) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if op.State != OpRunning || op.StartedAt.IsZero() {
			t.Fatalf("claimed %+v", op)
		}
		claimed = append(claimed, op.ID)
	}
	if len(claimed) != 3 || claimed[0] != id1 {
		t.Fatalf("claimed %v: the stop of shop must wait for its create", claimed)
	}
	if err := s.FinishOp(ctx, id1, errors.New("boom")); err != nil {
		t.Fatal(err)
	}
	op, err := s.ClaimOp(ctx)
	if err != nil || op.ID != id4 {
		t.Fatalf("after the create finished: %+v, %v", op, err)
	}
	s.FinishOp(ctx, id4, nil)
	got, _ := s.GetOp(ctx, id1)
	if got.State != OpFailed || got.Error != "boom" || got.FinishedAt.IsZero() {
		t.Fatalf("failed op = %+v", got)
	}
	running, _ := s.ListOps(ctx, OpFilter{States: []string{OpRunning}})
	if len(running) != 2 {
		t.Fatalf("running = %d", len(running))
	}
	mine, _ := s.ListOps(ctx, OpFilter{Owner: "alice"})
	if len(mine) != 4 { // news, asked by root, is created for her
		t.Fatalf("alice's operations = %d", len(mine))
	}
}

func TestKeysAndForwards(t *testing.T) {
	ctx := context.Background()
	s := open(t)
	s.CreateSite(ctx, spec("blog", "blog.example.org"))
	s.CreateSite(ctx, spec("shop", "shop.example.org"))
	if _, err := s.AddKey(ctx, SSHKey{Site: "blog", Fingerprint: "SHA256:x", Key: "ssh-ed25519 AAA"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AddKey(ctx, SSHKey{Site: "blog", Fingerprint: "SHA256:x", Key: "ssh-ed25519 AAA"}); !errors.Is(err, ErrKeyExists) {
		t.Fatalf("duplicate key: %v", err)
	}
	if _, err := s.AddKey(ctx, SSHKey{Site: "nope", Fingerprint: "SHA256:x"}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("key of unknown site: %v", err)
	}
	if err := s.DeleteKey(ctx, "shop", "SHA256:x"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("delete another site's key: %v", err)
	}

	add := func(site string, port int) (*Forward, error) {
		return s.AddForward(ctx, Forward{Site: site, Service: "web", ContainerPort: port})
	}
	a, _ := add("blog", 22)
	b, _ := add("shop", 22)
	c, _ := add("blog", 8080)
	if a.HostPort != 40000 || b.HostPort != 40001 || c.HostPort != 40002 {
		t.Fatalf("ports %d %d %d", a.HostPort, b.HostPort, c.HostPort)
	}
	if _, err := add("blog", 22); !errors.Is(err, ErrForwardExists) {
		t.Fatalf("duplicate forward: %v", err)
	}
	s.DeleteForward(ctx, "shop", 40001)
	if d, _ := add("shop", 2222); d.HostPort != 40001 {
		t.Fatalf("freed port not reused: %d", d.HostPort)
	}
	// Fill the range: the next one is refused.
	if _, err := s.db.ExecContext(ctx, `WITH RECURSIVE p(n) AS (SELECT 40003 UNION ALL SELECT n+1 FROM p WHERE n < 50000)
		INSERT INTO forwards(site, service, container_port, host_port, created_at) SELECT 'shop', 'web', n - 30000, n, '' FROM p`); err != nil {
		t.Fatal(err)
	}
	if _, err := add("blog", 1); !errors.Is(err, ErrNoFreePort) {
		t.Fatalf("full range: %v", err)
	}
	// Removing the site removes its keys and forwards.
	s.DeleteSite(ctx, "blog")
	if ks, _ := s.ListKeys(ctx, "blog"); len(ks) != 0 {
		t.Fatal("keys survived their site")
	}
	if fs, _ := s.ListForwards(ctx, "blog"); len(fs) != 0 {
		t.Fatal("forwards survived their site")
	}
}

func TestSummariesAndManifests(t *testing.T) {
	ctx := context.Background()
	s := open(t)
	s.CreateSite(ctx, spec("blog", "blog.example.org"))
	s.CreateSite(ctx, spec("shop", "shop.example.org"))
	s.AddDomain(ctx, "shop", "www.shop.example.net")
	s.SetRendered(ctx, "blog", render.Manifest{".env": "abc"})
	sums, err := s.ListSiteSummaries(ctx)
	if err != nil || len(sums) != 2 || sums[1].Domain != "shop.example.org" || len(sums[1].Aliases) != 1 || sums[0].Owner != "alice" {
		t.Fatalf("summaries %+v, %v", sums, err)
	}
	ms, err := s.Manifests(ctx, []string{"blog", "shop", "none"})
	if err != nil || ms["blog"][".env"] != "abc" || len(ms["shop"]) != 0 || len(ms) != 2 {
		t.Fatalf("manifests %v, %v", ms, err)
	}
}
