package store

import (
	"context"
	"fmt"
	"time"
)

// PruneOps deletes the operations that ended (done or failed) before
// before, and returns how many; with dryRun it only counts them. Queued and
// running operations are never touched, however old: a worker may still
// resume them.
func (s *Store) PruneOps(ctx context.Context, before time.Time, dryRun bool) (int64, error) {
	const where = ` FROM operations WHERE state IN (?, ?) AND finished_at != '' AND finished_at < ?`
	args := []any{OpDone, OpFailed, ts(before)}
	if dryRun {
		var n int64
		if err := s.db.QueryRowContext(ctx, `SELECT COUNT(*)`+where, args...).Scan(&n); err != nil {
			return 0, fmt.Errorf("count old operations: %w", err)
		}
		return n, nil
	}
	res, err := s.db.ExecContext(ctx, `DELETE`+where, args...)
	if err != nil {
		return 0, fmt.Errorf("delete old operations: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("delete old operations: %w", err)
	}
	return n, nil
}
