package report

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Schema names the report.json format; it changes only when a field changes meaning
// or goes away. Fields may be added within a schema.
const Schema = "drill.report/v1"

// Verdict is the outcome of a drill.
type Verdict string

const (
	// Pass: every expectation held.
	Pass Verdict = "pass"
	// Fail: the drill ran and an expectation failed.
	Fail Verdict = "fail"
	// Inconclusive: the drill ran, nothing failed, but an expectation could not be
	// judged on what was measured: latency over its limit while the machine
	// running drill was starved for CPU, so the latency was the machine's.
	Inconclusive Verdict = "inconclusive"
	// Aborted: a guard of the scenario tripped: the drill reverted every fault
	// and ran no further step. Its expectations are shown, not judged.
	Aborted Verdict = "aborted"
	// Error: the drill could not run to its end or could not be judged: aborted,
	// provider error, a fault left unreverted, or data an expectation needs missing.
	Error Verdict = "error"
)

// drill's exit codes (docs/architecture.md), one per verdict; every command that
// ends in a verdict exits through Verdict.ExitCode.
const (
	ExitPass  = 0 // every expectation held
	ExitFail  = 1 // the drill ran and an expectation failed
	ExitError = 2 // the drill could not run or be judged: bad input, provider error, abort
	// ExitInconclusive: nothing failed, but an expectation could not be judged on
	// this machine (Inconclusive), or a guard aborted the drill (Aborted).
	ExitInconclusive = 3
)

// ExitCode is drill's exit code for the verdict.
func (v Verdict) ExitCode() int {
	switch v {
	case Pass:
		return ExitPass
	case Fail:
		return ExitFail
	case Inconclusive, Aborted:
		return ExitInconclusive
	}
	return ExitError
}

// Word is the verdict in capitals, for headlines: PASS, FAIL, INCONCLUSIVE, ABORTED, ERROR.
func (v Verdict) Word() string {
	switch v {
	case Pass:
		return "PASS"
	case Fail:
		return "FAIL"
	case Inconclusive:
		return "INCONCLUSIVE"
	case Aborted:
		return "ABORTED"
	}
	return "ERROR"
}

// Mark is ✔ for a pass, ? for an inconclusive drill, ■ for one a guard
// stopped and ✘ otherwise.
func (v Verdict) Mark() string {
	switch v {
	case Pass:
		return "✔"
	case Inconclusive:
		return "?"
	case Aborted:
		return "■"
	}
	return "✘"
}

// Report is the judged record of one drill: what ran, where, what happened when, and
// each expectation with what was observed against its limit. Build makes it from the
// run's events alone; report.json is its JSON form.
type Report struct {
	Schema      string `json:"schema"`
	Scenario    string `json:"scenario"`
	Description string `json:"description,omitempty"`
	File        string `json:"file,omitempty"`
	Provider    string `json:"provider"`
	DataPlane   string `json:"dataPlane"` // "envoy" or "emulated"
	// DataPlaneDetail is what ran as the data plane, when the provider says:
	// the images of an emulated data plane inside Istio's proxy image.
	DataPlaneDetail string   `json:"dataPlaneDetail,omitempty"`
	Clusters        []string `json:"clusters"`
	Strategy        string   `json:"strategy,omitempty"`
	DrillVersion    string   `json:"drillVersion,omitempty"`
	// Host is the machine drill ran on.
	Host string `json:"host,omitempty"`
	// RunID names the run as its report directory does: the scenario's name
	// and the UTC start time, reviews-failover-20261206-004117.
	RunID string `json:"runId,omitempty"`
	// ScenarioSHA256 is the sha256 of the scenario file as the run read it:
	// runs of a scenario of the same name but other content differ here.
	ScenarioSHA256 string `json:"scenarioSha256,omitempty"`

	Verdict Verdict `json:"verdict"`
	// Reason says why the verdict is error, or which expectations failed.
	Reason string `json:"reason,omitempty"`
	// Problems lists every reason for an error verdict, one per entry.
	Problems []string `json:"problems,omitempty"`

	// Started and Finished are the wall-clock times of run.started and run.finished.
	Started  time.Time  `json:"started"`
	Finished *time.Time `json:"finished,omitempty"`

	Timings Timings      `json:"timings"`
	Load    *LoadSummary `json:"load,omitempty"`
	// Abort is the guard that aborted the drill, when one did.
	Abort        *GuardTrip `json:"abort,omitempty"`
	Expectations []Result   `json:"expectations"`
	// Notes are things the reader of the report should know: an emulated data
	// plane, events lost, scrapes that failed, a fault left in place.
	Notes []string `json:"notes,omitempty"`
	// Trends are the run's figures over the runs before it in the run
	// history, when the report was built with one (WithHistory).
	Trends []Trend `json:"trends,omitempty"`

	// ClusterVersions is the Kubernetes and Istio of each cluster, Policy the
	// Istio objects drill applied to each, KubeEvents the Kubernetes changes
	// its watches recorded (environment.go).
	ClusterVersions []ClusterVersions `json:"clusterVersions,omitempty"`
	Policy          []AppliedPolicy   `json:"policy,omitempty"`
	KubeEvents      []KubeEvent       `json:"kubernetesEvents,omitempty"`

	// loadStart is the wall-clock time the load clock starts at.
	loadStart time.Time

	// series holds what the charts of report.html draw.
	series *series
	// runProblems are the Problems of the run itself (not of an expectation).
	runProblems []string
	// unjudged: the verdict does not rest on the expectations (a guard
	// aborted the drill, or the mesh was not steady and no fault ran); they
	// are shown, marked not judged.
	unjudged bool
}

