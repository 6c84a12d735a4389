package report

import (
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/meshdrill/drill/pkg/event"
)

// pastRuns is a History of fixed runs, newest first.
type pastRuns struct {
	runs []PastRun
	err  error
	// asked records the last question.
	scenario, provider string
	before             time.Time
}

func (p *pastRuns) Runs(scenario, provider string, before time.Time, limit int) ([]PastRun, error) {
	p.scenario, p.provider, p.before = scenario, provider, before
	if p.err != nil {
		return nil, p.err
	}
	return p.runs[:min(limit, len(p.runs))], nil
}

// seedWithExpect is the seed run's events with expectations appended to its
// scenario.
func seedWithExpect(t *testing.T, extra string) []event.Event {
	t.Helper()
	data, err := os.ReadFile("testdata/seed/events.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	evs := readLog(t, data)
	var info event.RunInfo
	if err := evs[0].Decode(&info); err != nil {
		t.Fatal(err)
	}
	info.ScenarioYAML += extra
	b, _ := json.Marshal(info)
	evs[0].Data = b
	return evs
}

func past(sha string, verdict Verdict, figures map[string]float64, n int) []PastRun {
	var out []PastRun
	for i := range n {
		out = append(out, PastRun{RunID: "night-" + string(rune('a'+i)), Verdict: verdict, ScenarioSHA256: sha, Figures: figures})
	}
	return out
}

func TestRegressionFigures(t *testing.T) {
	const expect = `    - name: r
      regression: {figure: FIGURE, maxIncrease: 50%BY}
`
	base := func(figure, by string) []event.Event {
		return seedWithExpect(t, strings.NewReplacer("FIGURE", figure, "BY", by).Replace(expect))
	}
	sha := func(evs []event.Event) string {
		rep, _ := Build(evs)
		return rep.ScenarioSHA256
	}
	for _, tc := range []struct {
		name, figure, by string
		history          map[string]float64
		status           Status
		key              string
	}{
		// The seed run: p99 53.6 ms, 7 upstream 5xx, 1 error, failover 2.4 s.
		{"latency held", "p99", "", map[string]float64{"p99": 0.05}, StatusPass, "p99"},
		{"latency regressed", "p99", "", map[string]float64{"p99": 0.02}, StatusFail, "p99"},
		{"load p99 by amount", "load.p99", ", maxIncreaseBy: 40ms", map[string]float64{"load.p99": 0.02}, StatusPass, "load.p99"},
		{"count regressed", "few-503s", "", map[string]float64{"few-503s": 2}, StatusFail, "few-503s"},
		{"count within amount", "few-503s", ", maxIncreaseBy: 10", map[string]float64{"few-503s": 2}, StatusPass, "few-503s"},
		{"figure missing in history", "failover-fast", "", map[string]float64{"p99": 0.05}, StatusSkipped, "failover-fast"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			evs := base(tc.figure, tc.by)
			h := &pastRuns{runs: past(sha(evs), Pass, tc.history, 5)}
			rep, err := Build(evs, WithHistory(h))
			if err != nil {
				t.Fatal(err)
			}
			x := resultOf(t, rep, "r")
			if x.Status != tc.status || x.Regression == nil || x.Regression.Figure != tc.key {
				t.Fatalf("%s: %s (%+v)", x.Status, x.Message, x.Regression)
			}
			if h.scenario != "reviews-failover" || h.provider != "local" || !h.before.Equal(rep.Started) {
				t.Errorf("asked the history for %s on %s before %v", h.scenario, h.provider, h.before)
			}
			if want := map[Status]Verdict{StatusPass: Pass, StatusSkipped: Pass, StatusFail: Fail}[tc.status]; rep.Verdict != want {
				t.Errorf("verdict %s, want %s", rep.Verdict, want)
			}
		})
	}
}

func TestRegressionHistoryUnreadable(t *testing.T) {
	evs := seedWithExpect(t, "    - name: r\n      regression: {figure: failover-fast, maxIncrease: 50%}\n")
	rep, err := Build(evs, WithHistory(&pastRuns{err: errors.New("history h.db is damaged")}))
	if err != nil {
		t.Fatal(err)
	}
	x := resultOf(t, rep, "r")
	if x.Status != StatusError || !strings.Contains(x.Message, "h.db is damaged") || rep.Verdict != Error {
		t.Errorf("%s: %s; verdict %s", x.Status, x.Message, rep.Verdict)
	}
	if len(rep.Trends) != 0 {
		t.Errorf("trends without a history: %v", rep.Trends)
	}
}

func TestRegressionFailedRunsDoNotCount(t *testing.T) {
	evs := seedWithExpect(t, "    - name: r\n      regression: {figure: failover-fast, last: 3, maxIncrease: 10%}\n")
	runs := append(past("", Fail, map[string]float64{"failover-fast": 9}, 4), past("", Pass, map[string]float64{"failover-fast": 2.3}, 3)...)
	rep, err := Build(evs, WithHistory(&pastRuns{runs: runs}))
	if err != nil {
		t.Fatal(err)
	}
	x := resultOf(t, rep, "r")
	if x.Status != StatusPass || *x.Regression.Median != 2.3 || len(x.Regression.Runs) != 3 {
		t.Errorf("%s: %s (%+v)", x.Status, x.Message, x.Regression)
	}
	if len(x.Regression.ScenarioChanged) != 3 {
		t.Errorf("runs with another scenario file: %v, want 3", x.Regression.ScenarioChanged)
	}
	tr := rep.Trend("failover-fast")
	if tr == nil || len(tr.Points) != 8 || tr.Points[0].Verdict != Pass || tr.Points[7].RunID != rep.RunID {
		t.Errorf("trend = %+v; want every run before (failed ones too), oldest first, this run last", tr)
	}
}

