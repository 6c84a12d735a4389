package report

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/meshdrill/drill/internal/stats"
)

// series is what report.html charts, on the load clock in seconds.
type series struct {
	end     float64
	windows []winPoint
	// client503 is the load's 5xx answers per second, per window.
	observers []observerSeries
	markers   []marker
	bands     []band
	// dips are what the faults and reverts cost the clients, from the first
	// failed answer to the recovery (dip.go), drawn over the fault bands.
	dips []band
}

type winPoint struct {
	from, to                float64
	ok, degraded, errors    float64 // per second
	p50, p90, p99, max      float64 // seconds
	requests, server5xxRate float64
}

// observerSeries is one observed Envoy's view of the services the scenario is
// about.
type observerSeries struct {
	cluster, workload string
	// x are the middles of its scrape intervals.
	x []float64
	// width is the typical scrape interval, for bars.
	width float64
	// upstream holds requests/s per Envoy cluster, 503s/s per Envoy cluster, and
	// answered requests/s per answering Kubernetes cluster, by name, aligned with x.
	upstream map[string][]float64
	code503  map[string][]float64
	answered map[string][]float64
	services []string
}

type marker struct {
	at    float64
	label string
	kind  string // "step", "failover", "failback"
}

type band struct {
	from, to float64
	label    string
}

func (ev *evaluator) series() *series {
	r := ev.r
	s := &series{end: seconds(r.loadEnd())}
	for _, w := range r.windows {
		d := (w.End - w.Start).Seconds()
		if d <= 0 {
			continue
		}
		var s5 int64
		for c, n := range w.Codes {
			if strings.HasPrefix(c, "5") {
				s5 += n
			}
		}
		ok := w.Requests - w.Errors - w.Degraded
		s.windows = append(s.windows, winPoint{
			from: seconds(w.Start), to: seconds(w.End),
			ok: float64(max(ok, 0)) / d, degraded: float64(w.Degraded) / d, errors: float64(w.Errors) / d,
			p50: w.P50.Seconds(), p90: w.P90.Seconds(), p99: w.P99.Seconds(), max: w.Max.Seconds(),
			requests: float64(w.Requests), server5xxRate: float64(s5) / d,
		})
		s.end = max(s.end, seconds(w.End))
	}
	s.observers = ev.observerSeries()
	for _, o := range s.observers {
		if n := len(o.x); n > 0 {
			s.end = max(s.end, o.x[n-1]+o.width/2)
		}
	}
	for _, st := range ev.rep.Timings.Steps {
		s.markers = append(s.markers, marker{at: st.AtSeconds, label: st.Name, kind: "step"})
	}
	for _, f := range ev.rep.Timings.Failovers {
		s.markers = append(s.markers, marker{at: f.AtSeconds, label: fmt.Sprintf("%s → %s (+%s)", f.Kind, f.To, formatSeconds(f.TookSeconds)), kind: f.Kind})
	}
	sort.SliceStable(s.markers, func(i, j int) bool { return s.markers[i].at < s.markers[j].at })
	for _, f := range ev.rep.Timings.Faults {
		to := s.end
		if f.RevertedSeconds != nil {
			to = *f.RevertedSeconds
		}
		s.bands = append(s.bands, band{from: f.AppliedSeconds, to: to, label: fmt.Sprintf("%s: %s %s in %s", f.Step, f.Kind, f.Workload, f.Cluster)})
		s.addDip(f.Dip, f.Step)
		s.addDip(f.RevertDip, "the revert of "+f.Step)
	}
	return s
}

// addDip adds d, when it cost any request, as a band from its first failed
// answer to the recovery (the end of the part of the load it looked at when
// the load was not back by then). The drill's own reverts of several faults
// share one dip: it is drawn once.
func (s *series) addDip(d *Dip, what string) {
	if d == nil || d.Lost == 0 {
		return
	}
	from := d.LowestAtSeconds
	if d.FirstFailedSeconds != nil {
		from = *d.FirstFailedSeconds
	}
	to, back := d.UntilSeconds, "not back by "+clockText(d.UntilSeconds)
	if d.RecoveredSeconds != nil {
		to, back = *d.RecoveredSeconds, "back at "+clockText(*d.RecoveredSeconds)
	}
	if to <= from {
		to = from + d.WindowSeconds
	}
	for _, b := range s.dips {
		if b.from == from && b.to == to {
			return
		}
	}
	s.dips = append(s.dips, band{from: from, to: to, label: fmt.Sprintf("dip after %s: %s lost, success down to %.1f %% at %s, %s",
		what, plural(d.Lost, "request", "requests"), d.LowestRatio*100, clockText(d.LowestAtSeconds), back)})
}

