package stats

import (
	"maps"
	"math"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/meshdrill/drill/pkg/event"
)

// Delta is what one Envoy did between two scrapes.
type Delta struct {
	// Interval is the time between the two scrapes (zero when either Snapshot has
	// no Time).
	Interval time.Duration
	// Clusters holds the change of each Envoy cluster that moved: a counter
	// changed, a gauge changed, it is new, or it has hosts ejected. Quiet
	// clusters are left out, which keeps a sidecar that knows every service of a
	// large mesh from writing hundreds of zero entries a second.
	Clusters map[string]event.ClusterDelta
	// Served counts requests this proxy sent (reporter="source") by destination
	// service host and then by the Kubernetes cluster that answered them
	// (istio_requests_total's destination_cluster). Zero counts are left out.
	Served map[string]map[string]int64
	// Latency holds, per Envoy cluster, the upstream_rq_time observations made in
	// the interval (milliseconds), for the clusters that made any.
	Latency map[string]*Histogram
	// Restarted says the proxy restarted between the scrapes (server.uptime went
	// down): every counter was taken from zero.
	Restarted bool
	// ResetClusters lists, sorted, the Envoy clusters whose counters went back —
	// the proxy restarted, or the cluster was removed and added again — and whose
	// deltas are therefore their values since the reset. ResetServed does the same
	// for destination service hosts of istio_requests_total.
	ResetClusters []string
	ResetServed   []string
}

// HasReset reports whether any counter went back between the two scrapes.
func (d *Delta) HasReset() bool {
	return d.Restarted || len(d.ResetClusters) > 0 || len(d.ResetServed) > 0
}

// Diff computes what happened between prev and cur, two snapshots of one Envoy in
// scrape order. A counter that went down means its owner started again from zero
// (Envoy keeps no stats across a restart): its new value is the delta, and the
// cluster or host is named in ResetClusters or ResetServed. A counter missing from
// prev counts from zero; one missing from cur is not counted (see CarryForward).
// Gauges are reported at their current value.
func Diff(prev, cur *Snapshot) *Delta { return diff(prev, cur, false) }

// diff is Diff; all keeps quiet clusters too, for the first sample of a run, which
// records every cluster's gauges once.
func diff(prev, cur *Snapshot, all bool) *Delta {
	d := &Delta{Clusters: make(map[string]event.ClusterDelta)}
	if !prev.Time.IsZero() && !cur.Time.IsZero() {
		d.Interval = cur.Time.Sub(prev.Time)
	}
	d.Restarted = prev.Uptime >= 0 && cur.Uptime >= 0 && cur.Uptime < prev.Uptime
	for name, c := range cur.Clusters {
		p := prev.Clusters[name]
		reset := d.Restarted || (p != nil && wentBack(p, c))
		if reset && p != nil {
			d.ResetClusters = append(d.ResetClusters, name)
		}
		base := p
		if reset || p == nil {
			base = &ClusterStats{} // counting from zero
		}
		cd := clusterDelta(base, c)
		if h := c.RqTime.Sub(base.RqTime); h != nil && h.Count > 0 {
			if d.Latency == nil {
				d.Latency = make(map[string]*Histogram)
			}
			d.Latency[name] = h
		}
		if all || p == nil || moved(cd, p, c) {
			d.Clusters[name] = cd
		}
	}
	sort.Strings(d.ResetClusters)
	d.Served, d.ResetServed = servedDelta(prev, cur, d.Restarted)
	return d
}

// wentBack reports whether any counter present in both snapshots went down.
func wentBack(p, c *ClusterStats) bool {
	for _, s := range counterStats {
		if p.Has(s) && c.Has(s) && c.Get(s) < p.Get(s) {
			return true
		}
	}
	for code, v := range c.Codes {
		if pv, ok := p.Codes[code]; ok && v < pv {
			return true
		}
	}
	for class, v := range c.Classes {
		if pv, ok := p.Classes[class]; ok && v < pv {
			return true
		}
	}
	return p.RqTime != nil && c.RqTime != nil && c.RqTime.Count < p.RqTime.Count
}

