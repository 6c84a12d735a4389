package load

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
)

// BenchmarkAttack runs one-second attacks at fixed rates against a loopback server,
// through drill (New + Run, windows and histograms included) and through vegeta's
// library alone, read into vegeta.Metrics as `vegeta report` does. It reports the
// achieved rate (requests over the attack's duration, for both) and the median latency
// (drill: HDR histogram; vegeta: its t-digest). The op is one attack, so ns/op is the
// attack's wall time: the duration plus the wait for the last answers.
//
//	go test -run '^$' -bench Attack -benchtime 3x ./pkg/load
func BenchmarkAttack(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, "ok")
	}))
	defer srv.Close()
	const duration = time.Second

	for _, rate := range []int{500, 2000, 5000} {
		b.Run(fmt.Sprintf("drill/rate=%d", rate), func(b *testing.B) {
			a, err := New(Target{URL: srv.URL}, WithRate(Constant(perSec(rate))), WithDuration(duration))
			if err != nil {
				b.Fatal(err)
			}
			var requests int64
			var p50 time.Duration
			for b.Loop() {
				total, err := a.Run(b.Context(), nil)
				if err != nil {
					b.Fatal(err)
				}
				if total.Errors > 0 {
					b.Fatalf("%d errors: %v", total.Errors, total.Codes)
				}
				requests += total.Requests
				p50 += total.P50
			}
			report(b, requests, p50, duration)
		})
		b.Run(fmt.Sprintf("vegeta/rate=%d", rate), func(b *testing.B) {
			var requests int64
			var p50 time.Duration
			for b.Loop() {
				atk := vegeta.NewAttacker()
				tr := vegeta.NewStaticTargeter(vegeta.Target{Method: http.MethodGet, URL: srv.URL})
				var m vegeta.Metrics
				for r := range atk.Attack(tr, perSec(rate), duration, "vegeta") {
					m.Add(r)
				}
				m.Close()
				if m.Success < 1 {
					b.Fatalf("errors: %v", m.Errors)
				}
				requests += int64(m.Requests)
				p50 += m.Latencies.P50
			}
			report(b, requests, p50, duration)
		})
	}
}

func report(b *testing.B, requests int64, p50 time.Duration, duration time.Duration) {
	n := float64(b.N)
	b.ReportMetric(float64(requests)/n/duration.Seconds(), "req/s")
	b.ReportMetric(float64(p50.Microseconds())/n, "p50-µs")
}
