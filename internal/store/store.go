// Package store keeps the platform's facts — site specs, their domains and
// the manifest of each site's last render — in an embedded SQLite database
// (pure Go, modernc.org/sqlite) under /srv/conf.
package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver

	"github.com/darse/darse/internal/render"
	"github.com/darse/darse/internal/site"
)

// Errors callers test with errors.Is.
var (
	ErrNotFound    = errors.New("not found")
	ErrSiteExists  = errors.New("a site with this name already exists")
	ErrDomainTaken = errors.New("domain already used by another site")
)

// Store is the platform database.
type Store struct {
	db *sql.DB
}

// Open opens (creating if needed) the database file and brings its schema up to date.
func Open(ctx context.Context, path string) (*Store, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	// Members' password hashes and sessions: for the platform's eyes only.
	// SQLite gives its -wal and -shm files the database file's mode.
	if f, err := os.OpenFile(path, os.O_RDONLY|os.O_CREATE, 0o600); err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	} else {
		f.Close()
	}
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		if err := os.Chmod(p, 0o600); err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("open store: %w", err)
		}
	}
	// Two processes opening a new database at once may see it busy where
	// SQLite calls no busy handler (switching it to WAL): try again.
	for wait := 10 * time.Millisecond; ; wait = min(2*wait, 500*time.Millisecond) {
		s, err := openOnce(ctx, path)
		if err == nil || !busy(err) || ctx.Err() != nil || wait >= 500*time.Millisecond {
			return s, err
		}
		time.Sleep(wait)
	}
}

func openOnce(ctx context.Context, path string) (*Store, error) {
	dsn := "file:" + path + "?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=foreign_keys(1)&_pragma=synchronous(NORMAL)&_txlock=immediate"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	s := &Store{db: db}
	if err := s.migrate(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	return s, nil
}

// busy reports SQLite's SQLITE_BUSY (and its extended codes).
func busy(err error) bool {
	var e interface{ Code() int }
	return errors.As(err, &e) && e.Code()&0xff == 5
}

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

// migrate applies the migrations not yet applied, one transaction each.
// Transactions take the write lock as they begin (_txlock=immediate), and
// the schema version is read inside: two processes opening a new database
// at once (the panel and a CLI run) apply each migration once.
func (s *Store) migrate(ctx context.Context) error {
	for {
		done, err := s.migrateOne(ctx)
		if err != nil || done {
			return err
		}
	}
}

func (s *Store) migrateOne(ctx context.Context) (bool, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return false, err
	}
	defer tx.Rollback()
	var version int
	if err := tx.QueryRowContext(ctx, `PRAGMA user_version`).Scan(&version); err != nil {
		return false, err
	}
	if version > len(migrations) {
		return false, fmt.Errorf("database schema %d is newer than this darse (%d)", version, len(migrations))
	}
	if version == len(migrations) {
		return true, nil
	}
	m := migrations[version]
	if _, err := tx.ExecContext(ctx, m.SQL); err != nil {
		return false, fmt.Errorf("migration %d: %w", version+1, err)
	}
	if m.Fix != nil {
		if err := m.Fix(ctx, tx); err != nil {
			return false, fmt.Errorf("migration %d: %w", version+1, err)
		}
	}
	if _, err := tx.ExecContext(ctx, fmt.Sprintf(`PRAGMA user_version = %d`, version+1)); err != nil {
		return false, err
	}
	return false, tx.Commit()
}

// Site is a stored site: its spec, its extra domains and its last render.
type Site struct {
	site.Spec
	Aliases   []string        // custom domains besides Spec.Domain
	Rendered  render.Manifest // manifest of the last render written to the folder
	CreatedAt time.Time
	UpdatedAt time.Time
}

