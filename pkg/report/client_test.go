package report

import (
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/meshdrill/drill/pkg/event"
	"github.com/meshdrill/drill/pkg/scenario"
)

// withServed gives the seed story's load windows the answers' own account of
// who served reviews: served(start) says, for the window sent from start,
// which clusters answered and when the first and last of their answers came.
func withServed(t *testing.T, evs []event.Event, served func(start time.Duration) map[string]event.Seen) []event.Event {
	t.Helper()
	out := make([]event.Event, len(evs))
	for i, e := range evs {
		out[i] = e
		if e.Type != event.LoadWindow {
			continue
		}
		var w event.Window
		if err := e.Decode(&w); err != nil {
			t.Fatal(err)
		}
		if m := served(w.Start); len(m) > 0 {
			w.Served = map[string]map[string]event.Seen{"reviews": m}
		}
		n := event.New(e.Type, e.Cluster, e.Source, w)
		n.Seq, n.Elapsed, n.Time = e.Seq, e.Elapsed, e.Time
		out[i] = n
	}
	return out
}

// seen is n answers spread over [first, last] of the load clock.
func seen(n int64, first, last time.Duration) event.Seen {
	return event.Seen{N: n, First: first, Last: last}
}

// TestClientViewFailover: when the load's answers say who served reviews,
// failover and failback are judged by them, to the millisecond, and the
// report keeps Envoy's scrape-resolution figure beside them.
func TestClientViewFailover(t *testing.T) {
	const ms = time.Millisecond
	evs := withServed(t, seedStory(t).build(), func(start time.Duration) map[string]event.Seen {
		end := start + time.Second
		switch {
		case start < faultAt:
			return map[string]event.Seen{"cluster1": seen(45, start+10*ms, end-5*ms)}
		case start == faultAt:
			// Requests in flight at the fault still get cluster1's answers.
			return map[string]event.Seen{"cluster1": seen(6, start+10*ms, start+120*ms)}
		case start == faultAt+time.Second:
			return map[string]event.Seen{"cluster2": seen(30, start+250*ms, end-5*ms)}
		case start < revertAt:
			return map[string]event.Seen{"cluster2": seen(50, start+10*ms, end-5*ms)}
		case start < revertAt+3*time.Second:
			// Back home, but cluster2 keeps a share until 93.5 s.
			return map[string]event.Seen{"cluster1": seen(20, start+200*ms, end-5*ms), "cluster2": seen(30, start+10*ms, end-500*ms)}
		case start == revertAt+3*time.Second:
			return map[string]event.Seen{"cluster1": seen(40, start+10*ms, end-5*ms), "cluster2": seen(10, start+10*ms, start+500*ms)}
		}
		return map[string]event.Seen{"cluster1": seen(50, start+10*ms, end-5*ms)}
	})
	rep, err := Build(evs)
	if err != nil {
		t.Fatal(err)
	}
	near := func(got *float64, want float64) bool { return got != nil && math.Abs(*got-want) < 1e-6 }

	fo := resultOf(t, rep, "failover-fast")
	if fo.Status != StatusPass || !near(fo.Measures[0].Observed, 1.25) || !near(fo.Measures[0].ResolutionSeconds, 0.001) {
		t.Errorf("failover: %s, observed %v at resolution %v; want pass, 1.25 s (31.250 s, the first answer from cluster2) at 1 ms", fo.Status, deref(fo.Measures[0].Observed), deref(fo.Measures[0].ResolutionSeconds))
	}
	for _, want := range []string{"the load's answers", "31.250 s", "last answer from cluster1 at 30.120 s", "Envoy's stats showed it"} {
		if !strings.Contains(fo.Message, want) {
			t.Errorf("failover message %q lacks %q", fo.Message, want)
		}
	}
	if fo.Detection == nil || fo.Detection.Client == nil {
		t.Errorf("failover detection carries no client view: %+v", fo.Detection)
	}
	fb := resultOf(t, rep, "failback")
	if fb.Status != StatusPass || !near(fb.Measures[0].Observed, 3.5) {
		t.Errorf("failback: %s, observed %v; want pass, 3.5 s (93.5 s, cluster2's last answer)", fb.Status, deref(fb.Measures[0].Observed))
	}
	var clients int
	for _, f := range rep.Timings.Failovers {
		if f.Client != nil {
			clients++
		}
	}
	if clients != 2 {
		t.Errorf("%d of the report's %d failover timings carry the client view, want 2", clients, len(rep.Timings.Failovers))
	}
	var md strings.Builder
	if err := rep.WriteSummary(&md); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(md.String(), "1.25 s after reviews-down by the load's answers (Envoy's stats: 2.4 s") {
		t.Errorf("summary does not give the client view beside Envoy's:\n%s", md.String())
	}

	// cluster1 answers to the end: the answers show no moment of a move, and
	// Envoy's view judges, saying so.
	evs = withServed(t, seedStory(t).build(), func(start time.Duration) map[string]event.Seen {
		return map[string]event.Seen{"cluster1": seen(10, start+10*ms, start+990*ms), "cluster2": seen(40, start+5*ms, start+980*ms)}
	})
	rep, err = Build(evs)
	if err != nil {
		t.Fatal(err)
	}
	fo = resultOf(t, rep, "failover-fast")
	if !near(fo.Measures[0].Observed, 2.4) || !strings.Contains(fo.Message, "alike") || fo.Detection == nil || fo.Detection.Client != nil {
		t.Errorf("failover with both clusters answering: observed %v, %q; want Envoy's 2.4 s and a word on the answers", deref(fo.Measures[0].Observed), fo.Message)
	}
}

