package envoyemu

import (
	"slices"
	"testing"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	aggregatev3 "github.com/envoyproxy/go-control-plane/envoy/extensions/clusters/aggregate/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// TestPriorityLoad checks the priority load against the worked examples of
// Envoy's documentation (envoy docs: intro/arch_overview/upstream/
// load_balancing/priority, overprovisioning factor 1.4) and the panic rules.
func TestPriorityLoad(t *testing.T) {
	lv := func(total, healthy int) levelHealth { return levelHealth{total: total, healthy: healthy} }
	tests := []struct {
		name      string
		levels    []levelHealth
		threshold float64
		want      []uint32
		panic     []bool
		total     bool
	}{
		{"all healthy", []levelHealth{lv(10, 10), lv(10, 10)}, 50, []uint32{100, 0}, []bool{false, false}, false},
		{"72% healthy keeps all", []levelHealth{lv(100, 72), lv(10, 10)}, 50, []uint32{100, 0}, []bool{false, false}, false},
		{"71% healthy spills 1%", []levelHealth{lv(100, 71), lv(10, 10)}, 50, []uint32{99, 1}, []bool{false, false}, false},
		{"50% healthy", []levelHealth{lv(100, 50), lv(10, 10)}, 50, []uint32{70, 30}, []bool{false, false}, false},
		{"25% healthy", []levelHealth{lv(100, 25), lv(10, 10)}, 50, []uint32{35, 65}, []bool{false, false}, false},
		{"0% healthy", []levelHealth{lv(100, 0), lv(10, 10)}, 50, []uint32{0, 100}, []bool{false, false}, false},
		// Docs: P0 20%, P1 20%, P2 20% healthy → availability 28 each, 84
		// in all, scaled to 100: 33/33/33 and the rounding remainder to the
		// first level.
		{"three levels at 20%, all in panic", []levelHealth{lv(10, 2), lv(10, 2), lv(10, 2)}, 50, []uint32{34, 33, 33}, []bool{true, true, true}, true},
		{"every level below the threshold: by host count", []levelHealth{lv(10, 4), lv(30, 3)}, 50, []uint32{25, 75}, []bool{true, true}, true},
		// The levels together are fully available: no level panics, even one
		// under the threshold on its own.
		{"no panic when availability sums to 100", []levelHealth{lv(10, 4), lv(10, 10)}, 50, []uint32{56, 44}, []bool{false, false}, false},
		{"everything down: total panic by host count", []levelHealth{lv(3, 0), lv(1, 0)}, 50, []uint32{75, 25}, []bool{true, true}, true},
		{"no hosts at all", []levelHealth{lv(0, 0), lv(0, 0)}, 50, []uint32{100, 0}, []bool{true, true}, true},
		{"empty first level", []levelHealth{lv(0, 0), lv(2, 2)}, 50, []uint32{0, 100}, []bool{false, false}, false},
		{"panic disabled", []levelHealth{lv(2, 0), lv(2, 0)}, 0, []uint32{100, 0}, []bool{false, false}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := computePriorityLoad(tc.levels, tc.threshold)
			if !slices.Equal(got.healthy, tc.want) {
				t.Errorf("load %v, want %v", got.healthy, tc.want)
			}
			if !slices.Equal(got.panic, tc.panic) {
				t.Errorf("panic %v, want %v", got.panic, tc.panic)
			}
			if got.totalPanic != tc.total {
				t.Errorf("total panic %v, want %v", got.totalPanic, tc.total)
			}
			var sum uint32
			for i := range got.healthy {
				sum += got.healthy[i] + got.degraded[i]
			}
			if sum != 100 {
				t.Errorf("loads sum to %d, want 100", sum)
			}
		})
	}
}

