package stats

import (
	"reflect"
	"testing"
	"time"

	"github.com/meshdrill/drill/pkg/event"
)

// at parses a fixture and stamps it as scraped at second sec.
func at(t *testing.T, file string, sec int) *Snapshot {
	t.Helper()
	s := mustParse(t, file)
	s.Time = time.Unix(1_700_000_000, 0).Add(time.Duration(sec) * time.Second)
	return s
}

func TestDiffFailover(t *testing.T) {
	before, during, after := at(t, "sidecar_before.prom", 0), at(t, "sidecar_during.prom", 10), at(t, "sidecar_after.prom", 20)

	tests := []struct {
		name        string
		prev, cur   *Snapshot
		clusters    map[string]event.ClusterDelta
		served      map[string]map[string]int64
		latencyFrom []string // clusters with observations in the interval
	}{
		{
			name: "reviews in cluster1 fail, cluster2 takes over", prev: before, cur: during,
			clusters: map[string]event.ClusterDelta{
				local: {Requests: 12, Codes: map[string]int64{"503": 12}, Answers: 12, Upstream5xx: 12, ConnectFail: 12,
					EjectionsActive: 2, EjectionsEnforced: 2, MembershipHealthy: 0, MembershipTotal: 2},
				remote:  {Requests: 380, Codes: map[string]int64{"200": 380}, Answers: 380, MembershipHealthy: 1, MembershipTotal: 1},
				details: {Requests: 392, Codes: map[string]int64{"200": 392}, Answers: 392, MembershipHealthy: 1, MembershipTotal: 1},
			},
			served: map[string]map[string]int64{
				"details.default.svc.cluster.local":   {"cluster1": 392},
				"reviews.default.svc.cluster2.global": {"cluster2": 380},
			},
			latencyFrom: []string{details, local, remote},
		},
		{
			name: "traffic stays in cluster2", prev: during, cur: after,
			clusters: map[string]event.ClusterDelta{
				// No request, but the endpoints went away and the ejections with them.
				local:   {MembershipHealthy: 0, MembershipTotal: 0},
				remote:  {Requests: 500, Codes: map[string]int64{"200": 500}, Answers: 500, MembershipHealthy: 1, MembershipTotal: 1},
				details: {Requests: 500, Codes: map[string]int64{"200": 500}, Answers: 500, MembershipHealthy: 1, MembershipTotal: 1},
			},
			served: map[string]map[string]int64{
				"details.default.svc.cluster.local":   {"cluster1": 500},
				"reviews.default.svc.cluster2.global": {"cluster2": 500},
			},
			latencyFrom: []string{details, remote},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := Diff(tc.prev, tc.cur)
			if d.Interval != 10*time.Second {
				t.Errorf("interval = %v; want 10s", d.Interval)
			}
			if d.HasReset() {
				t.Errorf("reset reported: restarted %v, clusters %v, hosts %v", d.Restarted, d.ResetClusters, d.ResetServed)
			}
			if !reflect.DeepEqual(d.Clusters, tc.clusters) {
				t.Errorf("clusters:\n got %+v\nwant %+v", d.Clusters, tc.clusters)
			}
			if !reflect.DeepEqual(d.Served, tc.served) {
				t.Errorf("served:\n got %v\nwant %v", d.Served, tc.served)
			}
			var lat []string
			for name, h := range d.Latency {
				lat = append(lat, name)
				if want := tc.clusters[name].Requests; int64(h.Count) != want {
					t.Errorf("%s latency observations = %d; want %d", name, h.Count, want)
				}
			}
			if !sameSet(lat, tc.latencyFrom) {
				t.Errorf("latency for %v; want %v", lat, tc.latencyFrom)
			}
		})
	}
}

func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	m := map[string]bool{}
	for _, s := range a {
		m[s] = true
	}
	for _, s := range b {
		if !m[s] {
			return false
		}
	}
	return true
}

// The first sample of a run records every cluster, quiet ones included.
func TestDiffAllKeepsQuietClusters(t *testing.T) {
	before, during := at(t, "sidecar_before.prom", 0), at(t, "sidecar_during.prom", 10)
	d := diff(before, during, true)
	if len(d.Clusters) != len(during.Clusters) {
		t.Fatalf("%d clusters; want all %d", len(d.Clusters), len(during.Clusters))
	}
	if got := d.Clusters[ratings]; !reflect.DeepEqual(got, event.ClusterDelta{MembershipHealthy: 1, MembershipTotal: 1}) {
		t.Errorf("ratings = %+v", got)
	}
	if _, ok := Diff(before, during).Clusters[ratings]; ok {
		t.Error("Diff keeps the quiet ratings cluster")
	}
}

