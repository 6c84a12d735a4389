package translate

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/meshdrill/drill/pkg/scenario"
)

// largeScenario writes a scenario of the given size: every service has outlier
// detection everywhere and a failover service backed by the service in three
// clusters. With everywhere, the failover service is defined in every cluster and
// every cluster's clients are shifted to it (the most objects a policy of this
// size can make); without, only the three backing clusters define and use it.
func largeScenario(tb testing.TB, clusters, services int, everywhere bool) *scenario.Scenario {
	tb.Helper()
	var b strings.Builder
	b.WriteString("apiVersion: drill/v1alpha1\nkind: Scenario\nmetadata: {name: large}\nspec:\n  clusters:\n")
	for c := 0; c < clusters; c++ {
		fmt.Fprintf(&b, "    - {name: c%02d, bookinfo: {install: false}}\n", c)
	}
	b.WriteString("  mesh:\n    trafficPolicies:\n")
	for s := 0; s < services; s++ {
		fmt.Fprintf(&b, "      - {name: outlier-%03d, destination: {service: svc-%03d}, outlierDetection: {consecutiveErrors: 1}}\n", s, s)
		shiftIn := ""
		if !everywhere {
			shiftIn = ", clusters: [" + strings.Join(backing(s, clusters), ", ") + "]"
		}
		fmt.Fprintf(&b, "      - {name: shift-%03d, destination: {service: svc-%03d%s}, trafficShift: {failoverService: fo-%03d}, retries: {attempts: 2}}\n", s, s, shiftIn, s)
	}
	b.WriteString("    failoverServices:\n")
	var all []string
	for c := 0; c < clusters; c++ {
		all = append(all, fmt.Sprintf("c%02d", c))
	}
	for s := 0; s < services; s++ {
		meshes := all
		if !everywhere {
			meshes = backing(s, clusters)
		}
		fmt.Fprintf(&b, "      - name: fo-%03d\n        hostname: fo-%03d.default.global\n        meshes: [%s]\n        backingServices:\n", s, s, strings.Join(meshes, ", "))
		for _, c := range backing(s, clusters) {
			fmt.Fprintf(&b, "          - {service: svc-%03d, cluster: %s}\n", s, c)
		}
	}
	b.WriteString("  load: {rate: 10/s, duration: 10s}\n")
	s, err := scenario.Parse("large.yaml", []byte(b.String()))
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

// backing are the three clusters that run service s, in priority order.
func backing(s, clusters int) []string {
	return []string{fmt.Sprintf("c%02d", s%clusters), fmt.Sprintf("c%02d", (s+1)%clusters), fmt.Sprintf("c%02d", (s+2)%clusters)}
}

func largeRemotes(clusters int) map[string]Endpoint {
	m := map[string]Endpoint{}
	for c := 0; c < clusters; c++ {
		m[fmt.Sprintf("c%02d", c)] = Endpoint{Address: fmt.Sprintf("10.0.%d.1", c)}
	}
	return m
}

// BenchmarkTranslate50x200 translates a 50-cluster, 200-service policy: with
// failover defined in every cluster (about 99,000 objects) and with failover
// defined where the backing services run (about 11,000).
func BenchmarkTranslate50x200(b *testing.B) {
	for _, bc := range []struct {
		name       string
		everywhere bool
	}{{"everywhere", true}, {"backing-clusters", false}} {
		b.Run(bc.name, func(b *testing.B) {
			in := Input{Scenario: largeScenario(b, 50, 200, bc.everywhere), Remotes: largeRemotes(50)}
			b.ReportAllocs()
			objects := 0
			for b.Loop() {
				res, err := Translate(in)
				if err != nil {
					b.Fatal(err)
				}
				objects = 0
				for _, c := range res.Clusters {
					objects += c.Len()
				}
			}
			b.ReportMetric(float64(objects), "objects/op")
		})
	}
}

// BenchmarkYAML50x200 renders one cluster of the same policy as YAML.
func BenchmarkYAML50x200(b *testing.B) {
	res, err := Translate(Input{Scenario: largeScenario(b, 50, 200, true), Remotes: largeRemotes(50)})
	if err != nil {
		b.Fatal(err)
	}
	objs := res.Clusters[0].Objects()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := YAML(objs); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(objs)), "objects/op")
}

// TestLargeScenario checks the benchmark's scenarios translate as intended, so the
// benchmark measures real work.
func TestLargeScenario(t *testing.T) {
	for _, everywhere := range []bool{true, false} {
		res, err := Translate(Input{Scenario: largeScenario(t, 50, 200, everywhere), Remotes: largeRemotes(50)})
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Warnings) != 0 {
			t.Errorf("%d warnings, first: %v", len(res.Warnings), res.Warnings[0])
		}
		c := res.Cluster("c00")
		// The failover services c00 defines, and among their backing services those
		// it reaches remotely (one ServiceEntry each).
		defined, remote := 0, 0
		for s := 0; s < 200; s++ {
			bs := backing(s, 50)
			if !everywhere && !slices.Contains(bs, "c00") {
				continue
			}
			defined++
			for _, cl := range bs {
				if cl != "c00" {
					remote++
				}
			}
		}
		if len(c.EnvoyFilters) != defined || len(c.VirtualServices) != defined || len(c.ServiceEntries) != defined+remote {
			t.Errorf("everywhere=%v: c00 has %d EnvoyFilters, %d VirtualServices, %d ServiceEntries; want %d, %d, %d",
				everywhere, len(c.EnvoyFilters), len(c.VirtualServices), len(c.ServiceEntries), defined, defined, defined+remote)
		}
		// Outlier detection applies to every service everywhere: one
		// DestinationRule per local host and one per remote host.
		if want := 200 + remote; len(c.DestinationRules) != want {
			t.Errorf("everywhere=%v: c00 has %d DestinationRules, want %d", everywhere, len(c.DestinationRules), want)
		}
	}
}
