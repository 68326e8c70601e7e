package store

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestPruneOps(t *testing.T) {
	ctx := context.Background()
	s := open(t)
	old := time.Now().Add(-200 * 24 * time.Hour)
	recent := time.Now().Add(-time.Hour)
	mk := func(state string, at time.Time) int64 {
		t.Helper()
		id, err := s.EnqueueOp(ctx, Operation{Kind: "up", Site: "a", User: "cli:root"})
		if err != nil {
			t.Fatal(err)
		}
		fin := ""
		if state == OpDone || state == OpFailed {
			fin = ts(at)
		}
		if _, err := s.db.ExecContext(ctx, `UPDATE operations SET state = ?, created_at = ?, started_at = ?, finished_at = ? WHERE id = ?`,
			state, ts(at), ts(at), fin, id); err != nil {
			t.Fatal(err)
		}
		return id
	}
	oldDone, oldFailed := mk(OpDone, old), mk(OpFailed, old)
	oldRunning, oldQueued := mk(OpRunning, old), mk(OpQueued, old)
	newDone := mk(OpDone, recent)
	before := time.Now().Add(-180 * 24 * time.Hour)

	n, err := s.PruneOps(ctx, before, true)
	if err != nil || n != 2 {
		t.Fatalf("dry run: %d, %v; want 2", n, err)
	}
	if _, err := s.GetOp(ctx, oldDone); err != nil {
		t.Fatalf("a dry run deleted: %v", err)
	}
	if n, err = s.PruneOps(ctx, before, false); err != nil || n != 2 {
		t.Fatalf("prune: %d, %v; want 2", n, err)
	}
	for _, id := range []int64{oldDone, oldFailed} {
		if _, err := s.GetOp(ctx, id); !errors.Is(err, ErrNotFound) {
			t.Errorf("old ended op %d kept: %v", id, err)
		}
	}
	for _, id := range []int64{oldRunning, oldQueued, newDone} {
		if _, err := s.GetOp(ctx, id); err != nil {
			t.Errorf("op %d deleted: %v", id, err)
		}
	}
}
