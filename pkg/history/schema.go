package history

// SchemaVersion is the version of the schema this drill writes, stored in
// SQLite's user_version.
const SchemaVersion = 2

// migrations[i] takes a database from version i to i+1. A migration is never
// edited once released: a change is a new one appended.
var migrations = []string{
	// 0 → 1: runs and their figures.
	`CREATE TABLE runs (
		id              INTEGER PRIMARY KEY,
		run_id          TEXT NOT NULL UNIQUE,
		scenario        TEXT NOT NULL,
		scenario_sha256 TEXT NOT NULL DEFAULT '',
		provider        TEXT NOT NULL,
		data_plane      TEXT NOT NULL DEFAULT '',
		drill_version   TEXT NOT NULL DEFAULT '',
		verdict         TEXT NOT NULL,
		reason          TEXT NOT NULL DEFAULT '',
		started_ms      INTEGER NOT NULL,
		run_seconds     REAL NOT NULL DEFAULT 0,
		dir             TEXT NOT NULL DEFAULT ''
	);
	CREATE INDEX runs_by_scenario ON runs (scenario, provider, started_ms);
	CREATE TABLE figures (
		run    INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
		name   TEXT NOT NULL,
		unit   TEXT NOT NULL,
		value  REAL NOT NULL,
		status TEXT NOT NULL DEFAULT '',
		PRIMARY KEY (run, name)
	);`,
	// 1 → 2: what ran the data plane and the clusters, for drill compare;
	// the expectation kind of a figure, for drill history's trends; indexes
	// for drill history's listings by scenario alone and of every run, newest
	// first (runs_by_scenario cannot order those: provider sits between).
	`ALTER TABLE runs ADD COLUMN data_plane_detail TEXT NOT NULL DEFAULT '';
	ALTER TABLE runs ADD COLUMN clusters TEXT NOT NULL DEFAULT '';
	ALTER TABLE runs ADD COLUMN host TEXT NOT NULL DEFAULT '';
	ALTER TABLE figures ADD COLUMN kind TEXT NOT NULL DEFAULT '';
	CREATE INDEX runs_by_scenario_start ON runs (scenario, started_ms);
	CREATE INDEX runs_by_start ON runs (started_ms);`,
}
