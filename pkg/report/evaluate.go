package report

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/meshdrill/drill/internal/failover"
	"github.com/meshdrill/drill/internal/stats"
	"github.com/meshdrill/drill/pkg/event"
	"github.com/meshdrill/drill/pkg/scenario"
)

// ErrNoRun is returned by Build for events that hold no run.started: they are not
// the record of a drill.
var ErrNoRun = errors.New("the events hold no run.started")

// Build judges a drill from its events alone: the scenario (kept in run.started),
// the steps as they ran, the load windows, the Envoy stats samples and the
// failovers detected. Every report drill writes comes from here, during a run and
// from `drill report DIR` alike.
//
// Build always returns a Report. A record that cannot be judged — the run did not
// finish, ended in error, left a fault in place, or lacks data an expectation
// needs — gets the Error verdict with the reason. The error is non-nil only for
// events that are not a drill's record at all (ErrNoRun); the Report then says so.
//
// Options add what is not in the events: WithHistory the runs before this one,
// against which regression expectations are judged and trends drawn.
func Build(events []event.Event, opts ...Option) (*Report, error) {
	var cfg buildConfig
	for _, o := range opts {
		o(&cfg)
	}
	r := read(events)
	rep := &Report{Schema: Schema, Expectations: []Result{}, Timings: Timings{Steps: []StepTiming{}}}
	if r.started == nil {
		rep.Verdict = Error
		rep.Reason = "the event log has no run.started event: it is not the record of a drill run, or its beginning is lost"
		if len(events) == 0 {
			rep.Reason = "the event log is empty: the run stopped before recording anything"
		}
		return rep, fmt.Errorf("build report: %w", ErrNoRun)
	}
	ev := &evaluator{r: r, rep: rep}
	ev.metadata()
	ev.environment()
	ev.timings()
	ev.scenario()
	ev.dips()
	if ev.s != nil {
		for i := range ev.s.Spec.Expect {
			rep.Expectations = append(rep.Expectations, ev.expectation(&ev.s.Spec.Expect[i]))
		}
	}
	if ev.s != nil {
		ev.steadyState()
	}
	ev.detectedTimings()
	ev.loadSummary()
	ev.judgeHistory(cfg)
	ev.notes()
	ev.verdict()
	if len(ev.past) > 0 {
		rep.Trends = trends(rep, ev.past, cfg.trendRuns)
	}
	rep.series = ev.series()
	return rep, nil
}

type evaluator struct {
	r   *run
	rep *Report
	s   *scenario.Scenario
	// problems make the verdict Error, in the order found.
	problems []string
	// found holds failovers and failbacks the report computed, for Timings.
	found []FailoverTiming
	// clients holds the moves the load's answers showed, for Timings.
	clients []FailoverTiming
	// past are the runs before this one the history gave, newest first.
	past []PastRun
}

func (ev *evaluator) metadata() {
	r, rep := ev.r, ev.rep
	rep.Scenario = r.info.Scenario
	rep.File = r.info.File
	rep.Provider = r.info.Provider
	rep.DataPlane = r.info.DataPlane
	rep.DataPlaneDetail = r.info.DataPlaneDetail
	rep.Host = r.info.Host
	rep.Clusters = r.info.Clusters
	if rep.Clusters == nil {
		rep.Clusters = []string{}
	}
	rep.DrillVersion = r.info.DrillVersion
	if r.info.ScenarioYAML != "" {
		sum := sha256.Sum256([]byte(r.info.ScenarioYAML))
		rep.ScenarioSHA256 = hex.EncodeToString(sum[:])
	}
	rep.Started = r.started.Time
	if rep.Scenario != "" && !rep.Started.IsZero() {
		rep.RunID = rep.Scenario + "-" + rep.Started.UTC().Format("20060102-150405")
	}
	if r.finished != nil {
		t := r.finished.Time
		rep.Finished = &t
	}
}

func (ev *evaluator) timings() {
	r, tm := ev.r, &ev.rep.Timings
	tm.RunSeconds = seconds(r.last.Elapsed - r.started.Elapsed)
	if r.finished != nil {
		tm.RunSeconds = seconds(r.finished.Elapsed - r.started.Elapsed)
	}
	if r.loadStarted != nil {
		tm.LoadStartSeconds = seconds(r.loadStarted.Elapsed - r.started.Elapsed)
		tm.LoadSeconds = seconds(r.loadEnd())
	}
	tm.ScrapeIntervalSeconds = seconds(r.scrapeInterval())
	tm.WindowSeconds = seconds(r.windowWidth())
	for _, st := range r.steps {
		s := StepTiming{Name: st.name, Trigger: st.trigger, Action: st.action, AtSeconds: seconds(r.t(st.at)), Error: st.err}
		if st.finished != nil {
			s.FinishedSeconds = fptr(seconds(r.t(*st.finished)))
		}
		tm.Steps = append(tm.Steps, s)
	}
	for _, f := range r.faults {
		ft := FaultTiming{
			Step: f.f.Step, Kind: f.f.Kind, Cluster: f.f.Cluster, Workload: f.f.Workload,
			AppliedSeconds: seconds(r.t(f.applied)), RevertError: f.revertErr, Restore: f.f.Restore,
		}
		if f.reverted != nil {
			ft.RevertedSeconds = fptr(seconds(r.t(*f.reverted)))
		}
		tm.Faults = append(tm.Faults, ft)
	}
	kinds := map[event.Type]string{event.HostEjected: "ejected", event.HostReturned: "returned", event.PriorityChanged: "priority"}
	for _, h := range r.hostChanges {
		c := h.c
		tm.Hosts = append(tm.Hosts, HostTiming{
			AtSeconds: seconds(r.t(h.e.Elapsed)), Kind: kinds[h.e.Type], Workload: c.Workload, Cluster: h.e.Cluster,
			EnvoyCluster: c.EnvoyCluster, Host: c.Host, Priority: c.Priority, Locality: c.Locality, From: c.From, To: c.To,
		})
	}
}

