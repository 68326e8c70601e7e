package store

import (
	"context"
	"errors"
	"maps"
	"testing"
)

func TestOpCounts(t *testing.T) {
	ctx := context.Background()
	s := open(t)
	if err := s.Ping(ctx); err != nil {
		t.Fatalf("ping an open store: %v", err)
	}
	got, err := s.OpCounts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string]int{OpQueued: 0, OpRunning: 0, OpDone: 0, OpFailed: 0}; !maps.Equal(got, want) {
		t.Fatalf("empty store: %v, want %v", got, want)
	}
	for i := range 4 {
		if _, err := s.EnqueueOp(ctx, Operation{Kind: "up", Site: "a", User: "cli:root"}); err != nil {
			t.Fatalf("enqueue %d: %v", i, err)
		}
	}
	// One done, one failed, one running, one still queued.
	for _, cause := range []error{nil, errors.New("boom"), errors.New("")} {
		op, err := s.ClaimOp(ctx)
		if err != nil || op == nil {
			t.Fatalf("claim: %v, %v", op, err)
		}
		if cause != nil && cause.Error() == "" {
			break // leave it running
		}
		if err := s.FinishOp(ctx, op.ID, cause); err != nil {
			t.Fatal(err)
		}
	}
	got, err = s.OpCounts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string]int{OpQueued: 1, OpRunning: 1, OpDone: 1, OpFailed: 1}; !maps.Equal(got, want) {
		t.Fatalf("counts %v, want %v", got, want)
	}
	s.Close()
	if err := s.Ping(ctx); err == nil {
		t.Fatal("ping a closed store: no error")
	}
}
