package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
)

func TestLowestWithRoom(t *testing.T) {
	cases := []struct {
		name     string
		counts   map[int]int
		capacity int
		max      int
		want     int
		ok       bool
	}{
		{"empty host", map[int]int{}, 2, 2, 0, true},
		{"room on 0", map[int]int{0: 1}, 2, 2, 0, true},
		{"0 full", map[int]int{0: 2}, 2, 2, 1, true},
		{"a full shard skipped, a gap filled", map[int]int{0: 2, 1: 1, 2: 2}, 2, 2, 1, true},
		{"the lowest gap", map[int]int{0: 2, 1: 2, 2: 0, 3: 1}, 2, 3, 2, true},
		{"0 over capacity (an older host)", map[int]int{0: 1000}, 480, 64, 1, true},
		{"all full", map[int]int{0: 2, 1: 2, 2: 2}, 2, 2, 0, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, ok := LowestWithRoom(c.counts, c.capacity, c.max)
			if got != c.want || ok != c.ok {
				t.Fatalf("LowestWithRoom(%v, %d) = %d, %v; want %d, %v", c.counts, c.capacity, got, ok, c.want, c.ok)
			}
		})
	}
}

// Sites fill shard after shard; a removed site's place is taken again;
// an assigned site keeps its shard; when all are full creation is refused.
func TestAssignShard(t *testing.T) {
	ctx := context.Background()
	s := open(t)
	assign := func(name string) (int, error) {
		if err := s.CreateSite(ctx, spec(name, name+".example.org")); err != nil {
			t.Fatal(err)
		}
		return s.AssignShard(ctx, name, 2, 2)
	}
	for i, want := range []int{0, 0, 1, 1, 2, 2} {
		name := fmt.Sprintf("s%d", i)
		if k, err := assign(name); err != nil || k != want {
			t.Fatalf("site %s: shard %d, %v; want %d", name, k, err, want)
		}
		if k, err := s.FrontShard(ctx, name); err != nil || k != want {
			t.Fatalf("site %s stored on shard %d, %v; want %d", name, k, err, want)
		}
	}
	if _, err := assign("full"); !errors.Is(err, ErrShardsFull) {
		t.Fatalf("all shards full: %v, want ErrShardsFull", err)
	}
	if err := s.DeleteSite(ctx, "full"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteSite(ctx, "s2"); err != nil {
		t.Fatal(err)
	}
	if k, err := assign("again"); err != nil || k != 1 {
		t.Fatalf("after s2 left shard 1: shard %d, %v; want 1", k, err)
	}
	// Assigning again (a site being re-rendered) counts the site itself
	// out: it stays where it is.
	if k, err := s.AssignShard(ctx, "s5", 2, 2); err != nil || k != 2 {
		t.Fatalf("s5 again: shard %d, %v; want 2", k, err)
	}
	if _, err := s.AssignShard(ctx, "nobody", 2, 2); !errors.Is(err, ErrNotFound) {
		t.Fatalf("no such site: %v", err)
	}
	if _, err := s.FrontShard(ctx, "nobody"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("no such site: %v", err)
	}
}

// Sites of a host older than shards were all on the front network: the
// migration puts them on shard 0 and nothing moves.
func TestShardMigration(t *testing.T) {
	ctx := context.Background()
	n := slices.IndexFunc(migrations, func(m migration) bool { return strings.Contains(m.SQL, "front_shard") })
	if n < 0 {
		t.Fatal("no front_shard migration")
	}
	path, db := oldDatabase(t, n)
	now := "2024-05-01T10:00:00.000000Z"
	_, err := db.Exec(fmt.Sprintf(`PRAGMA user_version = %d;
		INSERT INTO sites(name, template, owner, params, plan, created_at, updated_at) VALUES('blog', 'static', 'alice', '{}', '{}', ?, ?)`, n), now, now)
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if k, err := s.FrontShard(ctx, "blog"); err != nil || k != 0 {
		t.Fatalf("blog after migration: shard %d, %v; want 0", k, err)
	}
}
