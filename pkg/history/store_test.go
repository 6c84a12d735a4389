package history

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/meshdrill/drill/pkg/report"
)

func TestAppendListGetPrevious(t *testing.T) {
	ctx := context.Background()
	s := openTemp(t)
	var ids []string
	for n, took := range []float64{1.0, 1.2, 0.9} {
		rep := seedReport(t, night(n), "", nil)
		setObserved(t, rep, "failover-fast", took)
		if err := s.Append(ctx, rep, "reports/"+rep.RunID); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, rep.RunID)
	}
	runs, err := s.List(ctx, Filter{Scenario: "reviews-failover"})
	if err != nil {
		t.Fatal(err)
	}
	if len(runs) != 3 || runs[0].RunID != ids[2] || runs[2].RunID != ids[0] {
		t.Fatalf("List = %v, want %v newest first", runIDs(runs), ids)
	}
	r := runs[0]
	if r.Provider != "local" || r.DataPlane != "emulated" || r.Verdict != report.Pass || r.ScenarioSHA256 == "" || r.Dir != "reports/"+ids[2] || len(r.Clusters) != 2 {
		t.Errorf("run = %+v", r)
	}
	if f, ok := r.Figure("failover-fast"); !ok || f.Value != 0.9 || f.Unit != report.UnitSeconds || f.Status != report.StatusPass || f.Kind != "failover" {
		t.Errorf("failover-fast = %+v, %v", f, ok)
	}
	for _, name := range []string{"load.p99", "failover.reviews", "failback.reviews", "run.seconds", "p99"} {
		if _, ok := r.Figure(name); !ok {
			t.Errorf("figure %s not recorded; figures: %v", name, r.Figures)
		}
	}
	if got, _ := s.List(ctx, Filter{Scenario: "reviews-failover", Limit: 2}); len(got) != 2 {
		t.Errorf("-n 2 gave %d runs", len(got))
	}
	if got, _ := s.List(ctx, Filter{Provider: "kind"}); len(got) != 0 {
		t.Errorf("provider kind gave %d runs", len(got))
	}
	prev, err := s.Previous(ctx, &runs[0])
	if err != nil || prev.RunID != ids[1] {
		t.Fatalf("Previous = %v, %v; want %s", prev, err, ids[1])
	}
	if _, err := s.Previous(ctx, &runs[2]); !errors.Is(err, ErrNotFound) {
		t.Errorf("Previous of the first run: %v, want ErrNotFound", err)
	}
	if _, err := s.Get(ctx, "nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get(nope): %v, want ErrNotFound", err)
	}

	// Judged again (drill report DIR), a run replaces its row.
	again := seedReport(t, night(2), "", nil)
	setObserved(t, again, "failover-fast", 3.5)
	if err := s.Append(ctx, again, "elsewhere"); err != nil {
		t.Fatal(err)
	}
	runs, _ = s.List(ctx, Filter{})
	if len(runs) != 3 {
		t.Fatalf("%d runs after recording a run again, want 3", len(runs))
	}
	if f, _ := runs[0].Figure("failover-fast"); f.Value != 3.5 || runs[0].Dir != "elsewhere" {
		t.Errorf("the run recorded again kept its old figures: %+v in %s", f, runs[0].Dir)
	}

	rows := Compare(&runs[1], &runs[0])
	if rows[0].Figure != "few-503s" {
		t.Errorf("first row %s, want the first expectation", rows[0].Figure)
	}
	for _, row := range rows {
		if row.Figure == "failover-fast" && (row.Change == nil || *row.Change != 3.5-1.2) {
			t.Errorf("failover-fast change = %v", row.Change)
		}
	}
	trends := Trends(runs)
	for _, tr := range trends {
		if tr.Figure == "failover-fast" {
			if want := []float64{1.0, 1.2, 3.5}; fmt.Sprint(tr.Values) != fmt.Sprint(want) || tr.Median != 1.2 || tr.Last != 3.5 {
				t.Errorf("trend = %+v, want values %v", tr, want)
			}
			return
		}
	}
	t.Errorf("no trend of failover-fast in %v", trends)
}

func runIDs(runs []Run) []string {
	var out []string
	for _, r := range runs {
		out = append(out, r.RunID)
	}
	return out
}