// Emulated reports whether the data plane was drill's Envoy emulation rather than
// Envoy itself.
func (r *Report) Emulated() bool { return r.DataPlane == "emulated" }

// Timings place the run's moments on one clock: seconds since load started, the
// clock scenario steps are written in (at: 30s).
type Timings struct {
	// RunSeconds is the time from run.started to run.finished (or the last event).
	RunSeconds float64 `json:"runSeconds"`
	// LoadStartSeconds is when load started, in seconds since run.started.
	LoadStartSeconds float64 `json:"loadStartSeconds"`
	// LoadSeconds is how long load ran.
	LoadSeconds float64 `json:"loadSeconds"`
	// ScrapeIntervalSeconds is the Envoy stats scrape interval: the resolution of
	// every failover time and of every count read from Envoy.
	ScrapeIntervalSeconds float64 `json:"scrapeIntervalSeconds,omitempty"`
	// WindowSeconds is the width of a load window: the resolution of windows of
	// load results.
	WindowSeconds float64          `json:"windowSeconds,omitempty"`
	Steps         []StepTiming     `json:"steps"`
	Faults        []FaultTiming    `json:"faults,omitempty"`
	Failovers     []FailoverTiming `json:"failovers,omitempty"`
	// Hosts is what the observed Envoys' own /clusters pages showed change:
	// hosts ejected by outlier detection and returned, and the priority level
	// each Envoy cluster served from first.
	Hosts []HostTiming `json:"hosts,omitempty"`
}

// HostTiming is one change in an observed Envoy's /clusters page.
type HostTiming struct {
	AtSeconds float64 `json:"atSeconds"`
	// Kind is "ejected", "returned" or "priority".
	Kind string `json:"kind"`
	// Workload and Cluster are the observed Envoy's.
	Workload     string `json:"workload"`
	Cluster      string `json:"cluster"`
	EnvoyCluster string `json:"envoyCluster"`
	Host         string `json:"host,omitempty"`
	Priority     int    `json:"priority"`
	Locality     string `json:"locality,omitempty"`
	// From and To are the serving priority levels of a "priority" change; -1
	// is no level with an available host.
	From int `json:"from,omitempty"`
	To   int `json:"to,omitempty"`
}

// text says what happened, for the summary and the HTML.
func (h HostTiming) text() string {
	who := fmt.Sprintf("%s's Envoy in %s", h.Workload, h.Cluster)
	switch h.Kind {
	case "priority":
		level := func(p int) string {
			if p < 0 {
				return "no available host"
			}
			return fmt.Sprintf("priority %d", p)
		}
		return fmt.Sprintf("%s: %s serves from %s (was %s)", who, h.EnvoyCluster, level(h.To), level(h.From))
	default:
		loc := ""
		if h.Locality != "" {
			loc = ", " + h.Locality
		}
		return fmt.Sprintf("%s: host %s of %s (priority %d%s) %s", who, h.Host, h.EnvoyCluster, h.Priority, loc, h.Kind)
	}
}

