package report

import (
	"fmt"
	"strings"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"

	"github.com/meshdrill/drill/pkg/event"
	"github.com/meshdrill/drill/pkg/scenario"
)

// Percentiles that latency expectations bound, in the order of Window's fields.
var percentiles = [3]float64{50, 90, 99}

// mergedPercentiles computes exact p50, p90 and p99 over windows from their
// latency histograms. ok is false when a window with requests has no histogram (or
// one that does not decode), or no window has requests.
func mergedPercentiles(windows []event.Window) (p [3]time.Duration, ok bool) {
	var merged *hdrhistogram.Histogram
	var maxLat time.Duration
	for _, w := range windows {
		if w.Requests == 0 {
			continue
		}
		if w.Histogram == "" {
			return p, false
		}
		h, err := hdrhistogram.Decode([]byte(w.Histogram))
		if err != nil {
			return p, false
		}
		if merged == nil {
			merged = h
		} else if dropped := merged.Merge(h); dropped > 0 {
			return p, false
		}
		maxLat = max(maxLat, w.Max)
	}
	if merged == nil || merged.TotalCount() == 0 {
		return p, false
	}
	for i, q := range percentiles {
		// A histogram reports the top of a value's bucket, which may lie just above
		// the exact maximum; no percentile is allowed past it.
		v := time.Duration(merged.ValueAtQuantile(q))
		if maxLat > 0 {
			v = min(v, maxLat)
		}
		p[i] = v
	}
	return p, true
}

func (ev *evaluator) latency(res *Result, l *scenario.LatencyExpect) error {
	var bounds []string
	for _, b := range []struct {
		name string
		d    scenario.Duration
	}{{"p50", l.P50}, {"p90", l.P90}, {"p99", l.P99}, {"max", l.Max}} {
		if b.d > 0 {
			bounds = append(bounds, b.name+" ≤ "+formatSeconds(b.d.D().Seconds()))
		}
	}
	res.Check = "latency seen by the load" + windowText(l.Window) + ": " + strings.Join(bounds, ", ")
	from, until, sp, err := ev.span(l.Window)
	res.Window = sp
	if err != nil {
		return err
	}
	whole := l.From == nil && l.Until == nil

	var vals [3]time.Duration
	var maxLat time.Duration
	var requests int64
	exact := true
	switch f := ev.r.loadFinished; {
	case whole && f != nil && f.Requests > 0:
		// The attack's own totals: exact, from the whole attack's histogram.
		vals, maxLat, requests = [3]time.Duration{f.P50, f.P90, f.P99}, f.Max, f.Requests
	default:
		var in []event.Window
		for _, w := range ev.r.windows {
			if within(w.Start, w.End, from, until) && w.Requests > 0 {
				in = append(in, w)
				requests += w.Requests
				maxLat = max(maxLat, w.Max)
			}
		}
		if len(in) == 0 {
			if len(ev.r.windows) == 0 {
				return fmt.Errorf("the log holds no load windows: load never ran or its results were lost")
			}
			return fmt.Errorf("no load window with requests lies in %s", spanText(sp))
		}
		if p, ok := mergedPercentiles(in); ok {
			vals = p
		} else {
			// Percentiles of parts do not combine, but each is a bound: if at most
			// 1 % of every window's requests are slower than that window's p99, at
			// most 1 % of them all are slower than the largest of those p99s.
			exact = false
			for _, w := range in {
				vals[0], vals[1], vals[2] = max(vals[0], w.P50), max(vals[1], w.P90), max(vals[2], w.P99)
			}
		}
	}
	add := func(name string, limit scenario.Duration, v time.Duration, bound bool) {
		if limit == 0 {
			return
		}
		m := Measure{Name: name, Unit: UnitSeconds, Observed: fptr(seconds(v)), Max: fptr(seconds(limit.D())), UpperBound: bound}
		m.Held = *m.Observed <= *m.Max
		res.Measures = append(res.Measures, m)
	}
	add("p50", l.P50, vals[0], !exact)
	add("p90", l.P90, vals[1], !exact)
	add("p99", l.P99, vals[2], !exact)
	add("max", l.Max, maxLat, false)
	res.Message = fmt.Sprintf("over %s requests in %s: p50 %s, p90 %s, p99 %s, max %s", formatCount(float64(requests)), spanText(sp),
		fmtT(vals[0]), fmtT(vals[1]), fmtT(vals[2]), fmtT(maxLat))
	if !exact {
		res.Message += " (percentiles are upper bounds: the windows carry no histograms)"
	}
	var tightest time.Duration
	for _, m := range res.Measures {
		if !m.Held {
			lim := time.Duration(*m.Max * float64(time.Second))
			if tightest == 0 || lim < tightest {
				tightest = lim
			}
		}
	}
	if tightest > 0 {
		if s, ok := ev.starvation(from, until, tightest); ok {
			res.Status = StatusInconclusive
			res.Message += fmt.Sprintf("; not judged: drill's own goroutines waited %s for a CPU (p99 of the scheduler's waits in [%s, %s), longest %s), so the latency measured was the starved machine's, not the mesh's: run again with CPU to spare, or at a lower rate",
				fmtT(s.P99), fmtT(s.Start), fmtT(s.End), fmtT(s.Max))
		}
	}
	return nil
}

// starvedWait is the scheduling wait from which drill's latency measurements
// are taken to be its machine's: when drill's goroutines (the load generator's,
// and on the local provider the emulated data plane's) wait this long for a
// CPU at p99, answers are sent and read that much late.
const starvedWait = 100 * time.Millisecond

// starvation returns the interval overlapping [from, until) whose scheduling
// p99 is the worst, if it reaches starvedWait or a fifth of limit, whichever
// is less: a wait that large is a real part of any latency judged against
// limit.
func (ev *evaluator) starvation(from, until, limit time.Duration) (event.Sched, bool) {
	threshold := min(starvedWait, limit/5)
	var worst event.Sched
	found := false
	for _, s := range ev.r.sched {
		if s.Start >= until || s.End <= from || s.P99 < threshold {
			continue
		}
		if !found || s.P99 > worst.P99 {
			worst, found = s, true
		}
	}
	return worst, found
}
