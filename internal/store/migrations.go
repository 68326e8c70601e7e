package store

// migrations are applied in order; user_version records how many ran.
// Append new ones; never edit one that has shipped.
var migrations = []string{
	`CREATE TABLE sites (
		name       TEXT PRIMARY KEY,
		template   TEXT NOT NULL,
		owner      TEXT NOT NULL,
		params     TEXT NOT NULL,
		plan       TEXT NOT NULL,
		rendered   TEXT NOT NULL DEFAULT '{}',
		created_at TEXT NOT NULL,
		updated_at TEXT NOT NULL
	);
	CREATE TABLE domains (
		domain    TEXT PRIMARY KEY,
		site      TEXT NOT NULL REFERENCES sites(name) ON DELETE CASCADE,
		is_primary INTEGER NOT NULL DEFAULT 0
	);
	CREATE INDEX domains_site ON domains(site);`,
}