// HostLines are the Envoys' own account of the run, one sentence per change,
// with its time: at most max of them, and a last line saying how many more.
func (r *Report) HostLines(max int) []string {
	var out []string
	for i, h := range r.Timings.Hosts {
		if i == max {
			out = append(out, fmt.Sprintf("… and %d more changes (report.json, timings.hosts)", len(r.Timings.Hosts)-max))
			break
		}
		out = append(out, fmt.Sprintf("%s: %s", clockText(h.AtSeconds), h.text()))
	}
	return out
}

// StepTiming is one step of the timeline as it ran.
type StepTiming struct {
	Name    string `json:"name"`
	Trigger string `json:"trigger,omitempty"`
	Action  string `json:"action,omitempty"`
	// AtSeconds is when the step started, since load start; FinishedSeconds when it
	// finished, absent when it did not.
	AtSeconds       float64  `json:"atSeconds"`
	FinishedSeconds *float64 `json:"finishedSeconds,omitempty"`
	Error           string   `json:"error,omitempty"`
}

// FaultTiming is a fault applied and reverted.
type FaultTiming struct {
	Step     string `json:"step"`
	Kind     string `json:"kind"`
	Cluster  string `json:"cluster"`
	Workload string `json:"workload"`
	// AppliedSeconds and RevertedSeconds are since load start; RevertedSeconds is
	// absent while the fault was never reverted.
	AppliedSeconds  float64  `json:"appliedSeconds"`
	RevertedSeconds *float64 `json:"revertedSeconds,omitempty"`
	RevertError     string   `json:"revertError,omitempty"`
	// Restore is the command that undoes the fault by hand.
	Restore string `json:"restore,omitempty"`
	Kept    bool   `json:"kept,omitempty"`
	// Dip is what the fault cost the load's clients up to the next fault
	// step, its revert or the end of the load; RevertDip what the revert cost
	// (a failback has its own dip). Absent without load windows.
	Dip       *Dip `json:"dip,omitempty"`
	RevertDip *Dip `json:"revertDip,omitempty"`
}

// FailoverTiming is a failover or failback detected.
type FailoverTiming struct {
	Kind    string `json:"kind"` // "failover" or "failback"
	Service string `json:"service"`
	From    string `json:"from"`
	To      string `json:"to"`
	After   string `json:"after"`
	// AtSeconds is the end of the scrape interval that showed it, since load start;
	// TookSeconds the time from the step After started to then. The move happened
	// within (TookSeconds - ResolutionSeconds, TookSeconds].
	AtSeconds         float64 `json:"atSeconds"`
	TookSeconds       float64 `json:"tookSeconds"`
	ResolutionSeconds float64 `json:"resolutionSeconds"`
	// Basis, Served and Total: in that interval, Served of Total answered requests
	// to the service were answered in To, by istio_requests_total or envoy_cluster.
	Basis  string `json:"basis,omitempty"`
	Served int64  `json:"served,omitempty"`
	Total  int64  `json:"total,omitempty"`
	// Live is true when the engine detected it during the run (the event is in the
	// log) and false when the report found it in the log's stats samples.
	Live bool `json:"live"`
	// Client is the move as the load's answers show it, when they name who
	// served the service; an expectation on it is judged by it.
	Client *ClientView `json:"client,omitempty"`
}

// tookText says how long the move took after its step and how that is known:
// "1.234 s after reviews-down by the load's answers (Envoy's stats: 2.43 s,
// resolution 1 s)".
func (f FailoverTiming) tookText() string {
	envoy := fmt.Sprintf("%s after %s (resolution %s)", formatSeconds(f.TookSeconds), f.After, formatSeconds(f.ResolutionSeconds))
	switch {
	case f.Client == nil:
		return envoy
	case f.Basis == BasisClient:
		return fmt.Sprintf("%s after %s by the load's answers", formatSeconds(f.Client.TookSeconds), f.After)
	}
	return fmt.Sprintf("%s after %s by the load's answers (Envoy's stats: %s, resolution %s)",
		formatSeconds(f.Client.TookSeconds), f.After, formatSeconds(f.TookSeconds), formatSeconds(f.ResolutionSeconds))
}

