package report

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/meshdrill/drill/pkg/scenario"
)

// share judges a share expectation from the client's view: the load windows'
// Served counts, which come from the answers themselves (each names the
// cluster that served each service on its path). The whole is every answer
// in the window that named a cluster for the service; an answer whose call to
// the service failed names none and is in neither. A window counts when its
// middle lies in the expectation's window, as for the counts.
func (ev *evaluator) share(res *Result, x *scenario.ShareExpect) error {
	res.Check = fmt.Sprintf("share of the load's %s answers served by %s%s%s", x.Service, x.Cluster, shareBounds(x), windowText(x.Window))
	from, until, sp, err := ev.span(x.Window)
	res.Window = sp
	if err != nil {
		return err
	}
	if len(ev.r.windows) == 0 {
		return fmt.Errorf("the log holds no load windows: load never ran or its results were lost")
	}
	byCluster := map[string]int64{}
	var whole, requests int64
	counted := 0
	for _, w := range ev.r.windows {
		if !within(w.Start, w.End, from, until) {
			continue
		}
		counted++
		requests += w.Requests
		for cl, seen := range w.Served[x.Service] {
			byCluster[cl] += seen.N
			whole += seen.N
		}
	}
	if counted == 0 {
		return fmt.Errorf("no load window lies in %s: load ran from 0 s to %s", spanText(sp), fmtT(ev.r.loadEnd()))
	}
	basis := "the load's answers"
	if whole == 0 {
		// Stock Bookinfo names nobody: the observed Envoys' own account of who
		// answered, istio_requests_total by destination_cluster.
		var scraped string
		byCluster, whole, scraped = ev.shareFromStats(x.Service, from, until)
		if whole == 0 {
			return fmt.Errorf("none of the %s requests in %s got an answer that names the cluster serving %s, and no observed Envoy's istio_requests_total counted an answer from %s there (%s): either every call to %s failed, or neither the application (drill's Bookinfo names it, docs/bookinfo.md) nor an observed Envoy (spec.observe.envoy, a caller of %s) says who served it",
				formatCount(float64(requests)), spanText(sp), x.Service, x.Service, scraped, x.Service, x.Service)
		}
		basis = "istio_requests_total of " + scraped
		requests = whole
	}
	n := byCluster[x.Cluster]
	// Judged on the exact ratio, shown rounded: one stray answer in
	// thousands fails a min of 100 %.
	exact := float64(n) / float64(whole)
	observed := roundTo(exact, 4)
	m := Measure{Name: "share served by " + x.Cluster, Unit: UnitRatio, Observed: fptr(observed), Held: true}
	if x.Min != nil {
		m.Min = fptr(x.Min.Share())
		m.Held = m.Held && exact >= *m.Min
	}
	if x.Max != nil {
		m.Max = fptr(x.Max.Share())
		m.Held = m.Held && exact <= *m.Max
	}
	res.Measures = append(res.Measures, m)
	res.Breakdown = byCluster
	var others []string
	for _, cl := range slices.Sorted(func(yield func(string) bool) {
		for cl := range byCluster {
			if cl != x.Cluster && !yield(cl) {
				return
			}
		}
	}) {
		others = append(others, fmt.Sprintf("%s %s", cl, formatCount(float64(byCluster[cl]))))
	}
	res.Message = fmt.Sprintf("%s served %s of the %s %s answers (%s) in %s, by %s",
		x.Cluster, formatCount(float64(n)), formatCount(float64(whole)), x.Service, percent(observed), spanText(sp), basis)
	if len(others) > 0 {
		res.Message += "; the others: " + strings.Join(others, ", ")
	}
	if failed := requests - whole; failed > 0 {
		res.Message += fmt.Sprintf("; %s of the window's %s requests name no cluster for %s (the request or its call to %s failed) and are not counted", formatCount(float64(failed)), formatCount(float64(requests)), x.Service, x.Service)
	}
	return nil
}

// shareBounds says a share expectation's bounds: " between 22 % and 38 %".
func shareBounds(x *scenario.ShareExpect) string {
	switch {
	case x.Min != nil && x.Max != nil:
		return fmt.Sprintf(" between %s and %s", percent(x.Min.Share()), percent(x.Max.Share()))
	case x.Min != nil:
		return " at least " + percent(x.Min.Share())
	case x.Max != nil:
		return " at most " + percent(x.Max.Share())
	}
	return ""
}

// shareFromStats counts the answers of service by the cluster that served
// them from the observed Envoys' istio_requests_total (reporter source, by
// destination_cluster; 5xx answers are not counted, as a destination
// answering 503 serves nothing), over the scrape intervals whose middle lies
// in [from, until). scraped names the Envoys read, for messages.
func (ev *evaluator) shareFromStats(service string, from, until time.Duration) (byCluster map[string]int64, whole int64, scraped string) {
	byCluster = map[string]int64{}
	match := ev.hostMatcher(service)
	var who []string
	for _, sr := range ev.r.samples {
		a, b := ev.r.sampleSpan(sr)
		if !within(a, b, from, until) {
			continue
		}
		w := sr.s.Workload + "'s Envoy in " + sr.e.Cluster
		if !slices.Contains(who, w) {
			who = append(who, w)
		}
		for host, clusters := range sr.s.Served {
			if !match(host) {
				continue
			}
			for cl, n := range clusters {
				byCluster[cl] += n
				whole += n
			}
		}
	}
	if len(who) == 0 {
		return byCluster, 0, "no Envoy was scraped then"
	}
	return byCluster, whole, strings.Join(who, ", ")
}
