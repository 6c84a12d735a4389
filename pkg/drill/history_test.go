package drill_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/meshdrill/drill/internal/localcluster/localtest"
	"github.com/meshdrill/drill/pkg/cluster/local"
	"github.com/meshdrill/drill/pkg/drill"
	"github.com/meshdrill/drill/pkg/history"
	"github.com/meshdrill/drill/pkg/report"
)

// historyDrill runs testdata/<file> on the local provider with its reports
// under out and the run history at hist.
func historyDrill(t *testing.T, file, out, hist string) *drill.Result {
	t.Helper()
	s, raw := loadScenario(t, "testdata/"+file)
	var progress bytes.Buffer
	res, err := drill.Run(t.Context(), s,
		drill.WithProvider(local.New(local.WithRunDir(t.TempDir()))),
		drill.WithOut(out),
		drill.WithScenarioYAML(raw),
		drill.WithProgress(&progress, false),
		drill.WithHistory(hist),
	)
	if err != nil {
		t.Fatalf("%s: %v\nprogress:\n%s", file, err, progress.String())
	}
	if res.HistoryErr != nil {
		t.Fatalf("%s: the run was not recorded: %v", file, res.HistoryErr)
	}
	return res
}

func resultNamed(t *testing.T, rep *report.Report, name string) report.Result {
	t.Helper()
	for _, x := range rep.Expectations {
		if x.Name == name {
			return x
		}
	}
	t.Fatalf("%s has no expectation %s", rep.RunID, name)
	return report.Result{}
}

// TestHistoryRegression is the run history end to end on the local provider:
// three runs of the shortened seed drill make a history; a fourth, of a copy
// of the scenario under the same name whose failover comes 4 s later, is
// flagged by the regression expectation while its other expectations pass,
// the report says the scenario file changed, and report.html draws the trend.
// Four whole drills: it runs with the others (make test), not in -short.
func TestHistoryRegression(t *testing.T) {
	localtest.SkipIfDisabled(t)
	if testing.Short() {
		t.Skip("runs four whole drills")
	}
	out := t.TempDir()
	hist := filepath.Join(out, history.FileName)
	for i := range 3 {
		res := historyDrill(t, "history-seed.yaml", out, hist)
		rep := res.Report
		if rep.Verdict != report.Pass {
			t.Fatalf("night %d: verdict %s: %s", i+1, rep.Verdict, rep.Reason)
		}
		if x := resultNamed(t, rep, "failover-not-slower"); x.Status != report.StatusSkipped || !strings.Contains(x.Message, "too little history") {
			t.Errorf("night %d: failover-not-slower %s: %s; want skipped, too little history", i+1, x.Status, x.Message)
		}
	}
	s, err := history.Open(context.Background(), hist)
	if err != nil {
		t.Fatal(err)
	}
	runs, err := s.List(context.Background(), history.Filter{Scenario: "seed-history"})
	s.Close()
	if err != nil || len(runs) != 3 {
		t.Fatalf("the history holds %d runs of seed-history (%v), want 3", len(runs), err)
	}

	res := historyDrill(t, "history-seed-slower.yaml", out, hist)
	rep := res.Report
	x := resultNamed(t, rep, "failover-not-slower")
	if x.Status != report.StatusFail || x.Regression == nil || len(x.Regression.Runs) != 3 {
		t.Fatalf("failover-not-slower %s: %s (%+v); want fail against 3 runs", x.Status, x.Message, x.Regression)
	}
	t.Logf("failover-not-slower: %s", x.Message)
	if len(x.Regression.ScenarioChanged) != 3 || !strings.Contains(x.Message, "the scenario changed since 3 of the 3 runs compared") {
		t.Errorf("the report does not say the scenario file changed: %s", x.Message)
	}
	for _, y := range rep.Expectations {
		if y.Name != x.Name && y.Status != report.StatusPass {
			t.Errorf("expectation %s %s: %s", y.Name, y.Status, y.Message)
		}
	}
	if rep.Verdict != report.Fail || res.ExitCode() != report.ExitFail {
		t.Errorf("verdict %s (exit %d), want fail (1)", rep.Verdict, res.ExitCode())
	}
	html, err := os.ReadFile(filepath.Join(res.Dir, report.HTMLFile))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"<h2>History</h2>", `<svg class="sparkline"`, "REGRESSION"} {
		if !bytes.Contains(html, []byte(want)) {
			t.Errorf("report.html lacks %q", want)
		}
	}
	if tr := rep.Trend("failover-fast"); tr == nil || len(tr.Points) != 4 || !tr.Regressed {
		t.Errorf("failover-fast trend = %+v, want 4 points, regressed", tr)
	}
	if _, err := os.Stat(filepath.Join(res.Dir, report.MetricsFile)); err != nil {
		t.Errorf("no %s: %v", report.MetricsFile, err)
	}
}

// TestExitCodeWithHistoryError: a run that passed but could not be recorded
// exits 2; any other verdict keeps its code.
func TestExitCodeWithHistoryError(t *testing.T) {
	broken := errors.New("history reports/history.db is damaged")
	for _, tc := range []struct {
		verdict report.Verdict
		err     error
		want    int
	}{
		{report.Pass, nil, report.ExitPass},
		{report.Pass, broken, report.ExitError},
		{report.Fail, broken, report.ExitFail},
		{report.Inconclusive, broken, report.ExitInconclusive},
	} {
		res := &drill.Result{Report: &report.Report{Verdict: tc.verdict}, HistoryErr: tc.err}
		if got := res.ExitCode(); got != tc.want {
			t.Errorf("%s with history error %v: exit %d, want %d", tc.verdict, tc.err, got, tc.want)
		}
	}
}