func (ev *evaluator) scenario() {
	r := ev.r
	if r.info.ScenarioYAML == "" {
		ev.problem("run.started holds no scenario, so the expectations cannot be evaluated; the run was recorded by a drill that did not keep it")
		return
	}
	file := r.info.File
	if file == "" {
		file = "run.started scenario"
	}
	s, err := scenario.Parse(file, []byte(r.info.ScenarioYAML))
	if err != nil {
		ev.problem(fmt.Sprintf("the scenario kept in run.started does not parse: %v", err))
		return
	}
	ev.s = s
	ev.rep.Description = s.Metadata.Description
	ev.rep.Strategy = string(s.Spec.Mesh.Strategy)
	if ev.rep.Scenario == "" {
		ev.rep.Scenario = s.Metadata.Name
	}
	for _, st := range s.Spec.Steps {
		if !st.Keep {
			continue
		}
		for i := range ev.rep.Timings.Faults {
			if ev.rep.Timings.Faults[i].Step == st.Name {
				ev.rep.Timings.Faults[i].Kept = true
			}
		}
	}
}

func (ev *evaluator) problem(msg string) { ev.problems = append(ev.problems, msg) }

// expectation evaluates one expectation of the scenario.
func (ev *evaluator) expectation(x *scenario.Expectation) Result {
	res := Result{Name: x.Name, Measures: []Measure{}}
	var err error
	switch {
	case x.Upstream5xx != nil:
		res.Kind = "upstream5xx"
		err = ev.upstream5xx(&res, x.Upstream5xx)
	case x.Errors != nil:
		res.Kind = "errors"
		err = ev.count(&res, "errors", x.Errors, func(w event.Window) int64 { return w.Errors })
	case x.Degraded != nil:
		res.Kind = "degraded"
		err = ev.count(&res, "degraded", x.Degraded, func(w event.Window) int64 { return w.Degraded })
	case x.Latency != nil:
		res.Kind = "latency"
		err = ev.latency(&res, x.Latency)
	case x.Failover != nil:
		res.Kind = "failover"
		err = ev.failover(&res, x.Failover)
	case x.Failback != nil:
		res.Kind = "failback"
		err = ev.failback(&res, x.Failback)
	case x.Recovery != nil:
		res.Kind = "recovery"
		err = ev.recovery(&res, x.Recovery)
	case x.Availability != nil:
		res.Kind = "availability"
		err = ev.availability(&res, x.Availability)
	case x.Ejection != nil:
		res.Kind = "ejection"
		err = ev.ejection(&res, x.Ejection)
	case x.Share != nil:
		res.Kind = "share"
		err = ev.share(&res, x.Share)
	case x.Regression != nil:
		// Judged by judgeHistory once every figure of the run is known.
		res.Kind = KindRegression
		res.Check = "regression of " + x.Regression.Figure
		res.Status = StatusSkipped
		return res
	default:
		err = errors.New("the expectation sets no check")
	}
	switch {
	case err != nil:
		res.Status, res.Message = StatusError, err.Error()
	case res.Status == "":
		res.Status = StatusPass
		for _, m := range res.Measures {
			if !m.Held {
				res.Status = StatusFail
			}
		}
	}
	return res
}

// span resolves an expectation's window on the load clock.
func (ev *evaluator) span(w scenario.Window) (from, until time.Duration, sp *Span, err error) {
	from, err = ev.instant(w.From, 0)
	if err != nil {
		return 0, 0, nil, fmt.Errorf("window from: %w", err)
	}
	end := ev.r.loadEnd()
	until, err = ev.instant(w.Until, end)
	if err != nil {
		return 0, 0, nil, fmt.Errorf("window until: %w", err)
	}
	sp = &Span{From: "start", Until: "end", FromSeconds: seconds(from), UntilSeconds: seconds(until)}
	if w.From != nil {
		sp.From = w.From.String()
	}
	if w.Until != nil {
		sp.Until = w.Until.String()
	}
	if until <= from {
		return from, until, sp, fmt.Errorf("the window [%s, %s) is empty as the run went: %s came at %s, %s at %s",
			sp.From, sp.Until, sp.From, fmtT(from), sp.Until, fmtT(until))
	}
	return from, until, sp, nil
}