func deref(p *float64) any {
	if p == nil {
		return nil
	}
	return *p
}

// TestDips: the seed story's fault costs the ten degraded answers of the two
// windows after it and is over when three windows in a row are back at the
// baseline; the transport error 27 s after the revert is not the revert's.
func TestDips(t *testing.T) {
	evs := withServed(t, seedStory(t).build(), func(time.Duration) map[string]event.Seen { return nil })
	// The windows of the fault say when their degraded answers arrived.
	for i, e := range evs {
		if e.Type != event.LoadWindow {
			continue
		}
		var w event.Window
		if err := e.Decode(&w); err != nil {
			t.Fatal(err)
		}
		if w.Degraded > 0 {
			w.Failed = &event.Seen{N: w.Degraded, First: w.Start + 40*time.Millisecond, Last: w.Start + 700*time.Millisecond}
			n := event.New(e.Type, e.Cluster, e.Source, w)
			n.Seq, n.Elapsed, n.Time = e.Seq, e.Elapsed, e.Time
			evs[i] = n
		}
	}
	rep, err := Build(evs)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Timings.Faults) != 1 {
		t.Fatalf("%d faults, want the seed's one", len(rep.Timings.Faults))
	}
	f := rep.Timings.Faults[0]
	d := f.Dip
	if d == nil {
		t.Fatal("the fault has no dip")
	}
	near := func(got *float64, want float64) bool { return got != nil && math.Abs(*got-want) < 1e-6 }
	if d.Lost != 10 || d.LowestRatio != 0.9 || d.LowestAtSeconds != 30 || d.LowestRate != 45 || d.BaselineRatio != 1 || d.BaselineAssumed {
		t.Errorf("dip %+v: want 10 lost, lowest 90 %% (45/s) at 30 s, against a measured baseline of 100 %%", *d)
	}
	if !near(d.FirstFailedSeconds, 30.04) || !near(d.LastFailedSeconds, 31.7) || d.DurationSeconds != 1.66 {
		t.Errorf("dip failures %v to %v over %v s, want 30.04 to 31.7 over 1.66 s", deref(d.FirstFailedSeconds), deref(d.LastFailedSeconds), d.DurationSeconds)
	}
	// The story applies the fault a few milliseconds after 30 s.
	if !near(d.RecoveredSeconds, 32) || d.RecoverySeconds == nil || math.Abs(*d.RecoverySeconds-2) > 0.05 {
		t.Errorf("recovered at %v, %v s after the fault; want 32 s, 2 s", deref(d.RecoveredSeconds), deref(d.RecoverySeconds))
	}
	if rd := f.RevertDip; rd == nil || rd.Felt() || !near(rd.RecoverySeconds, 0) {
		t.Errorf("the revert's dip %+v, want none felt (the error at 117 s comes long after)", rd)
	}
	var md strings.Builder
	if err := rep.WriteSummary(&md); err != nil {
		t.Fatal(err)
	}
	if want := "reviews-down cost 10 requests: success fell to 90 % (45/s)"; !strings.Contains(md.String(), want) {
		t.Errorf("summary lacks %q:\n%s", want, md.String())
	}
}

