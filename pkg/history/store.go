package history

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	_ "modernc.org/sqlite" // the "sqlite" database/sql driver, pure Go

	"github.com/meshdrill/drill/pkg/report"
)

// FileName is the history's file name in a reports directory.
const FileName = "history.db"

// busyTimeout is how long a writer waits for another to finish: runs that
// end together append one after the other.
const busyTimeout = 30 * time.Second

// ErrNewerSchema is returned by Open for a history written by a newer drill.
var ErrNewerSchema = errors.New("the history was written by a newer drill")

// ErrNotFound is returned by Get for a run the history does not hold.
var ErrNotFound = errors.New("no such run in the history")

// Store is an open run history. It is safe for concurrent use, and several
// processes may have the same file open.
type Store struct {
	db   *sql.DB
	path string
}

// Open opens the history at path, creating it (and its directory) when it
// does not exist and migrating it to SchemaVersion. A file that is not an
// SQLite database, or is damaged, gives an error that names it and says what
// to do; a newer schema gives ErrNewerSchema.
func Open(ctx context.Context, path string) (*Store, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("history %s: %w", path, err)
	}
	// Processes opening a new history at once race to switch it to WAL,
	// which takes the database's exclusive lock; SQLite can answer the
	// loser SQLITE_BUSY at once instead of calling the busy handler. Such an
	// open is tried again, as a busy writer would be waited for.
	deadline := time.Now().Add(busyTimeout)
	for wait := 20 * time.Millisecond; ; wait = min(2*wait, time.Second) {
		db, err := openDB(path)
		if err != nil {
			return nil, fmt.Errorf("history %s: %w", path, err)
		}
		s := &Store{db: db, path: path}
		err = s.migrate(ctx)
		if err == nil {
			return s, nil
		}
		db.Close()
		if !busy(err) || time.Now().After(deadline) {
			return nil, err
		}
		select {
		case <-ctx.Done():
			return nil, err
		case <-time.After(wait):
		}
	}
}

// busy reports whether err is SQLite's SQLITE_BUSY (5, with any extended code).
func busy(err error) bool {
	var se interface{ Code() int }
	return errors.As(err, &se) && se.Code()&0xff == 5
}

// openDB opens the database file with the settings every connection needs.
func openDB(path string) (*sql.DB, error) {
	q := url.Values{}
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", busyTimeout.Milliseconds()))
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "foreign_keys(1)")
	q.Add("_pragma", "synchronous(NORMAL)")
	// Write transactions take the write lock when they begin, so that two
	// writers never both read and then both try to upgrade their locks (the
	// deadlock SQLite resolves with SQLITE_BUSY at once, busy timeout or not).
	q.Set("_txlock", "immediate")
	return sql.Open("sqlite", "file:"+path+"?"+q.Encode())
}

// Path is the file the store reads and writes.
func (s *Store) Path() string { return s.path }

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

// damaged wraps an error of SQLite reading the file with what to do about it.
func (s *Store) damaged(err error) error {
	return fmt.Errorf("history %s is not a drill history or is damaged (%w): move it away to start a new history, or point --history (DRILL_HISTORY) elsewhere; the run's own reports are not affected", s.path, err)
}

// Version is the schema version of the database.
func (s *Store) Version(ctx context.Context) (int, error) {
	var v int
	if err := s.db.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v); err != nil {
		return 0, s.damaged(err)
	}
	return v, nil
}

func (s *Store) migrate(ctx context.Context) error {
	return s.migrateTo(ctx, SchemaVersion)
}