func TestDiffProxyRestart(t *testing.T) {
	after, restarted := at(t, "sidecar_after.prom", 20), at(t, "sidecar_restarted.prom", 30)
	d := Diff(after, restarted)
	if !d.Restarted || !d.HasReset() {
		t.Fatalf("restart not seen: %+v", d)
	}
	// Every counter counts from zero: the new values are the deltas.
	want := map[string]int64{remote: 150, details: 150, local: 0}
	for name, n := range want {
		if got := d.Clusters[name].Requests; got != n {
			t.Errorf("%s requests = %d; want %d", name, got, n)
		}
	}
	if d.Clusters[local].Upstream5xx != 0 {
		t.Errorf("local 5xx = %d after restart; want 0", d.Clusters[local].Upstream5xx)
	}
	wantServed := map[string]map[string]int64{
		"details.default.svc.cluster.local":   {"cluster1": 150},
		"reviews.default.svc.cluster2.global": {"cluster2": 150},
	}
	if !reflect.DeepEqual(d.Served, wantServed) {
		t.Errorf("served = %v; want %v", d.Served, wantServed)
	}
	rs := d.ResetSample("productpage", "productpage-v1-abc")
	if len(rs.Clusters) != len(d.Clusters) || !reflect.DeepEqual(rs.Served, d.Served) {
		t.Errorf("reset sample of a restart should carry the whole delta: %+v", rs)
	}
	if c := d.Latency[remote]; c == nil || c.Count != 150 {
		t.Errorf("remote latency after restart = %+v; want 150 observations", c)
	}
}

func snap(uptime int64, clusters map[string]*ClusterStats, reqs map[RequestKey]uint64) *Snapshot {
	s := newSnapshot(FormatPrometheus)
	s.Uptime = uptime
	for n, c := range clusters {
		s.Clusters[n] = c
	}
	for k, v := range reqs {
		s.Requests[k] = v
	}
	return s
}

func stats(total, c503 uint64) *ClusterStats {
	c := &ClusterStats{}
	c.set(StatRqTotal, total)
	c.set(StatMembershipTotal, 1)
	c.set(StatMembershipHealthy, 1)
	if c503 > 0 {
		c.setCode("503", c503)
		c.setClass("5xx", c503)
	}
	return c
}

func TestDiffResets(t *testing.T) {
	src := func(dst, cl, code string) RequestKey {
		return RequestKey{Reporter: "source", DestinationService: dst, DestinationCluster: cl, ResponseCode: code}
	}
	tests := []struct {
		name          string
		prev, cur     *Snapshot
		requests      map[string]int64 // cluster → requests delta
		fivexx        map[string]int64
		resetClusters []string
		resetServed   []string
		served        map[string]map[string]int64
	}{
		{
			name:     "counters grow",
			prev:     snap(100, map[string]*ClusterStats{"a": stats(10, 1)}, nil),
			cur:      snap(101, map[string]*ClusterStats{"a": stats(15, 3)}, nil),
			requests: map[string]int64{"a": 5}, fivexx: map[string]int64{"a": 2},
		},
		{
			// A cluster removed and added again by CDS starts from zero while the
			// proxy keeps running.
			name:          "one cluster went back",
			prev:          snap(100, map[string]*ClusterStats{"a": stats(10, 1), "b": stats(7, 0)}, nil),
			cur:           snap(101, map[string]*ClusterStats{"a": stats(4, 2), "b": stats(9, 0)}, nil),
			requests:      map[string]int64{"a": 4, "b": 2},
			fivexx:        map[string]int64{"a": 2},
			resetClusters: []string{"a"},
		},
		{
			// The total went back although the 503 count did not: the whole cluster
			// is taken from zero, not each counter on its own.
			name:          "reset seen on one counter resets the cluster",
			prev:          snap(-1, map[string]*ClusterStats{"a": stats(100, 2)}, nil),
			cur:           snap(-1, map[string]*ClusterStats{"a": stats(5, 3)}, nil),
			requests:      map[string]int64{"a": 5},
			fivexx:        map[string]int64{"a": 3},
			resetClusters: []string{"a"},
		},
		{
			name:     "new cluster counts from zero",
			prev:     snap(100, map[string]*ClusterStats{}, nil),
			cur:      snap(101, map[string]*ClusterStats{"a": stats(6, 1)}, nil),
			requests: map[string]int64{"a": 6}, fivexx: map[string]int64{"a": 1},
		},
		{
			name: "istio series went back",
			prev: snap(100, nil, map[RequestKey]uint64{
				src("r.d.svc.cluster.local", "c1", "200"): 50, src("r.d.svc.cluster.local", "c2", "200"): 5,
				{Reporter: "destination", DestinationService: "p.d.svc.cluster.local", DestinationCluster: "c1"}: 9}),
			cur: snap(101, nil, map[RequestKey]uint64{
				src("r.d.svc.cluster.local", "c1", "200"): 3, src("r.d.svc.cluster.local", "c2", "200"): 8,
				src("r.d.svc.cluster.local", "c2", "503"):                                                        1,
				{Reporter: "destination", DestinationService: "p.d.svc.cluster.local", DestinationCluster: "c1"}: 19}),
			resetServed: []string{"r.d.svc.cluster.local"},
			// The new 503 series is no answer served: c2 served 3 more (5 → 8).
			served: map[string]map[string]int64{"r.d.svc.cluster.local": {"c1": 3, "c2": 3}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := Diff(tc.prev, tc.cur)
			if d.Restarted {
				t.Error("restart reported")
			}
			for cl, n := range tc.requests {
				if got := d.Clusters[cl].Requests; got != n {
					t.Errorf("%s requests = %d; want %d", cl, got, n)
				}
			}
			for cl, n := range tc.fivexx {
				if got := d.Clusters[cl].Upstream5xx; got != n {
					t.Errorf("%s 5xx = %d; want %d", cl, got, n)
				}
			}
			if !reflect.DeepEqual(d.ResetClusters, tc.resetClusters) || !reflect.DeepEqual(d.ResetServed, tc.resetServed) {
				t.Errorf("reset clusters %v, hosts %v; want %v, %v", d.ResetClusters, d.ResetServed, tc.resetClusters, tc.resetServed)
			}
			if tc.served != nil && !reflect.DeepEqual(d.Served, tc.served) {
				t.Errorf("served = %v; want %v", d.Served, tc.served)
			}
			rs := d.ResetSample("w", "p")
			if len(rs.Clusters) != len(tc.resetClusters) || len(rs.Served) != len(tc.resetServed) {
				t.Errorf("reset sample = %+v; want clusters %v and hosts %v", rs, tc.resetClusters, tc.resetServed)
			}
		})
	}
}