// TestClientViewHorizon: answers after the horizon (the revert) do not count
// against the move, even in the window that straddles it.
func TestClientViewHorizon(t *testing.T) {
	const ms = time.Millisecond
	sec := func(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }
	var ws []event.Window
	for i := 25; i < 95; i++ {
		start := time.Duration(i) * time.Second
		w := event.Window{Start: start, End: start + time.Second, Requests: 50}
		switch {
		case i < 30:
			w.Served = map[string]map[string]event.Seen{"reviews": {"cluster1": seen(50, start+3*ms, start+980*ms)}}
		case i == 30:
			w.Served = map[string]map[string]event.Seen{"reviews": {"cluster1": seen(5, start+4*ms, sec(30.086)), "cluster2": seen(45, sec(30.108), start+980*ms)}}
		case i < 90:
			w.Served = map[string]map[string]event.Seen{"reviews": {"cluster2": seen(50, start+3*ms, start+980*ms)}}
		case i == 90:
			// The revert came at 90.001 s: cluster1 is back from 90.5 s.
			w.Served = map[string]map[string]event.Seen{"reviews": {"cluster2": seen(25, start+ms/2, sec(90.4)), "cluster1": seen(25, sec(90.5), sec(90.99))}}
		default:
			w.Served = map[string]map[string]event.Seen{"reviews": {"cluster1": seen(50, start+3*ms, start+980*ms)}}
		}
		ws = append(ws, w)
	}
	ev := &evaluator{r: &run{windows: ws}}
	co := ev.clientView("reviews", "cluster1", "cluster2", 30*time.Second, sec(90.001))
	if !co.moved || math.Abs(co.view.TookSeconds-0.108) > 1e-9 || math.Abs(co.view.MovedSeconds-30.108) > 1e-9 {
		t.Errorf("client view %+v (moved %v), want the move at 30.108 s, 108 ms after the step", co.view, co.moved)
	}
}

// TestSteadyState: the check the engine recorded before the first fault is a
// line of the report, and a failed one makes the drill inconclusive whatever
// the other expectations say; after the last revert the report finds when the
// mesh was steady again.
func TestSteadyState(t *testing.T) {
	story := seedStory(t)
	story.yaml = strings.Replace(story.yaml, "  expect:\n", "  steadyState: {over: 10s, failedRatio: 0.01}\n  expect:\n", 1)
	evs := story.build()
	// What the engine records at the fault: the 10 s before it, steady.
	held := event.New(event.SteadyStateChecked, "cluster1", "engine", event.SteadyCheck{Held: true, From: 20 * time.Second, Until: 30 * time.Second, Requests: 500, Message: "errors and degraded 0 % of 500 answers (at most 1 %)"})
	held.Seq, held.Elapsed = evs[len(evs)-1].Seq+1, storyLoadAt+30*time.Second
	rep, err := Build(append(slices.Clone(evs), held))
	if err != nil {
		t.Fatal(err)
	}
	before, after := resultOf(t, rep, "steady-state-before"), resultOf(t, rep, "steady-state-after")
	if before.Status != StatusPass || after.Status != StatusPass || rep.Verdict != Pass {
		t.Fatalf("before %s, after %s (%s), verdict %s (%s); want both pass", before.Status, after.Status, after.Message, rep.Verdict, rep.Reason)
	}
	// The revert came at 90 s and its own dip was none: steady from the
	// first window after it.
	if o := after.Measures[0].Observed; o == nil || *o < 0.9 || *o > 1.1 {
		t.Errorf("return to steady state %v s after the revert, want about 1 s (the first window starting after it): %s", deref(o), after.Message)
	}

	notHeld := event.New(event.SteadyStateChecked, "cluster1", "engine", event.SteadyCheck{Held: false, From: 20 * time.Second, Until: 30 * time.Second, Requests: 500,
		Message: "errors and degraded 40 % of 500 answers (at most 1 %)", Broken: []string{"errors and degraded"}})
	notHeld.Seq, notHeld.Elapsed = held.Seq, held.Elapsed
	rep, err = Build(append(slices.Clone(evs), notHeld))
	if err != nil {
		t.Fatal(err)
	}
	if rep.Verdict != Inconclusive || rep.Verdict.ExitCode() != 3 || !strings.Contains(rep.Reason, "not in its steady state before the first fault") {
		t.Errorf("verdict %s (%s), want inconclusive naming the steady state", rep.Verdict, rep.Reason)
	}
	if r := resultOf(t, rep, "steady-state-before"); r.Status != StatusInconclusive || !strings.Contains(r.Message, "40 %") {
		t.Errorf("steady-state-before %s: %s", r.Status, r.Message)
	}
}