// instant resolves a scenario instant on the load clock; nil is def.
func (ev *evaluator) instant(in *scenario.Instant, def time.Duration) (time.Duration, error) {
	if in == nil {
		return def, nil
	}
	switch in.Anchor {
	case scenario.AnchorStart:
		return in.Offset, nil
	case scenario.AnchorEnd:
		return ev.r.loadEnd() + in.Offset, nil
	}
	st := ev.r.step(in.Anchor)
	if st == nil {
		return 0, fmt.Errorf("step %q never started, so %q is not a moment of this run (%s)", in.Anchor, in.String(), ev.stepsSeen())
	}
	return ev.r.t(st.at) + in.Offset, nil
}

func (ev *evaluator) stepsSeen() string {
	if len(ev.r.steps) == 0 {
		return "no step started"
	}
	names := make([]string, len(ev.r.steps))
	for i, s := range ev.r.steps {
		names[i] = s.name
	}
	return "steps that started: " + strings.Join(names, ", ")
}

// within reports whether an interval [a, b) counts in [from, until): its middle does.
func within(a, b, from, until time.Duration) bool {
	mid := a + (b-a)/2
	return mid >= from && mid < until
}

func bounds(m *Measure, max, min *int) {
	if max != nil {
		m.Max = fptr(float64(*max))
	}
	if min != nil {
		m.Min = fptr(float64(*min))
	}
	m.Held = m.Observed != nil && (m.Max == nil || *m.Observed <= *m.Max) && (m.Min == nil || *m.Observed >= *m.Min)
}

func (ev *evaluator) count(res *Result, what string, c *scenario.CountExpect, get func(event.Window) int64) error {
	res.Check = fmt.Sprintf("%s answers seen by the load%s", what, windowText(c.Window))
	if what == "errors" {
		res.Check = "client-side errors (transport errors and non-2xx/3xx answers) seen by the load" + windowText(c.Window)
	}
	from, until, sp, err := ev.span(c.Window)
	res.Window = sp
	if err != nil {
		return err
	}
	if len(ev.r.windows) == 0 {
		return errors.New("the log holds no load windows: load never ran or its results were lost")
	}
	var n, requests int64
	counted := 0
	for _, w := range ev.r.windows {
		if within(w.Start, w.End, from, until) {
			n += get(w)
			requests += w.Requests
			counted++
		}
	}
	if counted == 0 {
		return fmt.Errorf("no load window lies in %s: load ran from 0 s to %s", spanText(sp), fmtT(ev.r.loadEnd()))
	}
	m := Measure{Name: what, Unit: UnitRequests, Observed: fptr(float64(n))}
	bounds(&m, c.Max, c.Min)
	res.Measures = append(res.Measures, m)
	label := formatCount(float64(n)) + " " + what
	if what == "errors" {
		label = plural(n, "error", "errors")
	}
	res.Message = fmt.Sprintf("%s of %s requests in %s", label, formatCount(float64(requests)), spanText(sp))
	return nil
}

// serviceHosts are the failover hosts backed by service: their traffic is the
// service's.
func (ev *evaluator) serviceHosts(service string) []string { return failover.Hosts(ev.s, service) }

func (ev *evaluator) hostMatcher(service string) func(string) bool {
	return failover.HostMatcher(ev.s, service)
}

