package store

import (
	"context"
	"database/sql"
	"encoding/json"
)

// A migration changes the schema (SQL) and may then fix rows in Go (Fix),
// in the same transaction.
type migration struct {
	SQL string
	Fix func(ctx context.Context, tx *sql.Tx) error
}

// migrations are applied in order; user_version records how many ran.
// Append new ones; never edit one that has shipped.
var migrations = []migration{
	{SQL: `CREATE TABLE sites (
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
	CREATE INDEX domains_site ON domains(site);`},
	// 2: the panel's accounts, server-side sessions (only a hash of each
	// token is kept), durable operations, SSH keys and port forwards.
	{SQL: `CREATE TABLE users (
		name       TEXT PRIMARY KEY,
		hash       TEXT NOT NULL,
		admin      INTEGER NOT NULL DEFAULT 0,
		disabled   INTEGER NOT NULL DEFAULT 0,
		quota      INTEGER NOT NULL DEFAULT 3,
		created_at TEXT NOT NULL,
		updated_at TEXT NOT NULL
	);
	CREATE TABLE sessions (
		token_hash TEXT PRIMARY KEY,
		user       TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
		csrf       TEXT NOT NULL,
		created_at TEXT NOT NULL,
		expires_at TEXT NOT NULL
	);
	CREATE INDEX sessions_user ON sessions(user);
	CREATE TABLE setup_tokens (
		token_hash TEXT PRIMARY KEY,
		expires_at TEXT NOT NULL
	);
	CREATE TABLE operations (
		id          INTEGER PRIMARY KEY AUTOINCREMENT,
		kind        TEXT NOT NULL,
		site        TEXT NOT NULL,
		user        TEXT NOT NULL,
		args        TEXT NOT NULL DEFAULT '{}',
		state       TEXT NOT NULL CHECK (state IN ('queued', 'running', 'done', 'failed')),
		error       TEXT NOT NULL DEFAULT '',
		created_at  TEXT NOT NULL,
		started_at  TEXT NOT NULL DEFAULT '',
		finished_at TEXT NOT NULL DEFAULT ''
	);
	CREATE INDEX operations_state ON operations(state, id);
	CREATE INDEX operations_site ON operations(site, id);
	CREATE TABLE ssh_keys (
		id          INTEGER PRIMARY KEY AUTOINCREMENT,
		site        TEXT NOT NULL REFERENCES sites(name) ON DELETE CASCADE,
		fingerprint TEXT NOT NULL,
		key         TEXT NOT NULL,
		comment     TEXT NOT NULL DEFAULT '',
		created_at  TEXT NOT NULL,
		UNIQUE (site, fingerprint)
	);
	CREATE TABLE forwards (
		id             INTEGER PRIMARY KEY AUTOINCREMENT,
		site           TEXT NOT NULL REFERENCES sites(name) ON DELETE CASCADE,
		service        TEXT NOT NULL,
		container_port INTEGER NOT NULL CHECK (container_port BETWEEN 1 AND 65535),
		proto          TEXT NOT NULL DEFAULT 'tcp' CHECK (proto IN ('tcp', 'udp')),
		host_port      INTEGER NOT NULL UNIQUE CHECK (host_port BETWEEN 40000 AND 50000),
		created_at     TEXT NOT NULL,
		UNIQUE (site, service, container_port, proto)
	);
	CREATE INDEX sites_owner ON sites(owner);`},
	// 3: operations carry a lease. The process running one refreshes
	// heartbeat_at; another process settles it only once it has gone stale.
	// Rows running at the upgrade count from their start.
	{SQL: `ALTER TABLE operations ADD COLUMN heartbeat_at TEXT NOT NULL DEFAULT '';
	UPDATE operations SET heartbeat_at = started_at WHERE state = 'running';`},
	// 4: an operation names the member it acts for (the site's owner, or
	// the owner-to-be of a site being created) in a column of its own.
	{SQL: `ALTER TABLE operations ADD COLUMN owner TEXT NOT NULL DEFAULT '';
	UPDATE operations SET owner = COALESCE((SELECT owner FROM sites WHERE sites.name = operations.site), '');
	CREATE INDEX operations_owner ON operations(owner, id);`, Fix: ownersFromArgs},
	// backups (issue 15): every backup run of a site (or of the platform,
	// site ''), done or failed, with the restic snapshots it made: the
	// admin page's "last successful backup" and a failure's message.
	{SQL: `CREATE TABLE backups (
		id             INTEGER PRIMARY KEY AUTOINCREMENT,
		site           TEXT NOT NULL,
		run            TEXT NOT NULL,
		state          TEXT NOT NULL CHECK (state IN ('done', 'failed')),
		files_snapshot TEXT NOT NULL DEFAULT '',
		db_snapshot    TEXT NOT NULL DEFAULT '',
		bytes_added    INTEGER NOT NULL DEFAULT 0,
		error          TEXT NOT NULL DEFAULT '',
		started_at     TEXT NOT NULL,
		finished_at    TEXT NOT NULL
	);
	CREATE INDEX backups_site ON backups(site, id);`},
	// history and alerts (issue 16): per-site CPU, memory and traffic,
	// one row per site and interval (step 60: a day of minutes, step 900:
	// a week of quarter hours; site '' is the host's total), keyed so one
	// site's range is one index walk; and the incidents alerts were sent
	// for, one row per incident, so a condition that lasts is told once.
	{SQL: `CREATE TABLE site_history (
		site      TEXT NOT NULL,
		step      INTEGER NOT NULL CHECK (step IN (60, 900)),
		at        INTEGER NOT NULL,
		cpu_ms    INTEGER NOT NULL,
		mem_bytes INTEGER NOT NULL,
		rx_bytes  INTEGER NOT NULL,
		tx_bytes  INTEGER NOT NULL,
		PRIMARY KEY (site, step, at)
	) WITHOUT ROWID;
	CREATE TABLE incidents (
		id          INTEGER PRIMARY KEY AUTOINCREMENT,
		key         TEXT NOT NULL,
		kind        TEXT NOT NULL,
		site        TEXT NOT NULL DEFAULT '',
		message     TEXT NOT NULL,
		opened_at   TEXT NOT NULL,
		resolved_at TEXT NOT NULL DEFAULT '',
		told_open     INTEGER NOT NULL DEFAULT 0, -- a bit per channel told: 1 mail, 2 webhook
		told_resolved INTEGER NOT NULL DEFAULT 0
	);
	CREATE UNIQUE INDEX incidents_open ON incidents(key) WHERE resolved_at = '';`},
	// front shards (issue 14): the front network a site's containers join,
	// given at creation and kept (shards.go). Every site created before
	// was on the one front network: shard 0.
	{SQL: `ALTER TABLE sites ADD COLUMN front_shard INTEGER NOT NULL DEFAULT 0 CHECK (front_shard >= 0);
	CREATE INDEX sites_front_shard ON sites(front_shard);`},
}

// ownersFromArgs gives operations whose site is gone (a creation still
// pending, a site since removed) the owner their arguments named, as
// creations recorded it before owner was a column.
func ownersFromArgs(ctx context.Context, tx *sql.Tx) error {
	rows, err := tx.QueryContext(ctx, `SELECT id, args FROM operations WHERE owner = ''`)
	if err != nil {
		return err
	}
	owners := map[int64]string{}
	for rows.Next() {
		var id int64
		var args string
		if err := rows.Scan(&id, &args); err != nil {
			rows.Close()
			return err
		}
		var a struct {
			Owner string `json:"owner"`
		}
		if json.Unmarshal([]byte(args), &a) == nil && a.Owner != "" {
			owners[id] = a.Owner
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for id, owner := range owners {
		if _, err := tx.ExecContext(ctx, `UPDATE operations SET owner = ? WHERE id = ?`, owner, id); err != nil {
			return err
		}
	}
	return nil
}
