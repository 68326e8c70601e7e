package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// ErrShardsFull is returned when every front shard holds its capacity.
var ErrShardsFull = errors.New("every front shard is full")

// AssignShard gives the site the lowest front shard (0..maxShard) holding
// fewer than capacity other sites, stores it and returns it. The
// transaction takes the write lock as it begins (_txlock=immediate), so
// two creations at once never both take a shard's last place. A site
// created but not yet assigned counts on shard 0, where its row starts:
// a race can only skip a shard with room, never overfill one.
func (s *Store) AssignShard(ctx context.Context, name string, capacity, maxShard int) (int, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback()
	var exists bool
	if err := tx.QueryRowContext(ctx, `SELECT EXISTS(SELECT 1 FROM sites WHERE name = ?)`, name).Scan(&exists); err != nil {
		return 0, fmt.Errorf("site %q: front shard: %w", name, err)
	}
	if !exists {
		return 0, fmt.Errorf("site %q: %w", name, ErrNotFound)
	}
	counts, err := shardCounts(ctx, tx, name)
	if err != nil {
		return 0, fmt.Errorf("site %q: front shard: %w", name, err)
	}
	k, ok := LowestWithRoom(counts, capacity, maxShard)
	if !ok {
		return 0, fmt.Errorf("site %q: %w (%d shards of %d sites)", name, ErrShardsFull, maxShard+1, capacity)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE sites SET front_shard = ? WHERE name = ?`, k, name); err != nil {
		return 0, fmt.Errorf("site %q: front shard: %w", name, err)
	}
	return k, tx.Commit()
}

// shardCounts counts the sites on each shard, but the one named.
func shardCounts(ctx context.Context, tx *sql.Tx, except string) (map[int]int, error) {
	rows, err := tx.QueryContext(ctx, `SELECT front_shard, COUNT(*) FROM sites WHERE name <> ? GROUP BY front_shard`, except)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	counts := map[int]int{}
	for rows.Next() {
		var k, n int
		if err := rows.Scan(&k, &n); err != nil {
			return nil, err
		}
		counts[k] = n
	}
	return counts, rows.Err()
}

// LowestWithRoom is the lowest shard in 0..maxShard with fewer than
// capacity sites; false when there is none.
func LowestWithRoom(counts map[int]int, capacity, maxShard int) (int, bool) {
	for k := 0; k <= maxShard; k++ {
		if counts[k] < capacity {
			return k, true
		}
	}
	return 0, false
}

// FrontShard is the site's front shard, or ErrNotFound.
func (s *Store) FrontShard(ctx context.Context, name string) (int, error) {
	var k int
	err := s.db.QueryRowContext(ctx, `SELECT front_shard FROM sites WHERE name = ?`, name).Scan(&k)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, fmt.Errorf("site %q: %w", name, ErrNotFound)
	}
	if err != nil {
		return 0, fmt.Errorf("site %q: front shard: %w", name, err)
	}
	return k, nil
}
