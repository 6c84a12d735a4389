package history

import (
	"context"
	"fmt"
	"testing"

	"github.com/meshdrill/drill/pkg/report"
)

// benchRuns is the size of the history the benchmarks run against: about
// 27 years of one nightly scenario, or a year of 27 of them.
const benchRuns = 10_000

// filled returns a history of benchRuns runs of the seed scenario (with
// their figures, about 20 each), and the report they were made from.
func filled(b *testing.B) (*Store, *report.Report) {
	b.Helper()
	ctx := context.Background()
	s := openTemp(b)
	base := seedReport(b, night(0), "", nil)
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		b.Fatal(err)
	}
	for i := range benchRuns {
		rep := *base
		rep.RunID = fmt.Sprintf("reviews-failover-%05d", i)
		rep.Started = night(i)
		if err := appendTx(ctx, tx, &rep, ""); err != nil {
			b.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		b.Fatal(err)
	}
	return s, base
}

// BenchmarkAppend records one run into a history of benchRuns runs, each in
// its own transaction as drill run does.
func BenchmarkAppend(b *testing.B) {
	s, base := filled(b)
	ctx := context.Background()
	b.ResetTimer()
	for i := range b.N {
		rep := *base
		rep.RunID = fmt.Sprintf("bench-%d", i)
		rep.Started = night(benchRuns + i)
		if err := s.Append(ctx, &rep, ""); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkTrendQuery reads the last 20 runs before a run with their figures
// (what a report's regressions and trends need) from a history of benchRuns.
func BenchmarkTrendQuery(b *testing.B) {
	s, base := filled(b)
	b.ResetTimer()
	for range b.N {
		past, err := s.Runs(base.Scenario, base.Provider, night(benchRuns/2), report.DefaultTrendRuns)
		if err != nil || len(past) != report.DefaultTrendRuns {
			b.Fatalf("%d runs, %v", len(past), err)
		}
	}
}

// BenchmarkHistoryCommand is drill history -n 50 with its trends over a
// history of benchRuns runs.
func BenchmarkHistoryCommand(b *testing.B) {
	s, base := filled(b)
	ctx := context.Background()
	b.ResetTimer()
	for range b.N {
		runs, err := s.List(ctx, Filter{Scenario: base.Scenario, Limit: 50})
		if err != nil || len(runs) != 50 {
			b.Fatalf("%d runs, %v", len(runs), err)
		}
		if len(Trends(runs)) == 0 {
			b.Fatal("no trends")
		}
	}
}