func TestChoosePriority(t *testing.T) {
	load := []uint32{70, 30}
	counts := make([]int, 2)
	for r := uint64(0); r < 100; r++ {
		l, _ := choosePriority(r, load, []uint32{0, 0})
		counts[l]++
	}
	if counts[0] != 70 || counts[1] != 30 {
		t.Errorf("over 100 draws levels got %v, want [70 30]", counts)
	}
}

// TestExcludePriorities is the previous_priorities retry plugin: a retry
// avoids levels already tried while others have capacity.
func TestExcludePriorities(t *testing.T) {
	levels := []levelHealth{{total: 2, healthy: 2}, {total: 2, healthy: 2}}
	orig := computePriorityLoad(levels, 50)
	got := excludePriorities(levels, []bool{true}, 50, orig)
	if !slices.Equal(got.healthy, []uint32{0, 100}) {
		t.Errorf("retry load %v, want [0 100]", got.healthy)
	}
	all := excludePriorities(levels, []bool{true, true}, 50, orig)
	if !slices.Equal(all.healthy, orig.healthy) {
		t.Errorf("with every level tried the load is %v, want the original %v", all.healthy, orig.healthy)
	}
}

// TestAggregateFlattening: an aggregate cluster's levels are its members'
// levels in order, so a member with no healthy host passes its traffic to
// the next, and a member's own priorities stay within it.
func TestAggregateFlattening(t *testing.T) {
	p := newTestProxy(t, testIdentity())
	d := p.deps()
	mk := func(name string, levels ...[]bool) *cluster {
		cl, err := newCluster(edsCluster(name), d)
		if err != nil {
			t.Fatal(err)
		}
		var addrs [][]string
		for i, lv := range levels {
			var as []string
			for j := range lv {
				as = append(as, "127.0.0."+string(rune('1'+i))+":"+string(rune('1'+j))+"000")
			}
			addrs = append(addrs, as)
		}
		_ = cl.setAssignment(assignment(t, name, addrs...))
		for i, lv := range levels {
			for j, healthy := range lv {
				cl.levels[i][j].ejected.Store(!healthy)
			}
		}
		cl.recompute()
		return cl
	}
	tests := []struct {
		name    string
		members [][][]bool
		want    []uint32
	}{
		{"first member healthy", [][][]bool{{{true, true}}, {{true}}}, []uint32{100, 0}},
		{"first member all ejected", [][][]bool{{{false, false}}, {{true}}}, []uint32{0, 100}},
		{"first member half ejected", [][][]bool{{{true, false}}, {{true}}}, []uint32{70, 30}},
		{"member with two priorities", [][][]bool{{{false}, {true}}, {{true}}}, []uint32{0, 100, 0}},
		{"empty first member", [][][]bool{{}, {{true}}}, []uint32{0, 100}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			byName := map[string]*cluster{}
			var names []string
			for i, m := range tc.members {
				n := "member" + string(rune('a'+i))
				byName[n] = mk(n, m...)
				names = append(names, n)
			}
			levels := flatten(names, func(n string) *cluster { return byName[n] })
			health := make([]levelHealth, len(levels))
			for i, l := range levels {
				health[i] = l.health
			}
			got := computePriorityLoad(health, 50)
			if !slices.Equal(got.healthy, tc.want) {
				t.Errorf("flattened load %v, want %v", got.healthy, tc.want)
			}
		})
	}
}

// TestLeastRequest: of two random choices the host with fewer requests in
// flight wins, so a busy host is avoided.
func TestLeastRequest(t *testing.T) {
	p := newTestProxy(t, testIdentity())
	c := edsCluster("lr")
	c.LbPolicy = 1 // LEAST_REQUEST
	cl, err := newCluster(c, p.deps())
	if err != nil {
		t.Fatal(err)
	}
	_ = cl.setAssignment(assignment(t, "lr", []string{"127.0.0.1:1001", "127.0.0.1:1002"}))
	busy := cl.levels[0][0]
	busy.active.Store(10)
	picked := map[*host]int{}
	for range 200 {
		pk, ok := cl.chooseHost(nil)
		if !ok {
			t.Fatal("no host")
		}
		picked[pk.host]++
	}
	// The busy host wins only when both choices fall on it: about 1 in 4.
	if picked[busy] > 80 {
		t.Errorf("busy host picked %d of 200 times", picked[busy])
	}
}

