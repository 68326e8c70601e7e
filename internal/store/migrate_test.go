package store

import (
	"context"
	"database/sql"
	"path/filepath"
	"sync"
	"testing"
)

// The panel and a CLI run may open a new database at the same moment:
// each migration is applied once and every opener gets the full schema.
func TestConcurrentOpensMigrateOnce(t *testing.T) {
	path := filepath.Join(t.TempDir(), "darse.db")
	var wg sync.WaitGroup
	errs := make([]error, 6)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := Open(context.Background(), path)
			if err == nil {
				_, err = s.ListSites(context.Background())
				s.Close()
			}
			errs[i] = err
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("opener %d: %v", i, err)
		}
	}
}

// Operations recorded before owner was a column get theirs from the site
// they act on, or from a creation's arguments when the site is not stored.
func TestOwnerMigration(t *testing.T) {
	ctx := context.Background()
	path, db := oldDatabase(t, 3)
	now := "2024-05-01T10:00:00.000000Z"
	_, err := db.Exec(`PRAGMA user_version = 3;
		INSERT INTO sites(name, template, owner, params, plan, created_at, updated_at) VALUES('blog', 'static', 'alice', '{}', '{}', ?, ?);
		INSERT INTO operations(kind, site, user, args, state, created_at) VALUES('stop', 'blog', 'root', '{}', 'done', ?);
		INSERT INTO operations(kind, site, user, args, state, created_at) VALUES('create', 'shop', 'bob', '{"template":"static","owner":"bob"}', 'queued', ?);
		INSERT INTO operations(kind, site, user, args, state, created_at) VALUES('up', 'gone', 'root', '{}', 'done', ?)`, now, now, now, now, now)
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for id, want := range map[int64]string{1: "alice", 2: "bob", 3: ""} {
		op, err := s.GetOp(ctx, id)
		if err != nil || op.Owner != want {
			t.Errorf("operation %d after migration: %+v, %v; want owner %q", id, op, err, want)
		}
	}
	if list, err := s.ListOps(ctx, OpFilter{Owner: "bob"}); err != nil || len(list) != 1 || list[0].Site != "shop" {
		t.Errorf("bob's operations: %+v, %v", list, err)
	}
}

// oldDatabase makes a database with only the first n migrations applied
// (their schema, not their fixes), as an older darse left it.
func oldDatabase(t *testing.T, n int) (string, *sql.DB) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "darse.db")
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range migrations[:n] {
		if _, err := db.Exec(m.SQL); err != nil {
			t.Fatal(err)
		}
	}
	return path, db
}