// A counter a page lost (a skipped line) must not come back as a burst.
func TestCarryForward(t *testing.T) {
	s1 := snap(100, map[string]*ClusterStats{"a": stats(100, 5)}, nil)
	lost := &ClusterStats{}
	lost.set(StatMembershipTotal, 1)
	lost.set(StatMembershipHealthy, 1)
	s2 := snap(101, map[string]*ClusterStats{"a": lost}, nil)
	s3 := snap(102, map[string]*ClusterStats{"a": stats(103, 6)}, nil)

	d := Diff(s1, s2)
	if d.HasReset() || d.Clusters["a"].Requests != 0 {
		t.Fatalf("a missing counter counted: %+v", d)
	}
	CarryForward(s1, s2, d)
	d = Diff(s2, s3)
	if got := d.Clusters["a"]; got.Requests != 3 || got.Upstream5xx != 1 || d.HasReset() {
		t.Errorf("after the gap: %+v, reset %v; want 3 requests, one 5xx, no reset", got, d.HasReset())
	}

	// After a reset nothing is carried: the old counters are gone.
	r1 := snap(100, map[string]*ClusterStats{"a": stats(100, 5)}, nil)
	r2 := snap(5, map[string]*ClusterStats{"a": stats(4, 0)}, nil)
	d = Diff(r1, r2)
	CarryForward(r1, r2, d)
	if _, ok := r2.Clusters["a"].Codes["503"]; ok {
		t.Error("the 503 count of a restarted proxy was carried forward")
	}
}

func TestEjections(t *testing.T) {
	before, during, after := at(t, "sidecar_before.prom", 0), at(t, "sidecar_during.prom", 10), at(t, "sidecar_after.prom", 20)
	tests := []struct {
		prev, cur *Snapshot
		want      []EjectionChange
	}{
		{before, during, []EjectionChange{{EnvoyCluster: local, Active: 2, Previous: 0}}},
		{during, after, []EjectionChange{{EnvoyCluster: local, Active: 0, Previous: 2}}},
		{after, after, nil},
	}
	for i, tc := range tests {
		if got := Ejections(tc.prev, tc.cur); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%d: %+v; want %+v", i, got, tc.want)
		}
	}
}

func TestHistogramSub(t *testing.T) {
	a := &Histogram{Bounds: []float64{1, 10}, Counts: []uint64{2, 5}, Sum: 20, Count: 6}
	b := &Histogram{Bounds: []float64{1, 10}, Counts: []uint64{3, 9}, Sum: 50, Count: 11}
	d := b.Sub(a)
	if d == nil || !reflect.DeepEqual(d.Counts, []uint64{1, 4}) || d.Count != 5 || d.Sum != 30 {
		t.Errorf("b − a = %+v", d)
	}
	if a.Sub(b) != nil {
		t.Error("a histogram that went back has a difference")
	}
	if b.Sub(&Histogram{Bounds: []float64{1, 5}, Counts: []uint64{0, 0}}) != nil {
		t.Error("histograms with other buckets have a difference")
	}
	if d := b.Sub(nil); d == nil || &d.Counts[0] == &b.Counts[0] {
		t.Error("Sub(nil) should copy")
	}
}
