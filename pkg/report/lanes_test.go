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

// TestDipBands: what a fault cost the clients is drawn on the charts, from
// the first failed answer to the recovery, once per dip, and named on hover.
func TestDipBands(t *testing.T) {
	first, back := 30.2, 33.0
	s := &series{}
	d := &Dip{WindowSeconds: 1, FromSeconds: 30, UntilSeconds: 90, LowestRatio: 0.9, LowestAtSeconds: 30, Lost: 5,
		FirstFailedSeconds: &first, RecoveredSeconds: &back}
	s.addDip(d, "reviews-down")
	s.addDip(d, "the revert of another")                                                               // the same moment: drawn once
	s.addDip(&Dip{WindowSeconds: 1, FromSeconds: 90, UntilSeconds: 150}, "the revert of reviews-down") // cost nothing
	if len(s.dips) != 1 || s.dips[0].from != 30.2 || s.dips[0].to != 33 {
		t.Fatalf("dips %+v, want one from 30.2 s to 33 s", s.dips)
	}
	c := &chart{id: "t", unit: "req/s", xMax: 150, dips: s.dips, x: []float64{0.5, 1.5}, barW: 1,
		areas: []layer{{name: "ok", color: colorOK, y: []float64{50, 50}}}}
	svg := c.svg("Requests per second by outcome")
	for _, want := range []string{`class="dip"`, "dip after reviews-down: 5 requests lost, success down to 90.0 % at 30s, back at 33s"} {
		if !strings.Contains(svg, want) {
			t.Errorf("chart lacks %q:\n%s", want, svg)
		}
	}
}
