package history

import (
	"context"
	"encoding/json"
	"path/filepath"
	"testing"
	"time"

	"github.com/meshdrill/drill/pkg/event"
	"github.com/meshdrill/drill/pkg/report"
)

// seedLog is a recorded run of the seed scenario (reviews-failover on the
// local provider): the report package's golden run.
const seedLog = "../report/testdata/seed/events.jsonl"

// regressionExpect is appended to the seed run's scenario: failover-fast
// (2.4 s in the recorded run) may be 50% or 200 ms above the median of the
// last 3 passing runs.
const regressionExpect = `    - name: failover-not-slower
      regression: {figure: failover-fast, last: 3, maxIncrease: 50%, maxIncreaseBy: 200ms}
`

// seedEvents returns the recorded seed run's events, moved to start at
// start, with extra appended to its scenario's expectations.
func seedEvents(t testing.TB, start time.Time, extra string) []event.Event {
	t.Helper()
	events, err := event.ReadLog(seedLog)
	if err != nil {
		t.Fatal(err)
	}
	shift := start.Sub(events[0].Time)
	for i := range events {
		events[i].Time = events[i].Time.Add(shift)
	}
	var info event.RunInfo
	if err := events[0].Decode(&info); err != nil {
		t.Fatal(err)
	}
	info.ScenarioYAML += extra
	b, err := json.Marshal(info)
	if err != nil {
		t.Fatal(err)
	}
	events[0].Data = b
	return events
}

// seedReport builds the seed run's report as started at start, judged with
// h (nil for none).
func seedReport(t testing.TB, start time.Time, extra string, h report.History) *report.Report {
	t.Helper()
	var opts []report.Option
	if h != nil {
		opts = append(opts, report.WithHistory(h))
	}
	rep, err := report.Build(seedEvents(t, start, extra), opts...)
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

// setObserved sets the observed value of expectation name's first measure,
// as a run whose figure was different would have it.
func setObserved(t testing.TB, rep *report.Report, name string, v float64) {
	t.Helper()
	for i := range rep.Expectations {
		if x := &rep.Expectations[i]; x.Name == name {
			x.Measures[0].Observed = &v
			return
		}
	}
	t.Fatalf("the report has no expectation %s", name)
}

func openTemp(t testing.TB) *Store {
	t.Helper()
	s, err := Open(context.Background(), filepath.Join(t.TempDir(), FileName))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func expectation(t testing.TB, rep *report.Report, name string) report.Result {
	t.Helper()
	for _, x := range rep.Expectations {
		if x.Name == name {
			return x
		}
	}
	t.Fatalf("the report has no expectation %s", name)
	return report.Result{}
}

var day0 = time.Date(2026, 11, 1, 2, 0, 0, 0, time.UTC)

// night is the start of the nightly run n days after day0.
func night(n int) time.Time { return day0.Add(time.Duration(n) * 24 * time.Hour) }
