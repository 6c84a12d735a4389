package report

import (
	"strings"
	"testing"
)

// TestHostLanes: a lane per ejected host, red from its ejection to its
// return (or the end of the load), and a lane per Envoy cluster whose
// serving priority changed, marked at each change.
func TestHostLanes(t *testing.T) {
	const reviews = "outbound|9080||reviews.default.svc.cluster.local"
	r := &Report{Timings: Timings{Hosts: []HostTiming{
		{AtSeconds: 31, Kind: "ejected", Workload: "productpage", Cluster: "cluster1", EnvoyCluster: reviews, Host: "10.0.0.1:9080"},
		{AtSeconds: 31, Kind: "ejected", Workload: "productpage", Cluster: "cluster1", EnvoyCluster: reviews, Host: "10.0.0.2:9080"},
		{AtSeconds: 31, Kind: "priority", Workload: "productpage", Cluster: "cluster1", EnvoyCluster: reviews, From: 0, To: -1},
		{AtSeconds: 95, Kind: "returned", Workload: "productpage", Cluster: "cluster1", EnvoyCluster: reviews, Host: "10.0.0.1:9080"},
		{AtSeconds: 95, Kind: "priority", Workload: "productpage", Cluster: "cluster1", EnvoyCluster: reviews, From: -1, To: 0},
	}}}
	svg, shown, total := r.hostLanes(150)
	if shown != 3 || total != 3 {
		t.Fatalf("%d of %d lanes, want 3 (two hosts, one priority lane)", shown, total)
	}
	for _, want := range []string{
		"productpage in cluster1 → reviews.default: host 10.0.0.1:9080 (priority 0)",
		"ejected from 31s to 1m35s</title>",
		"ejected from 31s to 2m30s, not returned by the end of the load</title>",
		"31s: serves from none", "1m35s: serves from P0",
	} {
		if !strings.Contains(svg, want) {
			t.Errorf("lanes lack %q:\n%s", want, svg)
		}
	}
	if n := strings.Count(svg, `class="ejected"`); n != 2 {
		t.Errorf("%d ejection bars, want 2", n)
	}
	if svg, _, _ := (&Report{}).hostLanes(150); svg != "" {
		t.Error("lanes drawn for a run without /clusters changes")
	}
}
