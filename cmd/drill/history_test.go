package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/meshdrill/drill/pkg/history"
	"github.com/meshdrill/drill/pkg/report"
)

// runCLI runs drill with args in-process and returns its exit code.
func runCLI(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	return runCLIIn(t, "", args...)
}

// nightlyRuns makes n report directories under reports/ in a new directory,
// each the seed run moved to a night of its own (2026-11-21, -22, ...), and
// returns the reports directory and the run directories.
func nightlyRuns(t *testing.T, n int) (reports string, dirs []string) {
	t.Helper()
	data, err := os.ReadFile(seedLog)
	if err != nil {
		t.Fatal(err)
	}
	reports = filepath.Join(t.TempDir(), "reports")
	for i := range n {
		day := []byte("2026-11-" + string(rune('1'+i/9)) + string(rune('1'+i%9)) + "T")
		dir := filepath.Join(reports, "night"+string(rune('a'+i)))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "events.jsonl"), bytes.ReplaceAll(data, []byte("2026-11-24T"), day), 0o644); err != nil {
			t.Fatal(err)
		}
		dirs = append(dirs, dir)
	}
	return reports, dirs
}

func TestHistoryAndCompare(t *testing.T) {
	reports, dirs := nightlyRuns(t, 3)
	for _, d := range dirs {
		if code, _, stderr := runCLI(t, "report", "-q", d); code != exitPass {
			t.Fatalf("drill report %s: exit %d: %s", d, code, stderr)
		}
	}
	db := filepath.Join(reports, history.FileName)
	if _, err := os.Stat(db); err != nil {
		t.Fatalf("drill report did not record the runs in %s: %v", db, err)
	}

	code, out, stderr := runCLI(t, "history", "--history", db)
	if code != exitPass {
		t.Fatalf("drill history: exit %d: %s", code, stderr)
	}
	for _, want := range []string{"RUN", "reviews-failover-20261113-210000", "reviews-failover-20261111-210000", "Trends of reviews-failover on local over 3 runs", "failover-fast"} {
		if !strings.Contains(out, want) {
			t.Errorf("drill history lacks %q:\n%s", want, out)
		}
	}
	if i, j := strings.Index(out, "20261113"), strings.Index(out, "20261111"); i < 0 || j < i {
		t.Errorf("runs are not listed newest first:\n%s", out)
	}

	code, out, _ = runCLI(t, "history", "--history", db, "-o", "json", "-n", "2", "--provider", "local")
	var got struct {
		Runs   []history.Run   `json:"runs"`
		Trends []history.Trend `json:"trends"`
	}
	if err := json.Unmarshal([]byte(out), &got); code != exitPass || err != nil {
		t.Fatalf("drill history -o json: exit %d, %v:\n%s", code, err, out)
	}
	if len(got.Runs) != 2 || got.Runs[0].Verdict != report.Pass || len(got.Trends) == 0 || len(got.Trends[0].Values) != 2 {
		t.Errorf("-o json -n 2: %d runs, trends %+v", len(got.Runs), got.Trends)
	}
	if code, out, _ := runCLI(t, "history", "--history", db, "-o", "yaml"); code != exitPass || !strings.Contains(out, "runId: reviews-failover-20261113-210000") {
		t.Errorf("drill history -o yaml: exit %d:\n%s", code, out)
	}
	if code, out, _ := runCLI(t, "history", "--history", db, "--scenario", "nope"); code != exitPass || !strings.Contains(out, "no runs in") {
		t.Errorf("drill history --scenario nope: exit %d: %s", code, out)
	}
	if code, _, stderr := runCLI(t, "history", "--history", db, "-o", "xml"); code != exitError || !strings.Contains(stderr, "use table or json or yaml") {
		t.Errorf("drill history -o xml: exit %d: %s", code, stderr)
	}
	if code, _, stderr := runCLI(t, "history", "--history", filepath.Join(reports, "none.db")); code != exitError || !strings.Contains(stderr, "no run history at") {
		t.Errorf("drill history on a missing file: exit %d: %s", code, stderr)
	}

	// One RUN: against the run before it; a report directory names its run.
	code, out, stderr = runCLI(t, "compare", "--history", db, "reviews-failover-20261113-210000")
	if code != exitPass || !strings.Contains(out, "reviews-failover-20261112-210000") || !strings.Contains(out, "failover-fast") {
		t.Errorf("drill compare RUN: exit %d: %s\n%s", code, stderr, out)
	}
	code, out, _ = runCLI(t, "compare", "--history", db, "-o", "json", "reviews-failover-20261111-210000", "reviews-failover-20261113-210000")
	var cmp struct {
		A, B    history.Run
		Figures []history.Row
	}
	if err := json.Unmarshal([]byte(out), &cmp); code != exitPass || err != nil || cmp.A.RunID != "reviews-failover-20261111-210000" || len(cmp.Figures) == 0 {
		t.Errorf("drill compare -o json: exit %d, %v: %+v", code, err, cmp.A)
	}
	if code, _, stderr := runCLI(t, "compare", "--history", db, "reviews-failover-20261111-210000"); code != exitError || !strings.Contains(stderr, "has no run before") {
		t.Errorf("drill compare of the first run: exit %d: %s", code, stderr)
	}
}

// TestDamagedHistoryKeepsReports: a history that is not a database makes a
// passing run exit 2, names the file, and every report is written all the same.
func TestDamagedHistoryKeepsReports(t *testing.T) {
	reports, dirs := nightlyRuns(t, 1)
	db := filepath.Join(reports, history.FileName)
	if err := os.WriteFile(db, []byte("not a database"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := runCLI(t, "report", "-q", dirs[0])
	if code != exitError || !strings.Contains(stderr, db) || !strings.Contains(stderr, "is not a drill history or is damaged") {
		t.Errorf("exit %d: %s", code, stderr)
	}
	for _, f := range []string{report.JSONFile, report.JUnitFile, report.SummaryFile, report.HTMLFile, report.MetricsFile} {
		if st, err := os.Stat(filepath.Join(dirs[0], f)); err != nil || st.Size() == 0 {
			t.Errorf("%s not written: %v", f, err)
		}
	}
	// Off, the history is not read at all.
	if code, _, stderr := runCLI(t, "report", "-q", "--history", "off", dirs[0]); code != exitPass {
		t.Errorf("--history off: exit %d: %s", code, stderr)
	}
}
