package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"time"
)

// Backup is one backup run of a site (Site empty: the platform), as
// recorded once it ended.
type Backup struct {
	ID            int64
	Site          string
	Run           string // the run's tag in the repository
	State         string // OpDone or OpFailed
	FilesSnapshot string
	DBSnapshot    string
	BytesAdded    int64
	Error         string
	StartedAt     time.Time
	FinishedAt    time.Time
}

// RecordBackup records a finished backup run.
func (s *Store) RecordBackup(ctx context.Context, b Backup) (int64, error) {
	if b.State != OpDone && b.State != OpFailed {
		return 0, fmt.Errorf("record backup of %q: state %q: must be done or failed", b.Site, b.State)
	}
	res, err := s.db.ExecContext(ctx, `INSERT INTO backups(site, run, state, files_snapshot, db_snapshot, bytes_added, error, started_at, finished_at)
		VALUES(?,?,?,?,?,?,?,?,?)`, b.Site, b.Run, b.State, b.FilesSnapshot, b.DBSnapshot, b.BytesAdded, b.Error, ts(b.StartedAt), ts(b.FinishedAt))
	if err != nil {
		return 0, fmt.Errorf("record backup of %q: %w", b.Site, err)
	}
	return res.LastInsertId()
}

// LastBackups returns, per site, its latest recorded run and its latest
// successful one (nil when it has none).
func (s *Store) LastBackups(ctx context.Context) (last, lastDone map[string]*Backup, err error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, site, run, state, files_snapshot, db_snapshot, bytes_added, error, started_at, finished_at
		FROM backups b WHERE id IN (SELECT MAX(id) FROM backups GROUP BY site)
		OR id IN (SELECT MAX(id) FROM backups WHERE state = 'done' GROUP BY site)`)
	if err != nil {
		return nil, nil, fmt.Errorf("list backups: %w", err)
	}
	defer rows.Close()
	last, lastDone = map[string]*Backup{}, map[string]*Backup{}
	for rows.Next() {
		b, err := scanBackup(rows)
		if err != nil {
			return nil, nil, err
		}
		if cur := last[b.Site]; cur == nil || b.ID > cur.ID {
			last[b.Site] = b
		}
		if b.State == OpDone {
			lastDone[b.Site] = b
		}
	}
	return last, lastDone, rows.Err()
}

func scanBackup(rows *sql.Rows) (*Backup, error) {
	var b Backup
	var started, finished string
	if err := rows.Scan(&b.ID, &b.Site, &b.Run, &b.State, &b.FilesSnapshot, &b.DBSnapshot, &b.BytesAdded, &b.Error, &started, &finished); err != nil {
		return nil, err
	}
	b.StartedAt, b.FinishedAt = parseTS(started), parseTS(finished)
	return &b, nil
}

// SiteRecord is what the store knows of a site, kept in its backups so
// that a site removed since (or a new host) gets it back as it was.
type SiteRecord struct {
	Site     Site       `json:"site"`
	Forwards []*Forward `json:"forwards"`
	Keys     []*SSHKey  `json:"keys"`
}

// SiteRecord reads a site's record.
func (s *Store) SiteRecord(ctx context.Context, name string) (*SiteRecord, error) {
	st, err := s.GetSite(ctx, name)
	if err != nil {
		return nil, err
	}
	fw, err := s.ListForwards(ctx, name)
	if err != nil {
		return nil, err
	}
	keys, err := s.ListKeys(ctx, name)
	if err != nil {
		return nil, err
	}
	return &SiteRecord{Site: *st, Forwards: fw, Keys: keys}, nil
}

// ImportSite stores a site from its record in one transaction: its spec,
// domains, last render, forwards on the same host ports and keys. A name,
// domain or host port taken since is refused, with nothing stored.
func (s *Store) ImportSite(ctx context.Context, r *SiteRecord) error {
	st := r.Site
	params, _ := json.Marshal(st.Params)
	plan, _ := json.Marshal(st.Plan)
	rendered, _ := json.Marshal(st.Rendered)
	now := ts(time.Now())
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	_, err = tx.ExecContext(ctx, `INSERT INTO sites(name, template, owner, params, plan, rendered, created_at, updated_at) VALUES(?,?,?,?,?,?,?,?)`,
		st.Name, st.Template, st.Owner, string(params), string(plan), string(rendered), now, now)
	if isUnique(err) {
		return fmt.Errorf("site %q: %w", st.Name, ErrSiteExists)
	}
	if err != nil {
		return fmt.Errorf("import site %q: %w", st.Name, err)
	}
	domains := append([]string{st.Domain}, st.Aliases...)
	for i, d := range domains {
		_, err = tx.ExecContext(ctx, `INSERT INTO domains(domain, site, is_primary) VALUES(?,?,?)`, d, st.Name, i == 0)
		if isUnique(err) {
			return fmt.Errorf("domain %q: %w", d, ErrDomainTaken)
		}
		if err != nil {
			return fmt.Errorf("import site %q: %w", st.Name, err)
		}
	}
	for _, f := range r.Forwards {
		_, err = tx.ExecContext(ctx, `INSERT INTO forwards(site, service, container_port, proto, host_port, created_at) VALUES(?,?,?,?,?,?)`,
			st.Name, f.Service, f.ContainerPort, f.Proto, f.HostPort, now)
		if isUnique(err) {
			return fmt.Errorf("import site %q: host port %d is taken by another site: %w", st.Name, f.HostPort, ErrForwardExists)
		}
		if err != nil {
			return fmt.Errorf("import site %q: forward %d: %w", st.Name, f.HostPort, err)
		}
	}
	for _, k := range r.Keys {
		if _, err = tx.ExecContext(ctx, `INSERT INTO ssh_keys(site, fingerprint, key, comment, created_at) VALUES(?,?,?,?,?)`,
			st.Name, k.Fingerprint, k.Key, k.Comment, now); err != nil {
			return fmt.Errorf("import site %q: key %s: %w", st.Name, k.Fingerprint, err)
		}
	}
	return tx.Commit()
}

// VacuumInto writes a consistent copy of the whole store to path (which
// must not exist), while others keep using it: SQLite's online backup.
func (s *Store) VacuumInto(ctx context.Context, path string) error {
	if _, err := s.db.ExecContext(ctx, `VACUUM INTO ?`, path); err != nil {
		return fmt.Errorf("copy the store to %s: %w", path, err)
	}
	return nil
}