func (ev *evaluator) upstream5xx(res *Result, u *scenario.Upstream5xxExpect) error {
	res.Check = fmt.Sprintf("upstream 5xx answers %s's Envoy in %s got from %s%s", u.From, u.Cluster, u.To, windowText(u.Window))
	from, until, sp, err := ev.span(u.Window)
	res.Window = sp
	if err != nil {
		return err
	}
	match := ev.hostMatcher(u.To)
	var total, answers, retried int64
	samples, sawService := 0, false
	breakdown := map[string]int64{}
	for _, sr := range ev.r.samples {
		if sr.e.Cluster != u.Cluster || !failover.ObservedBy(sr.e, sr.s, u.From) {
			continue
		}
		samples++
		a, b := ev.r.sampleSpan(sr)
		in := within(a, b, from, until)
		for name, cd := range sr.s.Clusters {
			ec, ok := stats.ParseClusterName(name, sr.e.Cluster)
			if !ok || ec.Direction != "outbound" || !match(ec.Host) {
				continue
			}
			sawService = true
			if in {
				total += cd.Upstream5xx
				answers += cd.Answers
				retried += cd.Retried5xx
				if cd.Upstream5xx > 0 {
					breakdown[name] += cd.Upstream5xx
				}
			}
		}
	}
	switch {
	case samples == 0:
		msg := fmt.Sprintf("the log holds no stats samples of %s's Envoy in %s", u.From, u.Cluster)
		if n := ev.r.scrapeFailures[u.From]; n > 0 {
			return fmt.Errorf("%s: all %d scrapes failed; see the stats.scrape-failed events for why", msg, n)
		}
		return fmt.Errorf("%s: it was not scraped; observe it under spec.observe.envoy", msg)
	case !sawService:
		return fmt.Errorf("%s's Envoy in %s reported no outbound Envoy cluster for %s in any of its %d samples: either it never called %s, or its sidecar hides per-cluster stats (Istio's default stats matcher does; the pod needs proxyStatsMatcher inclusion of cluster.outbound)",
			u.From, u.Cluster, u.To, samples, u.To)
	}
	m := Measure{Name: "upstream 5xx", Unit: UnitRequests, Observed: fptr(float64(total))}
	bounds(&m, u.Max, u.Min)
	res.Measures = append(res.Measures, m)
	if r := u.Retried; r != nil {
		// retry.upstream_rq_5xx: the attempts Envoy retried, apart from the
		// final answers above.
		mr := Measure{Name: "retried 5xx", Unit: UnitRequests, Observed: fptr(float64(retried))}
		bounds(&mr, r.Max, r.Min)
		res.Measures = append(res.Measures, mr)
		res.Check += fmt.Sprintf(", and the 5xx answers it retried (%s)", strings.TrimPrefix(mr.LimitText(), " "))
	}
	if len(breakdown) > 0 {
		res.Breakdown = breakdown
	}
	// Envoy's final answers, numerator and denominator alike: retried
	// attempts are charged apart (retry.upstream_rq_*) and said beside.
	if answers >= total && answers > 0 {
		res.Message = fmt.Sprintf("%s of the %s answers %s's Envoy got from %s were 5xx in %s", formatCount(float64(total)), formatCount(float64(answers)), u.From, u.To, spanText(sp))
	} else {
		// An event log written before drill counted answers.
		res.Message = fmt.Sprintf("%s answers %s's Envoy got from %s were 5xx in %s", formatCount(float64(total)), u.From, u.To, spanText(sp))
	}
	if retried > 0 {
		res.Message += fmt.Sprintf("; Envoy retried %s more 5xx answers, which are not counted", formatCount(float64(retried)))
	}
	return nil
}

func (ev *evaluator) failover(res *Result, f *scenario.FailoverExpect) error {
	res.Check = fmt.Sprintf("traffic for %s moves from %s to %s within %s of %s", f.Service, f.From, f.To, f.Within, f.After)
	m := Measure{Name: "failover time", Unit: UnitSeconds, Max: fptr(seconds(f.Within.D()))}
	res.Measures = append(res.Measures, m)
	st := ev.r.step(f.After)
	if st == nil {
		return fmt.Errorf("step %s never started, so failover after it cannot be judged (%s)", f.After, ev.stepsSeen())
	}
	w := failover.Watch{Service: f.Service, Namespace: ev.s.Spec.Namespace, From: f.From, To: f.To,
		Hosts: ev.serviceHosts(f.Service), FailoverAfter: f.After}
	return ev.detect(res, w, false, f.Within.D())
}

func (ev *evaluator) failback(res *Result, f *scenario.FailbackExpect) error {
	backup := ev.backupOf(f.Service, f.To)
	res.Check = fmt.Sprintf("traffic for %s comes back to %s within %s of %s", f.Service, f.To, f.Within, f.After)
	m := Measure{Name: "failback time", Unit: UnitSeconds, Max: fptr(seconds(f.Within.D()))}
	res.Measures = append(res.Measures, m)
	st := ev.r.step(f.After)
	if st == nil {
		return fmt.Errorf("step %s never started, so failback after it cannot be judged (%s)", f.After, ev.stepsSeen())
	}
	if backup == "" {
		return fmt.Errorf("no other cluster to fail back from: the scenario names only %s", f.To)
	}
	w := failover.Watch{Service: f.Service, Namespace: ev.s.Spec.Namespace, From: f.To, To: backup,
		Hosts: ev.serviceHosts(f.Service), FailbackAfter: f.After}
	return ev.detect(res, w, true, f.Within.D())
}

// backupOf is the cluster a failback to home comes from: the one a failover
// expectation of the service moves it to, else the one a recorded failover did,
// else the first other cluster.
func (ev *evaluator) backupOf(service, home string) string {
	for _, x := range ev.s.Spec.Expect {
		if fo := x.Failover; fo != nil && fo.Service == service && fo.From == home {
			return fo.To
		}
	}
	for _, d := range ev.r.detections {
		if d.e.Type == event.FailoverDetected && d.f.Service == service && d.f.From == home {
			return d.f.To
		}
	}
	return failover.Backup(ev.s, service, home)
}

// horizon is where the answers that can show a move after step end: for a
// failover, the start of the first revert step after step (the fault that
// moved the traffic, or one after it, is put back from there on: the answers
// after it show traffic coming home, not leaving), else the end of the load.
// The fault need not be step's own: a failover timed from a step that deletes
// pods, while a later step of the same moment scales the workload to zero and
// a third reverts that, ends at the third.
func (ev *evaluator) horizon(step string, failback bool) time.Duration {
	end := ev.r.loadEnd()
	if failback {
		return end
	}
	at := ev.r.step(step).at
	for _, st := range ev.s.Spec.Steps {
		if st.Revert == "" {
			continue
		}
		if rec := ev.r.step(st.Name); rec != nil && rec.at > at {
			end = min(end, ev.r.t(rec.at))
		}
	}
	return end
}