// CreateSite stores a new site and its primary domain in one transaction.
func (s *Store) CreateSite(ctx context.Context, spec site.Spec) error {
	params, _ := json.Marshal(spec.Params)
	plan, _ := json.Marshal(spec.Plan)
	now := time.Now().UTC().Format(time.RFC3339Nano)
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	_, err = tx.ExecContext(ctx, `INSERT INTO sites(name, template, owner, params, plan, created_at, updated_at) VALUES(?,?,?,?,?,?,?)`,
		spec.Name, spec.Template, spec.Owner, string(params), string(plan), now, now)
	if isUnique(err) {
		return fmt.Errorf("site %q: %w", spec.Name, ErrSiteExists)
	}
	if err != nil {
		return fmt.Errorf("create site %q: %w", spec.Name, err)
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO domains(domain, site, is_primary) VALUES(?,?,1)`, spec.Domain, spec.Name)
	if isUnique(err) {
		return fmt.Errorf("domain %q: %w", spec.Domain, ErrDomainTaken)
	}
	if err != nil {
		return fmt.Errorf("create site %q: %w", spec.Name, err)
	}
	return tx.Commit()
}

func isUnique(err error) bool {
	return err != nil && strings.Contains(err.Error(), "UNIQUE constraint failed")
}

// DomainOwner returns the site using domain, or ErrNotFound.
func (s *Store) DomainOwner(ctx context.Context, domain string) (string, error) {
	var name string
	err := s.db.QueryRowContext(ctx, `SELECT site FROM domains WHERE domain = ?`, domain).Scan(&name)
	if errors.Is(err, sql.ErrNoRows) {
		return "", ErrNotFound
	}
	return name, err
}

// GetSite returns the named site or ErrNotFound.
func (s *Store) GetSite(ctx context.Context, name string) (*Site, error) {
	sites, err := s.sites(ctx, `WHERE s.name = ?`, name)
	if err != nil {
		return nil, err
	}
	if len(sites) == 0 {
		return nil, fmt.Errorf("site %q: %w", name, ErrNotFound)
	}
	return sites[0], nil
}

// ListSites returns every site, by name.
func (s *Store) ListSites(ctx context.Context) ([]*Site, error) {
	return s.sites(ctx, ``)
}

func (s *Store) sites(ctx context.Context, where string, args ...any) ([]*Site, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT s.name, s.template, s.owner, s.params, s.plan, s.rendered, s.created_at, s.updated_at,
		d.domain, d.is_primary
		FROM sites s LEFT JOIN domains d ON d.site = s.name `+where+` ORDER BY s.name, d.is_primary DESC, d.domain`, args...)
	if err != nil {
		return nil, fmt.Errorf("list sites: %w", err)
	}
	defer rows.Close()
	var out []*Site
	for rows.Next() {
		var (
			st                           Site
			params, plan, rendered, c, u string
			domain                       sql.NullString
			primary                      sql.NullBool
		)
		if err := rows.Scan(&st.Name, &st.Template, &st.Owner, &params, &plan, &rendered, &c, &u, &domain, &primary); err != nil {
			return nil, err
		}
		if len(out) == 0 || out[len(out)-1].Name != st.Name {
			if err := json.Unmarshal([]byte(params), &st.Params); err != nil {
				return nil, fmt.Errorf("site %q params: %w", st.Name, err)
			}
			if err := json.Unmarshal([]byte(plan), &st.Plan); err != nil {
				return nil, fmt.Errorf("site %q plan: %w", st.Name, err)
			}
			if err := json.Unmarshal([]byte(rendered), &st.Rendered); err != nil {
				return nil, fmt.Errorf("site %q manifest: %w", st.Name, err)
			}
			st.CreatedAt, _ = time.Parse(time.RFC3339Nano, c)
			st.UpdatedAt, _ = time.Parse(time.RFC3339Nano, u)
			out = append(out, &st)
		}
		cur := out[len(out)-1]
		if domain.Valid {
			if primary.Bool {
				cur.Domain = domain.String
			} else {
				cur.Aliases = append(cur.Aliases, domain.String)
			}
		}
	}
	return out, rows.Err()
}

// SetRendered records the manifest of the render just written to the folder.
func (s *Store) SetRendered(ctx context.Context, name string, m render.Manifest) error {
	b, _ := json.Marshal(m)
	res, err := s.db.ExecContext(ctx, `UPDATE sites SET rendered = ?, updated_at = ? WHERE name = ?`,
		string(b), time.Now().UTC().Format(time.RFC3339Nano), name)
	if err != nil {
		return fmt.Errorf("site %q: record render: %w", name, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("site %q: %w", name, ErrNotFound)
	}
	return nil
}

// DeleteSite removes the site and its domains.
func (s *Store) DeleteSite(ctx context.Context, name string) error {
	res, err := s.db.ExecContext(ctx, `DELETE FROM sites WHERE name = ?`, name)
	if err != nil {
		return fmt.Errorf("delete site %q: %w", name, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("site %q: %w", name, ErrNotFound)
	}
	return nil
}