// migrateTo takes the database to version target, one migration at a time,
// each in its own transaction; it is a no-op at target.
func (s *Store) migrateTo(ctx context.Context, target int) error {
	v, err := s.Version(ctx)
	if err != nil {
		return err
	}
	if v > SchemaVersion {
		return fmt.Errorf("history %s: %w (schema version %d; this drill reads up to %d): run the newer drill, or point --history (DRILL_HISTORY) elsewhere", s.path, ErrNewerSchema, v, SchemaVersion)
	}
	for v < target {
		tx, err := s.db.BeginTx(ctx, nil)
		if err != nil {
			return s.damaged(err)
		}
		// Another process may have migrated while this one waited for the lock.
		if err := tx.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v); err != nil {
			tx.Rollback()
			return s.damaged(err)
		}
		if v >= target {
			tx.Rollback()
			break
		}
		if _, err := tx.ExecContext(ctx, migrations[v]); err != nil {
			tx.Rollback()
			return fmt.Errorf("history %s: migrate the schema from version %d to %d: %w", s.path, v, v+1, err)
		}
		if _, err := tx.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", v+1)); err != nil {
			tx.Rollback()
			return fmt.Errorf("history %s: migrate the schema from version %d to %d: %w", s.path, v, v+1, err)
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("history %s: migrate the schema from version %d to %d: %w", s.path, v, v+1, err)
		}
		v++
	}
	return nil
}

// Run is one run as the history holds it.
type Run struct {
	RunID           string          `json:"runId"`
	Scenario        string          `json:"scenario"`
	ScenarioSHA256  string          `json:"scenarioSha256,omitempty"`
	Provider        string          `json:"provider"`
	DataPlane       string          `json:"dataPlane,omitempty"`
	DataPlaneDetail string          `json:"dataPlaneDetail,omitempty"`
	Clusters        []string        `json:"clusters,omitempty"`
	DrillVersion    string          `json:"drillVersion,omitempty"`
	Host            string          `json:"host,omitempty"`
	Verdict         report.Verdict  `json:"verdict"`
	Reason          string          `json:"reason,omitempty"`
	Started         time.Time       `json:"started"`
	RunSeconds      float64         `json:"runSeconds"`
	Dir             string          `json:"dir,omitempty"`
	Figures         []report.Figure `json:"figures"`
}

// Figure is the named figure of the run, if it has it.
func (r *Run) Figure(name string) (report.Figure, bool) {
	for _, f := range r.Figures {
		if f.Name == name {
			return f, true
		}
	}
	return report.Figure{}, false
}

