package envoyemu

import (
	"testing"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// detectorFor builds a detector over n hosts with the given config, a fake
// clock, and enforcing percentages decided by always (true) or never.
func detectorFor(t *testing.T, od *clusterv3.OutlierDetection, n int) (*outlierDetector, []*host, *fakeClock, *int) {
	t.Helper()
	clock := newFakeClock()
	changes := 0
	s := newStore(nil)
	d := newOutlierDetector(outlierConfigFrom(od), clock, func(p uint32) bool { return p >= 50 }, newOutlierStats(s, "cluster.c;."), func() { changes++ })
	var hs []*host
	for i := range n {
		hs = append(hs, &host{addr: "10.0.0." + string(rune('1'+i)) + ":80"})
	}
	d.setHosts(hs)
	return d, hs, clock, &changes
}

func TestOutlierDefaults(t *testing.T) {
	c := outlierConfigFrom(&clusterv3.OutlierDetection{})
	want := outlierConfig{consecutive5xx: 5, consecutiveGateway: 5, consecutiveLocal: 5, enforcing5xx: 100, enforcingGateway: 0, enforcingLocal: 100,
		interval: 10 * time.Second, baseEjection: 30 * time.Second, maxEjection: 300 * time.Second, maxEjectionPercent: 10,
		srMinHosts: 5, srRequestVolume: 100, srStdevFactor: 1900, enforcingSR: 100,
		fpMinHosts: 5, fpRequestVolume: 50, fpThreshold: 85, enforcingFP: 0}
	if c != want {
		t.Errorf("defaults %+v, want Envoy's %+v", c, want)
	}
}

func TestOutlierDetection(t *testing.T) {
	u32 := wrapperspb.UInt32
	type step struct {
		host    int
		res     result
		advance time.Duration
		sweep   bool
	}
	code := func(h, c int) step { return step{host: h, res: result{code: c}} }
	local := func(h int, f failure) step { return step{host: h, res: result{local: f}} }
	wait := func(d time.Duration) step { return step{advance: d, sweep: true, host: -1} }
	tests := []struct {
		name      string
		od        *clusterv3.OutlierDetection
		hosts     int
		steps     []step
		ejected   []bool
		enforced  uint64
		overflow  uint64
		detectedG uint64
	}{
		{"5 consecutive 5xx eject at once", &clusterv3.OutlierDetection{MaxEjectionPercent: u32(100)}, 2,
			[]step{code(0, 500), code(0, 500), code(0, 503), code(0, 502), code(0, 500)}, []bool{true, false}, 1, 0, 0},
		{"a success resets the run", &clusterv3.OutlierDetection{MaxEjectionPercent: u32(100)}, 2,
			[]step{code(0, 500), code(0, 500), code(0, 500), code(0, 500), code(0, 200), code(0, 500)}, []bool{false, false}, 0, 0, 0},
		{"consecutive5xx 1: the first error ejects", &clusterv3.OutlierDetection{Consecutive_5Xx: u32(1), MaxEjectionPercent: u32(100)}, 2,
			[]step{code(1, 503)}, []bool{false, true}, 1, 0, 0},
		{"connection refused counts as a 503", &clusterv3.OutlierDetection{Consecutive_5Xx: u32(1), MaxEjectionPercent: u32(100)}, 1,
			[]step{local(0, connectFailure)}, []bool{true}, 1, 0, 0},
		{"split local origin errors: refused does not count as 5xx", &clusterv3.OutlierDetection{Consecutive_5Xx: u32(1), MaxEjectionPercent: u32(100),
			SplitExternalLocalOriginErrors: true, ConsecutiveLocalOriginFailure: u32(2)}, 1,
			[]step{local(0, connectFailure)}, []bool{false}, 0, 0, 0},
		{"split: consecutive local origin failures eject", &clusterv3.OutlierDetection{MaxEjectionPercent: u32(100),
			SplitExternalLocalOriginErrors: true, ConsecutiveLocalOriginFailure: u32(2)}, 1,
			[]step{local(0, connectFailure), local(0, perTryTimeout)}, []bool{true}, 1, 0, 0},
		{"gateway failures are detected, not enforced by default", &clusterv3.OutlierDetection{ConsecutiveGatewayFailure: u32(2), Consecutive_5Xx: u32(10), MaxEjectionPercent: u32(100)}, 1,
			[]step{code(0, 503), code(0, 503)}, []bool{false}, 0, 0, 1},
		{"gateway failures enforced when asked", &clusterv3.OutlierDetection{ConsecutiveGatewayFailure: u32(2), EnforcingConsecutiveGatewayFailure: u32(100), Consecutive_5Xx: u32(10), MaxEjectionPercent: u32(100)}, 1,
			[]step{code(0, 503), code(0, 504)}, []bool{true}, 1, 0, 1},
		{"max ejection percent 10 of 3 hosts ejects none", &clusterv3.OutlierDetection{Consecutive_5Xx: u32(1)}, 3,
			[]step{code(0, 500)}, []bool{false, false, false}, 0, 1, 0},
		{"always_eject_one_host overrides the percentage once", &clusterv3.OutlierDetection{Consecutive_5Xx: u32(1), AlwaysEjectOneHost: wrapperspb.Bool(true)}, 3,
			[]step{code(0, 500), code(1, 500)}, []bool{true, false, false}, 1, 1, 0},
		{"max ejection percent 50 of 2 hosts ejects one", &clusterv3.OutlierDetection{Consecutive_5Xx: u32(1), MaxEjectionPercent: u32(50)}, 2,
			[]step{code(0, 500), code(1, 500)}, []bool{true, false}, 1, 1, 0},
		{"un-ejected at the sweep after base ejection time", &clusterv3.OutlierDetection{Consecutive_5Xx: u32(1), MaxEjectionPercent: u32(100), BaseEjectionTime: durationpb.New(30 * time.Second)}, 1,
			[]step{code(0, 500), wait(29 * time.Second), wait(time.Second)}, []bool{false}, 1, 0, 0},
		{"second ejection lasts twice as long", &clusterv3.OutlierDetection{Consecutive_5Xx: u32(1), MaxEjectionPercent: u32(100), BaseEjectionTime: durationpb.New(30 * time.Second)}, 1,
			[]step{code(0, 500), wait(30 * time.Second), code(0, 500), wait(59 * time.Second)}, []bool{true}, 2, 0, 0},
		{"second ejection ends after 2 × base", &clusterv3.OutlierDetection{Consecutive_5Xx: u32(1), MaxEjectionPercent: u32(100), BaseEjectionTime: durationpb.New(30 * time.Second)}, 1,
			[]step{code(0, 500), wait(30 * time.Second), code(0, 500), wait(60 * time.Second)}, []bool{false}, 2, 0, 0},
		{"ejection time capped by max_ejection_time", &clusterv3.OutlierDetection{Consecutive_5Xx: u32(1), MaxEjectionPercent: u32(100),
			BaseEjectionTime: durationpb.New(30 * time.Second), MaxEjectionTime: durationpb.New(40 * time.Second)}, 1,
			[]step{code(0, 500), wait(30 * time.Second), code(0, 500), wait(40 * time.Second)}, []bool{false}, 2, 0, 0},
		{"an ejected host is not ejected twice", &clusterv3.OutlierDetection{Consecutive_5Xx: u32(1), MaxEjectionPercent: u32(100)}, 2,
			[]step{code(0, 500), code(0, 500), code(0, 500)}, []bool{true, false}, 1, 0, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d, hs, clock, _ := detectorFor(t, tc.od, tc.hosts)
			for _, s := range tc.steps {
				if s.advance > 0 {
					clock.Advance(s.advance)
				}
				if s.sweep {
					d.sweep()
				}
				if s.host >= 0 {
					d.report(hs[s.host], s.res)
				}
			}
			for i, h := range hs {
				if h.ejected.Load() != tc.ejected[i] {
					t.Errorf("host %d ejected %v, want %v", i, h.ejected.Load(), tc.ejected[i])
				}
			}
			active := 0
			for _, e := range tc.ejected {
				if e {
					active++
				}
			}
			if got := d.stats.active.Value(); got != int64(active) {
				t.Errorf("ejections_active %d, want %d", got, active)
			}
			if got := d.stats.enforcedTotal.Value(); got != tc.enforced {
				t.Errorf("ejections_enforced_total %d, want %d", got, tc.enforced)
			}
			if got := d.stats.overflow.Value(); got != tc.overflow {
				t.Errorf("ejections_overflow %d, want %d", got, tc.overflow)
			}
			if got := d.stats.detectedGateway.Value(); got != tc.detectedG {
				t.Errorf("ejections_detected_consecutive_gateway_failure %d, want %d", got, tc.detectedG)
			}
		})
	}
}

