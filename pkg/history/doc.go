// Package history keeps the run history: one row per drill run, with the
// run's figures (report.Figure), in an SQLite database (pure Go, no cgo) that
// lives beside the reports, reports/history.db by default.
//
// Every run appends its summary after its reports are written (Append);
// report.Build reads the runs before one (Store.Runs, a report.History) to
// judge regression expectations and draw trends; drill history and drill
// compare list and compare runs (List, Get, Trend).
//
// The schema is versioned with SQLite's user_version and migrated forward on
// Open, one step per version, each in a transaction. A database written by a
// newer drill (a user_version above SchemaVersion) is refused, not migrated
// down or written to. The database runs in WAL mode with a busy timeout, so
// that runs writing the same file at once wait for each other instead of
// failing or corrupting it.
package history
