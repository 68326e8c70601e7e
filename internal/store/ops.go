package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Operation states: queued → running → done | failed.
const (
	OpQueued  = "queued"
	OpRunning = "running"
	OpDone    = "done"
	OpFailed  = "failed"
)

// Errors about operations.
var (
	ErrQuota   = errors.New("site quota reached")
	ErrPending = errors.New("an operation creating this site is already pending")
)

// Operation is one recorded action on a site: recorded first, carried out
// by a worker after, so a crash in between leaves a row to finish.
type Operation struct {
	ID         int64
	Kind       string
	Site       string
	Owner      string          // the member it acts for: the site's owner (or owner-to-be)
	User       string          // who asked
	Args       json.RawMessage // kind-specific arguments
	State      string
	Error      string
	CreatedAt  time.Time
	StartedAt  time.Time // zero while queued
	FinishedAt time.Time // zero until done or failed
	// HeartbeatAt is refreshed by the process running the operation: once
	// it is older than a lease, that process is taken to have died.
	HeartbeatAt time.Time
}

const opColumns = `id, kind, site, owner, user, args, state, error, created_at, started_at, finished_at, heartbeat_at`

func scanOp(r scanner) (*Operation, error) {
	var o Operation
	var args, c, st, f, hb string
	if err := r.Scan(&o.ID, &o.Kind, &o.Site, &o.Owner, &o.User, &args, &o.State, &o.Error, &c, &st, &f, &hb); err != nil {
		return nil, err
	}
	o.Args = json.RawMessage(args)
	o.CreatedAt, o.StartedAt, o.FinishedAt, o.HeartbeatAt = parseTS(c), parseTS(st), parseTS(f), parseTS(hb)
	return &o, nil
}

func argsText(a json.RawMessage) string {
	if len(a) == 0 {
		return "{}"
	}
	return string(a)
}

// EnqueueOp records a queued operation and returns its id.
func (s *Store) EnqueueOp(ctx context.Context, op Operation) (int64, error) {
	res, err := s.db.ExecContext(ctx, `INSERT INTO operations(kind, site, owner, user, args, state, created_at) VALUES(?,?,?,?,?,?,?)`,
		op.Kind, op.Site, op.Owner, op.User, argsText(op.Args), OpQueued, ts(time.Now()))
	if err != nil {
		return 0, fmt.Errorf("record operation %s %q: %w", op.Kind, op.Site, err)
	}
	return res.LastInsertId()
}