// TestFailoverTimedFromAnEarlierStep is the report's side of pkg/drill's
// testdata/history-seed-slower.yaml: the failover expectation is timed from
// a step that injects nothing (reviews-down, 4 s before the fault step
// reviews-scaled), so the same move takes 4 s longer, and the expectations
// that do not time from that step see the run as before.
func TestFailoverTimedFromAnEarlierStep(t *testing.T) {
	data, err := os.ReadFile("testdata/seed/events.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	var evs []event.Event
	for _, e := range readLog(t, data) {
		switch e.Type {
		case event.FailoverDetected, event.FailbackDetected:
			// Timed from the old step; the report detects them again from the samples.
			continue
		case event.RunStarted:
			var info event.RunInfo
			if err := e.Decode(&info); err != nil {
				t.Fatal(err)
			}
			info.ScenarioYAML = strings.Replace(info.ScenarioYAML, `    - name: reviews-down
      at: 30s
      fault: {scale: {cluster: cluster1, workload: reviews, replicas: 0}}
    - name: reviews-back
      after: reviews-down + 60s
      revert: reviews-down
`, `    - name: reviews-down
      at: 26s
      wait: 1s
    - name: reviews-scaled
      after: reviews-down + 4s
      fault: {scale: {cluster: cluster1, workload: reviews, replicas: 0}}
    - name: reviews-back
      after: reviews-down + 64s
      revert: reviews-scaled
`, 1)
			e.Data, _ = json.Marshal(info)
		case event.StepStarted, event.StepFinished, event.FaultApplied, event.FaultReverted:
			e.Data = json.RawMessage(strings.NewReplacer(`"reviews-down"`, `"reviews-scaled"`, `reviews-down + 60s`, `reviews-down + 64s`).Replace(string(e.Data)))
			e.Source = strings.Replace(e.Source, "reviews-down", "reviews-scaled", 1)
			if e.Type == event.StepStarted && strings.Contains(string(e.Data), `"reviews-scaled"`) {
				// reviews-down, 4 s before, waiting 1 s.
				for i, typ := range []event.Type{event.StepStarted, event.StepFinished} {
					w := event.New(typ, "", "engine", map[string]string{"name": "reviews-down", "trigger": "at 26s", "action": "wait"})
					w.Seq, w.Elapsed = e.Seq, e.Elapsed-4*time.Second+time.Duration(i)*time.Second
					w.Time = e.Time.Add(w.Elapsed - e.Elapsed)
					evs = append(evs, w)
				}
			}
		}
		evs = append(evs, e)
	}
	for i := range evs {
		evs[i].Seq = uint64(i + 1)
	}
	rep, err := Build(evs)
	if err != nil {
		t.Fatal(err)
	}
	x := resultOf(t, rep, "failover-fast")
	if x.Status != StatusPass || x.Measures[0].Observed == nil || *x.Measures[0].Observed != 6.4 {
		t.Fatalf("failover-fast %s: %s (%+v); want 6.4 s, the seed's 2.4 s and 4 s more", x.Status, x.Message, x.Measures)
	}
	for _, y := range rep.Expectations {
		if y.Status != StatusPass {
			t.Errorf("%s %s: %s", y.Name, y.Status, y.Message)
		}
	}
	if rep.Verdict != Pass {
		t.Errorf("verdict %s: %s", rep.Verdict, rep.Reason)
	}
}

// TestRegressionReadsPastFailedRuns: a long run of failed nights does not hide
// the passing runs before them.
func TestRegressionReadsPastFailedRuns(t *testing.T) {
	evs := seedWithExpect(t, "    - name: r\n      regression: {figure: failover-fast, last: 3, maxIncrease: 10%}\n")
	var runs []PastRun
	for range 30 {
		runs = append(runs, PastRun{RunID: "failed", Verdict: Fail, Figures: map[string]float64{"failover-fast": 9}})
	}
	runs = append(runs, past("", Pass, map[string]float64{"failover-fast": 1}, 3)...)
	rep, err := Build(evs, WithHistory(&pastRuns{runs: runs}))
	if err != nil {
		t.Fatal(err)
	}
	x := resultOf(t, rep, "r")
	if x.Status != StatusFail || len(x.Regression.Runs) != 3 || *x.Regression.Median != 1 {
		t.Errorf("%s: %s (%+v)", x.Status, x.Message, x.Regression)
	}
	if tr := rep.Trend("failover-fast"); tr == nil || len(tr.Points) != DefaultTrendRuns+1 {
		t.Errorf("the trend shows %v points, want the last %d runs and this one", tr, DefaultTrendRuns)
	}
}
