package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// History resolutions and how long each is kept: a day of minutes, a
// week of quarter hours. At 1,000 sites that is at most
// 1,001 × (1,440 + 15 + 672) ≈ 2.13 million rows (site ” is the host's
// total; 15 minutes wait to be folded); TestHistorySize measures the
// bytes a row takes.
const (
	StepMinute  = 60
	StepQuarter = 900
	KeepMinutes = 24 * time.Hour
	KeepQuarter = 7 * 24 * time.Hour
)

// HostSite is the history's name for the host's total.
const HostSite = ""

// Point is one site's use over one interval starting at At.
type Point struct {
	Site     string
	Step     int // StepMinute or StepQuarter
	At       time.Time
	CPUMilli int64 // CPU time used over the interval, in milliseconds
	Memory   int64 // bytes in use at its end (a quarter: the most any minute had)
	Receive  int64 // bytes received over the interval
	Transmit int64 // bytes sent over the interval
}

// AddHistory records minute points (an existing one is replaced: a
// second sample in the same minute wins), in one transaction.
func (s *Store) AddHistory(ctx context.Context, points []Point) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("add history: %w", err)
	}
	defer tx.Rollback()
	stmt, err := tx.PrepareContext(ctx, `INSERT OR REPLACE INTO site_history(site, step, at, cpu_ms, mem_bytes, rx_bytes, tx_bytes) VALUES(?,?,?,?,?,?,?)`)
	if err != nil {
		return fmt.Errorf("add history: %w", err)
	}
	defer stmt.Close()
	for _, p := range points {
		if p.Step != StepMinute && p.Step != StepQuarter {
			return fmt.Errorf("add history of %q: step %d: must be %d or %d", p.Site, p.Step, StepMinute, StepQuarter)
		}
		if p.CPUMilli < 0 || p.Memory < 0 || p.Receive < 0 || p.Transmit < 0 {
			return fmt.Errorf("add history of %q: negative figure", p.Site)
		}
		at := p.At.Unix() / int64(p.Step) * int64(p.Step)
		if _, err := stmt.ExecContext(ctx, p.Site, p.Step, at, p.CPUMilli, p.Memory, p.Receive, p.Transmit); err != nil {
			return fmt.Errorf("add history of %q: %w", p.Site, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("add history: %w", err)
	}
	return nil
}

// History returns a site's points of one step from since on, oldest first.
func (s *Store) History(ctx context.Context, site string, step int, since time.Time) ([]Point, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT at, cpu_ms, mem_bytes, rx_bytes, tx_bytes FROM site_history
		WHERE site = ? AND step = ? AND at >= ? ORDER BY at`, site, step, since.Unix())
	if err != nil {
		return nil, fmt.Errorf("history of %q: %w", site, err)
	}
	defer rows.Close()
	var out []Point
	for rows.Next() {
		p := Point{Site: site, Step: step}
		var at int64
		if err := rows.Scan(&at, &p.CPUMilli, &p.Memory, &p.Receive, &p.Transmit); err != nil {
			return nil, fmt.Errorf("history of %q: %w", site, err)
		}
		p.At = time.Unix(at, 0).UTC()
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("history of %q: %w", site, err)
	}
	return out, nil
}

// SiteUse is a site's CPU and traffic summed over a span.
type SiteUse struct {
	Site              string
	CPUMilli, Traffic int64
}

// TopSites returns the n sites that used the most CPU in the quarter
// hours from since on: one index walk per site, not a scan of the table.
func (s *Store) TopSites(ctx context.Context, since time.Time, n int) ([]SiteUse, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT name, cpu, traffic FROM (
		SELECT s.name,
			COALESCE((SELECT SUM(cpu_ms) FROM site_history h WHERE h.site = s.name AND h.step = 900 AND h.at >= ?1), 0) AS cpu,
			COALESCE((SELECT SUM(rx_bytes + tx_bytes) FROM site_history h WHERE h.site = s.name AND h.step = 900 AND h.at >= ?1), 0) AS traffic
		FROM sites s) WHERE cpu > 0 OR traffic > 0 ORDER BY cpu DESC, traffic DESC, name LIMIT ?2`, since.Unix(), n)
	if err != nil {
		return nil, fmt.Errorf("top sites: %w", err)
	}
	defer rows.Close()
	var out []SiteUse
	for rows.Next() {
		var u SiteUse
		if err := rows.Scan(&u.Site, &u.CPUMilli, &u.Traffic); err != nil {
			return nil, fmt.Errorf("top sites: %w", err)
		}
		out = append(out, u)
	}
	return out, rows.Err()
}