// EnqueueCreate records an operation creating a site for op.Owner, in one
// transaction with its checks: no other pending operation of its kind on
// the same name, and the owner's sites plus pending operations of its
// kind stay within quota (a negative quota means none). Two quick clicks
// cannot overrun the quota.
func (s *Store) EnqueueCreate(ctx context.Context, op Operation, quota int) (int64, error) {
	var pending int
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback()
	// A write first, so the transaction holds the write lock while it checks.
	res, err := tx.ExecContext(ctx, `INSERT INTO operations(kind, site, owner, user, args, state, created_at) VALUES(?,?,?,?,?,?,?)`,
		op.Kind, op.Site, op.Owner, op.User, argsText(op.Args), OpQueued, ts(time.Now()))
	if err != nil {
		return 0, fmt.Errorf("record operation %s %q: %w", op.Kind, op.Site, err)
	}
	id, err := res.LastInsertId()
	if err != nil {
		return 0, err
	}
	err = tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM operations WHERE kind = ? AND site = ? AND state IN ('queued','running') AND id <> ?`,
		op.Kind, op.Site, id).Scan(&pending)
	if err != nil {
		return 0, err
	}
	if pending > 0 {
		return 0, fmt.Errorf("site %q: %w", op.Site, ErrPending)
	}
	if quota >= 0 {
		var owned int
		err = tx.QueryRowContext(ctx, `SELECT (SELECT COUNT(*) FROM sites WHERE owner = ?) +
			(SELECT COUNT(*) FROM operations WHERE kind = ? AND state IN ('queued','running') AND owner = ? AND id <> ?)`,
			op.Owner, op.Kind, op.Owner, id).Scan(&owned)
		if err != nil {
			return 0, err
		}
		if owned >= quota {
			return 0, fmt.Errorf("member %q may own %d sites: %w", op.Owner, quota, ErrQuota)
		}
	}
	return id, tx.Commit()
}

// ClaimOp moves the oldest queued operation whose site has no running
// operation to running and returns it; ErrNotFound when there is none.
// Operations on one site thus run one at a time, in order.
func (s *Store) ClaimOp(ctx context.Context) (*Operation, error) {
	now := ts(time.Now())
	op, err := scanOp(s.db.QueryRowContext(ctx, `UPDATE operations SET state = 'running', started_at = ?, heartbeat_at = ?
		WHERE id = (SELECT q.id FROM operations q WHERE q.state = 'queued'
			AND NOT EXISTS (SELECT 1 FROM operations r WHERE r.site = q.site AND r.state = 'running')
			AND NOT EXISTS (SELECT 1 FROM operations e WHERE e.site = q.site AND e.state = 'queued' AND e.id < q.id)
			ORDER BY q.id LIMIT 1)
		RETURNING `+opColumns, now, now))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("queued operation: %w", ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("claim operation: %w", err)
	}
	return op, nil
}

// ClaimOpID moves the queued operation id to running and returns it, under
// ClaimOp's rule: no operation running on its site and none queued there
// before it. ErrNotFound when it cannot be claimed now (not queued any
// more, or waiting its turn).
func (s *Store) ClaimOpID(ctx context.Context, id int64) (*Operation, error) {
	now := ts(time.Now())
	op, err := scanOp(s.db.QueryRowContext(ctx, `UPDATE operations SET state = 'running', started_at = ?, heartbeat_at = ?
		WHERE id = ? AND state = 'queued'
			AND NOT EXISTS (SELECT 1 FROM operations r WHERE r.site = operations.site AND r.state = 'running')
			AND NOT EXISTS (SELECT 1 FROM operations e WHERE e.site = operations.site AND e.state = 'queued' AND e.id < operations.id)
		RETURNING `+opColumns, now, now, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("claim operation %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("claim operation %d: %w", id, err)
	}
	return op, nil
}

// Heartbeat records that the process running operation id is alive;
// ErrNotFound when the operation is not running.
func (s *Store) Heartbeat(ctx context.Context, id int64) error {
	res, err := s.db.ExecContext(ctx, `UPDATE operations SET heartbeat_at = ? WHERE id = ? AND state = 'running'`, ts(time.Now()), id)
	if err != nil {
		return fmt.Errorf("heartbeat of operation %d: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("running operation %d: %w", id, ErrNotFound)
	}
	return nil
}

// StaleOps returns the running operations whose last heartbeat is older
// than before, oldest first: their process is presumed dead.
func (s *Store) StaleOps(ctx context.Context, before time.Time) ([]*Operation, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+opColumns+` FROM operations
		WHERE state = 'running' AND heartbeat_at < ? ORDER BY id`, ts(before))
	if err != nil {
		return nil, fmt.Errorf("list stale operations: %w", err)
	}
	return scanOps(rows)
}

// scanOps reads every operation of rows and closes them.
func scanOps(rows *sql.Rows) ([]*Operation, error) {
	defer rows.Close()
	var out []*Operation
	for rows.Next() {
		op, err := scanOp(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, op)
	}
	return out, rows.Err()
}

// TakeOverOp makes the caller the process running operation id, provided
// it is still running with a heartbeat older than before: the heartbeat
// is refreshed in the same statement, so of two processes settling the
// same stale operation only one gets it. ErrNotFound otherwise.
func (s *Store) TakeOverOp(ctx context.Context, id int64, before time.Time) (*Operation, error) {
	op, err := scanOp(s.db.QueryRowContext(ctx, `UPDATE operations SET heartbeat_at = ?
		WHERE id = ? AND state = 'running' AND heartbeat_at < ?
		RETURNING `+opColumns, ts(time.Now()), id, ts(before)))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("stale operation %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("take over operation %d: %w", id, err)
	}
	return op, nil
}

// CancelOp fails operation id with cause if it is still queued (its asker
// gave up before it began); ErrNotFound when it is not queued any more.
func (s *Store) CancelOp(ctx context.Context, id int64, cause error) error {
	res, err := s.db.ExecContext(ctx, `UPDATE operations SET state = 'failed', error = ?, finished_at = ? WHERE id = ? AND state = 'queued'`,
		cause.Error(), ts(time.Now()), id)
	if err != nil {
		return fmt.Errorf("cancel operation %d: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("queued operation %d: %w", id, ErrNotFound)
	}
	return nil
}

// SetOpArgs replaces the arguments of an operation (a worker records what
// it found before acting, for whoever recovers after a crash).
func (s *Store) SetOpArgs(ctx context.Context, id int64, args json.RawMessage) error {
	_, err := s.db.ExecContext(ctx, `UPDATE operations SET args = ? WHERE id = ?`, argsText(args), id)
	return err
}

// FinishOp records the outcome: done when cause is nil, failed with its
// message otherwise.
func (s *Store) FinishOp(ctx context.Context, id int64, cause error) error {
	state, msg := OpDone, ""
	if cause != nil {
		state, msg = OpFailed, cause.Error()
	}
	_, err := s.db.ExecContext(ctx, `UPDATE operations SET state = ?, error = ?, finished_at = ? WHERE id = ?`,
		state, msg, ts(time.Now()), id)
	if err != nil {
		return fmt.Errorf("finish operation %d: %w", id, err)
	}
	return nil
}

// GetOp returns one operation or ErrNotFound.
func (s *Store) GetOp(ctx context.Context, id int64) (*Operation, error) {
	op, err := scanOp(s.db.QueryRowContext(ctx, `SELECT `+opColumns+` FROM operations WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("operation %d: %w", id, ErrNotFound)
	}
	return op, err
}

// OpFilter selects operations; zero fields match everything.
type OpFilter struct {
	Site   string
	Kind   string
	User   string
	Owner  string // operations acting for this member, or asked by them
	States []string
	Limit  int // default 100
}

// ListOps returns matching operations, newest first.
func (s *Store) ListOps(ctx context.Context, f OpFilter) ([]*Operation, error) {
	var where []string
	var args []any
	if f.Site != "" {
		where, args = append(where, `site = ?`), append(args, f.Site)
	}
	if f.Kind != "" {
		where, args = append(where, `kind = ?`), append(args, f.Kind)
	}
	if f.User != "" {
		where, args = append(where, `user = ?`), append(args, f.User)
	}
	if f.Owner != "" {
		where, args = append(where, `(user = ? OR owner = ?)`), append(args, f.Owner, f.Owner)
	}
	if len(f.States) > 0 {
		where = append(where, `state IN (?`+strings.Repeat(`,?`, len(f.States)-1)+`)`)
		for _, st := range f.States {
			args = append(args, st)
		}
	}
	q := `SELECT ` + opColumns + ` FROM operations`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, ` AND `)
	}
	if f.Limit <= 0 {
		f.Limit = 100
	}
	q += fmt.Sprintf(` ORDER BY id DESC LIMIT %d`, f.Limit)
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list operations: %w", err)
	}
	return scanOps(rows)
}