// TestOutlierHostRemoval: a host EDS removes gives back its ejection.
func TestOutlierHostRemoval(t *testing.T) {
	d, hs, _, _ := detectorFor(t, &clusterv3.OutlierDetection{Consecutive_5Xx: u32v(1), MaxEjectionPercent: u32v(100)}, 2)
	d.report(hs[0], result{code: 500})
	if d.stats.active.Value() != 1 {
		t.Fatal("not ejected")
	}
	d.setHosts(hs[1:])
	if d.stats.active.Value() != 0 {
		t.Errorf("ejections_active %d after the ejected host left", d.stats.active.Value())
	}
}

// TestOutlierTick: the proxy's frequent tick sweeps once per interval.
func TestOutlierTick(t *testing.T) {
	d, hs, clock, _ := detectorFor(t, &clusterv3.OutlierDetection{Consecutive_5Xx: u32v(1), MaxEjectionPercent: u32v(100),
		Interval: durationpb.New(10 * time.Second), BaseEjectionTime: durationpb.New(time.Second)}, 1)
	d.tick()
	d.report(hs[0], result{code: 500})
	clock.Advance(5 * time.Second)
	d.tick()
	if !hs[0].ejected.Load() {
		t.Fatal("un-ejected before the interval")
	}
	clock.Advance(5 * time.Second)
	d.tick()
	if hs[0].ejected.Load() {
		t.Fatal("still ejected at the interval after its ejection time")
	}
}

