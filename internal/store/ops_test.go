package store

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestClaimOpID(t *testing.T) {
	ctx := context.Background()
	s := open(t)
	a1, _ := s.EnqueueOp(ctx, Operation{Kind: "up", Site: "a", User: "cli:root"})
	a2, _ := s.EnqueueOp(ctx, Operation{Kind: "stop", Site: "a", User: "cli:root"})
	b1, _ := s.EnqueueOp(ctx, Operation{Kind: "up", Site: "b", User: "alice"})

	// a2 waits for a1, queued before it on the same site.
	if _, err := s.ClaimOpID(ctx, a2); !errors.Is(err, ErrNotFound) {
		t.Fatalf("claim a2 before a1: %v", err)
	}
	op, err := s.ClaimOpID(ctx, a1)
	if err != nil {
		t.Fatal(err)
	}
	if op.ID != a1 || op.State != OpRunning || op.StartedAt.IsZero() || !op.HeartbeatAt.Equal(op.StartedAt) {
		t.Fatalf("claimed %+v", op)
	}
	// Now a2 waits for a1 to finish; a1 cannot be claimed twice; b is free.
	if _, err := s.ClaimOpID(ctx, a2); !errors.Is(err, ErrNotFound) {
		t.Fatalf("claim a2 while a1 runs: %v", err)
	}
	if _, err := s.ClaimOpID(ctx, a1); !errors.Is(err, ErrNotFound) {
		t.Fatalf("claim a1 twice: %v", err)
	}
	if _, err := s.ClaimOpID(ctx, 999); !errors.Is(err, ErrNotFound) {
		t.Fatalf("claim a missing operation: %v", err)
	}
	if op, err := s.ClaimOpID(ctx, b1); err != nil || op.Site != "b" {
		t.Fatalf("claim b1: %+v, %v", op, err)
	}
	if err := s.FinishOp(ctx, a1, nil); err != nil {
		t.Fatal(err)
	}
	if op, err := s.ClaimOpID(ctx, a2); err != nil || op.ID != a2 {
		t.Fatalf("claim a2 after a1: %+v, %v", op, err)
	}
	// ClaimOp finds nothing left: each was claimed once.
	if op, err := s.ClaimOp(ctx); !errors.Is(err, ErrNotFound) {
		t.Fatalf("ClaimOp after ClaimOpID: %+v, %v", op, err)
	}
}

func TestHeartbeatAndTakeOver(t *testing.T) {
	ctx := context.Background()
	s := open(t)
	id, _ := s.EnqueueOp(ctx, Operation{Kind: "up", Site: "a", User: "alice"})
	if err := s.Heartbeat(ctx, id); !errors.Is(err, ErrNotFound) {
		t.Fatalf("heartbeat of a queued operation: %v", err)
	}
	claimed, err := s.ClaimOp(ctx)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Millisecond)
	if err := s.Heartbeat(ctx, id); err != nil {
		t.Fatal(err)
	}
	op, _ := s.GetOp(ctx, id)
	if !op.HeartbeatAt.After(claimed.HeartbeatAt) {
		t.Fatalf("heartbeat %v did not move past %v", op.HeartbeatAt, claimed.HeartbeatAt)
	}

	// Stale only before a cut-off later than the last heartbeat.
	if stale, err := s.StaleOps(ctx, op.HeartbeatAt); err != nil || len(stale) != 0 {
		t.Fatalf("stale before its heartbeat: %v, %v", stale, err)
	}
	cut := time.Now()
	if stale, err := s.StaleOps(ctx, cut); err != nil || len(stale) != 1 || stale[0].ID != id {
		t.Fatalf("stale after its heartbeat: %v, %v", stale, err)
	}
	// One taker only: the first refreshes the heartbeat past the cut-off.
	taken, err := s.TakeOverOp(ctx, id, cut)
	if err != nil || taken.ID != id || !taken.HeartbeatAt.After(op.HeartbeatAt) {
		t.Fatalf("take over: %+v, %v", taken, err)
	}
	if _, err := s.TakeOverOp(ctx, id, cut); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second take over: %v", err)
	}
	s.FinishOp(ctx, id, nil)
	if err := s.Heartbeat(ctx, id); !errors.Is(err, ErrNotFound) {
		t.Fatalf("heartbeat of a finished operation: %v", err)
	}
	if _, err := s.TakeOverOp(ctx, id, time.Now().Add(time.Hour)); !errors.Is(err, ErrNotFound) {
		t.Fatalf("take over a finished operation: %v", err)
	}
}

func TestCancelOp(t *testing.T) {
	ctx := context.Background()
	s := open(t)
	q, _ := s.EnqueueOp(ctx, Operation{Kind: "up", Site: "a", User: "alice"})
	r, _ := s.EnqueueOp(ctx, Operation{Kind: "up", Site: "b", User: "alice"})
	s.ClaimOpID(ctx, r)
	if err := s.CancelOp(ctx, q, errors.New("cancelled before it began")); err != nil {
		t.Fatal(err)
	}
	if op, _ := s.GetOp(ctx, q); op.State != OpFailed || op.Error != "cancelled before it began" || op.FinishedAt.IsZero() {
		t.Fatalf("cancelled op = %+v", op)
	}
	if err := s.CancelOp(ctx, r, errors.New("no")); !errors.Is(err, ErrNotFound) {
		t.Fatalf("cancel a running op: %v", err)
	}
	if op, _ := s.GetOp(ctx, r); op.State != OpRunning {
		t.Fatalf("running op after a refused cancel: %+v", op)
	}
}

// An operation running when the lease migration is applied counts from its start.
func TestHeartbeatMigration(t *testing.T) {
	ctx := context.Background()
	path, db := oldDatabase(t, 2)
	start := "2024-05-01T10:00:00.000000Z"
	_, err := db.Exec(`PRAGMA user_version = 2;
		INSERT INTO operations(kind, site, user, state, created_at, started_at) VALUES('up', 'a', 'alice', 'running', ?, ?);
		INSERT INTO operations(kind, site, user, state, created_at) VALUES('up', 'b', 'alice', 'queued', ?)`, start, start, start)
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	stale, err := s.StaleOps(ctx, time.Now())
	if err != nil || len(stale) != 1 || stale[0].Site != "a" || !stale[0].HeartbeatAt.Equal(stale[0].StartedAt) {
		t.Fatalf("stale after migration: %+v, %v", stale, err)
	}
	if op, _ := s.GetOp(ctx, 2); !op.HeartbeatAt.IsZero() {
		t.Fatalf("queued op got a heartbeat: %+v", op)
	}
}