// GuardTrip is the guard that aborted a drill: its condition, the figure
// that broke it, over how many answers, and when (seconds since load start).
type GuardTrip struct {
	Guard       string  `json:"guard"`
	Condition   string  `json:"condition"`
	Figure      float64 `json:"figure"`
	Limit       float64 `json:"limit"`
	Answers     int64   `json:"answers"`
	OverSeconds float64 `json:"overSeconds"`
	AtSeconds   float64 `json:"atSeconds"`
}

// text is the trip in a sentence.
func (g *GuardTrip) text() string {
	return fmt.Sprintf("guard %s tripped at %s: %s — %s of the %s answers in the %s before it (limit %s)",
		g.Guard, formatAt(g.AtSeconds), g.Condition, percent(g.Figure), formatCount(float64(g.Answers)), formatSeconds(g.OverSeconds), percent(g.Limit))
}

// BasisClient is the Basis of a move seen only in the load's answers.
const BasisClient = "client"

// clientResolution is the resolution of a move seen in the load's answers:
// each answer's own arrival, to the millisecond as reports print it.
const clientResolution = 0.001

// LoadSummary is what the load saw over the whole attack.
type LoadSummary struct {
	Target   string           `json:"target,omitempty"`
	Rate     string           `json:"rate,omitempty"`
	Requests int64            `json:"requests"`
	Errors   int64            `json:"errors"`
	Degraded int64            `json:"degraded"`
	Codes    map[string]int64 `json:"codes,omitempty"`
	// Latency over the whole attack, in seconds.
	P50Seconds float64 `json:"p50Seconds"`
	P90Seconds float64 `json:"p90Seconds"`
	P99Seconds float64 `json:"p99Seconds"`
	MaxSeconds float64 `json:"maxSeconds"`
	// RatePerSecond is the achieved request rate.
	RatePerSecond float64 `json:"ratePerSecond"`
}

// Status is the outcome of one expectation.
type Status string

const (
	StatusPass  Status = "pass"
	StatusFail  Status = "fail"
	StatusError Status = "error" // could not be evaluated; Message says why
	// StatusInconclusive: evaluated, over its limit, but what was measured says
	// nothing of the mesh (Message says why: drill's machine was starved).
	StatusInconclusive Status = "inconclusive"
	// StatusSkipped: not judged, and no reason to doubt the run: a regression
	// expectation with too little history. It does not change the verdict.
	StatusSkipped Status = "skipped"
)

// Result is one expectation, judged.
type Result struct {
	Name string `json:"name"`
	// Kind is the expectation's kind as the scenario writes it: upstream5xx, errors,
	// degraded, latency, failover, failback, recovery, availability, ejection,
	// regression or share.
	Kind string `json:"kind"`
	// Check is what was checked, in words.
	Check  string `json:"check"`
	Status Status `json:"status"`
	// Window is the part of the run the expectation was evaluated over.
	Window *Span `json:"window,omitempty"`
	// Measures are the values observed against their limits; the expectation holds
	// when every measure does.
	Measures []Measure `json:"measures"`
	// Message says in a sentence why it passed, failed or could not be evaluated.
	Message string `json:"message"`
	// Breakdown splits a count: an upstream5xx count by Envoy cluster, a
	// share's answers by the cluster that served them.
	Breakdown map[string]int64 `json:"breakdown,omitempty"`
	// Detection is the failover or failback a failover/failback expectation judged.
	Detection *FailoverTiming `json:"detection,omitempty"`
	// Regression is what a regression expectation compared with.
	Regression *Regression `json:"regression,omitempty"`
}