// TestRegressionAgainstHistory is the regression expectation end to end on a
// real history: three nights of the seed scenario with failover in about 1 s,
// then a night where it took 2.4 s (the recorded run): flagged, while every
// other expectation passes, and the HTML report shows the trend.
func TestRegressionAgainstHistory(t *testing.T) {
	ctx := context.Background()
	s := openTemp(t)
	for n, took := range []float64{1.0, 1.1, 0.9} {
		rep := seedReport(t, night(n), regressionExpect, s)
		if x := expectation(t, rep, "failover-not-slower"); x.Status != report.StatusSkipped || !strings.Contains(x.Message, "too little history") {
			t.Errorf("night %d: %s %s, want skipped for too little history", n, x.Status, x.Message)
		}
		if rep.Verdict != report.Pass {
			t.Fatalf("night %d: verdict %s (%s), want pass: too little history does not fail", n, rep.Verdict, rep.Reason)
		}
		setObserved(t, rep, "failover-fast", took)
		if err := s.Append(ctx, rep, ""); err != nil {
			t.Fatal(err)
		}
	}
	rep := seedReport(t, night(3), regressionExpect, s)
	x := expectation(t, rep, "failover-not-slower")
	if x.Status != report.StatusFail {
		t.Fatalf("regression %s: %s, want fail", x.Status, x.Message)
	}
	reg := x.Regression
	if reg == nil || reg.Median == nil || *reg.Median != 1.0 || *reg.Limit != 1.5 || len(reg.Runs) != 3 || reg.Figure != "failover-fast" {
		t.Fatalf("regression = %+v", reg)
	}
	if len(reg.ScenarioChanged) != 0 {
		t.Errorf("the scenario did not change, yet %v", reg.ScenarioChanged)
	}
	for _, y := range rep.Expectations {
		if y.Name != x.Name && y.Status != report.StatusPass {
			t.Errorf("expectation %s %s: %s", y.Name, y.Status, y.Message)
		}
	}
	if rep.Verdict != report.Fail || !strings.Contains(rep.Reason, "failover-not-slower") {
		t.Errorf("verdict %s: %s", rep.Verdict, rep.Reason)
	}
	tr := rep.Trend("failover-fast")
	if tr == nil || len(tr.Points) != 4 || !tr.Regressed || tr.Points[3].Value != 2.4 || tr.Points[0].Value != 1.0 {
		t.Fatalf("trend = %+v", tr)
	}
	var html bytes.Buffer
	if err := rep.WriteHTML(&html); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"<h2>History</h2>", `<svg class="sparkline"`, "REGRESSION", "failover-fast: 1 s → 1.1 s → 900 ms → 2.4 s"} {
		if !strings.Contains(html.String(), want) {
			t.Errorf("report.html lacks %q", want)
		}
	}

	// A run as slow as the history's is no regression.
	s2 := openTemp(t)
	for n, took := range []float64{2.3, 2.5, 2.2} {
		rep := seedReport(t, night(n), regressionExpect, nil)
		setObserved(t, rep, "failover-fast", took)
		if err := s2.Append(ctx, rep, ""); err != nil {
			t.Fatal(err)
		}
	}
	rep = seedReport(t, night(3), regressionExpect, s2)
	if x := expectation(t, rep, "failover-not-slower"); x.Status != report.StatusPass || rep.Verdict != report.Pass {
		t.Errorf("regression %s (%s), verdict %s; want pass against a median of 2.3 s", x.Status, x.Message, rep.Verdict)
	}
}

// TestRegressionOnlyPassingRuns: failed runs and runs of other providers do
// not count towards the median.
func TestRegressionOnlyPassingRuns(t *testing.T) {
	ctx := context.Background()
	s := openTemp(t)
	for n, took := range []float64{1.0, 1.0, 1.0} {
		rep := seedReport(t, night(n), "", nil)
		setObserved(t, rep, "failover-fast", took)
		if n == 1 {
			rep.Verdict = report.Fail
		}
		if n == 2 {
			rep.Provider = "kind"
		}
		if err := s.Append(ctx, rep, ""); err != nil {
			t.Fatal(err)
		}
	}
	rep := seedReport(t, night(3), regressionExpect, s)
	x := expectation(t, rep, "failover-not-slower")
	if x.Status != report.StatusSkipped || !strings.Contains(x.Message, "1 passing run of reviews-failover on local") {
		t.Errorf("%s: %s; want skipped with 1 passing run", x.Status, x.Message)
	}
}