// TestSteadyCheck: each condition against its figure over the windows.
func TestSteadyCheck(t *testing.T) {
	r := func(v float64) *float64 { return &v }
	ws := []event.Window{
		{Start: 0, End: time.Second, Requests: 50, Errors: 1, P99: 40 * time.Millisecond},
		{Start: time.Second, End: 2 * time.Second, Requests: 50, Degraded: 4, P99: 900 * time.Millisecond},
	}
	for _, tc := range []struct {
		name   string
		ss     scenario.SteadyState
		held   bool
		broken string
	}{
		{"errors within", scenario.SteadyState{ErrorRatio: r(0.01)}, true, ""},
		{"degraded over", scenario.SteadyState{DegradedRatio: r(0.02)}, false, "degraded"},
		{"failed at the limit", scenario.SteadyState{FailedRatio: r(0.05)}, true, ""},
		{"p99 over (an upper bound without histograms)", scenario.SteadyState{Latency: &scenario.GuardLatency{P99: scenario.Duration(500 * time.Millisecond)}}, false, "p99"},
	} {
		c := SteadyCheck(&tc.ss, ws)
		if c.Held != tc.held || (tc.broken != "" && !slices.Contains(c.Broken, tc.broken)) || c.Requests != 100 {
			t.Errorf("%s: held %v broken %v (%s), want held %v broken %q", tc.name, c.Held, c.Broken, c.Message, tc.held, tc.broken)
		}
	}
	if c := SteadyCheck(&scenario.SteadyState{ErrorRatio: r(0.5)}, nil); c.Held {
		t.Error("a span without answers held")
	}
}

// TestRecoveryAndAvailability: the expectations on the dips: how soon the load
// was back after a fault or a revert, and the floor under every window.
func TestRecoveryAndAvailability(t *testing.T) {
	story := seedStory(t)
	story.yaml = withExpect(t, story.yaml, `    - name: back-soon
      recovery: {after: reviews-down, within: 5s}
    - name: back-at-once
      recovery: {after: reviews-down, within: 1s}
    - name: revert-costs-nothing
      recovery: {after: reviews-back, within: 1s}
    - name: floor
      availability: {min: 0.85}
    - name: high-floor
      availability: {min: 0.95, from: reviews-down, until: reviews-back}
`)
	rep, err := Build(story.build())
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name     string
		status   Status
		observed float64
	}{
		// From the step's start (30 s), not from the moment its apply
		// returned (30.018 s): the clients feel a fault from its first change.
		{"back-soon", StatusPass, 2},
		{"back-at-once", StatusFail, 2},
		{"revert-costs-nothing", StatusPass, 0},
		{"floor", StatusPass, 0.9},
		{"high-floor", StatusFail, 0.9},
	} {
		r := resultOf(t, rep, c.name)
		if r.Status != c.status || r.Measures[0].Observed == nil || math.Abs(*r.Measures[0].Observed-c.observed) > 0.01 {
			t.Errorf("%s: %s, observed %v (%s); want %s, %v", c.name, r.Status, deref(r.Measures[0].Observed), r.Message, c.status, c.observed)
		}
	}
	if r := resultOf(t, rep, "high-floor"); r.Measures[0].ObservedText() != "90 %" || r.Measures[0].LimitText() != "≥ 95 %" {
		t.Errorf("availability shown as %q against %q, want 90 %% against ≥ 95 %%", r.Measures[0].ObservedText(), r.Measures[0].LimitText())
	}
}

