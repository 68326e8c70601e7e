package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/darse/darse/internal/render"
)

// SiteSummary is what a list of every site shows: no parameters, no
// manifest, so that a thousand rows read in a few milliseconds.
type SiteSummary struct {
	Name     string
	Template string
	Owner    string
	Domain   string
	Aliases  []string
}

// ListSiteSummaries returns every site, by name.
func (s *Store) ListSiteSummaries(ctx context.Context) ([]SiteSummary, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT s.name, s.template, s.owner, d.domain, d.is_primary
		FROM sites s LEFT JOIN domains d ON d.site = s.name ORDER BY s.name, d.is_primary DESC, d.domain`)
	if err != nil {
		return nil, fmt.Errorf("list sites: %w", err)
	}
	defer rows.Close()
	var out []SiteSummary
	for rows.Next() {
		var sum SiteSummary
		var domain sql.NullString
		var primary sql.NullBool
		if err := rows.Scan(&sum.Name, &sum.Template, &sum.Owner, &domain, &primary); err != nil {
			return nil, err
		}
		if len(out) == 0 || out[len(out)-1].Name != sum.Name {
			out = append(out, sum)
		}
		cur := &out[len(out)-1]
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

// Manifests returns the manifest of the last render of each named site.
func (s *Store) Manifests(ctx context.Context, names []string) (map[string]render.Manifest, error) {
	out := map[string]render.Manifest{}
	if len(names) == 0 {
		return out, nil
	}
	args := make([]any, len(names))
	for i, n := range names {
		args[i] = n
	}
	rows, err := s.db.QueryContext(ctx, `SELECT name, rendered FROM sites WHERE name IN (?`+strings.Repeat(`,?`, len(names)-1)+`)`, args...)
	if err != nil {
		return nil, fmt.Errorf("read manifests: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var name, rendered string
		if err := rows.Scan(&name, &rendered); err != nil {
			return nil, err
		}
		var m render.Manifest
		if err := json.Unmarshal([]byte(rendered), &m); err != nil {
			return nil, fmt.Errorf("site %q manifest: %w", name, err)
		}
		out[name] = m
	}
	return out, rows.Err()
}
