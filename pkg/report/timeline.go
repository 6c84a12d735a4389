package report

import (
	"fmt"
	"sort"
	"time"

	"github.com/meshdrill/drill/pkg/event"
)

// run is the record of a drill, read from its events once and put in order.
type run struct {
	events []event.Event

	started  *event.Event
	info     event.RunInfo
	finished *event.Event
	result   event.RunResult
	last     event.Event // the last event of the log

	loadStarted  *event.Event
	loadInfo     event.LoadInfo
	loadFinished *event.Window
	warmups      []event.Warmup
	windows      []event.Window
	sched        []event.Sched

	steps  []stepRec
	faults []faultRec

	samples []sampleRec
	// scrapeFailures counts stats.scrape-failed events by workload.
	scrapeFailures map[string]int
	ejections      []ejectionRec
	hostChanges    []hostRec

	detections []detectionRec     // failover.detected and failback.detected, as recorded
	trips      []event.GuardTrip  // guard.tripped, the first one aborted the drill
	steady     *event.SteadyCheck // steady-state.checked before the first fault

	versions map[string]ClusterVersions // cluster.versions, by cluster
	policies []policyRec                // policy.applied
	kube     []event.Event              // k8s.*

	warnings   []string // log events of level warn or error
	undecoded  int      // events whose payload did not decode
	decodeErrs []string // the first few of them
}

type stepRec struct {
	name     string
	trigger  string
	action   string
	at       time.Duration // Elapsed of step.started
	finished *time.Duration
	err      string
}

type faultRec struct {
	f         event.Fault
	applied   time.Duration
	reverted  *time.Duration
	revertErr string
}

type sampleRec struct {
	e event.Event
	s event.Sample
}

// hostRec is a change in an observed Envoy's /clusters page.
type hostRec struct {
	e event.Event
	c event.HostChange
}

type policyRec struct {
	e event.Event
	p event.Policy
}

type ejectionRec struct {
	e event.Event
	j event.Ejection
}

type detectionRec struct {
	e event.Event
	f event.Failover
}

const maxDecodeErrs = 5

// read puts the events in order: by Seq, as the log does. It keeps going past
// payloads that do not decode, counting them, so that a report says what it could.
func read(events []event.Event) *run {
	r := &run{events: events, scrapeFailures: map[string]int{}, versions: map[string]ClusterVersions{}}
	evs := make([]event.Event, len(events))
	copy(evs, events)
	sort.SliceStable(evs, func(i, j int) bool { return evs[i].Seq < evs[j].Seq })
	r.events = evs
	decode := func(e event.Event, v any) bool {
		if err := e.Decode(v); err != nil {
			r.undecoded++
			if len(r.decodeErrs) < maxDecodeErrs {
				r.decodeErrs = append(r.decodeErrs, err.Error())
			}
			return false
		}
		return true
	}
	for i := range evs {
		e := evs[i]
		r.last = e
		switch e.Type {
		case event.RunStarted:
			if r.started == nil && decode(e, &r.info) {
				r.started = &evs[i]
			}
		case event.RunFinished:
			if decode(e, &r.result) {
				r.finished = &evs[i]
			}
		case event.LoadStarted:
			if r.loadStarted == nil && decode(e, &r.loadInfo) {
				r.loadStarted = &evs[i]
			}
		case event.LoadWindow:
			var w event.Window
			if decode(e, &w) {
				r.windows = append(r.windows, w)
			}
		case event.LoadSched:
			var s event.Sched
			if decode(e, &s) {
				r.sched = append(r.sched, s)
			}
		case event.LoadFinished:
			var w event.Window
			if decode(e, &w) {
				r.loadFinished = &w
			}
		case event.LoadWarmup:
			var w event.Warmup
			if decode(e, &w) {
				r.warmups = append(r.warmups, w)
			}
		case event.StepStarted:
			var st event.Step
			if decode(e, &st) && r.step(st.Name) == nil {
				r.steps = append(r.steps, stepRec{name: st.Name, trigger: st.Trigger, action: st.Action, at: e.Elapsed, err: st.Error})
			}
		case event.StepFinished:
			var st event.Step
			if decode(e, &st) {
				if s := r.step(st.Name); s != nil && s.finished == nil {
					at := e.Elapsed
					s.finished = &at
					if st.Error != "" {
						s.err = st.Error
					}
				}
			}
		case event.FaultApplied:
			var f event.Fault
			if decode(e, &f) {
				r.faults = append(r.faults, faultRec{f: f, applied: e.Elapsed})
			}
		case event.FaultReverted, event.FaultRevertFailed:
			var f event.Fault
			if decode(e, &f) {
				fr := r.fault(f)
				if fr == nil {
					continue
				}
				if e.Type == event.FaultReverted {
					at := e.Elapsed
					fr.reverted, fr.revertErr = &at, ""
				} else {
					fr.revertErr = f.Error
					if fr.revertErr == "" {
						fr.revertErr = "revert failed"
					}
					if f.Restore != "" {
						fr.f.Restore = f.Restore
					}
				}
			}
		case event.StatsSample:
			var s event.Sample
			if decode(e, &s) {
				r.samples = append(r.samples, sampleRec{e: e, s: s})
			}
		case event.StatsScrapeFailed:
			var f event.ScrapeFailure
			if decode(e, &f) {
				r.scrapeFailures[f.Workload]++
			}
		case event.OutlierEjection:
			var j event.Ejection
			if decode(e, &j) {
				r.ejections = append(r.ejections, ejectionRec{e: e, j: j})
			}
		case event.HostEjected, event.HostReturned, event.PriorityChanged:
			var c event.HostChange
			if decode(e, &c) {
				r.hostChanges = append(r.hostChanges, hostRec{e: e, c: c})
			}
		case event.SteadyStateChecked:
			var c event.SteadyCheck
			if decode(e, &c) && r.steady == nil {
				r.steady = &c
			}
		case event.GuardTripped:
			var g event.GuardTrip
			if decode(e, &g) {
				r.trips = append(r.trips, g)
			}
		case event.FailoverDetected, event.FailbackDetected:
			var f event.Failover
			if decode(e, &f) {
				r.detections = append(r.detections, detectionRec{e: e, f: f})
			}
		case event.ClusterVersions:
			var v event.Versions
			if decode(e, &v) {
				r.versions[e.Cluster] = ClusterVersions{Cluster: e.Cluster, Kubernetes: v.Kubernetes, Istio: v.Istio, Error: v.Error}
			}
		case event.PolicyApplied:
			var p event.Policy
			if decode(e, &p) {
				r.policies = append(r.policies, policyRec{e: e, p: p})
			}
		case event.ReplicasChanged, event.PodReady, event.PodTerminating, event.PodDeleted, event.EndpointsChanged:
			r.kube = append(r.kube, e)
		case event.Log:
			var l event.LogLine
			if decode(e, &l) && (l.Level == "warn" || l.Level == "error") {
				r.warnings = append(r.warnings, l.Message)
			}
		}
	}
	sort.SliceStable(r.windows, func(i, j int) bool { return r.windows[i].Start < r.windows[j].Start })
	return r
}

