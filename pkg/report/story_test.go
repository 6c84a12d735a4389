package report

import (
	"bytes"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"sync"
	"testing"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"

	"github.com/meshdrill/drill/internal/failover"
	"github.com/meshdrill/drill/pkg/event"
)

// story writes the event log of a drill the way a run would: the seed drill by
// default (150 s at 50/s, reviews in cluster1 scaled to zero at 30 s, a few 503s from
// the local Envoy cluster, traffic on cluster2's .global cluster within ~3 s, the
// fault reverted at 90 s, failback), with knobs for the ways a drill goes wrong.
type story struct {
	yaml string // the scenario; testdata/seed.yaml by default

	// failoverAfter is the number of scrape intervals after the fault before
	// cluster2 answers most reviews requests (default 2); never: it never does, and
	// every reviews request in cluster1 fails while reviews is down.
	failoverAfter int
	never         bool
	// failbackAfter is the scrape intervals after the revert before cluster1 answers
	// most again (default 7).
	failbackAfter int
	// degradedLate adds degraded answers at 60 s, well after failover.
	degradedLate int64
	// slow multiplies latency while failed over.
	slow float64
	// errors are transport errors at 117 s.
	errors int64
	// starved is the p99 of drill's scheduling waits while failed over (load.sched
	// events); 40 µs elsewhere. No load.sched events when zero.
	starved time.Duration

	noHistograms bool // windows without latency histograms
	live         bool // the engine's live failover.detected events are in the log
	finish       string
	reason       string // run.finished reason
	revertFails  bool
	stopAt       time.Duration // cut the log at this load time (a killed run)
	dataPlane    string
	seconds      int // of load; 150 by default
}