// Span is a part of the run, as the scenario wrote it and as resolved, in seconds
// since load start. Results are counted per load window or scrape interval: those
// whose middle lies in [FromSeconds, UntilSeconds).
type Span struct {
	From         string  `json:"from"`
	Until        string  `json:"until"`
	FromSeconds  float64 `json:"fromSeconds"`
	UntilSeconds float64 `json:"untilSeconds"`
}

// Units of a Measure.
const (
	UnitRequests = "requests"
	UnitSeconds  = "seconds"
	// UnitRatio is a share from 0 to 1, shown as a percentage.
	UnitRatio = "ratio"
)

// Measure is one value observed against its limit.
type Measure struct {
	Name string `json:"name"`
	Unit string `json:"unit"`
	// Observed is absent when nothing could be measured.
	Observed *float64 `json:"observed"`
	Max      *float64 `json:"max,omitempty"`
	Min      *float64 `json:"min,omitempty"`
	Held     bool     `json:"held"`
	// UpperBound is true when Observed is not the exact value but a bound on it:
	// latency percentiles over several load windows whose histograms the log does
	// not hold are bounded by the largest window's percentile.
	UpperBound bool `json:"upperBound,omitempty"`
	// ResolutionSeconds bounds the error of a time read from scrapes: the exact
	// value lies within (Observed - ResolutionSeconds, Observed].
	ResolutionSeconds *float64 `json:"resolutionSeconds,omitempty"`
}

// ObservedText is the observed value for people: "7", "212 ms", "≤ 212 ms" for
// a bound, "2.4 s (1 s resolution)" for a time read from scrapes.
func (m Measure) ObservedText() string {
	if m.Observed == nil {
		return "—"
	}
	s := m.format(*m.Observed)
	if m.UpperBound {
		s = "≤ " + s
	}
	if m.ResolutionSeconds != nil && *m.ResolutionSeconds > 0 {
		s += " (" + formatSeconds(*m.ResolutionSeconds) + " resolution)"
	}
	return s
}

// LimitText is the limit for people: "≤ 20", "≥ 1", "1 – 20", "≤ 500 ms".
func (m Measure) LimitText() string {
	switch {
	case m.Max != nil && m.Min != nil:
		return m.format(*m.Min) + " – " + m.format(*m.Max)
	case m.Max != nil:
		return "≤ " + m.format(*m.Max)
	case m.Min != nil:
		return "≥ " + m.format(*m.Min)
	}
	return "—"
}

func (m Measure) format(v float64) string {
	switch m.Unit {
	case UnitSeconds:
		return formatSeconds(v)
	case UnitRatio:
		return percent(v)
	}
	return formatCount(v)
}

// formatSeconds writes a duration given in seconds the way SREs read latencies and
// failover times: 850 µs, 42 ms, 1.25 s, 2m30s.
func formatSeconds(v float64) string {
	switch a := math.Abs(v); {
	case a == 0:
		return "0 s"
	case a < 1e-3:
		return trimFloat(v*1e6, 0) + " µs"
	case a < 1:
		if a < 0.01 {
			return trimFloat(v*1e3, 2) + " ms"
		}
		return trimFloat(v*1e3, 1) + " ms"
	case a < 120:
		return trimFloat(v, 2) + " s"
	}
	return time.Duration(v * float64(time.Second)).Round(time.Second).String()
}

// formatCount writes a count with thousands separators.
func formatCount(v float64) string {
	if v != math.Trunc(v) {
		return trimFloat(v, 2)
	}
	s := strconv.FormatInt(int64(math.Abs(v)), 10)
	var out []byte
	for i := range len(s) {
		if i > 0 && (len(s)-i)%3 == 0 {
			out = append(out, ',')
		}
		out = append(out, s[i])
	}
	if v < 0 {
		return "-" + string(out)
	}
	return string(out)
}

// trimFloat formats v with at most prec decimals, dropping trailing zeros.
func trimFloat(v float64, prec int) string {
	s := strconv.FormatFloat(v, 'f', prec, 64)
	if prec > 0 {
		for s[len(s)-1] == '0' {
			s = s[:len(s)-1]
		}
		s = trimDot(s)
	}
	return s
}

func trimDot(s string) string {
	if s[len(s)-1] == '.' {
		return s[:len(s)-1]
	}
	return s
}

