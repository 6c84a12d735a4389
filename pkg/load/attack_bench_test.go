package load

import (
	"bufio"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"

	"github.com/meshdrill/drill/pkg/event"
)

// BenchmarkAttack runs one-second attacks at fixed rates against a loopback server,
// through drill (New + Run, windows and histograms included) and through vegeta's
// library alone, read into vegeta.Metrics as `vegeta report` does. It reports the
// achieved rate (requests over the attack's duration, for both) and the median latency
// (drill: HDR histogram; vegeta: its t-digest), and the CPU time per request of the
// whole process, loopback server included: on a busy machine the rate and latency
// depend on what else runs, while CPU per request says what each costs. The op is one
// attack, so ns/op is the attack's wall time: the duration plus the wait for the last
// answers.
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
			cpu := cpuTime()
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
			report(b, requests, p50, cpuTime()-cpu, duration)
		})
		b.Run(fmt.Sprintf("vegeta/rate=%d", rate), func(b *testing.B) {
			var requests int64
			var p50 time.Duration
			cpu := cpuTime()
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
			report(b, requests, p50, cpuTime()-cpu, duration)
		})
	}
}

func report(b *testing.B, requests int64, p50, cpu, duration time.Duration) {
	n := float64(b.N)
	b.ReportMetric(float64(requests)/n/duration.Seconds(), "req/s")
	b.ReportMetric(float64(p50.Microseconds())/n, "p50-µs")
	if cpu > 0 && requests > 0 {
		b.ReportMetric(float64(cpu.Microseconds())/float64(requests), "cpu-µs/req")
	}
}

// BenchmarkCollect measures the work done per result on the goroutine that drains
// vegeta's results, which vegeta's workers wait on: drill's (degraded match on a 2 kB
// page, windows and HDR histograms, results file without the body) beside what
// `vegeta attack` does per result (gob-encode it, body included, to its output).
func BenchmarkCollect(b *testing.B) {
	const line = "<p>The Comedy of Errors by William Shakespeare</p>\n"
	body := []byte(strings.Repeat(line, 2048/len(line)+1)[:2048])
	began := time.Now()
	result := func(i uint64) *vegeta.Result {
		return &vegeta.Result{
			Attack: attackName, Seq: i, Code: 200,
			Timestamp: began.Add(time.Duration(i) * 200 * time.Microsecond), // 5000/s
			Latency:   time.Duration(200+i%300) * time.Microsecond,
			BytesIn:   uint64(len(body)), Body: body,
			Method: http.MethodGet, URL: "http://127.0.0.1:8080/productpage",
			Headers: http.Header{"Content-Type": {"text/html"}, "Content-Length": {"2048"}, "Date": {"Tue, 24 Nov 2026 21:00:00 GMT"}},
		}
	}

	b.Run("drill", func(b *testing.B) {
		w := bufio.NewWriter(io.Discard)
		col := &collector{
			win:     newWindower(time.Second, 0, func(event.Window) {}),
			match:   DegradedWhen{BodyContains: "product reviews are currently unavailable"}.matcher(),
			out:     &resultsFile{w: w, enc: vegeta.NewEncoder(w)},
			log:     slog.New(slog.DiscardHandler),
			began:   began,
			stopped: &atomic.Bool{},
		}
		var i uint64
		for b.Loop() {
			col.add(result(i))
			i++
		}
	})
	b.Run("vegeta-attack", func(b *testing.B) {
		enc := vegeta.NewEncoder(bufio.NewWriter(io.Discard))
		var i uint64
		for b.Loop() {
			if err := enc.Encode(result(i)); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
}