// detect judges a failover or failback: the recorded detection when the engine made
// one during the run, else the Detector run over the log.
func (ev *evaluator) detect(res *Result, w failover.Watch, failback bool, within time.Duration) error {
	typ, kind, step, awaited := event.FailoverDetected, "failover", w.FailoverAfter, w.To
	if failback {
		typ, kind, step, awaited = event.FailbackDetected, "failback", w.FailbackAfter, w.From
	}
	m := &res.Measures[0]
	d, err := failover.NewDetector(w)
	if err != nil {
		return err
	}
	var found *event.Event
	for _, e := range ev.r.events {
		for _, out := range d.Observe(e) {
			if out.Type == typ && found == nil {
				found = &out
			}
		}
	}
	wr := d.Outcome(failback)
	var ft *FailoverTiming
	for _, rec := range ev.r.detections {
		f := rec.f
		if rec.e.Type == typ && f.Service == w.Service && f.After == step && f.To == awaited &&
			(failback || f.From == w.From) {
			ft = ev.timing(kind, rec.e, f, true)
			break
		}
	}
	if found != nil {
		var f event.Failover
		_ = found.Decode(&f) // the failover.Detector encoded it
		computed := ev.timing(kind, *found, f, false)
		if ft == nil {
			ft = computed
		} else if ft.TookSeconds != computed.TookSeconds {
			ev.rep.Notes = append(ev.rep.Notes, fmt.Sprintf("%s: the %s the engine detected during the run (%s after %s) differs from the one the log's samples show (%s); the report uses the engine's",
				res.Name, kind, formatSeconds(ft.TookSeconds), step, formatSeconds(computed.TookSeconds)))
		}
		ev.addFound(*computed)
	}
	// The load's own answers, when they say who served the service, judge
	// the move to the millisecond; Envoy's stats otherwise.
	from, to := w.From, w.To
	if failback {
		from, to = w.To, w.From
	}
	stepAt := ev.r.t(ev.r.step(step).at)
	co := ev.clientView(w.Service, from, to, stepAt, ev.horizon(step, failback))
	if co.moved {
		v := co.view
		if ft == nil {
			ft = &FailoverTiming{Kind: kind, Service: w.Service, From: from, To: to, After: step,
				AtSeconds: v.MovedSeconds, TookSeconds: v.TookSeconds, ResolutionSeconds: clientResolution, Basis: BasisClient}
			ev.addFound(*ft)
		}
		ft.Client = &v
		ev.clients = append(ev.clients, *ft)
		res.Detection = ft
		m.Observed, m.ResolutionSeconds = fptr(v.TookSeconds), fptr(clientResolution)
		m.Held = v.TookSeconds <= *m.Max
		res.Message = clientText(v, w.Service, from, to, step, seconds(stepAt))
		if ft.Basis != BasisClient {
			res.Message += fmt.Sprintf("; Envoy's stats showed it in the scrape interval ending %s after %s (%s)", formatSeconds(ft.TookSeconds), step, basisText(ft.Basis))
		}
		if !m.Held {
			res.Message = fmt.Sprintf("too slow: %s", res.Message)
		}
		if !failback && wr.Prior == w.To {
			res.Status = StatusFail
			m.Held = false
			res.Message = fmt.Sprintf("nothing moved: %s already answered most %s requests before %s", w.To, w.Service, step)
		}
		return nil
	}
	var clientNote string
	switch {
	case co.stillTwo:
		clientNote = fmt.Sprintf("; the load's answers came from %s and %s alike up to %s, so they show no moment of the move", from, to, formatAt(co.view.HorizonSeconds))
	case co.seen && co.view.FirstToSeconds == nil:
		clientNote = fmt.Sprintf("; no answer the load got after %s came from %s", step, to)
	}
	defer func() { res.Message += clientNote }()
	if ft == nil {
		if wr.Seen == 0 {
			return fmt.Errorf("the log holds no stats samples from Envoys in %s after %s: was a workload there observed (spec.observe.envoy) and did its scrapes succeed?", strings.Join(w.ClientClusters(), ", "), step)
		}
		res.Status = StatusFail
		if wr.Best > 0 {
			res.Message = fmt.Sprintf("traffic for %s never moved to %s after %s: in %d scrape intervals %s answered at most %.0f%% of it", w.Service, awaited, step, wr.Seen, awaited, wr.Best*100)
		} else {
			res.Message = fmt.Sprintf("traffic for %s never moved to %s after %s: %s answered none of it in %d scrape intervals", w.Service, awaited, step, awaited, wr.Seen)
		}
		return nil
	}
	res.Detection = ft
	m.Observed = fptr(ft.TookSeconds)
	m.ResolutionSeconds = fptr(ft.ResolutionSeconds)
	m.Held = ft.TookSeconds <= *m.Max
	how := "answered"
	if ft.Basis == string(stats.SourceEnvoyCluster) {
		how = "succeeded through Envoy clusters of"
	}
	res.Message = fmt.Sprintf("%s of %s %s requests in the scrape interval ending %s after %s %s %s (%s)",
		formatCount(float64(ft.Served)), formatCount(float64(ft.Total)), w.Service, formatSeconds(ft.TookSeconds), step, how, awaited, basisText(ft.Basis))
	if !m.Held {
		res.Message = fmt.Sprintf("too slow: traffic for %s reached %s %s after %s, later than %s: %s",
			w.Service, awaited, formatSeconds(ft.TookSeconds), step, formatSeconds(*m.Max), res.Message)
	}
	switch {
	case !failback && wr.Prior == w.To:
		res.Status = StatusFail
		m.Held = false
		res.Message = fmt.Sprintf("nothing moved: %s already answered most %s requests before %s", w.To, w.Service, step)
	case failback && wr.Prior == w.From:
		res.Message += fmt.Sprintf("; %s already answered most of them before %s: traffic had not moved away", w.From, step)
	}
	return nil
}

