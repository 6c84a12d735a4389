package report

import (
	"errors"
	"fmt"
	"time"

	"github.com/meshdrill/drill/pkg/event"
	"github.com/meshdrill/drill/pkg/scenario"
)

// Dip is what a fault, or its revert, cost the load's clients: how deep and
// how long availability fell and when it was back, from the load windows.
// A request succeeds when it is answered 2xx/3xx and not degraded; a window
// is in the dip when its success ratio is more than dipTolerance below the
// baseline.
type Dip struct {
	// BaselineRatio is the success ratio of the load before the first fault
	// (1 when no window came before it: then it is assumed).
	BaselineRatio   float64 `json:"baselineRatio"`
	BaselineAssumed bool    `json:"baselineAssumed,omitempty"`
	// WindowSeconds is the length of the windows ratios are taken over.
	WindowSeconds float64 `json:"windowSeconds"`
	// FromSeconds and UntilSeconds: the part of the load looked at, from the
	// step to the next fault step, the revert or the end of the load.
	FromSeconds  float64 `json:"fromSeconds"`
	UntilSeconds float64 `json:"untilSeconds"`
	// LowestRatio is the worst window's success ratio, LowestAtSeconds its
	// start, LowestRate its successful answers per second.
	LowestRatio     float64 `json:"lowestRatio"`
	LowestAtSeconds float64 `json:"lowestAtSeconds"`
	LowestRate      float64 `json:"lowestRate"`
	// Lost is the requests that failed or were degraded in the dip's windows.
	Lost int64 `json:"lost"`
	// FirstFailedSeconds and LastFailedSeconds: the first and last failed or
	// degraded answer of the dip, to the millisecond (when the windows say
	// when their failures arrived); DurationSeconds is between the two.
	FirstFailedSeconds *float64 `json:"firstFailedSeconds,omitempty"`
	LastFailedSeconds  *float64 `json:"lastFailedSeconds,omitempty"`
	DurationSeconds    float64  `json:"durationSeconds"`
	// RecoveredSeconds is the start of the first of stableWindows windows in
	// a row back at the baseline after the dip (or of the windows at the
	// baseline up to UntilSeconds, when fewer are left); RecoverySeconds is it
	// less FromSeconds. Absent when the load was not back by UntilSeconds.
	RecoveredSeconds *float64 `json:"recoveredSeconds,omitempty"`
	RecoverySeconds  *float64 `json:"recoverySeconds,omitempty"`
}

// dipTolerance: a window whose success ratio is within one percentage point
// of the baseline is not in the dip (at 50 requests/s and 1 s windows, one
// failure is two points: every failure counts).
const dipTolerance = 0.01

// stableWindows: the load is back when this many windows in a row are at the
// baseline (3 s at the default 1 s windows); a single good window inside a
// dip does not end it.
const stableWindows = 3

// dipOnset: failures that begin more than this after a step are not counted
// as its dip (a failback's own dip begins within seconds of the revert; a
// stray timeout half a minute later is something else).
const dipOnset = 10 * time.Second

// togetherWithin is how close the drill's own reverts (a guard's, the end's)
// must follow each other to count as one moment.
const togetherWithin = 5.0

// Felt says whether the clients saw the dip at all.
func (d *Dip) Felt() bool { return d != nil && d.Lost > 0 }

// dips computes the dip of every fault and every revert of the run.
func (ev *evaluator) dips() {
	r, tm := ev.r, &ev.rep.Timings
	if len(r.windows) == 0 || len(tm.Faults) == 0 {
		return
	}
	// A fault begins when its step starts, not when its apply returns: a
	// zone loss scaling four Deployments takes a second on kind, and the
	// clients feel the first of them before the last is scaled. The same for
	// a revert step; a revert at the end of the drill has no step of its own.
	applied := func(f FaultTiming) float64 {
		if at, ok := ev.stepStart(f.Step); ok && at <= f.AppliedSeconds {
			return at
		}
		return f.AppliedSeconds
	}
	var steps []scenario.Step
	if ev.s != nil {
		steps = ev.s.Spec.Steps
	}
	revertStep := func(f FaultTiming) (float64, bool) {
		for _, st := range steps {
			if st.Revert == f.Step {
				if at, ok := ev.stepStart(st.Name); ok && at <= *f.RevertedSeconds {
					return at, true
				}
			}
		}
		return 0, false
	}
	reverted := func(f FaultTiming) float64 {
		if at, ok := revertStep(f); ok {
			return at
		}
		// Reverts without a step of their own are the drill's: a guard's or
		// the end's, every fault one after the other. They are one moment for
		// the clients, the first of them, so each gets the dip of them all
		// rather than the few milliseconds until the next.
		at := *f.RevertedSeconds
		for _, o := range tm.Faults {
			if o.RevertedSeconds == nil {
				continue
			}
			if _, own := revertStep(o); !own && *o.RevertedSeconds < at && at-*o.RevertedSeconds < togetherWithin {
				at = *o.RevertedSeconds
			}
		}
		return at
	}
	first := applied(tm.Faults[0])
	for _, f := range tm.Faults {
		first = min(first, applied(f))
	}
	base, assumed := ev.baseline(first)
	var starts []float64 // every fault and revert: each one's dip ends at the next
	for _, f := range tm.Faults {
		starts = append(starts, applied(f))
		if f.RevertedSeconds != nil {
			starts = append(starts, reverted(f))
		}
	}
	until := func(from float64) float64 {
		u := seconds(r.loadEnd())
		for _, s := range starts {
			if s > from && s < u {
				u = s
			}
		}
		return u
	}
	for i := range tm.Faults {
		f := &tm.Faults[i]
		f.Dip = ev.dip(applied(*f), until(applied(*f)), base, assumed)
		if f.RevertedSeconds != nil {
			f.RevertDip = ev.dip(reverted(*f), until(reverted(*f)), base, assumed)
		}
	}
}

