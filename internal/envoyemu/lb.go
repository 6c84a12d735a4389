package envoyemu

import (
	"slices"
	"strings"
	"sync/atomic"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
)

// host is one upstream endpoint of a cluster. Its address makes it what it
// is, as Envoy keeps a host by address across EDS updates
// (upstream_impl.cc, updateDynamicHostList) — its priority may change and
// its outlier state and counters stay; what EDS may change while it stays
// the same host (priority, health, weight, locality, metadata) is swapped
// whole or atomically, so the data path reads it without a lock.
type host struct {
	addr     string // as EDS names it: 10.A.B.C:port
	dial     string // where the proxy connects: the loopback twin
	priority atomic.Int32
	attrs    atomic.Pointer[hostAttrs]
	// ejected is set by the cluster's outlier detector.
	ejected atomic.Bool
	active  atomic.Int64 // requests in flight, for least-request

	// Per-host counters shown by /clusters.
	rqTotal, rqSuccess, rqError, rqTimeout, rqActive, cxConnectFail, cxTotal atomic.Uint64
	cxActive                                                                 atomic.Int64
}

type hostAttrs struct {
	locality *corev3.Locality
	// localityWeight is the load_balancing_weight of the host's
	// LocalityLbEndpoints (0: none given).
	localityWeight uint32
	weight         uint32
	health         corev3.HealthStatus
	// workload is Istio's endpoint metadata istio.workload,
	// "name;namespace;canonical service;revision;cluster".
	workload string
	// socketMatch is the endpoint's envoy.transport_socket_match metadata
	// (Istio: tlsMode istio for endpoints with a sidecar).
	socketMatch map[string]string
}

func newHost(addr, dial string, priority int, a hostAttrs) *host {
	h := &host{addr: addr, dial: dial}
	h.priority.Store(int32(priority))
	h.attrs.Store(&a)
	return h
}

func (h *host) attr() *hostAttrs {
	if a := h.attrs.Load(); a != nil {
		return a
	}
	return &hostAttrs{}
}

// edsHealthy: Envoy takes HEALTHY and UNKNOWN for healthy, DEGRADED for
// degraded, anything else for unhealthy.
func (h *host) edsHealthy() bool {
	s := h.attr().health
	return s == corev3.HealthStatus_HEALTHY || s == corev3.HealthStatus_UNKNOWN
}

func (h *host) degraded() bool {
	return h.attr().health == corev3.HealthStatus_DEGRADED && !h.ejected.Load()
}

func (h *host) healthy() bool { return h.edsHealthy() && !h.ejected.Load() }

// cluster is the Kubernetes cluster of the endpoint, the last field of
// Istio's workload metadata; empty when istiod sent none.
func (h *host) cluster() string {
	w := h.attr().workload
	if i := strings.LastIndexByte(w, ';'); i >= 0 {
		return w[i+1:]
	}
	return ""
}

// DefaultOverprovisioningFactor is Envoy's overprovisioning factor, 1.4, in
// percent (envoy api v3 endpoint.proto, ClusterLoadAssignment.Policy): a
// priority level takes min(100, healthy% × 1.4) of the traffic.
const DefaultOverprovisioningFactor = 140

// DefaultPanicThreshold is Envoy's healthy panic threshold (50 %): below it
// a priority level balances over all its hosts, healthy or not.
const DefaultPanicThreshold = 50.0

// levelHealth is what the priority computation needs of one priority level.
type levelHealth struct {
	total, healthy, degraded int
	overprov                 uint32 // percent, 140 by default
}

// priorityLoad is the outcome of Envoy's per-priority load computation
// (envoy source/common/upstream/load_balancer_impl.cc,
// LoadBalancerBase::recalculatePerPriorityState and
// recalculatePerPriorityPanic).
type priorityLoad struct {
	healthy  []uint32 // percent of traffic per level to its healthy hosts
	degraded []uint32 // percent per level to its degraded hosts
	panic    []bool   // per level: balance over all hosts
	// totalPanic: every level is in panic; load follows host counts.
	totalPanic bool
}