// TestClientViewHorizonLaterFault: a failover timed from a step that is not
// the one whose fault is reverted (locality-failover.yaml: pods deleted at
// reviews-down, reviews scaled to zero by reviews-gone, and reviews-back
// reverting reviews-gone) still ends its answers at the revert. Before, the
// horizon was the end of the load, cluster1's answers after the failback
// counted against the move, and a 100 ms failover read as 89 s.
func TestClientViewHorizonLaterFault(t *testing.T) {
	const ms = time.Millisecond
	sec := func(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }
	var ws []event.Window
	for i := 25; i < 120; i++ {
		start := time.Duration(i) * time.Second
		w := event.Window{Start: start, End: start + time.Second, Requests: 50}
		switch {
		case i < 30 || i >= 81:
			w.Served = map[string]map[string]event.Seen{"reviews": {"cluster1": seen(50, start+3*ms, start+980*ms)}}
		case i == 30:
			w.Served = map[string]map[string]event.Seen{"reviews": {"cluster1": seen(5, start+4*ms, sec(30.090)), "cluster2": seen(45, sec(30.112), start+980*ms)}}
		case i < 80:
			w.Served = map[string]map[string]event.Seen{"reviews": {"cluster2": seen(50, start+3*ms, start+980*ms)}}
		default:
			w.Served = map[string]map[string]event.Seen{"reviews": {"cluster2": seen(20, start+3*ms, sec(80.4)), "cluster1": seen(30, sec(80.5), start+980*ms)}}
		}
		ws = append(ws, w)
	}
	s := &scenario.Scenario{Spec: scenario.Spec{Steps: []scenario.Step{
		{Name: "reviews-down"}, {Name: "reviews-gone"}, {Name: "reviews-back", Revert: "reviews-gone"},
	}}}
	r := &run{windows: ws, steps: []stepRec{
		{name: "reviews-down", at: 30 * time.Second}, {name: "reviews-gone", at: 30*time.Second + 9*ms}, {name: "reviews-back", at: 80 * time.Second},
	}}
	ev := &evaluator{r: r, s: s}
	if h := ev.horizon("reviews-down", false); h != 80*time.Second {
		t.Fatalf("horizon %v, want 80s (reviews-back reverts the fault of a step after reviews-down)", h)
	}
	if h := ev.horizon("reviews-back", true); h != 120*time.Second {
		t.Errorf("failback horizon %v, want the end of the load, 120s", h)
	}
	co := ev.clientView("reviews", "cluster1", "cluster2", 30*time.Second, ev.horizon("reviews-down", false))
	if !co.moved || math.Abs(co.view.TookSeconds-0.112) > 1e-9 {
		t.Errorf("client view %+v (moved %v), want the move at 30.112 s, 112 ms after the step", co.view, co.moved)
	}
}

// TestClientViewNoMoveAtTheHorizon: when both clusters answer up to the end
// and the very last answer happens to come from the one traffic would move
// to, that is no move (a kind run read a 39 s failback from it).
func TestClientViewNoMoveAtTheHorizon(t *testing.T) {
	const ms = time.Millisecond
	var ws []event.Window
	for i := 80; i < 120; i++ {
		start := time.Duration(i) * time.Second
		w := event.Window{Start: start, End: start + time.Second, Requests: 60}
		w.Served = map[string]map[string]event.Seen{"reviews": {
			"cluster1": seen(30, start+3*ms, start+980*ms),
			"cluster2": seen(30, start+5*ms, start+970*ms),
		}}
		ws = append(ws, w)
	}
	ev := &evaluator{r: &run{windows: ws}}
	co := ev.clientView("reviews", "cluster2", "cluster1", 80*time.Second, 120*time.Second)
	if co.moved || !co.stillTwo {
		t.Errorf("client view %+v: moved %v, still two %v; want no move, both answering", co.view, co.moved, co.stillTwo)
	}
}
