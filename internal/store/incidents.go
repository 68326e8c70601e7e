package store

import (
	"context"
	"fmt"
	"time"
)

// Incident is one stretch of time an alert condition held: opened once,
// resolved once, each told once per channel (ToldOpen, ToldResolved hold
// a bit per channel that delivered, so a failed delivery is tried again
// on that channel only, never repeated on one that succeeded).
type Incident struct {
	ID           int64
	Key          string // the condition: kind and subject, e.g. "down:blog"
	Kind         string
	Site         string
	Message      string
	OpenedAt     time.Time
	ResolvedAt   time.Time // zero while it lasts
	ToldOpen     int
	ToldResolved int
}

// OpenIncident records key's incident unless one is open already, and
// says whether it is new.
func (s *Store) OpenIncident(ctx context.Context, in Incident) (bool, error) {
	res, err := s.db.ExecContext(ctx, `INSERT INTO incidents(key, kind, site, message, opened_at) VALUES(?,?,?,?,?)
		ON CONFLICT(key) WHERE resolved_at = '' DO NOTHING`, in.Key, in.Kind, in.Site, in.Message, ts(in.OpenedAt))
	if err != nil {
		return false, fmt.Errorf("open incident %q: %w", in.Key, err)
	}
	n, _ := res.RowsAffected()
	return n == 1, nil
}

// ResolveIncident marks key's open incident resolved at; none open is no error.
func (s *Store) ResolveIncident(ctx context.Context, key string, at time.Time) error {
	if _, err := s.db.ExecContext(ctx, `UPDATE incidents SET resolved_at = ? WHERE key = ? AND resolved_at = ''`, ts(at), key); err != nil {
		return fmt.Errorf("resolve incident %q: %w", key, err)
	}
	return nil
}

// OpenIncidents lists the incidents that last, oldest first.
func (s *Store) OpenIncidents(ctx context.Context) ([]*Incident, error) {
	return s.incidents(ctx, `WHERE resolved_at = '' ORDER BY id`)
}

// UntoldIncidents lists the incidents whose opening or resolution was
// not told yet on every channel of mask, oldest first.
func (s *Store) UntoldIncidents(ctx context.Context, mask int) ([]*Incident, error) {
	return s.incidents(ctx, `WHERE (told_open & ?1) != ?1 OR (resolved_at != '' AND (told_resolved & ?1) != ?1) ORDER BY id`, mask)
}

// RecentIncidents lists the last n incidents, newest first.
func (s *Store) RecentIncidents(ctx context.Context, n int) ([]*Incident, error) {
	return s.incidents(ctx, `ORDER BY id DESC LIMIT ?`, n)
}

// MarkIncidentTold records that the incident's opening (resolved false)
// or resolution was told on the channels of bits.
func (s *Store) MarkIncidentTold(ctx context.Context, id int64, resolved bool, bits int) error {
	col := "told_open"
	if resolved {
		col = "told_resolved"
	}
	if _, err := s.db.ExecContext(ctx, `UPDATE incidents SET `+col+` = `+col+` | ? WHERE id = ?`, bits, id); err != nil {
		return fmt.Errorf("mark incident %d told: %w", id, err)
	}
	return nil
}

func (s *Store) incidents(ctx context.Context, where string, args ...any) ([]*Incident, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, key, kind, site, message, opened_at, resolved_at, told_open, told_resolved FROM incidents `+where, args...)
	if err != nil {
		return nil, fmt.Errorf("list incidents: %w", err)
	}
	defer rows.Close()
	var out []*Incident
	for rows.Next() {
		in := &Incident{}
		var opened, resolved string
		if err := rows.Scan(&in.ID, &in.Key, &in.Kind, &in.Site, &in.Message, &opened, &resolved, &in.ToldOpen, &in.ToldResolved); err != nil {
			return nil, fmt.Errorf("list incidents: %w", err)
		}
		in.OpenedAt = parseTS(opened)
		if resolved != "" {
			in.ResolvedAt = parseTS(resolved)
		}
		out = append(out, in)
	}
	return out, rows.Err()
}

// SitesMeantStopped lists the sites whose last lifecycle operation that
// ran was a stop, and those with an operation queued or running: a site
// not running is then no incident.
func (s *Store) SitesMeantStopped(ctx context.Context) (map[string]bool, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT site FROM operations WHERE id IN (
			SELECT MAX(id) FROM operations WHERE kind IN ('create', 'up', 'stop', 'restart', 'restore') AND state IN ('done', 'running') GROUP BY site
		) AND kind = 'stop'
		UNION SELECT site FROM operations WHERE state IN ('queued', 'running')`)
	if err != nil {
		return nil, fmt.Errorf("sites meant stopped: %w", err)
	}
	defer rows.Close()
	out := map[string]bool{}
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			return nil, fmt.Errorf("sites meant stopped: %w", err)
		}
		out[name] = true
	}
	return out, rows.Err()
}