func basisText(b string) string {
	switch b {
	case BasisClient:
		return "by the load's answers"

	case string(stats.SourceIstio):
		return "by istio_requests_total destination_cluster"
	case string(stats.SourceEnvoyCluster):
		return "by Envoy cluster"
	}
	return b
}

func (ev *evaluator) timing(kind string, e event.Event, f event.Failover, live bool) *FailoverTiming {
	// The moment is the step's plus Took, so that a detection published on the Bus
	// (a little after the sample that decided it) and one found in the log agree.
	at := ev.r.t(e.Elapsed)
	if st := ev.r.step(f.After); st != nil {
		at = ev.r.t(st.at) + f.Took
	}
	return &FailoverTiming{
		Kind: kind, Service: f.Service, From: f.From, To: f.To, After: f.After,
		AtSeconds: seconds(at), TookSeconds: seconds(f.Took), ResolutionSeconds: seconds(f.Resolution),
		Basis: f.Basis, Served: f.Served, Total: f.Total, Live: live,
	}
}

func (ev *evaluator) addFound(ft FailoverTiming) {
	for _, f := range ev.found {
		if f.Kind == ft.Kind && f.Service == ft.Service && f.From == ft.From && f.To == ft.To && f.After == ft.After {
			return
		}
	}
	ev.found = append(ev.found, ft)
}

// detectedTimings lists every failover and failback: those the engine recorded,
// and those the report found that it did not.
func (ev *evaluator) detectedTimings() {
	var all []FailoverTiming
	for _, rec := range ev.r.detections {
		kind := "failover"
		if rec.e.Type == event.FailbackDetected {
			kind = "failback"
		}
		all = append(all, *ev.timing(kind, rec.e, rec.f, true))
	}
	for _, f := range ev.found {
		dup := false
		for _, a := range all {
			if a.Kind == f.Kind && a.Service == f.Service && a.To == f.To && a.After == f.After {
				dup = true
			}
		}
		if !dup {
			all = append(all, f)
		}
	}
	for i := range all {
		for _, c := range ev.clients {
			if c.Kind == all[i].Kind && c.Service == all[i].Service && c.After == all[i].After {
				all[i].Client = c.Client
			}
		}
	}
	sort.SliceStable(all, func(i, j int) bool { return all[i].AtSeconds < all[j].AtSeconds })
	ev.rep.Timings.Failovers = all
}

func (ev *evaluator) loadSummary() {
	r := ev.r
	if r.loadStarted == nil {
		return
	}
	ls := &LoadSummary{Target: r.loadInfo.Target, Rate: r.loadInfo.Rate}
	if ev.s != nil {
		ls.Rate = rateText(ev.s.Spec.Load.Rate)
	}
	if f := r.loadFinished; f != nil {
		ls.Requests, ls.Errors, ls.Degraded, ls.Codes = f.Requests, f.Errors, f.Degraded, f.Codes
		ls.P50Seconds, ls.P90Seconds, ls.P99Seconds, ls.MaxSeconds = seconds(f.P50), seconds(f.P90), seconds(f.P99), seconds(f.Max)
		ls.RatePerSecond = roundTo(f.Rate, 3)
	} else {
		codes := map[string]int64{}
		var maxLat time.Duration
		for _, w := range r.windows {
			ls.Requests += w.Requests
			ls.Errors += w.Errors
			ls.Degraded += w.Degraded
			for c, n := range w.Codes {
				codes[c] += n
			}
			maxLat = max(maxLat, w.Max)
		}
		if len(codes) > 0 {
			ls.Codes = codes
		}
		ls.MaxSeconds = seconds(maxLat)
		if p, ok := mergedPercentiles(r.windows); ok {
			ls.P50Seconds, ls.P90Seconds, ls.P99Seconds = seconds(p[0]), seconds(p[1]), seconds(p[2])
		}
		if end := r.loadEnd(); end > 0 {
			ls.RatePerSecond = roundTo(float64(ls.Requests)/end.Seconds(), 3)
		}
	}
	ev.rep.Load = ls
}