func u32v(v uint32) *wrapperspb.UInt32Value { return wrapperspb.UInt32(v) }

// TestEjectionKeptAcrossPriorityChange: Envoy keeps a host by address across
// EDS updates (upstream_impl.cc, updateDynamicHostList), so a host ejected at
// one priority is still ejected, with the same counters, when istiod moves it
// to another.
func TestEjectionKeptAcrossPriorityChange(t *testing.T) {
	p := newTestProxy(t, allStatsIdentity())
	feed(t, p, response(t, TypeCluster, edsCluster("svc", func(c *clusterv3.Cluster) {
		c.OutlierDetection = &clusterv3.OutlierDetection{Consecutive_5Xx: wrapperspb.UInt32(1), MaxEjectionPercent: wrapperspb.UInt32(100)}
	})))
	a, b := "127.0.0.1:1001", "127.0.0.1:1002"
	feed(t, p, response(t, TypeEndpoint, assignment(t, "svc", []string{a}, []string{b})))
	cl := p.routing.Load().cluster("svc")
	ha := cl.hosts[0]
	cl.outlier.report(ha, result{code: 503})
	if !ha.ejected.Load() {
		t.Fatal("one 5xx with consecutive_5xx 1 did not eject the host")
	}
	// istiod swaps the priorities.
	feed(t, p, response(t, TypeEndpoint, assignment(t, "svc", []string{b}, []string{a})))
	var moved *host
	for _, h := range p.routing.Load().cluster("svc").hosts {
		if h.addr == a {
			moved = h
		}
	}
	if moved != ha {
		t.Fatalf("host %s is a new host after its priority changed", a)
	}
	if !moved.ejected.Load() || moved.priority.Load() != 1 {
		t.Errorf("host %s: ejected %v at priority %d; want still ejected, at priority 1", a, moved.ejected.Load(), moved.priority.Load())
	}
}