func TestRegressionScenarioChanged(t *testing.T) {
	ctx := context.Background()
	s := openTemp(t)
	for n := range 3 {
		// The same scenario name, another file: a comment differs.
		rep := seedReport(t, night(n), "# an older version\n", nil)
		setObserved(t, rep, "failover-fast", 2.0)
		if err := s.Append(ctx, rep, ""); err != nil {
			t.Fatal(err)
		}
	}
	rep := seedReport(t, night(3), regressionExpect, s)
	x := expectation(t, rep, "failover-not-slower")
	if x.Status != report.StatusPass || len(x.Regression.ScenarioChanged) != 3 || !strings.Contains(x.Message, "the scenario changed since 3 of the 3 runs compared") {
		t.Errorf("%s: %s (%+v)", x.Status, x.Message, x.Regression)
	}
	noted := false
	for _, n := range rep.Notes {
		noted = noted || strings.Contains(n, "another version of the scenario file")
	}
	if !noted {
		t.Errorf("no note of the changed scenario in %v", rep.Notes)
	}
}

func TestMigrateFromVersion1(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), FileName)
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	// Take a fresh database to version 1 only, as the first release wrote it.
	s.Close()
	os.Remove(path)
	s = &Store{path: path}
	s.db, err = openDB(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.migrateTo(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if _, err := s.db.ExecContext(ctx, `INSERT INTO runs (run_id, scenario, provider, verdict, started_ms, run_seconds) VALUES ('old-run', 'reviews-failover', 'local', 'pass', ?, 90)`, day0.UnixMilli()); err != nil {
		t.Fatal(err)
	}
	if _, err := s.db.ExecContext(ctx, `INSERT INTO figures (run, name, unit, value) VALUES (1, 'failover-fast', 'seconds', 1.5)`); err != nil {
		t.Fatal(err)
	}
	s.Close()

	s, err = Open(ctx, path)
	if err != nil {
		t.Fatalf("open a version 1 history: %v", err)
	}
	defer s.Close()
	if v, _ := s.Version(ctx); v != SchemaVersion {
		t.Errorf("version %d after Open, want %d", v, SchemaVersion)
	}
	r, err := s.Get(ctx, "old-run")
	if err != nil {
		t.Fatal(err)
	}
	if f, ok := r.Figure("failover-fast"); !ok || f.Value != 1.5 || r.RunSeconds != 90 || r.Host != "" || r.Clusters != nil {
		t.Errorf("migrated run = %+v", r)
	}
	// And the new columns take a new run.
	rep := seedReport(t, night(1), "", nil)
	if err := s.Append(ctx, rep, ""); err != nil {
		t.Fatal(err)
	}
	if r, _ := s.Get(ctx, rep.RunID); r.Host != "drill-ci-1" || r.DataPlaneDetail != rep.DataPlaneDetail {
		t.Errorf("new run after migration = %+v", r)
	}
}

func TestNewerSchema(t *testing.T) {
	ctx := context.Background()
	s := openTemp(t)
	if _, err := s.db.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", SchemaVersion+1)); err != nil {
		t.Fatal(err)
	}
	_, err := Open(ctx, s.Path())
	if !errors.Is(err, ErrNewerSchema) || !strings.Contains(err.Error(), s.Path()) {
		t.Fatalf("Open of a newer history: %v, want ErrNewerSchema naming the file", err)
	}
}

func TestDamagedFile(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	real := openTemp(t)
	if err := real.Append(ctx, seedReport(t, night(0), "", nil), ""); err != nil {
		t.Fatal(err)
	}
	real.Close()
	whole, err := os.ReadFile(real.Path())
	if err != nil {
		t.Fatal(err)
	}
	for name, content := range map[string][]byte{
		"text":      []byte("this is not a database\n"),
		"truncated": whole[:60],
		"zeroed":    append(bytes.Repeat([]byte{0xff}, 100), whole[100:]...),
	} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(dir, name+".db")
			if err := os.WriteFile(path, content, 0o644); err != nil {
				t.Fatal(err)
			}
			s, err := Open(ctx, path)
			if err == nil {
				// Some damage only shows when the pages are read.
				_, err = s.List(ctx, Filter{})
				s.Close()
			}
			if err == nil || !strings.Contains(err.Error(), path) {
				t.Fatalf("a damaged history gave %v, want an error naming %s", err, path)
			}
			t.Log(err)
		})
	}
}

