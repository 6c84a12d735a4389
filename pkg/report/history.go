package report

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/meshdrill/drill/pkg/scenario"
)

// PastRun is a run of the history as a report compares with it: who it was,
// what it concluded and its figures by name.
type PastRun struct {
	RunID          string
	Started        time.Time
	Verdict        Verdict
	ScenarioSHA256 string
	Figures        map[string]float64
}

// History is where a report finds the runs before it: the run history
// (pkg/history) or anything else that remembers runs.
type History interface {
	// Runs returns up to limit runs of the named scenario on provider that
	// started before before, newest first.
	Runs(scenario, provider string, before time.Time, limit int) ([]PastRun, error)
}

// Option adds to what Build judges a run with.
type Option func(*buildConfig)

type buildConfig struct {
	history History
	// trendRuns is how many runs before this one the trends show.
	trendRuns int
}

// DefaultTrendRuns is how many runs before a run its report's trends show.
const DefaultTrendRuns = 20

// WithHistory gives Build the runs before this one: regression expectations
// are judged against them and the HTML report draws each figure's trend.
// Without it a regression expectation is skipped.
func WithHistory(h History) Option { return func(c *buildConfig) { c.history = h } }

// WithTrendRuns sets how many runs before this one the trends show (default
// DefaultTrendRuns).
func WithTrendRuns(n int) Option { return func(c *buildConfig) { c.trendRuns = n } }

// KindRegression is the Kind of a regression expectation's Result.
const KindRegression = "regression"

// Regression is what a regression expectation compared: the figure of this
// run against the median of the same figure in the runs named.
type Regression struct {
	Figure string `json:"figure"`
	Unit   string `json:"unit,omitempty"`
	// Median is the median of the figure over Runs; Limit is the most the
	// figure may be: the median plus the larger allowed increase.
	Median *float64 `json:"median,omitempty"`
	Limit  *float64 `json:"limit,omitempty"`
	// Increase is this run's figure less the median, IncreaseRatio that as a
	// share of the median (absent for a median of 0).
	Increase      *float64 `json:"increase,omitempty"`
	IncreaseRatio *float64 `json:"increaseRatio,omitempty"`
	// Runs are the passing runs compared with, newest first.
	Runs []string `json:"runs"`
	// Needed is how many passing runs the expectation needs to be judged.
	Needed int `json:"needed"`
	// ScenarioChanged lists the runs compared that ran a scenario file of
	// other content (another sha256) than this run's.
	ScenarioChanged []string `json:"scenarioChanged,omitempty"`
}

// Trend is one figure of the run over the runs before it, oldest first, this
// run last.
type Trend struct {
	Figure string       `json:"figure"`
	Unit   string       `json:"unit"`
	Points []TrendPoint `json:"points"`
	// Regressed is true when a regression expectation on this figure failed.
	Regressed bool `json:"regressed,omitempty"`
}

// TrendPoint is a figure in one run.
type TrendPoint struct {
	RunID   string  `json:"runId"`
	Value   float64 `json:"value"`
	Verdict Verdict `json:"verdict"`
}

// judgeHistory judges the regression expectations and draws the trends from
// the runs of h before this one. Build calls it once every other figure is
// known.
func (ev *evaluator) judgeHistory(cfg buildConfig) {
	rep := ev.rep
	var regs []int
	for i, x := range rep.Expectations {
		if x.Kind == KindRegression {
			regs = append(regs, i)
		}
	}
	if cfg.history == nil {
		for _, i := range regs {
			x := &rep.Expectations[i]
			x.Status = StatusSkipped
			x.Message = "no run history to judge against: the history is off for this report"
		}
		return
	}
	limit := cfg.trendRuns
	if limit <= 0 {
		limit = DefaultTrendRuns
	}
	want := 0 // passing runs the regressions need
	for _, i := range regs {
		want = max(want, ev.regressionSpec(rep.Expectations[i].Name).Runs())
	}
	var past []PastRun
	var err error
	for {
		past, err = cfg.history.Runs(rep.Scenario, rep.Provider, rep.Started, limit)
		// Only passing runs count for a regression: read further back while
		// failed runs hide the passing ones, up to a bound.
		if err != nil || len(past) < limit || passing(past) >= want || limit >= maxHistoryRuns {
			break
		}
		limit = min(4*limit, maxHistoryRuns)
	}
	if err != nil {
		for _, i := range regs {
			x := &rep.Expectations[i]
			x.Status = StatusError
			x.Message = fmt.Sprintf("the run history could not be read: %v", err)
		}
		rep.Notes = append(rep.Notes, fmt.Sprintf("The run history could not be read, so no trend is shown: %v", err))
		return
	}
	for _, i := range regs {
		ev.regression(&rep.Expectations[i], past)
	}
	ev.past = past
}

// maxHistoryRuns bounds how far back a report reads the history looking for
// passing runs.
const maxHistoryRuns = 5000

func passing(runs []PastRun) int {
	n := 0
	for _, r := range runs {
		if r.Verdict == Pass {
			n++
		}
	}
	return n
}

func (ev *evaluator) regressionSpec(name string) *scenario.RegressionExpect {
	if ev.s == nil {
		return &scenario.RegressionExpect{}
	}
	for i := range ev.s.Spec.Expect {
		if x := &ev.s.Spec.Expect[i]; x.Name == name && x.Regression != nil {
			return x.Regression
		}
	}
	return &scenario.RegressionExpect{}
}