// TestRateEjections follows Envoy's success-rate and failure-percentage
// detection (envoy docs: intro/arch_overview/upstream/outlier; source
// outlier_detection_impl.cc, successRateEjectionThreshold): judged at the
// interval over the hosts with enough requests, when enough hosts have
// them.
func TestRateEjections(t *testing.T) {
	u32 := wrapperspb.UInt32
	tests := []struct {
		name     string
		od       *clusterv3.OutlierDetection
		hosts    int
		failures []int // per host, failures out of 100 requests
		ejected  int   // the host expected ejected, -1 for none
		stat     string
	}{
		// Rates 50, 100, 100, 100, 100: mean 90, stdev 20, threshold
		// 90 − 1.9 × 20 = 52; 50 is below it.
		{"success rate below mean − 1.9 stdev", &clusterv3.OutlierDetection{MaxEjectionPercent: u32(100), Consecutive_5Xx: u32(1000)}, 5,
			[]int{50, 0, 0, 0, 0}, 0, "ejections_enforced_success_rate"},
		// Rates 55, 100 ×4: mean 91, stdev 18, threshold 91 − 1.9 × 18 =
		// 56.8; 55 is below.
		{"just below the threshold", &clusterv3.OutlierDetection{MaxEjectionPercent: u32(100), Consecutive_5Xx: u32(1000)}, 5,
			[]int{45, 0, 0, 0, 0}, 0, "ejections_enforced_success_rate"},
		// Rates 60, 100 ×4: mean 92, stdev 16, threshold 61.6: 60 is
		// below; with a factor of 3 (3000) the threshold is 44 and nothing
		// is ejected.
		{"stdev factor", &clusterv3.OutlierDetection{MaxEjectionPercent: u32(100), Consecutive_5Xx: u32(1000), SuccessRateStdevFactor: u32(3000)}, 5,
			[]int{40, 0, 0, 0, 0}, -1, ""},
		{"fewer hosts than success_rate_minimum_hosts", &clusterv3.OutlierDetection{MaxEjectionPercent: u32(100), Consecutive_5Xx: u32(1000)}, 4,
			[]int{50, 0, 0, 0}, -1, ""},
		{"success rate not enforced", &clusterv3.OutlierDetection{MaxEjectionPercent: u32(100), Consecutive_5Xx: u32(1000), EnforcingSuccessRate: u32(0)}, 5,
			[]int{50, 0, 0, 0, 0}, -1, ""},
		{"failure percentage at the threshold", &clusterv3.OutlierDetection{MaxEjectionPercent: u32(100), Consecutive_5Xx: u32(1000),
			EnforcingSuccessRate: u32(0), EnforcingFailurePercentage: u32(100), FailurePercentageMinimumHosts: u32(2)}, 2,
			[]int{85, 10}, 0, "ejections_enforced_failure_percentage"},
		{"failure percentage not enforced by default", &clusterv3.OutlierDetection{MaxEjectionPercent: u32(100), Consecutive_5Xx: u32(1000),
			EnforcingSuccessRate: u32(0), FailurePercentageMinimumHosts: u32(2)}, 2,
			[]int{95, 10}, -1, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d, hs, clock, _ := detectorFor(t, tc.od, tc.hosts)
			d.tick() // starts the interval
			for i, f := range tc.failures {
				for n := range 100 {
					code := 200
					if n < f {
						code = 503
					}
					d.report(hs[i], result{code: code})
				}
			}
			clock.Advance(d.cfg.interval)
			d.tick()
			for i, h := range hs {
				if want := i == tc.ejected; h.ejected.Load() != want {
					t.Errorf("host %d ejected %v, want %v", i, h.ejected.Load(), want)
				}
			}
			sr, fp := d.stats.enforcedSR.Value(), d.stats.enforcedFP.Value()
			switch tc.stat {
			case "ejections_enforced_success_rate":
				if sr != 1 || fp != 0 {
					t.Errorf("enforced success rate %d, failure percentage %d; want 1, 0", sr, fp)
				}
			case "ejections_enforced_failure_percentage":
				if fp != 1 {
					t.Errorf("enforced failure percentage %d, want 1", fp)
				}
			default:
				if sr+fp != 0 {
					t.Errorf("enforced success rate %d, failure percentage %d; want none", sr, fp)
				}
			}
			// The interval's counts are cleared: the next sweep, without
			// requests, ejects no one more.
			before := d.active
			clock.Advance(d.cfg.interval)
			d.tick()
			if d.active > before {
				t.Errorf("a sweep without requests ejected %d more hosts", d.active-before)
			}
		})
	}
}