// Append records a run from its report; dir is its report directory. A run
// already in the history (the same run id, as when drill report judges a run
// again) is replaced.
func (s *Store) Append(ctx context.Context, rep *report.Report, dir string) error {
	if rep.RunID == "" {
		return fmt.Errorf("history %s: the report has no run id (its events hold no run.started with a scenario name and start time), so it is not recorded", s.path)
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("history %s: record %s: %w", s.path, rep.RunID, err)
	}
	defer tx.Rollback()
	if err := appendTx(ctx, tx, rep, dir); err != nil {
		return fmt.Errorf("history %s: %w", s.path, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("history %s: record %s: %w", s.path, rep.RunID, err)
	}
	return nil
}

// Runs returns up to limit runs of the named scenario on provider that
// started before before, newest first, with their figures: the
// report.History a report judges regressions against.
func (s *Store) Runs(scenario, provider string, before time.Time, limit int) ([]report.PastRun, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*busyTimeout)
	defer cancel()
	rows, err := s.db.QueryContext(ctx, `WITH r AS (
			SELECT id, run_id, started_ms, verdict, scenario_sha256 FROM runs
			WHERE scenario = ? AND provider = ? AND started_ms < ?
			ORDER BY started_ms DESC LIMIT ?)
		SELECT r.id, r.run_id, r.started_ms, r.verdict, r.scenario_sha256, f.name, f.value
		FROM r LEFT JOIN figures f ON f.run = r.id
		ORDER BY r.started_ms DESC, r.id`,
		scenario, provider, before.UnixMilli(), limit)
	if err != nil {
		return nil, fmt.Errorf("history %s: read the runs of %s on %s: %w", s.path, scenario, provider, err)
	}
	defer rows.Close()
	var out []report.PastRun
	last := int64(-1)
	for rows.Next() {
		var id, ms int64
		var runID, verdict, sha string
		var name sql.NullString
		var value sql.NullFloat64
		if err := rows.Scan(&id, &runID, &ms, &verdict, &sha, &name, &value); err != nil {
			return nil, fmt.Errorf("history %s: read the runs of %s on %s: %w", s.path, scenario, provider, err)
		}
		if id != last {
			out = append(out, report.PastRun{RunID: runID, Started: time.UnixMilli(ms).UTC(), Verdict: report.Verdict(verdict), ScenarioSHA256: sha, Figures: map[string]float64{}})
			last = id
		}
		if name.Valid {
			out[len(out)-1].Figures[name.String] = value.Float64
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("history %s: read the runs of %s on %s: %w", s.path, scenario, provider, err)
	}
	return out, nil
}

// Filter selects runs for List; empty fields select all.
type Filter struct {
	Scenario string
	Provider string
	// Limit is how many runs, the newest; 0 is all.
	Limit int
}

// List returns the runs the filter selects, newest first, with their figures.
func (s *Store) List(ctx context.Context, f Filter) ([]Run, error) {
	where, args := []string{"1 = 1"}, []any{}
	if f.Scenario != "" {
		where, args = append(where, "scenario = ?"), append(args, f.Scenario)
	}
	if f.Provider != "" {
		where, args = append(where, "provider = ?"), append(args, f.Provider)
	}
	limit := -1
	if f.Limit > 0 {
		limit = f.Limit
	}
	args = append(args, limit)
	return s.query(ctx, "SELECT "+runColumns+" FROM runs WHERE "+strings.Join(where, " AND ")+" ORDER BY started_ms DESC, id DESC LIMIT ?", args...)
}

// Get returns the run with the given run id (the name of its report
// directory), ErrNotFound when the history does not hold it.
func (s *Store) Get(ctx context.Context, runID string) (*Run, error) {
	runs, err := s.query(ctx, "SELECT "+runColumns+" FROM runs WHERE run_id = ?", runID)
	if err != nil {
		return nil, err
	}
	if len(runs) == 0 {
		return nil, fmt.Errorf("history %s: %w: %s", s.path, ErrNotFound, runID)
	}
	return &runs[0], nil
}

// Previous returns the run of the same scenario on the same provider that
// started last before run, ErrNotFound when there is none.
func (s *Store) Previous(ctx context.Context, run *Run) (*Run, error) {
	runs, err := s.query(ctx, "SELECT "+runColumns+" FROM runs WHERE scenario = ? AND provider = ? AND started_ms < ? ORDER BY started_ms DESC, id DESC LIMIT 1",
		run.Scenario, run.Provider, run.Started.UnixMilli())
	if err != nil {
		return nil, err
	}
	if len(runs) == 0 {
		return nil, fmt.Errorf("history %s: %w: %s on %s has no run before %s", s.path, ErrNotFound, run.Scenario, run.Provider, run.RunID)
	}
	return &runs[0], nil
}

const runColumns = `id, run_id, scenario, scenario_sha256, provider, data_plane, data_plane_detail, clusters, drill_version, host, verdict, reason, started_ms, run_seconds, dir`

func (s *Store) query(ctx context.Context, q string, args ...any) ([]Run, error) {
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("history %s: %w", s.path, err)
	}
	var runs []Run
	var ids []int64
	for rows.Next() {
		var r Run
		var id, ms int64
		var clusters, verdict string
		if err := rows.Scan(&id, &r.RunID, &r.Scenario, &r.ScenarioSHA256, &r.Provider, &r.DataPlane, &r.DataPlaneDetail, &clusters,
			&r.DrillVersion, &r.Host, &verdict, &r.Reason, &ms, &r.RunSeconds, &r.Dir); err != nil {
			rows.Close()
			return nil, fmt.Errorf("history %s: %w", s.path, err)
		}
		r.Verdict, r.Started = report.Verdict(verdict), time.UnixMilli(ms).UTC()
		if clusters != "" {
			r.Clusters = strings.Split(clusters, ",")
		}
		r.Figures = []report.Figure{}
		runs, ids = append(runs, r), append(ids, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("history %s: %w", s.path, err)
	}
	if err := s.figures(ctx, ids, runs); err != nil {
		return nil, err
	}
	return runs, nil
}

// figures fills in the figures of runs, whose row ids are ids, in the order
// they were recorded, a few hundred runs per query.
func (s *Store) figures(ctx context.Context, ids []int64, runs []Run) error {
	index := make(map[int64]int, len(ids))
	for i, id := range ids {
		index[id] = i
	}
	const batch = 500 // well under SQLite's limit on bound parameters
	for start := 0; start < len(ids); start += batch {
		part := ids[start:min(start+batch, len(ids))]
		args := make([]any, len(part))
		for i, id := range part {
			args[i] = id
		}
		q := `SELECT run, name, unit, value, status, kind FROM figures WHERE run IN (?` + strings.Repeat(", ?", len(part)-1) + `) ORDER BY run, rowid`
		rows, err := s.db.QueryContext(ctx, q, args...)
		if err != nil {
			return fmt.Errorf("history %s: figures: %w", s.path, err)
		}
		for rows.Next() {
			var id int64
			var f report.Figure
			var status string
			if err := rows.Scan(&id, &f.Name, &f.Unit, &f.Value, &status, &f.Kind); err != nil {
				rows.Close()
				return fmt.Errorf("history %s: figures: %w", s.path, err)
			}
			f.Status = report.Status(status)
			r := &runs[index[id]]
			r.Figures = append(r.Figures, f)
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return fmt.Errorf("history %s: figures: %w", s.path, err)
		}
	}
	return nil
}

// appendTx records rep in tx.
func appendTx(ctx context.Context, tx *sql.Tx, rep *report.Report, dir string) error {
	var id int64
	err := tx.QueryRowContext(ctx, `INSERT INTO runs
		(run_id, scenario, scenario_sha256, provider, data_plane, data_plane_detail, clusters, drill_version, host, verdict, reason, started_ms, run_seconds, dir)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (run_id) DO UPDATE SET
			scenario = excluded.scenario, scenario_sha256 = excluded.scenario_sha256, provider = excluded.provider,
			data_plane = excluded.data_plane, data_plane_detail = excluded.data_plane_detail, clusters = excluded.clusters,
			drill_version = excluded.drill_version, host = excluded.host, verdict = excluded.verdict, reason = excluded.reason,
			started_ms = excluded.started_ms, run_seconds = excluded.run_seconds, dir = excluded.dir
		RETURNING id`,
		rep.RunID, rep.Scenario, rep.ScenarioSHA256, rep.Provider, rep.DataPlane, rep.DataPlaneDetail, strings.Join(rep.Clusters, ","),
		rep.DrillVersion, rep.Host, string(rep.Verdict), rep.Reason, rep.Started.UnixMilli(), rep.Timings.RunSeconds, dir,
	).Scan(&id)
	if err != nil {
		return fmt.Errorf("record %s: %w", rep.RunID, err)
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM figures WHERE run = ?`, id); err != nil {
		return fmt.Errorf("record %s: %w", rep.RunID, err)
	}
	stmt, err := tx.PrepareContext(ctx, `INSERT INTO figures (run, name, unit, value, status, kind) VALUES (?, ?, ?, ?, ?, ?)`)
	if err != nil {
		return fmt.Errorf("record %s: %w", rep.RunID, err)
	}
	defer stmt.Close()
	for _, f := range rep.Figures() {
		if _, err := stmt.ExecContext(ctx, id, f.Name, f.Unit, f.Value, string(f.Status), f.Kind); err != nil {
			return fmt.Errorf("record %s: figure %s: %w", rep.RunID, f.Name, err)
		}
	}
	return nil
}