func rateText(r scenario.Rate) string {
	switch {
	case r.Constant != nil:
		return r.Constant.String()
	case r.Ramp != nil:
		return fmt.Sprintf("ramp %s → %s", r.Ramp.From, r.Ramp.To)
	case len(r.Steps) > 0:
		parts := make([]string, len(r.Steps))
		for i, s := range r.Steps {
			parts[i] = fmt.Sprintf("%s for %s", s.Rate, s.For)
		}
		return strings.Join(parts, ", then ")
	}
	return ""
}

func (ev *evaluator) notes() {
	r, rep := ev.r, ev.rep
	var notes []string
	if rep.Emulated() {
		n := fmt.Sprintf("The data plane was emulated (provider %s): drill's Envoy-compatible sidecar, configured over xDS by the real istiod and speaking Istio mutual TLS with certificates from istiod's CA, stood in for Envoy. What Envoy itself decides — outlier ejection, priority spill-over, retries — happened in the emulation; run the scenario on kind or an existing cluster to see Envoy do it.", rep.Provider)
		if rep.DataPlaneDetail != "" {
			n += " What ran: " + rep.DataPlaneDetail
		}
		notes = append(notes, n)
	}
	if s, ok := ev.starvation(0, 1<<62, 5*starvedWait); ok {
		notes = append(notes, fmt.Sprintf("drill's machine was short of CPU during the load: its goroutines waited up to %s for a CPU (p99 of the scheduler's waits in [%s, %s), longest %s). Latency measured then includes that wait.",
			fmtT(s.P99), fmtT(s.Start), fmtT(s.End), fmtT(s.Max)))
	}
	if len(r.warmups) > 0 {
		var parts []string
		for _, w := range r.warmups {
			p := fmt.Sprintf("%s %d of %d answered", w.Cluster, w.OK, w.Requests)
			if w.OK > 0 {
				p += fmt.Sprintf(", slowest %s", formatSeconds(w.MaxSeconds))
			}
			if w.Error != "" {
				p += " (" + w.Error + ")"
			}
			parts = append(parts, p)
		}
		notes = append(notes, fmt.Sprintf("Before the load, drill warmed every cluster's path with requests for the load's target (through the cluster's ingress, or to its productpage when it has none), not counted in the load: %s.", strings.Join(parts, "; ")))
	}
	if r.loadStarted != nil && r.info.DataPlane == "" {
		notes = append(notes, "run.started does not say whether the data plane was Envoy or emulated.")
	}
	for _, f := range rep.Timings.Faults {
		if f.RevertedSeconds == nil && f.RevertError == "" {
			if f.Kept {
				notes = append(notes, fmt.Sprintf("The fault of step %s was kept in place, as the scenario asks (keep: true). Undo it with: %s", f.Step, orText(f.Restore, "(no restore command recorded)")))
			} else if r.finished != nil {
				notes = append(notes, fmt.Sprintf("The log does not show the fault of step %s reverted. If it is still in place, undo it with: %s", f.Step, orText(f.Restore, "(no restore command recorded)")))
			}
		}
	}
	for wl, n := range sortedCounts(r.scrapeFailures) {
		notes = append(notes, fmt.Sprintf("%d scrapes of %s's Envoy failed; counts read from Envoy miss those intervals' requests only if the next scrape failed too (counters are cumulative).", n, wl))
	}
	for _, w := range r.warnings {
		notes = append(notes, "Logged during the run: "+w)
	}
	if r.undecoded > 0 {
		notes = append(notes, fmt.Sprintf("%d events had payloads that did not decode and were left out, e.g. %s", r.undecoded, r.decodeErrs[0]))
	}
	for _, x := range rep.Expectations {
		for _, m := range x.Measures {
			if m.UpperBound {
				notes = append(notes, fmt.Sprintf("%s: the load windows carry no latency histograms, so percentiles over a window of the run are bounded by the largest window's percentile, not computed exactly.", x.Name))
				break
			}
		}
	}
	rep.Notes = append(notes, rep.Notes...)
}

func orText(s, alt string) string {
	if s == "" {
		return alt
	}
	return s
}

// sortedCounts iterates a map of counts by key.
func sortedCounts(m map[string]int) func(func(string, int) bool) {
	return func(yield func(string, int) bool) {
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if !yield(k, m[k]) {
				return
			}
		}
	}
}