// stepStart is when the named step started, on the load clock.
func (ev *evaluator) stepStart(name string) (float64, bool) {
	for _, st := range ev.rep.Timings.Steps {
		if st.Name == name {
			return st.AtSeconds, true
		}
	}
	return 0, false
}

// baseline is the success ratio of the windows that ended by the first
// fault.
func (ev *evaluator) baseline(firstFault float64) (ratio float64, assumed bool) {
	var req, bad int64
	for _, w := range ev.r.windows {
		if seconds(w.End) <= firstFault {
			req += w.Requests
			bad += w.Errors + w.Degraded
		}
	}
	if req == 0 {
		return 1, true
	}
	return float64(req-bad) / float64(req), false
}

func successRatio(w event.Window) float64 {
	if w.Requests == 0 {
		return 1
	}
	return float64(w.Requests-w.Errors-w.Degraded) / float64(w.Requests)
}

// dip is the dip of the windows sent in [from, until) seconds.
func (ev *evaluator) dip(from, until, base float64, assumed bool) *Dip {
	d := &Dip{BaselineRatio: roundTo(base, 4), BaselineAssumed: assumed, FromSeconds: from, UntilSeconds: until,
		WindowSeconds: seconds(ev.r.windowWidth()), LowestRatio: 1}
	var in []event.Window
	for _, w := range ev.r.windows {
		// A window counts when most of it lies after from.
		if mid := seconds(w.Start + (w.End-w.Start)/2); mid >= from && mid < until {
			in = append(in, w)
		}
	}
	if len(in) == 0 {
		return nil
	}
	bad := func(w event.Window) bool { return successRatio(w) < base-dipTolerance }
	firstDip, end, run := -1, len(in), 0
	for i, w := range in {
		switch {
		case bad(w) && firstDip < 0 && seconds(w.Start)-from > dipOnset.Seconds():
			// Failures that begin this long after the step are not its.
			end = i
		case bad(w):
			if firstDip < 0 {
				firstDip = i
			}
			run = 0
		case firstDip >= 0:
			run++
		}
		if run == stableWindows {
			end = i - stableWindows + 1
		}
		if end < len(in) {
			break
		}
	}
	if firstDip >= 0 && end == len(in) && run > 0 {
		end = len(in) - run // back by the end, with fewer windows left to show it
	}
	lowest := in[:end]
	if firstDip >= 0 {
		lowest = in[firstDip:end]
	}
	for i, w := range lowest {
		if ratio := successRatio(w); i == 0 || ratio < d.LowestRatio {
			d.LowestRatio, d.LowestAtSeconds = ratio, seconds(w.Start)
			if secs := (w.End - w.Start).Seconds(); secs > 0 {
				d.LowestRate = float64(w.Requests-w.Errors-w.Degraded) / secs
			}
		}
	}
	d.LowestRatio, d.LowestRate = roundTo(d.LowestRatio, 4), roundTo(d.LowestRate, 2)
	if firstDip < 0 {
		d.RecoveredSeconds, d.RecoverySeconds = fptr(from), fptr(0)
		return d
	}
	var failed event.Seen
	lastDip := firstDip
	for i := firstDip; i < end; i++ {
		if w := in[i]; bad(w) {
			lastDip = i
			d.Lost += w.Errors + w.Degraded
			if w.Failed != nil {
				failed.Merge(*w.Failed)
			}
		}
	}
	if failed.N > 0 {
		d.FirstFailedSeconds, d.LastFailedSeconds = fptr(seconds(failed.First)), fptr(seconds(failed.Last))
		d.DurationSeconds = roundTo(seconds(failed.Last-failed.First), 3)
	} else {
		// Windows without arrival times: the dip's windows, at their resolution.
		d.DurationSeconds = seconds(in[lastDip].End - in[firstDip].Start)
	}
	if end < len(in) {
		at := seconds(in[end].Start)
		d.RecoveredSeconds, d.RecoverySeconds = fptr(at), fptr(roundTo(at-from, 3))
	}
	return d
}