// shares picks n hosts and returns each address's share of the picks.
func shares(t *testing.T, cl *cluster, n int) map[string]float64 {
	t.Helper()
	out := map[string]float64{}
	for range n {
		pk, ok := cl.chooseHost(nil)
		if !ok {
			t.Fatal("no host")
		}
		out[pk.host.addr] += 1 / float64(n)
	}
	return out
}

func near(got, want float64) bool { return got > want-0.04 && got < want+0.04 }

// TestLocalityWeighted follows Envoy's locality weighted load balancing
// (envoy docs: intro/arch_overview/upstream/load_balancing/locality_weight):
// a locality's effective weight is its weight times its availability,
// min(1, 1.4 × healthy/total); a locality without a weight gets nothing.
func TestLocalityWeighted(t *testing.T) {
	p := newTestProxy(t, testIdentity())
	c := edsCluster("lw")
	c.CommonLbConfig = &clusterv3.Cluster_CommonLbConfig{LocalityConfigSpecifier: &clusterv3.Cluster_CommonLbConfig_LocalityWeightedLbConfig_{
		LocalityWeightedLbConfig: &clusterv3.Cluster_CommonLbConfig_LocalityWeightedLbConfig{}}}
	cl, err := newCluster(c, p.deps())
	if err != nil {
		t.Fatal(err)
	}
	ep := func(addr string, health corev3.HealthStatus) *endpointv3.LbEndpoint {
		e := lbEndpoint(t, addr, "")
		e.HealthStatus = health
		return e
	}
	loc := func(zone string, weight uint32, eps ...*endpointv3.LbEndpoint) *endpointv3.LocalityLbEndpoints {
		l := &endpointv3.LocalityLbEndpoints{Locality: &corev3.Locality{Region: "r", Zone: zone}, LbEndpoints: eps}
		if weight > 0 {
			l.LoadBalancingWeight = wrapperspb.UInt32(weight)
		}
		return l
	}
	healthy, down := corev3.HealthStatus_HEALTHY, corev3.HealthStatus_UNHEALTHY
	a, a2, b, z := "127.0.0.1:1001", "127.0.0.1:1002", "127.0.0.1:1003", "127.0.0.1:1004"

	_ = cl.setAssignment(&endpointv3.ClusterLoadAssignment{ClusterName: "lw", Endpoints: []*endpointv3.LocalityLbEndpoints{
		loc("a", 80, ep(a, healthy)), loc("b", 20, ep(b, healthy)), loc("z", 0, ep(z, healthy)),
	}})
	s := shares(t, cl, 4000)
	if !near(s[a], 0.8) || !near(s[b], 0.2) || s[z] != 0 {
		t.Errorf("weights 80/20 and none: shares %v, want a 0.8, b 0.2, z 0", s)
	}

	// Half of a's hosts down: availability min(1, 1.4 × 1/2) = 0.7, so a's
	// effective weight is 56 against b's 20.
	_ = cl.setAssignment(&endpointv3.ClusterLoadAssignment{ClusterName: "lw", Endpoints: []*endpointv3.LocalityLbEndpoints{
		loc("a", 80, ep(a, healthy), ep(a2, down)), loc("b", 20, ep(b, healthy)),
	}})
	s = shares(t, cl, 4000)
	if !near(s[a], 56.0/76) || s[a2] != 0 || !near(s[b], 20.0/76) {
		t.Errorf("a at 0.7 availability: shares %v, want a %.2f, b %.2f", s, 56.0/76, 20.0/76)
	}
}

