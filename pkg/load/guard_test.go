package load

import (
	"io"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/meshdrill/drill/pkg/event"
)

// feed gives the guards one answer at arrival time at.
func feed(gs *guards, at time.Duration, code uint16, degraded bool, latency time.Duration) {
	s := sample{offset: at - latency, code: code, degraded: degraded, latency: latency}
	gs.observe(&s)
}

// TestGuardTrips: a guard trips on the very answer that makes its condition
// true, never before, and answers that slid out of its window no longer count.
func TestGuardTrips(t *testing.T) {
	const ms = time.Millisecond
	var trips []event.GuardTrip
	onTrip := func(tr event.GuardTrip) { trips = append(trips, tr) }

	// 20 good answers, then errors, one every 10 ms: with n = 20 + k answers in
	// the 1 s window, k errors are more than half from k = 21 on.
	gs := newGuards([]Guard{{Name: "errors", Kind: GuardErrors, Over: time.Second, MinRequests: 10, Ratio: 0.5}}, onTrip)
	at := time.Duration(0)
	for range 20 {
		feed(gs, at, 200, false, 5*ms)
		at += 10 * ms
	}
	for k := 1; k <= 30; k++ {
		feed(gs, at, 503, false, 5*ms)
		if (len(trips) > 0) != (k >= 21) {
			t.Fatalf("after error %d: %d trips, want the trip at error 21", k, len(trips))
		}
		at += 10 * ms
	}
	if len(trips) != 1 {
		t.Fatalf("%d trips, want exactly one", len(trips))
	}
	if tr := trips[0]; tr.At != 400*ms || tr.Answers != 41 || tr.Figure <= 0.5 || tr.Guard != "errors" {
		t.Errorf("trip %+v, want at 400ms over 41 answers", tr)
	}

	// Too few answers to decide, then the bad ones slide out of the window.
	trips = nil
	gs = newGuards([]Guard{{Name: "degraded", Kind: GuardDegraded, Over: time.Second, MinRequests: 10, Ratio: 0.5}}, onTrip)
	for i := range 8 {
		feed(gs, time.Duration(i)*10*ms, 200, true, 5*ms)
	}
	for i := range 20 {
		feed(gs, 2*time.Second+time.Duration(i)*10*ms, 200, false, 5*ms)
	}
	if len(trips) != 0 {
		t.Errorf("tripped on answers that had left the window: %+v", trips)
	}

	// p99 over 100 ms: more than 1 % of the answers slower than the bound.
	gs = newGuards([]Guard{{Name: "p99", Kind: GuardLatency, Over: 5 * time.Second, MinRequests: 10, Ratio: 0.01, Bound: 100 * ms}}, onTrip)
	for i := range 300 {
		lat := 20 * ms
		if i == 150 || i == 299 {
			lat = 300 * ms
		}
		feed(gs, time.Duration(i)*10*ms+lat, 200, false, lat)
	}
	// 2 slow of 300 is 0.67 %: under 1 %.
	if len(trips) != 0 {
		t.Fatalf("p99 guard tripped on %+v", trips)
	}
	for i := range 3 {
		feed(gs, 3*time.Second+time.Duration(i)*ms, 200, false, 300*ms)
	}
	if len(trips) != 1 || trips[0].Guard != "p99" {
		t.Errorf("trips %+v, want the p99 guard once more than 1 %% of the window is slow", trips)
	}
}

// TestRunGuard: on a real load against a loopback server that starts failing
// at request 50 (sent at 1 s), an error guard over 1 s trips once more than
// half of the last second's answers are errors — within a second of the first
// error — and the load goes on.
func TestRunGuard(t *testing.T) {
	t.Parallel()
	srv := serve(t, func(seq int, w http.ResponseWriter, r *http.Request) {
		if seq >= 50 {
			http.Error(w, "no healthy upstream", http.StatusServiceUnavailable)
			return
		}
		io.WriteString(w, "ok")
	})
	var mu sync.Mutex
	var trips []event.GuardTrip
	total, _ := run(t, Target{URL: srv.URL}, WithRate(Constant(perSec(50))), WithDuration(3*time.Second),
		WithGuards([]Guard{{Name: "errors", Kind: GuardErrors, Over: time.Second, MinRequests: 10, Ratio: 0.5, Condition: "errors > 50 %"}},
			func(tr event.GuardTrip) { mu.Lock(); trips = append(trips, tr); mu.Unlock() }))
	if total.Requests <= 100 {
		t.Skipf("only %d requests sent", total.Requests)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(trips) != 1 {
		t.Fatalf("%d trips, want 1", len(trips))
	}
	tr := trips[0]
	if tr.At < time.Second || tr.At > 2*time.Second || tr.Figure <= 0.5 || tr.Condition != "errors > 50 %" {
		t.Errorf("trip %+v: want more than half errors, within a second of the first error sent at 1 s", tr)
	}
}

// BenchmarkGuards: what three guards cost per answer of the load.
func BenchmarkGuards(b *testing.B) {
	gs := newGuards([]Guard{
		{Name: "errors", Kind: GuardErrors, Over: 5 * time.Second, MinRequests: 10, Ratio: 0.5},
		{Name: "degraded", Kind: GuardDegraded, Over: 5 * time.Second, MinRequests: 10, Ratio: 0.5},
		{Name: "p99", Kind: GuardLatency, Over: 10 * time.Second, MinRequests: 10, Ratio: 0.01, Bound: time.Second},
	}, func(event.GuardTrip) { b.Fatal("tripped") })
	s := sample{code: 200, latency: 10 * time.Millisecond}
	i := 0
	for b.Loop() {
		s.offset = time.Duration(i) * time.Millisecond // 1,000 answers/s
		gs.observe(&s)
		i++
	}
}
