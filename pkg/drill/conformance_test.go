package drill_test

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/meshdrill/drill/internal/localcluster/localtest"
	"github.com/meshdrill/drill/pkg/drill"
	"github.com/meshdrill/drill/pkg/event"
	"github.com/meshdrill/drill/pkg/report"
)

// TestConformanceDrills runs the conformance drills of scenarios/conformance/
// on the local provider, one after the other: each checks an Envoy behaviour
// a failover design relies on, and must pass with the figures its comments
// derive from Envoy's source. On the local provider they check drill's
// emulated Envoy; docs/conformance.md says how to run them against a mesh.
func TestConformanceDrills(t *testing.T) {
	localtest.SkipIfDisabled(t)
	if testing.Short() {
		t.Skip("runs whole drills")
	}
	t.Run("spillover", func(t *testing.T) {
		rep, _ := conformanceDrill(t, "spillover.yaml")
		// 140 × 2 healthy / 4 hosts = 70 % stays in cluster1.
		share := observed(t, rep, "thirty-percent-spill")
		t.Logf("cluster2 served %.1f %% of reviews after the ejections", share*100)
		if n := ejectedHosts(rep, 0, 1e9); n < 2 {
			t.Errorf("productpage's Envoy ejected %d reviews hosts, want both of reviews-v2's", n)
		}
	})
	t.Run("panic-threshold", func(t *testing.T) {
		rep, _ := conformanceDrill(t, "panic-threshold.yaml")
		before, after := observed(t, rep, "no-panic-by-default"), observed(t, rep, "panic-sends-to-ejected-hosts")
		t.Logf("degraded pages: %v without a panic threshold, %v with 50 %%", before, after)
	})
	t.Run("max-ejection", func(t *testing.T) {
		rep, _ := conformanceDrill(t, "max-ejection.yaml")
		// Envoy's own view: under the cap of 40 % one host of three is
		// ejected, never the second; under 100 % both.
		capAt := stepAt(t, rep, "cap-100")
		if n := ejectedHosts(rep, 0, capAt); n != 1 {
			t.Errorf("productpage's Envoy ejected %d reviews hosts under maxEjectionPercent 40, want 1", n)
		}
		if n := ejectedHosts(rep, 0, 1e9); n != 2 {
			t.Errorf("productpage's Envoy ejected %d reviews hosts in all, want 2", n)
		}
		t.Logf("degraded pages: %v under the cap of 40 %%, %v under 100 %%", observed(t, rep, "errors-continue-under-the-cap"), observed(t, rep, "none-at-100"))
	})
	t.Run("failover-order", func(t *testing.T) {
		rep, _ := conformanceDrill(t, "failover-order.yaml")
		t.Logf("failover to the second member in %v s, back to the first in %v s", observed(t, rep, "to-the-second-member"), observed(t, rep, "back-to-the-first-member"))
	})
	t.Run("retry-next-priority", func(t *testing.T) {
		rep, res := conformanceDrill(t, "retry-next-priority.yaml")
		share := observed(t, rep, "retries-answered-by-priority-1")
		// productpage's Envoy retried 503s by the hundred: about three in four
		// reviews calls meet at least one.
		events, err := event.ReadLog(filepath.Join(res.Dir, event.LogFile))
		if err != nil {
			t.Fatal(err)
		}
		var retried int64
		for _, e := range events {
			if e.Type != event.StatsSample {
				continue
			}
			var s event.Sample
			if err := e.Decode(&s); err != nil {
				t.Fatal(err)
			}
			for name, cd := range s.Clusters {
				if strings.Contains(name, "reviews") {
					retried += cd.Retried5xx
				}
			}
		}
		if retried < 100 {
			t.Errorf("productpage's Envoy retried %d 5xx answers of reviews (retry.upstream_rq_5xx), want hundreds", retried)
		}
		t.Logf("cluster2 served %.1f %% of reviews; %d 5xx retried", share*100, retried)
	})
}

// conformanceDrill runs scenarios/conformance/<file> on the local provider
// and fails the test unless every expectation passed.
func conformanceDrill(t *testing.T, file string) (*report.Report, *drill.Result) {
	t.Helper()
	res, _, progress := runLocalDrill(t, filepath.Join("..", "..", "scenarios", "conformance", file))
	rep := res.Report
	for _, x := range rep.Expectations {
		t.Logf("%s %s: %s", x.Name, x.Status, x.Message)
	}
	if rep.Verdict != report.Pass {
		t.Fatalf("%s: verdict %s: %s\nprogress:\n%s", file, rep.Verdict, rep.Reason, progress)
	}
	return rep, res
}

// observed is the first measure of an expectation.
func observed(t *testing.T, rep *report.Report, name string) float64 {
	t.Helper()
	for _, x := range rep.Expectations {
		if x.Name == name {
			if len(x.Measures) == 0 || x.Measures[0].Observed == nil {
				t.Fatalf("%s has no observed value: %s", name, x.Message)
			}
			return *x.Measures[0].Observed
		}
	}
	t.Fatalf("no expectation %s", name)
	return 0
}

// stepAt is when a step started, in seconds since load start.
func stepAt(t *testing.T, rep *report.Report, name string) float64 {
	t.Helper()
	for _, s := range rep.Timings.Steps {
		if s.Name == name {
			return s.AtSeconds
		}
	}
	t.Fatalf("step %s never started", name)
	return 0
}

// ejectedHosts counts the reviews hosts productpage's Envoy flagged
// failed_outlier_check in [from, until) seconds, as its /clusters said.
func ejectedHosts(rep *report.Report, from, until float64) int {
	hosts := map[string]bool{}
	for _, h := range rep.Timings.Hosts {
		if h.Kind == "ejected" && h.Workload == "productpage" && strings.Contains(h.EnvoyCluster, "reviews") && h.AtSeconds >= from && h.AtSeconds < until {
			hosts[h.Host] = true
		}
	}
	return len(hosts)
}