// computePriorityLoad distributes 100 % of the traffic over priority levels
// as Envoy does: each level's health is min(100, overprov × healthy/total);
// load goes to levels in order until spent, scaled up when the levels'
// availability sums to less than 100; the rounding remainder goes to the
// first available level. A level is in panic when its healthy share is
// below panicThreshold (and the levels together are short of 100 %); when
// every level is in panic, load follows host counts.
func computePriorityLoad(levels []levelHealth, panicThreshold float64) priorityLoad {
	n := len(levels)
	pl := priorityLoad{healthy: make([]uint32, n), degraded: make([]uint32, n), panic: make([]bool, n)}
	if n == 0 {
		return pl
	}
	health := make([]uint32, n)
	degraded := make([]uint32, n)
	for i, l := range levels {
		if l.total == 0 {
			continue
		}
		op := uint64(l.overprov)
		if op == 0 {
			op = DefaultOverprovisioningFactor
		}
		health[i] = uint32(min(100, op*uint64(l.healthy)/uint64(l.total)))
		degraded[i] = uint32(min(100, op*uint64(l.degraded)/uint64(l.total)))
	}
	total := normalizedAvailability(health, degraded)
	if total > 0 {
		firstH, rest := distributeLoad(pl.healthy, health, 100, total)
		firstD, rest := distributeLoad(pl.degraded, degraded, rest, total)
		if rest != 0 {
			if firstH >= 0 {
				pl.healthy[firstH] += rest
			} else if firstD >= 0 {
				pl.degraded[firstD] += rest
			}
		}
	}

	// recalculatePerPriorityPanic.
	if panicThreshold == 0 && total == 0 {
		pl.healthy[0] = 100
		return pl
	}
	for i, l := range levels {
		pl.panic[i] = total != 100 && inPanic(l, panicThreshold)
	}
	if !slices.Contains(pl.panic, false) {
		pl.totalPanic = true
		loadInTotalPanic(pl, levels)
	}
	return pl
}

func inPanic(l levelHealth, threshold float64) bool {
	if l.total == 0 {
		return true
	}
	pct := 100 * float64(l.healthy+l.degraded) / float64(l.total)
	return pct < threshold
}

// loadInTotalPanic spreads load by host count, remainder to the first
// non-empty level (LoadBalancerBase::recalculateLoadInTotalPanic).
func loadInTotalPanic(pl priorityLoad, levels []levelHealth) {
	all := 0
	for _, l := range levels {
		all += l.total
	}
	for i := range pl.healthy {
		pl.healthy[i], pl.degraded[i] = 0, 0
	}
	if all == 0 {
		pl.healthy[0] = 100
		return
	}
	rest := uint32(100)
	first := -1
	for i, l := range levels {
		if first < 0 && l.total > 0 {
			first = i
		}
		v := uint32(100 * l.total / all)
		pl.healthy[i] = v
		rest -= v
	}
	pl.healthy[first] += rest
}

func normalizedAvailability(health, degraded []uint32) uint32 {
	var sum uint32
	for i := range health {
		sum += health[i] + degraded[i]
	}
	return min(100, sum)
}

// distributeLoad assigns as much of total as each level's availability
// allows, scaled by the normalized total (LoadBalancerBase's
// distributeLoad). It returns the first level with availability (-1 if none)
// and what is left.
func distributeLoad(load, avail []uint32, total, normalized uint32) (int, uint32) {
	first := -1
	for i := range avail {
		if first < 0 && avail[i] > 0 {
			first = i
		}
		v := min(total, avail[i]*100/normalized)
		load[i] = v
		total -= v
	}
	return first, total
}

// choosePriority picks a level for a uniform random number, by the healthy
// loads then the degraded ones (LoadBalancerBase::choosePriority). degraded
// says the level's degraded hosts are to be used.
func choosePriority(rnd uint64, healthy, degraded []uint32) (level int, useDegraded bool) {
	x := uint32(rnd % 100)
	var run uint32
	for i, v := range healthy {
		run += v
		if x < run {
			return i, false
		}
	}
	for i, v := range degraded {
		run += v
		if x < run {
			return i, true
		}
	}
	// Loads always sum to 100; this is only reached for empty inputs.
	return 0, false
}

// excludePriorities recomputes a load with the levels in excluded made
// unavailable, as the previous_priorities retry plugin does (envoy
// source/extensions/retry/priority/previous_priorities). If no level is
// left, the original load stands.
func excludePriorities(levels []levelHealth, excluded []bool, panicThreshold float64, orig priorityLoad) priorityLoad {
	adj := slices.Clone(levels)
	any := false
	for i := range adj {
		if i < len(excluded) && excluded[i] {
			adj[i].healthy, adj[i].degraded = 0, 0
			any = true
		}
	}
	if !any {
		return orig
	}
	pl := computePriorityLoad(adj, panicThreshold)
	if pl.totalPanic {
		return orig
	}
	// Panic stays a property of the levels themselves, not of the retry.
	pl.panic = orig.panic
	return pl
}