// chartedServices are the services whose traffic the charts follow: those the
// expectations are about, with the failover hosts they back; none means all.
func (ev *evaluator) chartedServices() []string {
	if ev.s == nil {
		return nil
	}
	var svcs []string
	add := func(s string) {
		if s != "" && !slices.Contains(svcs, s) {
			svcs = append(svcs, s)
		}
	}
	for _, x := range ev.s.Spec.Expect {
		switch {
		case x.Upstream5xx != nil:
			add(x.Upstream5xx.To)
		case x.Failover != nil:
			add(x.Failover.Service)
		case x.Failback != nil:
			add(x.Failback.Service)
		}
	}
	return svcs
}

func (ev *evaluator) observerSeries() []observerSeries {
	r := ev.r
	var matchers []func(string) bool
	svcs := ev.chartedServices()
	for _, svc := range svcs {
		matchers = append(matchers, ev.hostMatcher(svc))
	}
	match := func(host string) bool {
		if len(matchers) == 0 {
			return true
		}
		for _, m := range matchers {
			if m(host) {
				return true
			}
		}
		return false
	}
	type key struct{ cluster, workload string }
	byObs := map[key][]sampleRec{}
	var order []key
	for _, sr := range r.samples {
		wl := strings.TrimPrefix(sr.e.Source, "stats/")
		if wl == "" || wl == sr.e.Source {
			wl = sr.s.Workload
		}
		k := key{sr.e.Cluster, wl}
		if _, ok := byObs[k]; !ok {
			order = append(order, k)
		}
		byObs[k] = append(byObs[k], sr)
	}
	var out []observerSeries
	for _, k := range order {
		srs := byObs[k]
		o := observerSeries{cluster: k.cluster, workload: k.workload, services: svcs,
			upstream: map[string][]float64{}, code503: map[string][]float64{}, answered: map[string][]float64{}}
		o.width = mode(len(srs), func(i int) time.Duration { return srs[i].s.Interval }).Seconds()
		for i, sr := range srs {
			a, b := r.sampleSpan(sr)
			o.x = append(o.x, seconds(a+(b-a)/2))
			d := sr.s.Interval.Seconds()
			if d <= 0 {
				d = o.width
			}
			if d <= 0 {
				d = 1
			}
			for name, cd := range sr.s.Clusters {
				ec, ok := stats.ParseClusterName(name, sr.e.Cluster)
				if !ok || ec.Direction != "outbound" || !match(ec.Host) {
					continue
				}
				if len(matchers) == 0 && ec.Service == "" {
					continue
				}
				label := envoyClusterLabel(ec)
				put(o.upstream, label, i, len(srs), float64(cd.Requests)/d)
				put(o.code503, label, i, len(srs), float64(cd.Codes["503"])/d)
			}
			for host, byCluster := range sr.s.Served {
				if !match(host) {
					continue
				}
				for cl, n := range byCluster {
					if cl == "" {
						cl = "unknown"
					}
					put(o.answered, cl, i, len(srs), float64(n)/d)
				}
			}
		}
		dropZero(o.upstream)
		dropZero(o.code503)
		dropZero(o.answered)
		out = append(out, o)
	}
	return out
}

// put adds v at index i of the named series, creating it with n zeros.
func put(m map[string][]float64, name string, i, n int, v float64) {
	s, ok := m[name]
	if !ok {
		s = make([]float64, n)
		m[name] = s
	}
	s[i] += v
}

func dropZero(m map[string][]float64) {
	for k, s := range m {
		if !slices.ContainsFunc(s, func(v float64) bool { return v != 0 }) {
			delete(m, k)
		}
	}
}

// envoyClusterLabel names an Envoy cluster for a legend: the service, the
// Kubernetes cluster behind it, and what kind of Envoy cluster it is.
func envoyClusterLabel(ec stats.EnvoyCluster) string {
	sub := ""
	if ec.Subset != "" {
		sub = " " + ec.Subset
	}
	switch ec.Kind {
	case stats.KindLocal:
		return fmt.Sprintf("%s%s · %s (local)", ec.Service, sub, ec.KubeCluster)
	case stats.KindRemote:
		return fmt.Sprintf("%s%s · %s (.global)", ec.Service, sub, ec.KubeCluster)
	case stats.KindFailover:
		return fmt.Sprintf("%s%s (aggregate)", ec.Host, sub)
	}
	return ec.Name
}
