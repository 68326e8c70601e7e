package store

import (
	"context"
	"fmt"
)

// Ping checks that the database answers a query, for the panel's /readyz.
func (s *Store) Ping(ctx context.Context) error {
	var one int
	if err := s.db.QueryRowContext(ctx, `SELECT 1`).Scan(&one); err != nil {
		return fmt.Errorf("store: %w", err)
	}
	return nil
}

// OpCounts counts the operations in each state (queued, running, done,
// failed), for the metrics endpoint: one indexed query, whatever the
// number of operations. Every state is in the map, zero when none.
func (s *Store) OpCounts(ctx context.Context) (map[string]int, error) {
	out := map[string]int{OpQueued: 0, OpRunning: 0, OpDone: 0, OpFailed: 0}
	rows, err := s.db.QueryContext(ctx, `SELECT state, COUNT(*) FROM operations GROUP BY state`)
	if err != nil {
		return nil, fmt.Errorf("count operations: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var state string
		var n int
		if err := rows.Scan(&state, &n); err != nil {
			return nil, fmt.Errorf("count operations: %w", err)
		}
		out[state] = n
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("count operations: %w", err)
	}
	return out, nil
}
