package store

import (
	"context"
	"fmt"
)

// AddDomain adds a custom domain to a site; a domain any site already
// uses is ErrDomainTaken.
func (s *Store) AddDomain(ctx context.Context, site, domain string) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO domains(domain, site, is_primary) SELECT ?, name, 0 FROM sites WHERE name = ?`, domain, site)
	if isUnique(err) {
		return fmt.Errorf("domain %q: %w", domain, ErrDomainTaken)
	}
	if err != nil {
		return fmt.Errorf("add domain %q to site %q: %w", domain, site, err)
	}
	return nil
}

// RemoveDomain removes a custom domain of a site; the primary domain
// cannot be removed.
func (s *Store) RemoveDomain(ctx context.Context, site, domain string) error {
	res, err := s.db.ExecContext(ctx, `DELETE FROM domains WHERE domain = ? AND site = ? AND is_primary = 0`, domain, site)
	if err != nil {
		return fmt.Errorf("remove domain %q from site %q: %w", domain, site, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("domain %q of site %q: %w", domain, site, ErrNotFound)
	}
	return nil
}
