package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Session is a logged-in browser. Only a hash of the cookie's token is
// stored, so a leaked database does not hand out sessions.
type Session struct {
	TokenHash string
	User      string
	CSRF      string // the token every form of this session must carry
	CreatedAt time.Time
	ExpiresAt time.Time
}

// CreateSession stores a new session.
func (s *Store) CreateSession(ctx context.Context, se Session) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO sessions(token_hash, user, csrf, created_at, expires_at) VALUES(?,?,?,?,?)`,
		se.TokenHash, se.User, se.CSRF, ts(se.CreatedAt), ts(se.ExpiresAt))
	if err != nil {
		return fmt.Errorf("create session: %w", err)
	}
	return nil
}

// GetSession returns the unexpired session with this token hash and its
// member, or ErrNotFound. Sessions of disabled members are not found.
func (s *Store) GetSession(ctx context.Context, tokenHash string, now time.Time) (*Session, *User, error) {
	var se Session
	var c, e string
	row := s.db.QueryRowContext(ctx, `SELECT s.token_hash, s.user, s.csrf, s.created_at, s.expires_at, u.name, u.hash, u.admin, u.disabled, u.quota, u.created_at, u.updated_at
		FROM sessions s JOIN users u ON u.name = s.user
		WHERE s.token_hash = ? AND s.expires_at > ? AND u.disabled = 0`, tokenHash, ts(now))
	var u User
	var uc, uu string
	err := row.Scan(&se.TokenHash, &se.User, &se.CSRF, &c, &e, &u.Name, &u.Hash, &u.Admin, &u.Disabled, &u.Quota, &uc, &uu)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil, fmt.Errorf("session: %w", ErrNotFound)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("session: %w", err)
	}
	se.CreatedAt, se.ExpiresAt = parseTS(c), parseTS(e)
	u.CreatedAt, u.UpdatedAt = parseTS(uc), parseTS(uu)
	return &se, &u, nil
}

// DeleteSession ends one session (logout).
func (s *Store) DeleteSession(ctx context.Context, tokenHash string) error {
	_, err := s.db.ExecContext(ctx, `DELETE FROM sessions WHERE token_hash = ?`, tokenHash)
	return err
}

// DeleteUserSessions ends every session of a member.
func (s *Store) DeleteUserSessions(ctx context.Context, user string) error {
	_, err := s.db.ExecContext(ctx, `DELETE FROM sessions WHERE user = ?`, user)
	return err
}

// DeleteExpiredSessions forgets sessions past their expiry.
func (s *Store) DeleteExpiredSessions(ctx context.Context, now time.Time) error {
	_, err := s.db.ExecContext(ctx, `DELETE FROM sessions WHERE expires_at <= ?`, ts(now))
	return err
}

// ErrAdminExists refuses a setup link: it only ever creates the first admin.
var ErrAdminExists = errors.New("an admin exists already: setup links are refused")

// Setup links only ever create the first admin: once an admin exists
// (made with `darse user add NAME --admin`, granted, or through a link)
// every link is refused and deleted, so the one printed in the panel's
// log does not stay a way in for its 24 hours.

// CreateSetupToken stores (the hash of) a one-time link that creates the
// first admin. Earlier unused links are dropped. Once an admin exists it
// stores nothing and gives ErrAdminExists.
func (s *Store) CreateSetupToken(ctx context.Context, tokenHash string, expires time.Time) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if err := dropSetupLinks(ctx, tx); err != nil {
		return err
	}
	if has, err := hasAdmin(ctx, tx); err != nil || has {
		return commitRefusal(tx, err, ErrAdminExists)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO setup_tokens(token_hash, expires_at) VALUES(?,?)`, tokenHash, ts(expires)); err != nil {
		return fmt.Errorf("create setup link: %w", err)
	}
	return tx.Commit()
}

// SetupTokenValid reports whether the setup link is unused and unexpired,
// and no admin exists.
func (s *Store) SetupTokenValid(ctx context.Context, tokenHash string, now time.Time) (bool, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return false, err
	}
	defer tx.Rollback()
	if has, err := hasAdmin(ctx, tx); err != nil || has {
		if err == nil {
			err = dropSetupLinks(ctx, tx)
		}
		return false, commitRefusal(tx, err, nil)
	}
	var n int
	err = tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM setup_tokens WHERE token_hash = ? AND expires_at > ?`, tokenHash, ts(now)).Scan(&n)
	return n > 0, err
}

// ClaimSetup uses the one-time link to create the first admin: the link is
// consumed and the member created in one transaction, or neither happens.
// A link that is unknown, used or expired gives ErrNotFound, and so does
// any link once an admin exists.
func (s *Store) ClaimSetup(ctx context.Context, tokenHash string, now time.Time, admin User) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if has, err := hasAdmin(ctx, tx); err != nil || has {
		if err == nil {
			err = dropSetupLinks(ctx, tx)
		}
		return commitRefusal(tx, err, fmt.Errorf("setup link: %w (%w)", ErrNotFound, ErrAdminExists))
	}
	res, err := tx.ExecContext(ctx, `DELETE FROM setup_tokens WHERE token_hash = ? AND expires_at > ?`, tokenHash, ts(now))
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("setup link: %w", ErrNotFound)
	}
	admin.Admin = true
	if err := createUser(ctx, tx, admin); err != nil {
		return err
	}
	return tx.Commit()
}

type querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// hasAdmin reports whether an enabled admin exists (as HasAdmin).
func hasAdmin(ctx context.Context, db querier) (bool, error) {
	var n int
	if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM users WHERE admin = 1 AND disabled = 0`).Scan(&n); err != nil {
		return false, fmt.Errorf("look for an admin: %w", err)
	}
	return n > 0, nil
}

// commitRefusal keeps the deletion of setup links a refusal made and
// returns the refusal, unless err (a failure on the way) came first.
func commitRefusal(tx *sql.Tx, err, refusal error) error {
	if err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("drop setup links: %w", err)
	}
	return refusal
}

// dropSetupLinks deletes every setup link, as an admin appears.
func dropSetupLinks(ctx context.Context, db execer) error {
	if _, err := db.ExecContext(ctx, `DELETE FROM setup_tokens`); err != nil {
		return fmt.Errorf("drop setup links: %w", err)
	}
	return nil
}