// TestHostWeights: hosts of unequal load_balancing_weight share the traffic
// by weight (Istio gives a network gateway's endpoint the weight of the
// endpoints behind it).
func TestHostWeights(t *testing.T) {
	p := newTestProxy(t, testIdentity())
	cl, err := newCluster(edsCluster("hw"), p.deps())
	if err != nil {
		t.Fatal(err)
	}
	heavy, light := lbEndpoint(t, "127.0.0.1:1001", ""), lbEndpoint(t, "127.0.0.1:1002", "")
	heavy.LoadBalancingWeight = wrapperspb.UInt32(3)
	_ = cl.setAssignment(&endpointv3.ClusterLoadAssignment{ClusterName: "hw", Endpoints: []*endpointv3.LocalityLbEndpoints{{LbEndpoints: []*endpointv3.LbEndpoint{heavy, light}}}})
	s := shares(t, cl, 4000)
	if !near(s["127.0.0.1:1001"], 0.75) {
		t.Errorf("weights 3 and 1: shares %v, want 0.75 and 0.25", s)
	}
}

// TestAggregateMemberPanic: when every member of an aggregate cluster has
// its hosts ejected, the aggregate is in total panic and spreads its load by
// host count — but the host is picked by the member's load balancer, in the
// member's own panic state (envoy source/extensions/clusters/aggregate:
// cluster.cc chooseHost hands the member nothing but the chosen priority,
// lb_context.h). Members with Istio's outlier detection have a panic
// threshold of 0, so they pick no host: the request fails with no healthy
// upstream instead of reaching an ejected host. With Envoy's default of 50 %
// the member panics and does send to its ejected host.
func TestAggregateMemberPanic(t *testing.T) {
	for _, tc := range []struct {
		name      string
		threshold *float64 // the members' healthy_panic_threshold; nil: Envoy's default
		wantHost  bool
	}{
		{"istio outlier detection, threshold 0", new(float64), false},
		{"envoy default threshold", nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newTestProxy(t, testIdentity())
			d := p.deps()
			byName := map[string]*cluster{}
			var names []string
			for i, name := range []string{"member-a", "member-b"} {
				c := edsCluster(name)
				if tc.threshold != nil {
					c.CommonLbConfig = &clusterv3.Cluster_CommonLbConfig{HealthyPanicThreshold: &typev3.Percent{Value: *tc.threshold}}
				}
				cl, err := newCluster(c, d)
				if err != nil {
					t.Fatal(err)
				}
				_ = cl.setAssignment(assignment(t, name, []string{"127.0.0." + string(rune('1'+i)) + ":9080"}))
				cl.levels[0][0].ejected.Store(true)
				cl.recompute()
				byName[name] = cl
				names = append(names, name)
			}
			cfg, _ := anypb.New(&aggregatev3.ClusterConfig{Clusters: names})
			agg, err := newCluster(&clusterv3.Cluster{Name: "agg", LbPolicy: clusterv3.Cluster_CLUSTER_PROVIDED,
				ClusterDiscoveryType: &clusterv3.Cluster_ClusterType{ClusterType: &clusterv3.Cluster_CustomClusterType{Name: "envoy.clusters.aggregate", TypedConfig: cfg}}}, d)
			if err != nil {
				t.Fatal(err)
			}
			picked := map[string]int{}
			for range 200 {
				pk, ok := agg.chooseAggregate(&lbContext{}, func(n string) *cluster { return byName[n] })
				if ok != tc.wantHost {
					t.Fatalf("chose a host: %v, want %v (pick %+v)", ok, tc.wantHost, pk)
				}
				if ok {
					picked[pk.cluster.name]++
				}
			}
			// Total panic of the aggregate: load by host count, one each.
			if tc.wantHost && (picked["member-a"] < 60 || picked["member-b"] < 60) {
				t.Errorf("picks per member %v, want about 100 each (the aggregate's total panic follows host counts)", picked)
			}
		})
	}
}
