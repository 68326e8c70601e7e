package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// ErrKeyExists is returned when the site already has this key.
var ErrKeyExists = errors.New("this key is already authorized for the site")

// SSHKey is one public key authorized to reach a site's files.
type SSHKey struct {
	ID          int64
	Site        string
	Fingerprint string // SHA256:… as ssh-keygen -l prints it
	Key         string // the key in authorized_keys form, without options
	Comment     string
	CreatedAt   time.Time
}

// AddKey stores a key for a site.
func (s *Store) AddKey(ctx context.Context, k SSHKey) (int64, error) {
	res, err := s.db.ExecContext(ctx, `INSERT INTO ssh_keys(site, fingerprint, key, comment, created_at) VALUES(?,?,?,?,?)`,
		k.Site, k.Fingerprint, k.Key, k.Comment, ts(time.Now()))
	if isUnique(err) {
		return 0, fmt.Errorf("key %s: %w", k.Fingerprint, ErrKeyExists)
	}
	if isForeignKey(err) {
		return 0, fmt.Errorf("site %q: %w", k.Site, ErrNotFound)
	}
	if err != nil {
		return 0, fmt.Errorf("add key to site %q: %w", k.Site, err)
	}
	return res.LastInsertId()
}

func isForeignKey(err error) bool {
	return err != nil && strings.Contains(err.Error(), "FOREIGN KEY constraint failed")
}

// ListKeys returns the keys of a site (every site's when site is empty).
func (s *Store) ListKeys(ctx context.Context, site string) ([]*SSHKey, error) {
	q := `SELECT id, site, fingerprint, key, comment, created_at FROM ssh_keys`
	var args []any
	if site != "" {
		q, args = q+` WHERE site = ?`, []any{site}
	}
	rows, err := s.db.QueryContext(ctx, q+` ORDER BY site, id`, args...)
	if err != nil {
		return nil, fmt.Errorf("list keys: %w", err)
	}
	defer rows.Close()
	var out []*SSHKey
	for rows.Next() {
		var k SSHKey
		var c string
		if err := rows.Scan(&k.ID, &k.Site, &k.Fingerprint, &k.Key, &k.Comment, &c); err != nil {
			return nil, err
		}
		k.CreatedAt = parseTS(c)
		out = append(out, &k)
	}
	return out, rows.Err()
}

// DeleteKey removes a site's key by id or fingerprint.
func (s *Store) DeleteKey(ctx context.Context, site, idOrFingerprint string) error {
	res, err := s.db.ExecContext(ctx, `DELETE FROM ssh_keys WHERE site = ? AND (CAST(id AS TEXT) = ? OR fingerprint = ?)`, site, idOrFingerprint, idOrFingerprint)
	if err != nil {
		return fmt.Errorf("remove key: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("key %q of site %q: %w", idOrFingerprint, site, ErrNotFound)
	}
	return nil
}