// clusterDelta computes c − base for the counters c has and takes gauges from c.
func clusterDelta(base, c *ClusterStats) event.ClusterDelta {
	// A counter missing from base counts from zero: Envoy creates some stats at
	// their first use (upstream_rq_<code>; all traffic stats of a cluster with
	// deferred stats creation, which Istio's bootstrap can turn on).
	counter := func(s Stat) int64 {
		if !c.Has(s) {
			return 0
		}
		return sub(c.Get(s), base.Get(s))
	}
	cd := event.ClusterDelta{
		ConnectFail:       counter(StatCxConnectFail),
		Retries:           counter(StatRqRetry),
		EjectionsEnforced: counter(StatEjectionsEnforced),
		EjectionsActive:   i64(c.Get(StatEjectionsActive)),
		MembershipHealthy: i64(c.Get(StatMembershipHealthy)),
		MembershipTotal:   i64(c.Get(StatMembershipTotal)),
	}
	var codes5xx, codesAll int64
	for code, v := range c.Codes {
		n := sub(v, base.Codes[code])
		if n == 0 {
			continue
		}
		if cd.Codes == nil {
			cd.Codes = make(map[string]int64, len(c.Codes))
		}
		cd.Codes[code] = n
		codesAll += n
		if len(code) == 3 && code[0] == '5' {
			codes5xx += n
		}
	}
	var classesAll int64
	for class, v := range c.Classes {
		classesAll += sub(v, base.Classes[class])
	}
	switch {
	case c.Has(StatRqTotal):
		cd.Requests = counter(StatRqTotal)
	case len(c.Classes) > 0:
		cd.Requests = classesAll
	default:
		cd.Requests = codesAll
	}
	if len(c.Classes) > 0 {
		cd.Answers = classesAll
	} else {
		cd.Answers = codesAll
	}
	if v, ok := c.Classes["5xx"]; ok {
		cd.Upstream5xx = sub(v, base.Classes["5xx"])
	} else {
		cd.Upstream5xx = codes5xx
	}
	if v, ok := c.RetryClasses["5xx"]; ok {
		cd.Retried5xx = sub(v, base.RetryClasses["5xx"])
	} else {
		for code, v := range c.RetryCodes {
			if len(code) == 3 && code[0] == '5' {
				cd.Retried5xx += sub(v, base.RetryCodes[code])
			}
		}
	}
	return cd
}

// sub is a − b for counters known not to have gone back; it never goes negative.
func sub(a, b uint64) int64 {
	if a <= b {
		return 0
	}
	return i64(a - b)
}

// i64 converts an Envoy value to the event's int64, saturating.
func i64(u uint64) int64 { return int64(min(u, math.MaxInt64)) }

// moved reports whether a cluster belongs in a Delta.
func moved(cd event.ClusterDelta, p, c *ClusterStats) bool {
	return cd.Requests != 0 || cd.Upstream5xx != 0 || cd.Retried5xx != 0 || len(cd.Codes) != 0 ||
		cd.ConnectFail != 0 || cd.Retries != 0 || cd.EjectionsEnforced != 0 ||
		cd.EjectionsActive != 0 ||
		c.Get(StatMembershipHealthy) != p.Get(StatMembershipHealthy) ||
		c.Get(StatMembershipTotal) != p.Get(StatMembershipTotal)
}

// servedDelta diffs istio_requests_total by destination host and cluster, over the
// series this proxy reported as the client.
func servedDelta(prev, cur *Snapshot, restarted bool) (map[string]map[string]int64, []string) {
	var served map[string]map[string]int64
	var reset map[string]bool
	for k, v := range cur.Requests {
		if k.Reporter != "source" && k.Reporter != "" {
			continue
		}
		// A 5xx is not the destination serving the request: a backup that
		// answers 503 to everything has not taken the traffic over. The Envoy
		// cluster view leaves 5xx out the same way (requests - upstream5xx).
		if strings.HasPrefix(k.ResponseCode, "5") {
			continue
		}
		pv, ok := prev.Requests[k]
		n := sub(v, pv) // a series new in cur counts from zero
		if restarted || (ok && v < pv) {
			if reset == nil {
				reset = make(map[string]bool)
			}
			reset[k.DestinationService] = true
			n = i64(v)
		}
		if n == 0 {
			continue
		}
		if served == nil {
			served = make(map[string]map[string]int64)
		}
		byCluster := served[k.DestinationService]
		if byCluster == nil {
			byCluster = make(map[string]int64)
			served[k.DestinationService] = byCluster
		}
		byCluster[k.DestinationCluster] += n
	}
	return served, slices.Sorted(maps.Keys(reset))
}

