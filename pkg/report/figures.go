package report

import (
	"sort"
	"strings"
)

// Figure is one number a run produced that is worth following from run to
// run: an expectation's observed value, a load percentile, a failover time, a
// recovery time. The run history stores a run's figures; a regression
// expectation and the report's trends read them back by Name.
type Figure struct {
	// Name is the figure's key, as a regression expectation names it: an
	// expectation's name (name.measure when it has several measures),
	// load.p50/p90/p99/max, load.errors, load.requests, failover.SERVICE,
	// failback.SERVICE, recovery.STEP, run.seconds.
	Name string `json:"name"`
	Unit string `json:"unit"`
	// Value is the figure; an expectation whose measure observed nothing has
	// no figure.
	Value float64 `json:"value"`
	// Status is the expectation's status for an expectation's figure, empty
	// for the others.
	Status Status `json:"status,omitempty"`
	// Kind is the expectation's kind for an expectation's figure.
	Kind string `json:"kind,omitempty"`
}

// Figures lists the run's figures, expectations first in the scenario's
// order, then the load's, the failovers', the recoveries' and the run's.
// Regression expectations have no figure of their own.
func (r *Report) Figures() []Figure {
	var out []Figure
	for _, x := range r.Expectations {
		if x.Kind == KindRegression {
			continue
		}
		for i, m := range x.Measures {
			if m.Observed == nil {
				continue
			}
			out = append(out, Figure{Name: figureKey(x, i), Unit: m.Unit, Value: *m.Observed, Status: x.Status, Kind: x.Kind})
		}
	}
	if l := r.Load; l != nil {
		out = append(out,
			Figure{Name: "load.p50", Unit: UnitSeconds, Value: l.P50Seconds},
			Figure{Name: "load.p90", Unit: UnitSeconds, Value: l.P90Seconds},
			Figure{Name: "load.p99", Unit: UnitSeconds, Value: l.P99Seconds},
			Figure{Name: "load.max", Unit: UnitSeconds, Value: l.MaxSeconds},
			Figure{Name: "load.errors", Unit: UnitRequests, Value: float64(l.Errors)},
			Figure{Name: "load.requests", Unit: UnitRequests, Value: float64(l.Requests)},
		)
	}
	seen := map[string]bool{}
	for _, f := range r.Timings.Failovers {
		key := f.Kind + "." + f.Service
		if seen[key] {
			continue // the first move after its step is the one timed
		}
		seen[key] = true
		took := f.TookSeconds
		if f.Client != nil {
			took = f.Client.TookSeconds
		}
		out = append(out, Figure{Name: key, Unit: UnitSeconds, Value: took})
	}
	for _, f := range r.Timings.Faults {
		if f.Dip != nil && f.Dip.RecoverySeconds != nil {
			out = append(out, Figure{Name: "recovery." + f.Step, Unit: UnitSeconds, Value: *f.Dip.RecoverySeconds})
		}
	}
	out = append(out, Figure{Name: "run.seconds", Unit: UnitSeconds, Value: r.Timings.RunSeconds})
	return out
}

// figureKey names measure i of x: the expectation's name when it has one
// measure, name.measure when it has several (a latency expectation's p50, p99).
func figureKey(x Result, i int) string {
	if len(x.Measures) == 1 {
		return x.Name
	}
	return x.Name + "." + strings.ReplaceAll(x.Measures[i].Name, " ", "-")
}

// resolveFigure turns a regression expectation's figure into the key of the
// figure in this run: "p99" for a latency expectation named p99 with one
// bound, "lat.p50" for the p50 of one with several.
func (r *Report) resolveFigure(figure string) (key, unit string, value *float64) {
	name, measure, hasMeasure := strings.Cut(figure, ".")
	for _, x := range r.Expectations {
		if x.Name != name || x.Kind == KindRegression {
			continue
		}
		for i, m := range x.Measures {
			if len(x.Measures) > 1 && (hasMeasure && m.Name != measure || !hasMeasure && i > 0) {
				continue
			}
			return figureKey(x, i), m.Unit, m.Observed
		}
		return figure, "", nil
	}
	for _, f := range r.Figures() {
		if f.Name == figure {
			v := f.Value
			return f.Name, f.Unit, &v
		}
	}
	return figure, "", nil
}

// median is the middle of values (the mean of the two middle ones for an even
// count); values is not changed.
func median(values []float64) float64 {
	if len(values) == 0 {
		return 0
	}
	s := append([]float64(nil), values...)
	sort.Float64s(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// FormatValue writes a value of a unit (UnitSeconds, UnitRequests,
// UnitRatio) the way the reports do: 850 µs, 1.25 s, 1,024, 99.5%.
func FormatValue(unit string, v float64) string { return Measure{Unit: unit}.format(v) }