// dipText says a dip in a sentence for the summary.
func dipText(d *Dip, what string) string {
	if d == nil {
		return ""
	}
	if !d.Felt() {
		return fmt.Sprintf("%s: no dip, success stayed within a point of %s", what, percent(d.BaselineRatio))
	}
	s := fmt.Sprintf("%s cost %s: success fell to %s (%s/s) in the window from %s", what, plural(d.Lost, "request", "requests"),
		percent(d.LowestRatio), formatCount(d.LowestRate), clockText(d.LowestAtSeconds))
	if d.FirstFailedSeconds != nil {
		s += fmt.Sprintf("; failures from %s to %s (%s)", formatAt(*d.FirstFailedSeconds), formatAt(*d.LastFailedSeconds), formatSeconds(d.DurationSeconds))
	} else {
		s += fmt.Sprintf("; in the dip for %s", formatSeconds(d.DurationSeconds))
	}
	if d.RecoverySeconds != nil {
		s += fmt.Sprintf("; back at %s %s after it", percent(d.BaselineRatio), formatSeconds(*d.RecoverySeconds))
	} else {
		s += fmt.Sprintf("; not back at %s by %s", percent(d.BaselineRatio), clockText(d.UntilSeconds))
	}
	return s
}

func percent(r float64) string {
	p := r * 100
	if p == float64(int64(p)) {
		return fmt.Sprintf("%.0f %%", p)
	}
	return fmt.Sprintf("%.1f %%", p)
}

// DipLines are the dips of the run's faults and reverts, one sentence each.
func (r *Report) DipLines() []string {
	var out []string
	for _, f := range r.Timings.Faults {
		if t := dipText(f.Dip, f.Step); t != "" {
			out = append(out, t)
		}
		if t := dipText(f.RevertDip, "the revert of "+f.Step); t != "" {
			out = append(out, t)
		}
	}
	return out
}

// dipOf is the dip of a fault step, or of the revert a revert step made.
func (ev *evaluator) dipOf(step string) (*Dip, string, error) {
	for _, f := range ev.rep.Timings.Faults {
		if f.Step == step {
			return f.Dip, "the fault of " + step, nil
		}
	}
	for _, st := range ev.s.Spec.Steps {
		if st.Name != step || st.Revert == "" {
			continue
		}
		for _, f := range ev.rep.Timings.Faults {
			if f.Step == st.Revert && f.RevertedSeconds != nil {
				return f.RevertDip, step + " (the revert of " + st.Revert + ")", nil
			}
		}
	}
	if ev.r.step(step) == nil {
		return nil, "", fmt.Errorf("step %s never started, so its dip cannot be judged (%s)", step, ev.stepsSeen())
	}
	return nil, "", fmt.Errorf("step %s injected or reverted no fault that the log records", step)
}

func (ev *evaluator) recovery(res *Result, x *scenario.RecoveryExpect) error {
	res.Check = fmt.Sprintf("the load's success is back at its level before the first fault within %s of %s", x.Within, x.After)
	m := Measure{Name: "recovery time", Unit: UnitSeconds, Max: fptr(seconds(x.Within.D()))}
	d, what, err := ev.dipOf(x.After)
	if err != nil {
		res.Measures = append(res.Measures, m)
		return err
	}
	if d == nil {
		res.Measures = append(res.Measures, m)
		return errors.New("the log holds no load windows after " + x.After + ": load never ran then")
	}
	if d.RecoverySeconds != nil {
		m.Observed = fptr(*d.RecoverySeconds)
		m.ResolutionSeconds = fptr(d.WindowSeconds)
		m.Held = *m.Observed <= *m.Max
	}
	res.Measures = append(res.Measures, m)
	res.Message = dipText(d, what)
	return nil
}

func (ev *evaluator) availability(res *Result, x *scenario.AvailabilityExpect) error {
	res.Check = fmt.Sprintf("every load window's success ratio stays at or above %s%s", percent(*x.Min), windowText(x.Window))
	from, until, sp, err := ev.span(x.Window)
	res.Window = sp
	if err != nil {
		return err
	}
	var worst *event.Window
	for i, w := range ev.r.windows {
		if !within(w.Start, w.End, from, until) || w.Requests == 0 {
			continue
		}
		if worst == nil || successRatio(w) < successRatio(*worst) {
			worst = &ev.r.windows[i]
		}
	}
	if worst == nil {
		return fmt.Errorf("no load window with requests lies in %s", spanText(sp))
	}
	low := roundTo(successRatio(*worst), 4)
	m := Measure{Name: "lowest success ratio", Unit: UnitRatio, Observed: fptr(low), Min: fptr(*x.Min), Held: low >= *x.Min}
	res.Measures = append(res.Measures, m)
	res.Message = fmt.Sprintf("lowest: %s in the window from %s (%s of %s requests succeeded)", percent(low), clockText(seconds(worst.Start)),
		formatCount(float64(worst.Requests-worst.Errors-worst.Degraded)), formatCount(float64(worst.Requests)))
	return nil
}