// seconds converts a duration for the JSON form, rounded to the microsecond so that
// the file reads well and compares stably.
func seconds(d time.Duration) float64 {
	return math.Round(d.Seconds()*1e6) / 1e6
}

func fptr(v float64) *float64 { return &v }

func (r Result) failedMeasures() []string {
	var out []string
	for _, m := range r.Measures {
		if !m.Held {
			out = append(out, fmt.Sprintf("%s %s (limit %s)", m.Name, m.ObservedText(), m.LimitText()))
		}
	}
	return out
}

// ObservedText is what was observed, for a table cell: the measure's value, or
// "p50 12 ms · p99 212 ms" when the expectation has several.
func (r Result) ObservedText() string {
	return r.join(Measure.ObservedText)
}

// LimitText is the limit, for a table cell.
func (r Result) LimitText() string {
	return r.join(Measure.LimitText)
}

func (r Result) join(f func(Measure) string) string {
	if len(r.Measures) == 0 {
		return "—"
	}
	if len(r.Measures) == 1 {
		return f(r.Measures[0])
	}
	parts := make([]string, len(r.Measures))
	for i, m := range r.Measures {
		parts[i] = m.Name + " " + f(m)
	}
	return strings.Join(parts, " · ")
}

// Judged says whether the verdict rests on the expectations: not when a guard
// aborted the drill or the mesh was not in its steady state before the first
// fault. Their statuses are then shown as what they would have been.
func (r *Report) Judged() bool { return !r.unjudged }

// Moment is one thing that happened, on the load clock.
type Moment struct {
	AtSeconds float64
	Kind      string // "load", "step", "fault", "revert", "failover", "failback"
	What      string
}

// Moments lists the run's moments in time order: load start and end, steps, faults
// applied and reverted, failovers and failbacks detected.
func (r *Report) Moments() []Moment {
	var ms []Moment
	if r.Load != nil {
		ms = append(ms, Moment{0, "load", fmt.Sprintf("load starts: %s at %s", orText(r.Load.Rate, "load"), orText(r.Load.Target, "the target"))})
	}
	for _, s := range r.Timings.Steps {
		what := fmt.Sprintf("step %s (%s", s.Name, orText(s.Action, "step"))
		if s.Trigger != "" {
			what += ", " + s.Trigger
		}
		what += ")"
		if s.Error != "" {
			what += ": failed: " + s.Error
		}
		ms = append(ms, Moment{s.AtSeconds, "step", what})
	}
	for _, f := range r.Timings.Faults {
		ms = append(ms, Moment{f.AppliedSeconds, "fault", fmt.Sprintf("fault applied: %s %s in %s", f.Kind, f.Workload, f.Cluster)})
		switch {
		case f.RevertedSeconds != nil:
			ms = append(ms, Moment{*f.RevertedSeconds, "revert", fmt.Sprintf("fault reverted: %s %s in %s", f.Kind, f.Workload, f.Cluster)})
		case f.RevertError != "":
			ms = append(ms, Moment{r.Timings.LoadSeconds, "revert", fmt.Sprintf("fault NOT reverted: %s %s in %s: %s", f.Kind, f.Workload, f.Cluster, f.RevertError)})
		}
	}
	for _, f := range r.Timings.Failovers {
		at := f.AtSeconds
		if f.Client != nil {
			at = f.Client.MovedSeconds
		}
		ms = append(ms, Moment{at, f.Kind, fmt.Sprintf("%s detected: %s from %s to %s, %s", f.Kind, f.Service, f.From, f.To, f.tookText())})
	}
	for _, h := range r.Timings.Hosts {
		ms = append(ms, Moment{h.AtSeconds, "envoy", "Envoy: " + h.text()})
	}
	if r.Load != nil && r.Timings.LoadSeconds > 0 {
		ms = append(ms, Moment{r.Timings.LoadSeconds, "load", fmt.Sprintf("load ends: %s requests", formatCount(float64(r.Load.Requests)))})
	}
	sort.SliceStable(ms, func(i, j int) bool { return ms[i].AtSeconds < ms[j].AtSeconds })
	return ms
}