func (r *run) step(name string) *stepRec {
	for i := range r.steps {
		if r.steps[i].name == name {
			return &r.steps[i]
		}
	}
	return nil
}

// fault finds the applied fault a revert event is about: the latest one of the same
// step (and workload, when a step's fault touches several).
func (r *run) fault(f event.Fault) *faultRec {
	for i := len(r.faults) - 1; i >= 0; i-- {
		fr := &r.faults[i]
		if fr.f.Step == f.Step && (f.Workload == "" || fr.f.Workload == f.Workload) {
			return fr
		}
	}
	for i := len(r.faults) - 1; i >= 0; i-- {
		if r.faults[i].f.Step == f.Step {
			return &r.faults[i]
		}
	}
	return nil
}

// zero is the Elapsed time the run's clock starts at: the start of load, which the
// scenario's `at:` and every window's Start count from. Without load it is the start
// of the run.
func (r *run) zero() time.Duration {
	if r.loadStarted != nil {
		return r.loadStarted.Elapsed
	}
	if r.started != nil {
		return r.started.Elapsed
	}
	return 0
}

// t converts an event's Elapsed to the load clock.
func (r *run) t(elapsed time.Duration) time.Duration { return elapsed - r.zero() }

// loadEnd is when load ended on the load clock.
func (r *run) loadEnd() time.Duration {
	if r.loadFinished != nil && r.loadFinished.End > 0 {
		return r.loadFinished.End
	}
	if n := len(r.windows); n > 0 {
		return r.windows[n-1].End
	}
	if r.loadInfo.Duration > 0 {
		return r.loadInfo.Duration
	}
	return r.info.LoadDuration
}

// windowWidth is the most common load window width.
func (r *run) windowWidth() time.Duration {
	return mode(len(r.windows), func(i int) time.Duration { return r.windows[i].End - r.windows[i].Start })
}

// scrapeInterval is the most common interval of the stats samples.
func (r *run) scrapeInterval() time.Duration {
	return mode(len(r.samples), func(i int) time.Duration { return r.samples[i].s.Interval })
}

// mode returns the most frequent positive value of n values, rounded to the
// millisecond (scrape intervals jitter by a few), the smallest among equals.
func mode(n int, at func(int) time.Duration) time.Duration {
	counts := map[time.Duration]int{}
	for i := range n {
		if v := at(i).Round(time.Millisecond); v > 0 {
			counts[v]++
		}
	}
	var best time.Duration
	for v, c := range counts {
		if c > counts[best] || (c == counts[best] && v < best) {
			best = v
		}
	}
	return best
}

// span of a sample on the load clock: the scrape interval it covers.
func (r *run) sampleSpan(sr sampleRec) (from, to time.Duration) {
	to = r.t(sr.e.Elapsed)
	return to - sr.s.Interval, to
}

func (r *run) describeEnd() string {
	if r.started == nil {
		return ""
	}
	return fmt.Sprintf("%s after it started", (r.last.Elapsed - r.started.Elapsed).Round(time.Millisecond))
}
