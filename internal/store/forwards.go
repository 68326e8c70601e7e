package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// The host ports port forwards are allocated from, as in the seeds.
const (
	ForwardPortMin = 40000
	ForwardPortMax = 50000
)

// Errors about port forwards.
var (
	ErrNoFreePort    = errors.New("no free host port left in 40000-50000")
	ErrForwardExists = errors.New("this container port is already forwarded")
)

// Forward exposes one container port of a site on a host port.
type Forward struct {
	ID            int64
	Site          string
	Service       string
	ContainerPort int
	Proto         string // tcp or udp
	HostPort      int
	CreatedAt     time.Time
}

// AddForward allocates the lowest free host port in 40000-50000 for the
// forward and stores it, in one statement: two concurrent requests cannot
// get the same port.
func (s *Store) AddForward(ctx context.Context, f Forward) (*Forward, error) {
	if f.Proto == "" {
		f.Proto = "tcp"
	}
	err := s.db.QueryRowContext(ctx, `INSERT INTO forwards(site, service, container_port, proto, host_port, created_at)
		SELECT ?1, ?2, ?3, ?4, CASE
			WHEN NOT EXISTS (SELECT 1 FROM forwards WHERE host_port = ?5) THEN ?5
			ELSE (SELECT MIN(f.host_port) + 1 FROM forwards f WHERE f.host_port < ?6
				AND NOT EXISTS (SELECT 1 FROM forwards g WHERE g.host_port = f.host_port + 1))
			END, ?7
		RETURNING id, host_port`,
		f.Site, f.Service, f.ContainerPort, f.Proto, ForwardPortMin, ForwardPortMax, ts(time.Now())).Scan(&f.ID, &f.HostPort)
	switch {
	case err == nil:
		f.CreatedAt = time.Now().UTC()
		return &f, nil
	case isUnique(err):
		return nil, fmt.Errorf("%s port %d of %s/%s: %w", f.Proto, f.ContainerPort, f.Site, f.Service, ErrForwardExists)
	case isForeignKey(err):
		return nil, fmt.Errorf("site %q: %w", f.Site, ErrNotFound)
	case strings.Contains(err.Error(), "NOT NULL constraint failed"):
		return nil, ErrNoFreePort
	}
	return nil, fmt.Errorf("add forward to site %q: %w", f.Site, err)
}

// ListForwards returns the forwards of a site (every site's when site is empty), by host port.
func (s *Store) ListForwards(ctx context.Context, site string) ([]*Forward, error) {
	q := `SELECT id, site, service, container_port, proto, host_port, created_at FROM forwards`
	var args []any
	if site != "" {
		q, args = q+` WHERE site = ?`, []any{site}
	}
	rows, err := s.db.QueryContext(ctx, q+` ORDER BY host_port`, args...)
	if err != nil {
		return nil, fmt.Errorf("list forwards: %w", err)
	}
	defer rows.Close()
	var out []*Forward
	for rows.Next() {
		var f Forward
		var c string
		if err := rows.Scan(&f.ID, &f.Site, &f.Service, &f.ContainerPort, &f.Proto, &f.HostPort, &c); err != nil {
			return nil, err
		}
		f.CreatedAt = parseTS(c)
		out = append(out, &f)
	}
	return out, rows.Err()
}

// DeleteForward removes the site's forward on hostPort.
func (s *Store) DeleteForward(ctx context.Context, site string, hostPort int) error {
	res, err := s.db.ExecContext(ctx, `DELETE FROM forwards WHERE site = ? AND host_port = ?`, site, hostPort)
	if err != nil {
		return fmt.Errorf("remove forward: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("forward on port %d of site %q: %w", hostPort, site, ErrNotFound)
	}
	return nil
}