// MaintainHistory folds every finished quarter hour of minute points into
// a quarter point, then forgets minutes older than KeepMinutes, quarters
// older than KeepQuarter and the history of sites no longer in the store.
// Each site is its own index range; run every few minutes it is cheap
// and, run again, changes nothing.
func (s *Store) MaintainHistory(ctx context.Context, now time.Time) error {
	names, err := s.historySites(ctx)
	if err != nil {
		return err
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("maintain history: %w", err)
	}
	defer tx.Rollback()
	done := now.Unix() / StepQuarter * StepQuarter // quarters before it are finished
	minutesFrom := now.Add(-KeepMinutes).Unix()
	quartersFrom := now.Add(-KeepQuarter).Unix()
	for _, name := range names {
		var known int
		if name != HostSite {
			if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM sites WHERE name = ?`, name).Scan(&known); err != nil {
				return fmt.Errorf("maintain history of %q: %w", name, err)
			}
			if known == 0 {
				if _, err := tx.ExecContext(ctx, `DELETE FROM site_history WHERE site = ?`, name); err != nil {
					return fmt.Errorf("forget history of %q: %w", name, err)
				}
				continue
			}
		}
		// From the last quarter folded (it may have had minutes added
		// since, after a restart) to the last finished one.
		var last sql.NullInt64
		if err := tx.QueryRowContext(ctx, `SELECT MAX(at) FROM site_history WHERE site = ? AND step = 900`, name).Scan(&last); err != nil {
			return fmt.Errorf("maintain history of %q: %w", name, err)
		}
		from := minutesFrom / StepQuarter * StepQuarter
		if last.Valid && last.Int64 > from {
			from = last.Int64
		}
		if _, err := tx.ExecContext(ctx, `INSERT OR REPLACE INTO site_history(site, step, at, cpu_ms, mem_bytes, rx_bytes, tx_bytes)
			SELECT site, 900, at / 900 * 900, SUM(cpu_ms), MAX(mem_bytes), SUM(rx_bytes), SUM(tx_bytes)
			FROM site_history WHERE site = ? AND step = 60 AND at >= ? AND at < ? GROUP BY at / 900`, name, from, done); err != nil {
			return fmt.Errorf("fold history of %q: %w", name, err)
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM site_history WHERE site = ? AND step = 60 AND at < ?`, name, minutesFrom); err != nil {
			return fmt.Errorf("prune history of %q: %w", name, err)
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM site_history WHERE site = ? AND step = 900 AND at < ?`, name, quartersFrom); err != nil {
			return fmt.Errorf("prune history of %q: %w", name, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("maintain history: %w", err)
	}
	return nil
}

// historySites lists the sites the history holds, one index step each
// (a DISTINCT would read every row).
func (s *Store) historySites(ctx context.Context) ([]string, error) {
	var names []string
	var cur string
	q := `SELECT site FROM site_history WHERE site >= ? ORDER BY site LIMIT 1`
	first := true
	for {
		var name string
		err := s.db.QueryRowContext(ctx, q, cur).Scan(&name)
		if errors.Is(err, sql.ErrNoRows) {
			return names, nil
		}
		if err != nil {
			return nil, fmt.Errorf("list history sites: %w", err)
		}
		names = append(names, name)
		cur = name
		if first {
			q = `SELECT site FROM site_history WHERE site > ? ORDER BY site LIMIT 1`
			first = false
		}
	}
}