func seedStory(t testing.TB) *story {
	t.Helper()
	y, err := os.ReadFile(filepath.Join("testdata", "seed.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	return &story{yaml: string(y), seconds: 150, failoverAfter: 2, failbackAfter: 7, slow: 1, errors: 1, live: true, finish: "pass", dataPlane: "emulated"}
}

var storyStart = time.Date(2026, 11, 24, 21, 0, 0, 0, time.UTC)

const (
	storyLoadAt  = 2500 * time.Millisecond // load starts this long after the run
	storyRate    = 50
	faultAt      = 30 * time.Second
	revertAt     = 90 * time.Second
	scrapeOffset = 400 * time.Millisecond // scrapes land at 0.4 s past each second of load
)

type logBuilder struct {
	seq    uint64
	events []event.Event
}

func (b *logBuilder) add(elapsed time.Duration, typ event.Type, cluster, source string, payload any) event.Event {
	b.seq++
	e := event.New(typ, cluster, source, payload)
	e.Seq, e.Elapsed, e.Time = b.seq, elapsed, storyStart.Add(elapsed)
	b.events = append(b.events, e)
	return e
}

// reviewsTraffic is what productpage's Envoy sent to reviews in the scrape interval
// ending at load time end: per Envoy cluster, requests and 503s.
func (s *story) reviewsTraffic(end time.Duration) (local, local503, remote int64) {
	k := int((end - scrapeOffset) / time.Second) // interval (k-1+0.4, k+0.4]
	down := int(faultAt / time.Second)
	back := int(revertAt / time.Second)
	switch {
	case end <= faultAt || k > back+s.failbackAfter+1:
		return storyRate, 0, 0
	case s.never && k <= back+1:
		return storyRate, storyRate, 0
	case s.never:
		return storyRate, 0, 0
	case k == down:
		return storyRate, 2, 0 // the fault's first 0.4 s: pods terminating
	case k < down+s.failoverAfter-1:
		return storyRate, 3, 0 // failing before ejection
	case k == down+s.failoverAfter-1:
		return 28, 5, 22 // ejections begin, traffic spills over the priorities
	case k == down+s.failoverAfter:
		return 8, 0, 42
	case k <= back+s.failbackAfter-2:
		return 0, 0, storyRate
	case k == back+s.failbackAfter-1:
		return 10, 0, 40 // pods ready again; outlier ejection still holds most
	case k == back+s.failbackAfter:
		return 35, 0, 15
	}
	return storyRate, 0, 0
}

// built memoizes stories: many tests tell the same one.
var (
	builtMu sync.Mutex
	built   = map[story][]event.Event{}
)

// build writes the story's events. The caller may change the slice, not the
// events' payload bytes.
func (s *story) build() []event.Event {
	builtMu.Lock()
	defer builtMu.Unlock()
	evs, ok := built[*s]
	if !ok {
		evs = s.write()
		built[*s] = evs
	}
	return slices.Clone(evs)
}

// write writes the story's events.
func (s *story) write() []event.Event {
	b := &logBuilder{}
	storySeconds := s.seconds
	loadLen := time.Duration(storySeconds) * time.Second
	rng := rand.New(rand.NewPCG(7, 11))
	b.add(0, event.RunStarted, "", "drill", event.RunInfo{
		Scenario: "reviews-failover", File: "scenarios/reviews-failover.yaml", Provider: "local",
		Clusters: []string{"cluster1", "cluster2"}, DataPlane: s.dataPlane, LoadDuration: loadLen,
		DrillVersion: "v0.1.0", Host: "drill-ci-1", ScenarioYAML: s.yaml,
	})
	// What each cluster runs, and the policy drill applied before the load.
	for i, c := range []string{"cluster1", "cluster2"} {
		b.add(time.Duration(800+i*10)*time.Millisecond, event.ClusterVersions, c, "engine", event.Versions{Kubernetes: "v1.37.2", Istio: "1.31-dev.eed52ebb66ad"})
	}
	b.add(1200*time.Millisecond, event.PolicyApplied, "cluster1", "engine", event.Policy{
		Objects: []event.PolicyObject{
			{Kind: "ServiceEntry", Namespace: "default", Name: "reviews-failover"},
			{Kind: "DestinationRule", Namespace: "default", Name: "mgmt-reviews-outlier"},
			{Kind: "VirtualService", Namespace: "default", Name: "reviews-shift-failover"},
		},
		YAML: "---\napiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata:\n  name: reviews-failover\n  namespace: default\nspec:\n  hosts:\n  - reviews-failover.default.global\n" +
			"---\napiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata:\n  name: mgmt-reviews-outlier\n  namespace: default\nspec:\n  host: reviews.default.svc.cluster.local\n" +
			"---\napiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata:\n  name: reviews-shift-failover\n  namespace: default\nspec:\n  hosts:\n  - reviews.default.svc.cluster.local\n",
	})
	b.add(1210*time.Millisecond, event.PolicyApplied, "cluster2", "engine", event.Policy{
		Objects: []event.PolicyObject{{Kind: "DestinationRule", Namespace: "default", Name: "mgmt-reviews-outlier"}},
		YAML:    "---\napiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata:\n  name: mgmt-reviews-outlier\n  namespace: default\nspec:\n  host: reviews.default.svc.cluster.local\n",
	})
	at := func(t time.Duration) time.Duration { return storyLoadAt + t }
	b.add(at(0), event.LoadStarted, "cluster1", "load", event.LoadInfo{Target: "http://127.0.1.1:8080/productpage", Rate: "50/1s", Duration: loadLen})

	// The things that happen at given load times, merged in time order below.
	type item struct {
		t time.Duration
		f func()
	}
	var items []item
	on := func(t time.Duration, f func()) { items = append(items, item{t, f}) }

	// Load windows, published 40 ms after they close.
	total := hdrhistogram.New(int64(time.Microsecond), int64(time.Hour), 3)
	var totalMax time.Duration
	totals := event.Window{Codes: map[string]int64{}}
	for j := range storySeconds {
		start, end := time.Duration(j)*time.Second, time.Duration(j+1)*time.Second
		w := event.Window{Start: start, End: end, Requests: storyRate, Codes: map[string]int64{}}
		base := 11 * time.Millisecond
		switch {
		case start >= faultAt && start < faultAt+3*time.Second:
			base = 35 * time.Millisecond
		case start >= faultAt && start < revertAt+8*time.Second:
			base = time.Duration(float64(19*time.Millisecond) * s.slow)
		}
		if !s.never {
			switch j {
			case 30:
				w.Degraded = 5
			case 31:
				w.Degraded = 5
			}
		} else if start >= faultAt && start < revertAt+2*time.Second {
			w.Degraded = storyRate
		}
		if j == 60 {
			w.Degraded += s.degradedLate
		}
		if j == 117 {
			w.Errors = s.errors
		}
		w.Codes["200"] = w.Requests - w.Errors
		if w.Errors > 0 {
			w.Codes["0"] = w.Errors
		}
		h := hdrhistogram.New(int64(time.Microsecond), int64(time.Hour), 3)
		for i := range w.Requests {
			lat := time.Duration(float64(base) * math.Exp(0.45*rng.NormFloat64()))
			if rng.IntN(200) == 0 {
				lat *= 4
			}
			if w.Errors > 0 && i < w.Errors {
				lat = 10 * time.Second // the load's timeout
			}
			_ = h.RecordValue(int64(lat))
			_ = total.RecordValue(int64(lat))
			w.Max = max(w.Max, lat)
		}
		q := func(p float64) time.Duration { return min(time.Duration(h.ValueAtQuantile(p)), w.Max) }
		w.P50, w.P90, w.P99, w.Rate = q(50), q(90), q(99), float64(w.Requests)
		if !s.noHistograms {
			enc, err := h.Encode(hdrhistogram.V2CompressedEncodingCookieBase)
			if err != nil {
				panic(err)
			}
			w.Histogram = string(enc)
		}
		totals.Requests += w.Requests
		totals.Errors += w.Errors
		totals.Degraded += w.Degraded
		for c, n := range w.Codes {
			totals.Codes[c] += n
		}
		totalMax = max(totalMax, w.Max)
		on(end+40*time.Millisecond, func() { b.add(at(end+40*time.Millisecond), event.LoadWindow, "cluster1", "load", w) })
		if s.starved > 0 {
			sc := event.Sched{Start: start, End: end, Waits: 900, P99: 40 * time.Microsecond, Max: 300 * time.Microsecond}
			if start >= faultAt && start < revertAt+8*time.Second {
				sc.P99, sc.Max = s.starved, 2*s.starved
			}
			on(end+time.Millisecond, func() { b.add(at(end+time.Millisecond), event.LoadSched, "cluster1", "load", sc) })
		}
	}
	tq := func(p float64) time.Duration { return min(time.Duration(total.ValueAtQuantile(p)), totalMax) }
	totals.End, totals.Max = loadLen, totalMax
	totals.P50, totals.P90, totals.P99, totals.Rate = tq(50), tq(90), tq(99), storyRate
	if !s.noHistograms {
		enc, _ := total.Encode(hdrhistogram.V2CompressedEncodingCookieBase)
		totals.Histogram = string(enc)
	}
	on(loadLen+60*time.Millisecond, func() {
		b.add(at(loadLen+60*time.Millisecond), event.LoadFinished, "cluster1", "load", totals)
	})

	// The timeline.
	zero, two := int32(0), int32(2)
	fault := event.Fault{Step: "reviews-down", Kind: "scale", Cluster: "cluster1", Namespace: "default", Workload: "reviews",
		From: &two, To: &zero, Deployments: []event.DeploymentReplicas{{Name: "reviews-v1", From: 1, To: 0}, {Name: "reviews-v2", From: 1, To: 0}},
		Restore: "kubectl --context cluster1 -n default scale deployment/reviews-v1 deployment/reviews-v2 --replicas=1"}
	on(faultAt, func() {
		b.add(at(faultAt), event.StepStarted, "", "engine", event.Step{Name: "reviews-down", Trigger: "at 30s", Action: "fault"})
	})
	on(faultAt+18*time.Millisecond, func() {
		b.add(at(faultAt+18*time.Millisecond), event.FaultApplied, "cluster1", "fault/reviews-down", fault)
		b.add(at(faultAt+19*time.Millisecond), event.StepFinished, "", "engine", event.Step{Name: "reviews-down", Trigger: "at 30s", Action: "fault"})
	})
	for i, name := range []string{"reviews-v1-5b8f9c7d4-q2xkz", "reviews-v2-7c9d8b6f5-m4tnp"} {
		on(faultAt+time.Duration(60+i*7)*time.Millisecond, func() {
			b.add(at(faultAt+time.Duration(60+i*7)*time.Millisecond), event.PodTerminating, "cluster1", "watch", event.Pod{Namespace: "default", Name: name, App: "reviews", Version: "v" + strconv.Itoa(i+1)})
		})
	}
	on(faultAt+2100*time.Millisecond, func() {
		b.add(at(faultAt+2100*time.Millisecond), event.EndpointsChanged, "cluster1", "watch", event.Endpoints{Namespace: "default", Service: "reviews", Ready: []string{}})
	})
	if !s.revertFails {
		on(revertAt, func() {
			b.add(at(revertAt), event.StepStarted, "", "engine", event.Step{Name: "reviews-back", Trigger: "after reviews-down + 60s", Action: "revert"})
		})
		back := fault
		back.From, back.To = &zero, &two
		back.Deployments = []event.DeploymentReplicas{{Name: "reviews-v1", From: 0, To: 1}, {Name: "reviews-v2", From: 0, To: 1}}
		on(revertAt+25*time.Millisecond, func() {
			b.add(at(revertAt+25*time.Millisecond), event.FaultReverted, "cluster1", "fault/reviews-down", back)
			b.add(at(revertAt+26*time.Millisecond), event.StepFinished, "", "engine", event.Step{Name: "reviews-back", Trigger: "after reviews-down + 60s", Action: "revert"})
		})
		for i, name := range []string{"reviews-v1-5b8f9c7d4-h7wq2", "reviews-v2-7c9d8b6f5-x9bjr"} {
			on(revertAt+time.Duration(5200+i*450)*time.Millisecond, func() {
				b.add(at(revertAt+time.Duration(5200+i*450)*time.Millisecond), event.PodReady, "cluster1", "watch", event.Pod{Namespace: "default", Name: name, App: "reviews", Version: "v" + strconv.Itoa(i+1), IP: "10.10.0." + strconv.Itoa(31+i)})
			})
		}
	} else {
		on(revertAt, func() {
			b.add(at(revertAt), event.StepStarted, "", "engine", event.Step{Name: "reviews-back", Trigger: "after reviews-down + 60s", Action: "revert"})
		})
		failed := fault
		failed.Error = `scale deployment reviews-v1 in cluster1: Put "https://127.0.2.1:6443/apis/apps/v1/namespaces/default/deployments/reviews-v1/scale": connection refused`
		on(revertAt+25*time.Millisecond, func() {
			b.add(at(revertAt+25*time.Millisecond), event.FaultRevertFailed, "cluster1", "fault/reviews-down", failed)
			b.add(at(revertAt+26*time.Millisecond), event.StepFinished, "", "engine", event.Step{Name: "reviews-back", Trigger: "after reviews-down + 60s", Action: "revert", Error: failed.Error})
		})
	}

	// productpage's Envoy, scraped every second.
	ejected := int64(0)
	for k := 0; k <= storySeconds; k++ {
		end := time.Duration(k)*time.Second + scrapeOffset
		sample := event.Sample{Workload: "productpage", Pod: "productpage-v1-6b7f6dc8d5-w2j9t", Interval: time.Second,
			Clusters: map[string]event.ClusterDelta{}, Served: map[string]map[string]int64{}}
		local, l503, remote := s.reviewsTraffic(end)
		if end > loadLen+time.Second {
			local, l503, remote = 0, 0, 0
		}
		active := ejected
		switch {
		case !s.never && l503 > 0 && end > faultAt:
			active = 2
		case end > revertAt+time.Duration(s.failbackAfter)*time.Second:
			active = 0
		}
		healthy := int64(2)
		if end > faultAt && end < revertAt+6*time.Second {
			healthy = 0
		}
		detailsN := int64(storyRate)
		if end > loadLen+time.Second {
			detailsN = 0
		}
		const localName = "outbound|9080||reviews.default.svc.cluster.local"
		const remoteName = "outbound|9080||reviews.default.svc.cluster2.global"
		if local > 0 || k == 0 || active != ejected || healthy != 2 {
			// Each final 503 follows a retried one, as with Istio's default
			// retry policy.
			cd := event.ClusterDelta{Requests: local + l503, Answers: local, Upstream5xx: l503, Retried5xx: l503, EjectionsActive: active, MembershipHealthy: healthy, MembershipTotal: 2}
			if local > 0 {
				cd.Codes = map[string]int64{"200": local - l503}
				if l503 > 0 {
					cd.Codes["503"] = l503
				}
			}
			sample.Clusters[localName] = cd
		}
		if remote > 0 || k == 0 {
			cd := event.ClusterDelta{Requests: remote, Answers: remote, MembershipHealthy: 1, MembershipTotal: 1}
			if remote > 0 {
				cd.Codes = map[string]int64{"200": remote}
			}
			sample.Clusters[remoteName] = cd
		}
		if k == 0 {
			sample.Clusters["outbound|9080||reviews-failover.default.global"] = event.ClusterDelta{}
		}
		if detailsN > 0 || k == 0 {
			sample.Clusters["outbound|9080||details.default.svc.cluster.local"] = event.ClusterDelta{Requests: detailsN, Answers: detailsN, Codes: map[string]int64{"200": detailsN}, MembershipHealthy: 1, MembershipTotal: 1}
			sample.Served["details.default.svc.cluster.local"] = map[string]int64{"cluster1": detailsN}
		}
		if local > 0 {
			m := map[string]int64{}
			if local-l503 > 0 {
				m["cluster1"] = local - l503
			}
			if l503 > 0 {
				m["unknown"] = l503
			}
			sample.Served["reviews.default.svc.cluster.local"] = m
		}
		if remote > 0 {
			sample.Served["reviews.default.svc.cluster2.global"] = map[string]int64{"cluster2": remote}
		}
		if len(sample.Served) == 0 {
			sample.Served = nil
		}
		prev := ejected
		ejected = active
		on(end, func() {
			b.add(at(end), event.StatsSample, "cluster1", "stats/productpage", sample)
			if active != prev {
				b.add(at(end), event.OutlierEjection, "cluster1", "stats/productpage", event.Ejection{Workload: "productpage", EnvoyCluster: localName, Active: active, Previous: prev})
			}
		})
	}

	// Merge in time order; equal times keep their order of registration.
	sort.SliceStable(items, func(i, j int) bool { return items[i].t < items[j].t })
	var det *failover.Detector
	if s.live {
		var err error
		det, err = failover.NewDetector(failover.Watch{Service: "reviews", Namespace: "default", From: "cluster1", To: "cluster2",
			Hosts: []string{"reviews-failover.default.global"}, FailoverAfter: "reviews-down", FailbackAfter: "reviews-back"})
		if err != nil {
			panic(err)
		}
	}
	for _, it := range items {
		if s.stopAt > 0 && it.t > s.stopAt {
			return b.events
		}
		n := len(b.events)
		it.f()
		if det == nil {
			continue
		}
		// The engine runs the Detector on the Bus and publishes what it finds.
		for _, e := range b.events[n:] {
			for _, d := range det.Observe(e) {
				var f event.Failover
				_ = d.Decode(&f)
				b.add(e.Elapsed+300*time.Microsecond, d.Type, d.Cluster, "engine", f)
			}
		}
	}
	end := at(loadLen + 2*time.Second)
	switch s.finish {
	case "":
	default:
		b.add(end, event.RunFinished, "", "drill", event.RunResult{Verdict: s.finish, Reason: s.reason})
	}
	return b.events
}

// encodeLog writes events as an events.jsonl.
func encodeLog(t testing.TB, events []event.Event) []byte {
	t.Helper()
	var buf bytes.Buffer
	lw := event.NewLogWriter(&buf, event.WithFlushInterval(0))
	for _, e := range events {
		if err := lw.Write(e); err != nil {
			t.Fatal(err)
		}
	}
	if err := lw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}
