package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Errors about members.
var (
	ErrUserExists = errors.New("a member with this name already exists")
	ErrLastAdmin  = errors.New("the last active admin cannot lose admin rights or be disabled")
)

// timeFormat is fixed-width so that timestamps compare as text in SQL.
const timeFormat = "2006-01-02T15:04:05.000000Z"

func ts(t time.Time) string { return t.UTC().Format(timeFormat) }

func parseTS(s string) time.Time {
	t, _ := time.Parse(timeFormat, s)
	return t
}

// User is a member of the collective. Hash is the argon2id encoding of the
// password (see package auth); the password itself is never stored.
type User struct {
	Name      string
	Hash      string
	Admin     bool
	Disabled  bool
	Quota     int // how many sites the member may own
	CreatedAt time.Time
	UpdatedAt time.Time
}

// DefaultQuota is a new member's site allowance, as in the seeds.
const DefaultQuota = 3

// CreateUser stores a new member.
func (s *Store) CreateUser(ctx context.Context, u User) error {
	return createUser(ctx, s.db, u)
}

type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

func createUser(ctx context.Context, db execer, u User) error {
	now := ts(time.Now())
	_, err := db.ExecContext(ctx, `INSERT INTO users(name, hash, admin, disabled, quota, created_at, updated_at) VALUES(?,?,?,?,?,?,?)`,
		u.Name, u.Hash, u.Admin, u.Disabled, u.Quota, now, now)
	if isUnique(err) {
		return fmt.Errorf("member %q: %w", u.Name, ErrUserExists)
	}
	if err != nil {
		return fmt.Errorf("create member %q: %w", u.Name, err)
	}
	if u.Admin && !u.Disabled {
		return dropSetupLinks(ctx, db)
	}
	return nil
}

const userColumns = `name, hash, admin, disabled, quota, created_at, updated_at`

type scanner interface{ Scan(dest ...any) error }

func scanUser(r scanner) (*User, error) {
	var u User
	var c, up string
	if err := r.Scan(&u.Name, &u.Hash, &u.Admin, &u.Disabled, &u.Quota, &c, &up); err != nil {
		return nil, err
	}
	u.CreatedAt, u.UpdatedAt = parseTS(c), parseTS(up)
	return &u, nil
}

// GetUser returns the named member or ErrNotFound.
func (s *Store) GetUser(ctx context.Context, name string) (*User, error) {
	u, err := scanUser(s.db.QueryRowContext(ctx, `SELECT `+userColumns+` FROM users WHERE name = ?`, name))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("member %q: %w", name, ErrNotFound)
	}
	return u, err
}

// ListUsers returns every member, by name.
func (s *Store) ListUsers(ctx context.Context) ([]*User, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+userColumns+` FROM users ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("list members: %w", err)
	}
	defer rows.Close()
	var out []*User
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, u)
	}
	return out, rows.Err()
}

// HasAdmin reports whether an enabled admin exists.
func (s *Store) HasAdmin(ctx context.Context) (bool, error) {
	var n int
	err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM users WHERE admin = 1 AND disabled = 0`).Scan(&n)
	return n > 0, err
}

func (s *Store) updateUser(ctx context.Context, name, set string, args ...any) error {
	args = append(append([]any{}, args...), ts(time.Now()), name)
	res, err := s.db.ExecContext(ctx, `UPDATE users SET `+set+`, updated_at = ? WHERE name = ?`, args...)
	if err != nil {
		return fmt.Errorf("update member %q: %w", name, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("member %q: %w", name, ErrNotFound)
	}
	return nil
}

// SetPassword replaces the member's password hash and ends their sessions.
func (s *Store) SetPassword(ctx context.Context, name, hash string) error {
	if err := s.updateUser(ctx, name, `hash = ?`, hash); err != nil {
		return err
	}
	return s.DeleteUserSessions(ctx, name)
}

// SetQuota changes how many sites the member may own.
func (s *Store) SetQuota(ctx context.Context, name string, quota int) error {
	return s.updateUser(ctx, name, `quota = ?`, quota)
}

// SetDisabled disables (ending their sessions) or enables a member. The
// last active admin cannot be disabled: someone must be able to log in.
func (s *Store) SetDisabled(ctx context.Context, name string, disabled bool) error {
	if disabled {
		if err := s.keepAnAdmin(ctx, name); err != nil {
			return err
		}
	}
	if err := s.updateUser(ctx, name, `disabled = ?`, disabled); err != nil {
		return err
	}
	if disabled {
		return s.DeleteUserSessions(ctx, name)
	}
	return nil
}

// SetAdmin grants or revokes admin rights; the last active admin keeps them.
// Granting them ends the setup links (see CreateSetupToken).
func (s *Store) SetAdmin(ctx context.Context, name string, admin bool) error {
	if !admin {
		if err := s.keepAnAdmin(ctx, name); err != nil {
			return err
		}
	}
	if err := s.updateUser(ctx, name, `admin = ?`, admin); err != nil {
		return err
	}
	if admin {
		return dropSetupLinks(ctx, s.db)
	}
	return nil
}

func (s *Store) keepAnAdmin(ctx context.Context, name string) error {
	var others int
	err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM users WHERE admin = 1 AND disabled = 0 AND name <> ?`, name).Scan(&others)
	if err != nil {
		return err
	}
	u, err := s.GetUser(ctx, name)
	if err != nil {
		return err
	}
	if u.Admin && !u.Disabled && others == 0 {
		return fmt.Errorf("member %q: %w", name, ErrLastAdmin)
	}
	return nil
}

// ListSitesOwnedBy returns the member's sites, by name.
func (s *Store) ListSitesOwnedBy(ctx context.Context, owner string) ([]*Site, error) {
	return s.sites(ctx, `WHERE s.owner = ?`, owner)
}

// CountSitesOwnedBy counts the member's sites.
func (s *Store) CountSitesOwnedBy(ctx context.Context, owner string) (int, error) {
	var n int
	err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM sites WHERE owner = ?`, owner).Scan(&n)
	return n, err
}