// TestConcurrentWriters: runs that end at once append to the same file from
// their own connections (as separate drill processes do); none fails, none is
// lost and the database stays intact.
func TestConcurrentWriters(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), FileName)
	const writers, each = 6, 8
	base := seedReport(t, night(0), "", nil)
	var wg sync.WaitGroup
	errs := make(chan error, writers*each+writers)
	for w := range writers {
		wg.Go(func() {
			s, err := Open(ctx, path)
			if err != nil {
				errs <- err
				return
			}
			defer s.Close()
			for i := range each {
				rep := *base
				rep.RunID = fmt.Sprintf("run-%d-%d", w, i)
				rep.Started = night(w*each + i)
				if err := s.Append(ctx, &rep, ""); err != nil {
					errs <- err
				}
				if _, err := s.Runs(rep.Scenario, rep.Provider, rep.Started, 5); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	runs, err := s.List(ctx, Filter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(runs) != writers*each {
		t.Errorf("%d runs recorded, want %d", len(runs), writers*each)
	}
	var check string
	if err := s.db.QueryRowContext(ctx, "PRAGMA integrity_check").Scan(&check); err != nil || check != "ok" {
		t.Errorf("integrity_check: %q, %v", check, err)
	}
	var mode string
	if err := s.db.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil || mode != "wal" {
		t.Errorf("journal_mode %q, %v; want wal", mode, err)
	}
}

// TestRegressionNoRecordedVerdictNote: the engine records its verdict without
// the history; a regression failing against it is not reported as the run and
// its log disagreeing.
func TestRegressionNoRecordedVerdictNote(t *testing.T) {
	ctx := context.Background()
	s := openTemp(t)
	for n := range 3 {
		rep := seedReport(t, night(n), regressionExpect, nil)
		setObserved(t, rep, "failover-fast", 1.0)
		if err := s.Append(ctx, rep, ""); err != nil {
			t.Fatal(err)
		}
	}
	rep := seedReport(t, night(3), regressionExpect, s)
	if rep.Verdict != report.Fail {
		t.Fatalf("verdict %s", rep.Verdict)
	}
	for _, n := range rep.Notes {
		if strings.Contains(n, "The run recorded the verdict") {
			t.Errorf("note: %s", n)
		}
	}
	var junit bytes.Buffer
	if err := seedReport(t, night(3), regressionExpect, nil).WriteJUnit(&junit); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(junit.String(), `<skipped message="not judged: no run history to judge against`) {
		t.Errorf("junit.xml of a regression without history:\n%s", junit.String())
	}
}

// Environment of a writer process of TestConcurrentProcesses.
const (
	envWriterPath = "DRILL_TEST_HISTORY_WRITER_PATH"
	envWriterID   = "DRILL_TEST_HISTORY_WRITER_ID"
)

// writerRuns is how many runs each writer process records.
const writerRuns = 10

// TestWriterProcess is a writer of TestConcurrentProcesses when run with its
// environment, and nothing otherwise.
func TestWriterProcess(t *testing.T) {
	path := os.Getenv(envWriterPath)
	if path == "" {
		t.Skip("a writer process of TestConcurrentProcesses")
	}
	ctx := context.Background()
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	base := seedReport(t, night(0), "", nil)
	for i := range writerRuns {
		rep := *base
		rep.RunID = fmt.Sprintf("process-%s-%d", os.Getenv(envWriterID), i)
		rep.Started = night(i)
		if err := s.Append(ctx, &rep, ""); err != nil {
			t.Fatal(err)
		}
	}
}

// TestConcurrentProcesses: drill processes that end at once record their
// runs in the same file; SQLite's locks between processes (not only between
// the connections of one) keep every run and the file intact.
func TestConcurrentProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	path := filepath.Join(t.TempDir(), FileName)
	const writers = 4
	cmds := make([]*exec.Cmd, writers)
	outs := make([]*bytes.Buffer, writers)
	for i := range cmds {
		cmds[i] = exec.Command(os.Args[0], "-test.run=^TestWriterProcess$", "-test.count=1")
		cmds[i].Env = append(os.Environ(), envWriterPath+"="+path, fmt.Sprintf("%s=%d", envWriterID, i))
		outs[i] = &bytes.Buffer{}
		cmds[i].Stdout, cmds[i].Stderr = outs[i], outs[i]
		if err := cmds[i].Start(); err != nil {
			t.Fatal(err)
		}
	}
	for i, c := range cmds {
		if err := c.Wait(); err != nil {
			t.Errorf("writer %d: %v\n%s", i, err, outs[i])
		}
	}
	ctx := context.Background()
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	runs, err := s.List(ctx, Filter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(runs) != writers*writerRuns {
		t.Errorf("%d runs recorded by %d processes, want %d", len(runs), writers, writers*writerRuns)
	}
	var check string
	if err := s.db.QueryRowContext(ctx, "PRAGMA integrity_check").Scan(&check); err != nil || check != "ok" {
		t.Errorf("integrity_check: %q, %v", check, err)
	}
}