// Sample is the Delta as the stats.sample event payload of workload's pod.
func (d *Delta) Sample(workload, pod string) event.Sample {
	return event.Sample{
		Workload: workload,
		Pod:      pod,
		Interval: d.Interval,
		Clusters: d.Clusters,
		Served:   d.Served,
	}
}

// ResetSample is the stats.reset payload: the Sample reduced to the clusters and
// hosts whose counters went back (all of them when the proxy restarted), with
// their deltas since the reset. The stats.sample event of the same scrape carries
// the full Sample; a reader that sums samples must not add this one.
func (d *Delta) ResetSample(workload, pod string) event.Sample {
	s := event.Sample{Workload: workload, Pod: pod, Interval: d.Interval, Clusters: map[string]event.ClusterDelta{}}
	if d.Restarted {
		s.Clusters = d.Clusters
		s.Served = d.Served
		return s
	}
	for _, name := range d.ResetClusters {
		if cd, ok := d.Clusters[name]; ok {
			s.Clusters[name] = cd
		}
	}
	for _, host := range d.ResetServed {
		if byCluster, ok := d.Served[host]; ok {
			if s.Served == nil {
				s.Served = make(map[string]map[string]int64)
			}
			s.Served[host] = byCluster
		}
	}
	return s
}

// EjectionChange is an Envoy cluster whose count of ejected hosts changed.
type EjectionChange struct {
	EnvoyCluster     string
	Active, Previous int64
}

// Ejections lists, sorted by Envoy cluster name, the clusters whose
// outlier_detection.ejections_active changed from prev to cur. A cluster new in cur
// counts from zero; one gone from cur is not reported.
func Ejections(prev, cur *Snapshot) []EjectionChange {
	var out []EjectionChange
	for name, c := range cur.Clusters {
		if !c.Has(StatEjectionsActive) {
			continue
		}
		var was uint64
		if p := prev.Clusters[name]; p != nil {
			was = p.Get(StatEjectionsActive)
		}
		if now := c.Get(StatEjectionsActive); now != was {
			out = append(out, EjectionChange{EnvoyCluster: name, Active: i64(now), Previous: i64(was)})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].EnvoyCluster < out[j].EnvoyCluster })
	return out
}

// CarryForward copies into cur the counters of prev that cur lacks, for the
// clusters both hold, once d = Diff(prev, cur) is taken. A counter never disappears
// from a running Envoy; when it is missing from a page, the page lost it (a line
// the parser skipped), and without this the next page that has it again would
// count its whole value as new. Clusters that reset, and every cluster of a
// restarted proxy, are left alone: their old counters are gone for good.
func CarryForward(prev, cur *Snapshot, d *Delta) {
	if d.Restarted {
		return
	}
	for name, c := range cur.Clusters {
		p := prev.Clusters[name]
		if p == nil {
			continue
		}
		if _, reset := slices.BinarySearch(d.ResetClusters, name); reset {
			continue
		}
		for _, s := range counterStats {
			if p.Has(s) && !c.Has(s) {
				c.set(s, p.Get(s))
			}
		}
		for code, v := range p.Codes {
			if _, ok := c.Codes[code]; !ok {
				c.setCode(code, v)
			}
		}
		for class, v := range p.Classes {
			if _, ok := c.Classes[class]; !ok {
				c.setClass(class, v)
			}
		}
		if c.RqTime == nil {
			c.RqTime = p.RqTime
		}
	}
}