// regression judges one regression expectation against past, newest first.
func (ev *evaluator) regression(res *Result, past []PastRun) {
	rep := ev.rep
	spec := ev.regressionSpec(res.Name)
	key, unit, value := rep.resolveFigure(spec.Figure)
	reg := &Regression{Figure: key, Unit: unit, Needed: spec.Needed(), Runs: []string{}}
	res.Regression = reg
	var values []float64
	for _, p := range past {
		v, ok := p.Figures[key]
		if p.Verdict != Pass || !ok {
			continue
		}
		values = append(values, v)
		reg.Runs = append(reg.Runs, p.RunID)
		if p.ScenarioSHA256 != rep.ScenarioSHA256 {
			reg.ScenarioChanged = append(reg.ScenarioChanged, p.RunID)
		}
		if len(values) == spec.Runs() {
			break
		}
	}
	res.Check = fmt.Sprintf("%s not more than %s above its median over the last %s of %s on %s",
		key, increaseText(spec, unit), plural(int64(spec.Runs()), "passing run", "passing runs"), rep.Scenario, rep.Provider)
	changed := ""
	if n := len(reg.ScenarioChanged); n > 0 {
		changed = fmt.Sprintf("; the scenario changed since %d of the %d runs compared (their scenario file's sha256 differs from this run's)", n, len(values))
		rep.Notes = append(rep.Notes, fmt.Sprintf("Regression expectation %s compares with runs of another version of the scenario file: %s.", res.Name, strings.Join(reg.ScenarioChanged, ", ")))
	}
	if value == nil {
		res.Status = StatusSkipped
		res.Message = fmt.Sprintf("this run has no figure %s to judge (the expectation it comes from measured nothing)", key)
		return
	}
	if len(values) < reg.Needed {
		res.Status = StatusSkipped
		res.Measures = append(res.Measures, Measure{Name: key, Unit: unit, Observed: fptr(*value), Held: true})
		res.Message = fmt.Sprintf("too little history to judge: %s of %s on %s hold %s, %d needed%s",
			plural(int64(len(values)), "passing run", "passing runs"), rep.Scenario, rep.Provider, key, reg.Needed, changed)
		return
	}
	med := median(values)
	allowed := 0.0
	if spec.MaxIncrease != nil {
		allowed = med * spec.MaxIncrease.Share()
	}
	if spec.MaxIncreaseBy != nil {
		allowed = max(allowed, spec.MaxIncreaseBy.Value)
	}
	limit := med + allowed
	reg.Median, reg.Limit = fptr(roundFigure(med)), fptr(roundFigure(limit))
	reg.Increase = fptr(roundFigure(*value - med))
	if med > 0 {
		reg.IncreaseRatio = fptr(roundTo((*value-med)/med, 4))
	}
	m := Measure{Name: key, Unit: unit, Observed: fptr(*value), Max: reg.Limit, Held: *value <= limit}
	res.Measures = append(res.Measures, m)
	change := "no increase"
	if d := *value - med; d > 0 {
		change = "+" + m.format(d)
		if reg.IncreaseRatio != nil {
			change += " (+" + percent(*reg.IncreaseRatio) + ")"
		}
	} else if d < 0 {
		change = "−" + m.format(-d)
	}
	word := "within"
	if !m.Held {
		word = "over"
	}
	res.Message = fmt.Sprintf("%s %s against a median of %s over %s (%s): %s the limit %s%s",
		key, m.format(*value), m.format(med), plural(int64(len(values)), "passing run", "passing runs"), change, word, m.format(limit), changed)
	if !m.Held {
		res.Status = StatusFail
	} else {
		res.Status = StatusPass
	}
}

func increaseText(spec *scenario.RegressionExpect, unit string) string {
	var parts []string
	if spec.MaxIncrease != nil {
		parts = append(parts, spec.MaxIncrease.String())
	}
	if a := spec.MaxIncreaseBy; a != nil {
		parts = append(parts, Measure{Unit: unit}.format(a.Value))
	}
	return strings.Join(parts, " or ")
}

// roundFigure rounds a figure for report.json to a microsecond or a
// millionth, whichever it is.
func roundFigure(v float64) float64 { return math.Round(v*1e6) / 1e6 }

// trends draws each figure of rep over past (newest first, as History gives
// them), oldest first with rep last; a figure no earlier run has gets no trend.
func trends(rep *Report, past []PastRun, n int) []Trend {
	if n <= 0 {
		n = DefaultTrendRuns
	}
	past = past[:min(n, len(past))]
	regressed := map[string]bool{}
	for _, x := range rep.Expectations {
		if x.Kind == KindRegression && x.Status == StatusFail && x.Regression != nil {
			regressed[x.Regression.Figure] = true
		}
	}
	var out []Trend
	for _, f := range rep.Figures() {
		t := Trend{Figure: f.Name, Unit: f.Unit, Regressed: regressed[f.Name]}
		for _, p := range slices.Backward(past) {
			if v, ok := p.Figures[f.Name]; ok {
				t.Points = append(t.Points, TrendPoint{RunID: p.RunID, Value: v, Verdict: p.Verdict})
			}
		}
		if len(t.Points) == 0 {
			continue
		}
		t.Points = append(t.Points, TrendPoint{RunID: rep.RunID, Value: f.Value, Verdict: rep.Verdict})
		out = append(out, t)
	}
	return out
}

// Trend is the trend of the named figure, nil when there is none.
func (r *Report) Trend(figure string) *Trend {
	for i := range r.Trends {
		if r.Trends[i].Figure == figure {
			return &r.Trends[i]
		}
	}
	return nil
}