func (ev *evaluator) verdict() {
	r, rep := ev.r, ev.rep
	var reasons []string
	switch {
	case r.finished == nil:
		reasons = append(reasons, fmt.Sprintf("the run did not finish: the log ends %s without run.finished (the run was killed, or its log was cut short)", r.describeEnd()))
	case r.result.Verdict == string(Error):
		reasons = append(reasons, "the run ended in error: "+orText(r.result.Reason, "no reason recorded"))
	}
	for _, f := range rep.Timings.Faults {
		if f.RevertError != "" {
			reasons = append(reasons, fmt.Sprintf("the fault of step %s (%s %s in %s) could not be reverted: %s; undo it by hand: %s",
				f.Step, f.Kind, f.Workload, f.Cluster, f.RevertError, orText(f.Restore, "(no restore command recorded)")))
		}
	}
	if len(r.trips) > 0 {
		t := r.trips[0]
		rep.Abort = &GuardTrip{Guard: t.Guard, Condition: t.Condition, Figure: roundTo(t.Figure, 4), Limit: t.Limit,
			Answers: t.Answers, OverSeconds: seconds(t.Over), AtSeconds: roundTo(seconds(t.At), 3)}
	}
	for _, st := range rep.Timings.Steps {
		if st.Error != "" && !strings.HasPrefix(st.Error, event.StepCutShort) {
			reasons = append(reasons, fmt.Sprintf("step %s failed: %s", st.Name, st.Error))
		}
	}
	reasons = append(reasons, ev.problems...)
	rep.runProblems = slices.Clone(reasons)
	var failed, errored, unjudged []string
	runLevel := len(reasons)
	for _, x := range rep.Expectations {
		switch x.Status {
		case StatusFail:
			failed = append(failed, x.Name)
		case StatusInconclusive:
			unjudged = append(unjudged, x.Name)
		case StatusError:
			errored = append(errored, x.Name)
			reasons = append(reasons, fmt.Sprintf("expectation %s could not be evaluated: %s", x.Name, x.Message))
		}
	}
	switch {
	case runLevel == 0 && r.steady != nil && !r.steady.Held:
		// Nothing was injected into a mesh that was already unwell: the
		// expectations about the faults are shown, not judged.
		rep.Verdict, rep.unjudged = Inconclusive, true
		rep.Reason = fmt.Sprintf("the mesh was not in its steady state before the first fault (%s): %s; no fault was injected",
			strings.Join(r.steady.Broken, ", "), r.steady.Message)
	case runLevel == 0 && rep.Abort != nil:
		// The guard's verdict: what the expectations say of a drill cut short
		// is shown, not judged.
		rep.Verdict, rep.unjudged = Aborted, true
		rep.Reason = "aborted: " + rep.Abort.text() + "; every fault was reverted then and no further step ran"
		if len(failed) > 0 || len(errored) > 0 {
			rep.Reason += fmt.Sprintf("; of the expectations, which are not judged, %d did not hold", len(failed)+len(errored))
		}
	case len(reasons) > 0:
		rep.Verdict = Error
		rep.Problems = reasons
		// When the run itself went wrong, that is the reason; the expectations it
		// left unjudged follow from it and are listed in the table and Problems.
		if runLevel > 0 {
			rep.Reason = strings.Join(reasons[:runLevel], "; ")
		} else {
			rep.Reason = strings.Join(reasons, "; ")
		}
	case len(failed) > 0:
		rep.Verdict = Fail
		rep.Reason = fmt.Sprintf("%d of %d expectations failed: %s", len(failed), len(rep.Expectations), strings.Join(failed, ", "))
		if len(unjudged) > 0 {
			rep.Reason += fmt.Sprintf("; %s could not be judged on this machine", strings.Join(unjudged, ", "))
		}
	case len(unjudged) > 0:
		rep.Verdict = Inconclusive
		rep.Reason = fmt.Sprintf("%d of %d expectations could not be judged on this machine, the others passed: %s", len(unjudged), len(rep.Expectations), strings.Join(unjudged, ", "))
	default:
		rep.Verdict = Pass
		if len(rep.Expectations) == 0 {
			rep.Notes = append(rep.Notes, "The scenario has no expectations: the drill passes when it runs to its end.")
		}
	}
	// The engine records its verdict without the run history: a regression
	// judged against it is no disagreement between the run and its log.
	if r.finished != nil && r.result.Verdict != "" && r.result.Verdict != string(rep.Verdict) && r.result.Verdict != string(Error) && !ev.judgedByHistory() {
		rep.Notes = append(rep.Notes, fmt.Sprintf("The run recorded the verdict %q; judged again from its events it is %q.", r.result.Verdict, rep.Verdict))
	}
}

func spanText(sp *Span) string {
	if sp == nil || (sp.From == "start" && sp.Until == "end") {
		return "the whole load"
	}
	return fmt.Sprintf("[%s, %s) = [%s, %s)", sp.From, sp.Until, formatSeconds(sp.FromSeconds), formatSeconds(sp.UntilSeconds))
}

// windowText is an expectation's window as the scenario wrote it, for its check:
// "" for the whole load, " in [reviews-down + 10s, reviews-back)".
func windowText(w scenario.Window) string {
	if w.From == nil && w.Until == nil {
		return ""
	}
	from, until := "start", "end"
	if w.From != nil {
		from = w.From.String()
	}
	if w.Until != nil {
		until = w.Until.String()
	}
	return fmt.Sprintf(" in [%s, %s)", from, until)
}

// fmtT writes a moment on the load clock.
func fmtT(d time.Duration) string { return formatSeconds(seconds(d)) }

func roundTo(v float64, decimals int) float64 {
	p := 1.0
	for range decimals {
		p *= 10
	}
	return float64(int64(v*p+0.5)) / p
}

// judgedByHistory reports whether a regression expectation, judged against
// the run history, failed or could not be judged.
func (ev *evaluator) judgedByHistory() bool {
	for _, x := range ev.rep.Expectations {
		if x.Kind == KindRegression && (x.Status == StatusFail || x.Status == StatusError) {
			return true
		}
	}
	return false
}
