package report

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/meshdrill/drill/pkg/event"
	"github.com/meshdrill/drill/pkg/scenario"
)

// SteadyCheck judges load windows against a scenario's steady state: each
// condition with its figure over the windows together. Latency is read from
// the windows' merged histograms (exact), else the largest of their own
// percentiles (an upper bound).
func SteadyCheck(ss *scenario.SteadyState, windows []event.Window) event.SteadyCheck {
	var c event.SteadyCheck
	var errs, degraded int64
	for i, w := range windows {
		if i == 0 || w.Start < c.From {
			c.From = w.Start
		}
		c.Until = max(c.Until, w.End)
		c.Requests += w.Requests
		errs += w.Errors
		degraded += w.Degraded
	}
	if c.Requests == 0 {
		c.Message = "no answer came back in the span"
		c.Broken = []string{"answers"}
		return c
	}
	var parts []string
	ratio := func(name string, limit *float64, n int64) {
		if limit == nil {
			return
		}
		got := float64(n) / float64(c.Requests)
		ok := got <= *limit
		parts = append(parts, fmt.Sprintf("%s %s of %s answers (at most %s)", name, percent(roundTo(got, 4)), formatCount(float64(c.Requests)), percent(*limit)))
		if !ok {
			c.Broken = append(c.Broken, name)
		}
	}
	ratio("errors", ss.ErrorRatio, errs)
	ratio("degraded", ss.DegradedRatio, degraded)
	ratio("errors and degraded", ss.FailedRatio, errs+degraded)
	if l := ss.Latency; l != nil {
		pct, bound := l.Bound()
		q := slices.Index(percentiles[:], pct)
		p, exact := mergedPercentiles(windows)
		got := p[q]
		how := ""
		if !exact {
			for _, w := range windows {
				got = max(got, [3]time.Duration{w.P50, w.P90, w.P99}[q])
			}
			how = " at most"
		}
		parts = append(parts, fmt.Sprintf("p%g%s %s (at most %s)", percentiles[q], how, formatSeconds(seconds(got)), formatSeconds(seconds(bound))))
		if got > bound {
			c.Broken = append(c.Broken, fmt.Sprintf("p%g", percentiles[q]))
		}
	}
	c.Held = len(c.Broken) == 0
	c.Message = strings.Join(parts, ", ")
	return c
}

// steadyWindows are the windows that lie in [from, until) by their middle.
func steadyWindows(windows []event.Window, from, until time.Duration) []event.Window {
	var out []event.Window
	for _, w := range windows {
		if within(w.Start, w.End, from, until) {
			out = append(out, w)
		}
	}
	return out
}

// steadyState adds the steady-state lines to the report: the check made
// before the first fault, as the engine recorded it, and the return to it
// after the last revert, found in the windows.
func (ev *evaluator) steadyState() {
	ss := ev.s.Spec.SteadyState
	if ss == nil {
		return
	}
	if c := ev.r.steady; c != nil {
		res := Result{Name: "steady-state-before", Kind: "steadyState",
			Check:    fmt.Sprintf("the mesh is in its steady state in the %s before the first fault", ss.Over),
			Window:   &Span{From: fmtT(c.From), Until: fmtT(c.Until), FromSeconds: seconds(c.From), UntilSeconds: seconds(c.Until)},
			Message:  c.Message,
			Measures: []Measure{},
			Status:   StatusPass,
		}
		if !c.Held {
			res.Status = StatusInconclusive
			res.Message = "not steady: " + strings.Join(c.Broken, ", ") + " — " + c.Message + "; no fault was injected"
		}
		ev.rep.Expectations = append(ev.rep.Expectations, res)
		if !c.Held {
			return
		}
	}
	var last float64 = -1
	for _, f := range ev.rep.Timings.Faults {
		if f.RevertedSeconds != nil && *f.RevertedSeconds > last {
			last = *f.RevertedSeconds
		}
	}
	if last < 0 {
		return
	}
	after := time.Duration(last * float64(time.Second))
	end := ev.r.loadEnd()
	res := Result{Name: "steady-state-after", Kind: "steadyState", Measures: []Measure{},
		Check: fmt.Sprintf("the mesh returns to its steady state (%s of load as before the first fault) after the last revert", ss.Over)}
	m := Measure{Name: "return to steady state", Unit: UnitSeconds}
	// The first span of Over, starting at a window's start after the revert,
	// in which the steady state holds.
	for _, w := range ev.r.windows {
		if w.Start < after || w.Start+ss.Over.D() > end {
			continue
		}
		c := SteadyCheck(ss, steadyWindows(ev.r.windows, w.Start, w.Start+ss.Over.D()))
		if c.Held {
			m.Observed, m.Held = fptr(roundTo(seconds(w.Start-after), 3)), true
			res.Window = &Span{From: fmtT(w.Start), Until: fmtT(w.Start + ss.Over.D()), FromSeconds: seconds(w.Start), UntilSeconds: seconds(w.Start + ss.Over.D())}
			res.Message = fmt.Sprintf("steady again from %s, %s after the last revert: %s", fmtT(w.Start), formatSeconds(*m.Observed), c.Message)
			break
		}
	}
	if m.Observed == nil {
		res.Message = fmt.Sprintf("the mesh did not return to its steady state within the %s of load after the last revert", fmtT(end-after))
		if end-after < ss.Over.D() {
			res.Message += fmt.Sprintf(", shorter than the %s the steady state is judged over", ss.Over)
		}
	}
	res.Measures = append(res.Measures, m)
	res.Status = StatusFail
	if m.Held {
		res.Status = StatusPass
	}
	ev.rep.Expectations = append(ev.rep.Expectations, res)
}
