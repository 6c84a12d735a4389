package envoyemu

import (
	"fmt"
	"log/slog"
	"math"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	aggregatev3 "github.com/envoyproxy/go-control-plane/envoy/extensions/clusters/aggregate/v3"
)

type clusterType int

const (
	clusterEDS clusterType = iota
	clusterStatic
	clusterDNS
	clusterOriginalDst
	clusterAggregate
)

func (t clusterType) String() string {
	return [...]string{"EDS", "STATIC", "STRICT_DNS", "ORIGINAL_DST", "AGGREGATE"}[t]
}

type lbPolicy int

const (
	lbRoundRobin lbPolicy = iota
	lbLeastRequest
	lbRandom
)

// istioService is an entry of the cluster metadata Istio attaches
// (filter_metadata istio.services): the service the cluster stands for.
type istioService struct {
	host, name, namespace string
}

// cluster is the runtime state of one Envoy cluster: its hosts by priority,
// load balancer, outlier detector, circuit breakers and stats.
type cluster struct {
	name     string
	cfg      *clusterv3.Cluster
	typ      clusterType
	edsName  string
	statName string // the stat prefix's middle: alt_stat_name or name
	addr     addressing
	lb       lbPolicy
	// choiceCount is least-request's number of random choices (default 2).
	choiceCount int
	// localityWeighted: common_lb_config.locality_weighted_lb_config is
	// set (Istio: localityLbSetting distribute), so a locality is chosen
	// by weight before a host.
	localityWeighted bool
	connectTimeout   time.Duration
	panicThreshold   float64
	overprov         uint32
	maxConnections   int64
	maxRequests      int64
	maxRetries       int64
	maxPending       int64
	sni              string
	tls              *upstreamTLS // transport_socket
	socketMatches    []socketMatch
	services         []istioService
	members          []string // aggregate: member clusters in priority order

	stats   *clusterStats
	outlier *outlierDetector
	rnd     func() uint64
	log     *slog.Logger

	mu     sync.RWMutex
	hosts  []*host   // every host, in EDS order
	levels [][]*host // hosts by priority
	load   priorityLoad
	health []levelHealth
	rr     []atomic.Uint64

	activeRq      atomic.Int64
	activeRetries atomic.Int64
	assignments   atomic.Uint64
}

// clusterDeps are what clusters share with their proxy.
type clusterDeps struct {
	store   *Store
	clock   Clock
	rnd     func() uint64
	log     *slog.Logger
	percent func(uint32) bool
	addr    addressing
}

// newCluster validates a CDS cluster and builds its runtime. An error NACKs
// the CDS response.
func newCluster(c *clusterv3.Cluster, d clusterDeps) (*cluster, error) {
	cl := &cluster{
		name:           c.GetName(),
		cfg:            c,
		statName:       c.GetName(),
		connectTimeout: 5 * time.Second, // Envoy's default connect_timeout
		panicThreshold: DefaultPanicThreshold,
		overprov:       DefaultOverprovisioningFactor,
		maxConnections: 1024, // Envoy's default circuit breaker thresholds
		maxRequests:    1024,
		maxRetries:     3,
		maxPending:     1024,
		choiceCount:    2,
		rnd:            d.rnd,
		log:            d.log,
		addr:           d.addr,
	}
	if cl.name == "" {
		return nil, fmt.Errorf("cluster without a name")
	}
	if c.GetAltStatName() != "" {
		cl.statName = c.GetAltStatName()
	}
	if c.GetConnectTimeout() != nil {
		cl.connectTimeout = c.GetConnectTimeout().AsDuration()
	}
	switch t := c.GetClusterDiscoveryType().(type) {
	case nil:
		cl.typ = clusterStatic
	case *clusterv3.Cluster_Type:
		switch t.Type {
		case clusterv3.Cluster_EDS:
			cl.typ = clusterEDS
			cl.edsName = c.GetEdsClusterConfig().GetServiceName()
			if cl.edsName == "" {
				cl.edsName = cl.name
			}
		case clusterv3.Cluster_STATIC:
			cl.typ = clusterStatic
		case clusterv3.Cluster_STRICT_DNS, clusterv3.Cluster_LOGICAL_DNS:
			cl.typ = clusterDNS
		case clusterv3.Cluster_ORIGINAL_DST:
			cl.typ = clusterOriginalDst
		default:
			return nil, fmt.Errorf("cluster %q: discovery type %s is not supported", cl.name, t.Type)
		}
	case *clusterv3.Cluster_ClusterType:
		switch t.ClusterType.GetName() {
		case "envoy.clusters.aggregate":
			cfg := &aggregatev3.ClusterConfig{}
			if err := t.ClusterType.GetTypedConfig().UnmarshalTo(cfg); err != nil {
				return nil, fmt.Errorf("cluster %q: aggregate cluster config: %w", cl.name, err)
			}
			if len(cfg.GetClusters()) == 0 {
				return nil, fmt.Errorf("cluster %q: aggregate cluster with no clusters", cl.name)
			}
			cl.typ = clusterAggregate
			cl.members = cfg.GetClusters()
			if c.GetLbPolicy() != clusterv3.Cluster_CLUSTER_PROVIDED {
				// Envoy: "the aggregate cluster only supports CLUSTER_PROVIDED".
				return nil, fmt.Errorf("cluster %q: aggregate cluster needs lb_policy CLUSTER_PROVIDED, not %s", cl.name, c.GetLbPolicy())
			}
		default:
			return nil, fmt.Errorf("cluster %q: cluster type %q is not supported", cl.name, t.ClusterType.GetName())
		}
	}
	switch c.GetLbPolicy() {
	case clusterv3.Cluster_ROUND_ROBIN:
		cl.lb = lbRoundRobin
	case clusterv3.Cluster_LEAST_REQUEST:
		cl.lb = lbLeastRequest
		if n := c.GetLeastRequestLbConfig().GetChoiceCount(); n != nil && n.GetValue() >= 2 {
			cl.choiceCount = int(n.GetValue())
		}
	case clusterv3.Cluster_RANDOM, clusterv3.Cluster_RING_HASH, clusterv3.Cluster_MAGLEV:
		// Consistent hashing is not emulated; its spread over hosts is
		// random-like, so random stands in for it.
		cl.lb = lbRandom
	case clusterv3.Cluster_CLUSTER_PROVIDED:
		if cl.typ != clusterAggregate && cl.typ != clusterOriginalDst {
			return nil, fmt.Errorf("cluster %q: lb_policy CLUSTER_PROVIDED is only valid for aggregate and original destination clusters", cl.name)
		}
	case clusterv3.Cluster_LOAD_BALANCING_POLICY_CONFIG:
	}
	if p := c.GetLoadBalancingPolicy(); p != nil && len(p.GetPolicies()) > 0 {
		name := p.GetPolicies()[0].GetTypedExtensionConfig().GetName()
		switch {
		case strings.Contains(name, "least_request"):
			cl.lb = lbLeastRequest
		case strings.Contains(name, "round_robin"):
			cl.lb = lbRoundRobin
		default:
			cl.lb = lbRandom
		}
	}
	if cl.typ == clusterOriginalDst && c.GetLbPolicy() != clusterv3.Cluster_CLUSTER_PROVIDED && c.GetLbPolicy() != clusterv3.Cluster_ROUND_ROBIN {
		return nil, fmt.Errorf("cluster %q: original destination cluster needs lb_policy CLUSTER_PROVIDED", cl.name)
	}
	cl.localityWeighted = c.GetCommonLbConfig().GetLocalityWeightedLbConfig() != nil
	if p := c.GetCommonLbConfig().GetHealthyPanicThreshold(); p != nil {
		cl.panicThreshold = p.GetValue()
	}
	for _, t := range c.GetCircuitBreakers().GetThresholds() {
		if t.GetPriority() != corev3.RoutingPriority_DEFAULT {
			continue
		}
		if v := t.GetMaxConnections(); v != nil {
			cl.maxConnections = int64(v.GetValue())
		}
		if v := t.GetMaxRequests(); v != nil {
			cl.maxRequests = int64(v.GetValue())
		}
		if v := t.GetMaxRetries(); v != nil {
			cl.maxRetries = int64(v.GetValue())
		}
		if v := t.GetMaxPendingRequests(); v != nil {
			cl.maxPending = int64(v.GetValue())
		}
	}
	if err := cl.compileSockets(c); err != nil {
		return nil, fmt.Errorf("cluster %q: %w", cl.name, err)
	}
	cl.services = istioServices(c.GetMetadata())

	prefix := "cluster." + cl.statName + "."
	cl.stats = newClusterStats(d.store, prefix)
	if od := c.GetOutlierDetection(); od != nil && cl.typ != clusterAggregate {
		cl.outlier = newOutlierDetector(outlierConfigFrom(od), d.clock, d.percent, newOutlierStats(d.store, prefix), cl.recompute)
	}
	if la := c.GetLoadAssignment(); la != nil && cl.typ != clusterEDS {
		if err := cl.setAssignment(la); err != nil {
			return nil, err
		}
	} else {
		cl.recompute()
	}
	return cl, nil
}

// socketMatch is one of a cluster's transport_socket_matches: the endpoints
// whose envoy.transport_socket_match metadata holds every pair of match get
// its socket (nil: plaintext). Istio sends tlsMode-istio (ISTIO_MUTUAL to
// endpoints with a sidecar) and tlsMode-disabled (plaintext to the others).
type socketMatch struct {
	name  string
	match map[string]string
	tls   *upstreamTLS
}

// compileSockets reads a cluster's transport socket and socket matches.
// cl.sni is the first TLS socket's SNI, which the plaintext emulation
// carries in X-Drill-Sni.
func (cl *cluster) compileSockets(c *clusterv3.Cluster) error {
	var err error
	if cl.tls, err = compileUpstreamTLS(c.GetTransportSocket()); err != nil {
		return err
	}
	for _, m := range c.GetTransportSocketMatches() {
		sm := socketMatch{name: m.GetName(), match: structStrings(m.GetMatch())}
		if sm.tls, err = compileUpstreamTLS(m.GetTransportSocket()); err != nil {
			return fmt.Errorf("transport socket match %q: %w", m.GetName(), err)
		}
		cl.socketMatches = append(cl.socketMatches, sm)
	}
	for _, t := range append([]*upstreamTLS{cl.tls}, socketTLS(cl.socketMatches)...) {
		if t != nil && t.sni != "" {
			cl.sni = t.sni
			break
		}
	}
	return nil
}

func socketTLS(ms []socketMatch) []*upstreamTLS {
	out := make([]*upstreamTLS, 0, len(ms))
	for _, m := range ms {
		out = append(out, m.tls)
	}
	return out
}

// socketFor is the transport socket for a host: the first socket match
// whose pairs the host's metadata has, else the cluster's transport socket
// (envoy docs: Cluster.transport_socket_matches).
func (cl *cluster) socketFor(h *host) *upstreamTLS {
	md := h.attr().socketMatch
	for _, m := range cl.socketMatches {
		ok := true
		for k, v := range m.match {
			if md[k] != v {
				ok = false
				break
			}
		}
		if ok {
			return m.tls
		}
	}
	return cl.tls
}

func istioServices(md *corev3.Metadata) []istioService {
	st := md.GetFilterMetadata()["istio"]
	if st == nil {
		return nil
	}
	var out []istioService
	for _, v := range st.GetFields()["services"].GetListValue().GetValues() {
		f := v.GetStructValue().GetFields()
		out = append(out, istioService{
			host:      f["host"].GetStringValue(),
			name:      f["name"].GetStringValue(),
			namespace: f["namespace"].GetStringValue(),
		})
	}
	return out
}

// setAssignment replaces the cluster's hosts with those of a
// ClusterLoadAssignment. Hosts whose address did not change keep their
// outlier state and counters, as Envoy keeps a host across EDS updates.
func (cl *cluster) setAssignment(la *endpointv3.ClusterLoadAssignment) error {
	cl.mu.Lock()
	if f := la.GetPolicy().GetOverprovisioningFactor(); f != nil {
		cl.overprov = f.GetValue()
	}
	old := make(map[string]*host, len(cl.hosts))
	for _, h := range cl.hosts {
		old[h.addr] = h
	}
	var hosts []*host
	maxPrio := -1
	for _, lle := range la.GetEndpoints() {
		prio := int(lle.GetPriority())
		for _, lbe := range lle.GetLbEndpoints() {
			ep := lbe.GetEndpoint()
			sa := ep.GetAddress().GetSocketAddress()
			if sa == nil {
				// Internal addresses (HBONE, waypoints) have no emulation.
				continue
			}
			addr := joinHostPort(sa.GetAddress(), sa.GetPortValue())
			dial, err := cl.dialAddress(sa.GetAddress(), sa.GetPortValue())
			if err != nil {
				cl.log.Warn("endpoint not reachable from the emulated data plane; kept out of the cluster", "cluster", cl.name, "endpoint", addr, "err", err)
				continue
			}
			w := uint32(1)
			if lbe.GetLoadBalancingWeight() != nil && lbe.GetLoadBalancingWeight().GetValue() > 0 {
				w = lbe.GetLoadBalancingWeight().GetValue()
			}
			attrs := hostAttrs{
				locality: lle.GetLocality(), localityWeight: lle.GetLoadBalancingWeight().GetValue(), weight: w, health: lbe.GetHealthStatus(),
				workload:    lbe.GetMetadata().GetFilterMetadata()["istio"].GetFields()["workload"].GetStringValue(),
				socketMatch: structStrings(lbe.GetMetadata().GetFilterMetadata()["envoy.transport_socket_match"]),
			}
			var h *host
			if o, ok := old[addr]; ok {
				// Same host, at the same priority or a new one: keep its
				// identity so counters and outlier state stay.
				o.attrs.Store(&attrs)
				o.priority.Store(int32(prio))
				h = o
				delete(old, addr)
			} else {
				h = newHost(addr, dial, prio, attrs)
			}
			hosts = append(hosts, h)
			maxPrio = max(maxPrio, prio)
		}
	}
	levels := make([][]*host, maxPrio+1)
	for _, h := range hosts {
		levels[h.priority.Load()] = append(levels[h.priority.Load()], h)
	}
	changed := len(old) > 0 || len(hosts) != len(cl.hosts)
	cl.hosts = hosts
	cl.levels = levels
	cl.rr = make([]atomic.Uint64, len(levels))
	cl.mu.Unlock()
	if cl.outlier != nil {
		cl.outlier.setHosts(hosts)
	}
	cl.assignments.Add(1)
	cl.stats.updateSuccess.Inc()
	if changed {
		cl.stats.membershipChange.Inc()
	}
	if len(hosts) == 0 {
		cl.stats.updateEmpty.Inc()
	}
	cl.recompute()
	return nil
}

// dialAddress is where the proxy connects for an endpoint address: the
// loopback twin of a pod address. A DNS cluster's "localhost" is
// 127.0.0.1; other names cannot be resolved without leaving loopback.
func (cl *cluster) dialAddress(address string, port uint32) (string, error) {
	if cl.typ == clusterDNS && strings.EqualFold(address, "localhost") {
		address = "127.0.0.1"
	}
	a, err := netip.ParseAddr(address)
	if err != nil {
		return "", fmt.Errorf("%q is a name; the emulated proxy resolves no names", address)
	}
	t, err := cl.addr.mapAddr(a)
	if err != nil {
		return "", err
	}
	return joinHostPort(t.String(), port), nil
}

// recompute refreshes the priority load after hosts or their health
// changed, and the membership gauges.
func (cl *cluster) recompute() {
	cl.mu.Lock()
	health := make([]levelHealth, len(cl.levels))
	total, healthy, degraded := 0, 0, 0
	for i, lv := range cl.levels {
		lh := levelHealth{total: len(lv), overprov: cl.overprov}
		for _, h := range lv {
			switch {
			case h.healthy():
				lh.healthy++
			case h.degraded():
				lh.degraded++
			}
		}
		health[i] = lh
		total += lh.total
		healthy += lh.healthy
		degraded += lh.degraded
	}
	cl.health = health
	cl.load = computePriorityLoad(health, cl.panicThreshold)
	cl.mu.Unlock()
	cl.stats.membershipTotal.Set(int64(total))
	cl.stats.membershipHealthy.Set(int64(healthy))
	cl.stats.membershipDegraded.Set(int64(degraded))
}

// lbContext carries what a request's retries know to host selection.
type lbContext struct {
	// attempted hosts, for the previous_hosts retry predicate.
	attempted []*host
	// attemptedLevels, for the previous_priorities retry priority, by
	// (flattened, for aggregates) priority level.
	attemptedLevels []bool
	// excludedLevels are the levels the previous_priorities plugin took out
	// of the load at its last update, excludedAt the number of hosts
	// attempted then (see retryPriorityLoad).
	excludedLevels []bool
	excludedAt     int
	policy         *retryPolicy
	// origDst is the request's destination for ORIGINAL_DST clusters.
	origDst string
	// onlyCluster keeps host selection to the endpoints of one Kubernetes
	// cluster (an east-west gateway serving its own cluster's endpoints).
	onlyCluster string
}

// retryPriorityLoad is the priority load the previous_priorities retry
// plugin gives a host selection (envoy source/extensions/retry/priority/
// previous_priorities/previous_priorities.cc, determinePriorityLoad): the
// original load until update_frequency hosts have been attempted; at every
// multiple of it, the load without every level attempted so far; in between,
// the load of the last update. With Istio's update_frequency of 2 the first
// retry stays in the level that failed and the second leaves it.
func (ctx *lbContext) retryPriorityLoad(health []levelHealth, panicThreshold float64, orig priorityLoad) priorityLoad {
	n, every := len(ctx.attempted), max(ctx.policy.updateFrequency, 1)
	if n < every {
		return orig
	}
	if n%every == 0 && n != ctx.excludedAt {
		ctx.excludedLevels = slices.Clone(ctx.attemptedLevels)
		ctx.excludedAt = n
	}
	return excludePriorities(health, ctx.excludedLevels, panicThreshold, orig)
}

// pick is the outcome of host selection.
type pick struct {
	host    *host
	cluster *cluster // the cluster the host belongs to (an aggregate's member)
	level   int      // the priority level chosen, flattened for aggregates
	panic   bool
}

// levelsView returns the cluster's priority health and load.
func (cl *cluster) levelsView() ([]levelHealth, priorityLoad) {
	cl.mu.RLock()
	defer cl.mu.RUnlock()
	return cl.health, cl.load
}

// chooseHost selects an upstream host as Envoy's load balancer would:
// priority by load (minus levels a retry excludes), then a host within the
// level — its healthy hosts, or all of them in panic — by the cluster's
// policy, re-picking a host a retry has tried up to the predicate's limit.
func (cl *cluster) chooseHost(ctx *lbContext) (pick, bool) {
	if cl.typ == clusterOriginalDst {
		return cl.originalDst(ctx)
	}
	health, load := cl.levelsView()
	if len(health) == 0 {
		return pick{}, false
	}
	if ctx != nil && ctx.policy != nil && ctx.policy.previousPriorities {
		load = ctx.retryPriorityLoad(health, cl.panicThreshold, load)
	}
	level, _ := choosePriority(cl.rnd(), load.healthy, load.degraded)
	return cl.chooseInLevel(level, load.panic[level], ctx)
}

// chooseOwn is chooseHost over the endpoints of one Kubernetes cluster only
// (lbContext.onlyCluster): the priority load is computed over those alone,
// as if istiod had sent no others.
func (cl *cluster) chooseOwn(ctx *lbContext) (pick, bool) {
	cl.mu.RLock()
	levels, overprov := cl.levels, cl.overprov
	cl.mu.RUnlock()
	own := make([][]*host, len(levels))
	health := make([]levelHealth, len(levels))
	for i, lv := range levels {
		lh := levelHealth{overprov: overprov}
		for _, h := range lv {
			if c := h.cluster(); c != "" && c != ctx.onlyCluster {
				continue
			}
			own[i] = append(own[i], h)
			lh.total++
			switch {
			case h.healthy():
				lh.healthy++
			case h.degraded():
				lh.degraded++
			}
		}
		health[i] = lh
	}
	if len(health) == 0 {
		return pick{}, false
	}
	load := computePriorityLoad(health, cl.panicThreshold)
	level, _ := choosePriority(cl.rnd(), load.healthy, load.degraded)
	candidates := own[level]
	if !load.panic[level] {
		candidates = nil
		for _, h := range own[level] {
			if h.healthy() {
				candidates = append(candidates, h)
			}
		}
	}
	if len(candidates) == 0 {
		return pick{}, false
	}
	return pick{host: cl.pickOne(level, candidates), cluster: cl, level: level, panic: load.panic[level]}, true
}

// chooseInLevel picks a host of one priority level.
func (cl *cluster) chooseInLevel(level int, panicMode bool, ctx *lbContext) (pick, bool) {
	cl.mu.RLock()
	var all []*host
	if level < len(cl.levels) {
		all = cl.levels[level]
	}
	cl.mu.RUnlock()
	candidates := all
	if !panicMode {
		candidates = make([]*host, 0, len(all))
		for _, h := range all {
			if h.healthy() {
				candidates = append(candidates, h)
			}
		}
		if len(candidates) == 0 {
			for _, h := range all {
				if h.degraded() {
					candidates = append(candidates, h)
				}
			}
		}
	}
	if len(candidates) == 0 {
		return pick{}, false
	}
	if panicMode {
		cl.stats.lbHealthyPanic.Inc()
	}
	tries := 1
	if ctx != nil && ctx.policy != nil && ctx.policy.previousHosts && len(ctx.attempted) > 0 {
		tries = ctx.policy.hostSelectionMax
	}
	var h *host
	for i := 0; i < tries; i++ {
		h = cl.pickOne(level, candidates)
		if ctx == nil || ctx.policy == nil || !ctx.policy.previousHosts || !slices.Contains(ctx.attempted, h) {
			break
		}
	}
	return pick{host: h, cluster: cl, level: level, panic: panicMode}, true
}

func (cl *cluster) pickOne(level int, hs []*host) *host {
	if cl.localityWeighted {
		hs = cl.pickLocality(level, hs)
	}
	if len(hs) == 1 {
		return hs[0]
	}
	if !uniformWeights(hs) {
		return cl.pickWeighted(hs)
	}
	switch cl.lb {
	case lbLeastRequest:
		// Power of choice_count random choices, fewest active requests
		// wins (envoy docs: load_balancers, "Weighted least request").
		best := hs[cl.rnd()%uint64(len(hs))]
		for i := 1; i < cl.choiceCount; i++ {
			c := hs[cl.rnd()%uint64(len(hs))]
			if c.active.Load() < best.active.Load() {
				best = c
			}
		}
		return best
	case lbRandom:
		return hs[cl.rnd()%uint64(len(hs))]
	default:
		cl.mu.RLock()
		var n uint64
		if level < len(cl.rr) {
			n = cl.rr[level].Add(1) - 1
		}
		cl.mu.RUnlock()
		return hs[n%uint64(len(hs))]
	}
}

// originalDst makes a host of the request's own destination, as Envoy's
// ORIGINAL_DST cluster does with the address iptables redirected. The
// destination must be a pod or loopback address.
func (cl *cluster) originalDst(ctx *lbContext) (pick, bool) {
	if ctx == nil || ctx.origDst == "" {
		return pick{}, false
	}
	dial, err := cl.addr.hostPort(ctx.origDst)
	if err != nil {
		return pick{}, false
	}
	h := newHost(ctx.origDst, dial, 0, hostAttrs{weight: 1, health: corev3.HealthStatus_HEALTHY})
	return pick{host: h, cluster: cl}, true
}

// overflow reports whether another request would pass the max_requests
// circuit breaker.
func (cl *cluster) overflow() bool {
	return cl.maxRequests != math.MaxUint32 && cl.activeRq.Load() >= cl.maxRequests
}

// clusterStats are a cluster's stats, created as Envoy creates them:
// membership, update and outlier stats with the cluster; the traffic stats
// at the first request (Istio turns on enable_deferred_creation_stats); the
// per-code counters when a code is first seen.
type clusterStats struct {
	store  *Store
	prefix string

	membershipTotal, membershipHealthy, membershipDegraded *Gauge
	membershipChange, updateSuccess, updateEmpty           *Counter
	lbHealthyPanic                                         *Counter

	trafficOnce sync.Once
	traffic     *trafficStats

	codes      sync.Map // response code → *codeStats
	retryCodes sync.Map // response code → *codeStats under retry.
}

type trafficStats struct {
	rqTotal, rqCompleted, rqTimeout, rqPerTryTimeout                   *Counter
	rqRetry, rqRetrySuccess, rqRetryOverflow, rqRetryLimitExceeded     *Counter
	rqPendingOverflow, rqPendingTotal, rqCancelled, rqMaintenanceMode  *Counter
	rqPendingFailureEject                                              *Counter
	cxTotal, cxConnectFail, cxConnectTimeout, cxDestroy, cxNoneHealthy *Counter
	rqActive, cxActive, rqPendingActive                                *Gauge
	rqTime, cxConnectMs                                                *Histogram
}

type codeStats struct {
	code, class *Counter
}

func newClusterStats(s *Store, prefix string) *clusterStats {
	cs := &clusterStats{
		store:              s,
		prefix:             prefix,
		membershipTotal:    s.Gauge(prefix + "membership_total"),
		membershipHealthy:  s.Gauge(prefix + "membership_healthy"),
		membershipDegraded: s.Gauge(prefix + "membership_degraded"),
		membershipChange:   s.Counter(prefix + "membership_change"),
		updateSuccess:      s.Counter(prefix + "update_success"),
		updateEmpty:        s.Counter(prefix + "update_empty"),
		lbHealthyPanic:     s.Counter(prefix + "lb_healthy_panic"),
	}
	s.Gauge(prefix + "membership_excluded")
	s.Counter(prefix + "update_attempt")
	return cs
}

func (cs *clusterStats) t() *trafficStats {
	cs.trafficOnce.Do(func() {
		s, p := cs.store, cs.prefix
		cs.traffic = &trafficStats{
			rqTotal:               s.Counter(p + "upstream_rq_total"),
			rqCompleted:           s.Counter(p + "upstream_rq_completed"),
			rqTimeout:             s.Counter(p + "upstream_rq_timeout"),
			rqPerTryTimeout:       s.Counter(p + "upstream_rq_per_try_timeout"),
			rqRetry:               s.Counter(p + "upstream_rq_retry"),
			rqRetrySuccess:        s.Counter(p + "upstream_rq_retry_success"),
			rqRetryOverflow:       s.Counter(p + "upstream_rq_retry_overflow"),
			rqRetryLimitExceeded:  s.Counter(p + "upstream_rq_retry_limit_exceeded"),
			rqPendingOverflow:     s.Counter(p + "upstream_rq_pending_overflow"),
			rqPendingTotal:        s.Counter(p + "upstream_rq_pending_total"),
			rqPendingFailureEject: s.Counter(p + "upstream_rq_pending_failure_eject"),
			rqCancelled:           s.Counter(p + "upstream_rq_cancelled"),
			rqMaintenanceMode:     s.Counter(p + "upstream_rq_maintenance_mode"),
			cxTotal:               s.Counter(p + "upstream_cx_total"),
			cxConnectFail:         s.Counter(p + "upstream_cx_connect_fail"),
			cxConnectTimeout:      s.Counter(p + "upstream_cx_connect_timeout"),
			cxDestroy:             s.Counter(p + "upstream_cx_destroy"),
			cxNoneHealthy:         s.Counter(p + "upstream_cx_none_healthy"),
			rqActive:              s.Gauge(p + "upstream_rq_active"),
			cxActive:              s.Gauge(p + "upstream_cx_active"),
			rqPendingActive:       s.Gauge(p + "upstream_rq_pending_active"),
			rqTime:                s.Histogram(p + "upstream_rq_time"),
			cxConnectMs:           s.Histogram(p + "upstream_cx_connect_ms"),
		}
	})
	return cs.traffic
}

// chargeCode counts a response code: upstream_rq_<code> and
// upstream_rq_<class>xx, as Envoy's CodeStats do.
func (cs *clusterStats) chargeCode(code int) { cs.charge(&cs.codes, "", code) }

// chargeRetryCode counts the answer of an attempt the router retries:
// retry.upstream_rq_<code> and retry.upstream_rq_<class>xx, and nothing
// else (envoy source/common/router/router.cc, chargeBasicResponseStat with
// the retry stat name).
func (cs *clusterStats) chargeRetryCode(code int) { cs.charge(&cs.retryCodes, "retry.", code) }

// charge counts code and its class under <prefix><sub>upstream_rq_, the
// counters created at a code's first use and kept in byCode.
func (cs *clusterStats) charge(byCode *sync.Map, sub string, code int) {
	v, ok := byCode.Load(code)
	if !ok {
		p := cs.prefix + sub + "upstream_rq_"
		v, _ = byCode.LoadOrStore(code, &codeStats{
			code:  cs.store.Counter(p + strconv.Itoa(code)),
			class: cs.store.Counter(p + strconv.Itoa(code/100) + "xx"),
		})
	}
	c := v.(*codeStats)
	c.code.Inc()
	c.class.Inc()
}

// uniformWeights reports whether every host has the same
// load_balancing_weight: Envoy's load balancers then pick as unweighted.
func uniformWeights(hs []*host) bool {
	w := hs[0].attr().weight
	for _, h := range hs[1:] {
		if h.attr().weight != w {
			return false
		}
	}
	return true
}

// pickWeighted picks among hosts of unequal load_balancing_weight in
// proportion to their weights: what Envoy's weighted round robin (an EDF
// schedule over weights) and weighted random give over many requests. For
// least request, Envoy weighs each host by weight / (active + 1) (the
// active_request_bias of 1.0); the emulation draws choice_count hosts by
// weight and keeps the least loaded relative to its weight.
func (cl *cluster) pickWeighted(hs []*host) *host {
	var total uint64
	for _, h := range hs {
		total += uint64(max(h.attr().weight, 1))
	}
	draw := func() *host {
		n := cl.rnd() % total
		for _, h := range hs {
			w := uint64(max(h.attr().weight, 1))
			if n < w {
				return h
			}
			n -= w
		}
		return hs[len(hs)-1]
	}
	if cl.lb != lbLeastRequest {
		return draw()
	}
	best := draw()
	score := func(h *host) float64 { return float64(h.active.Load()+1) / float64(max(h.attr().weight, 1)) }
	for i := 1; i < cl.choiceCount; i++ {
		if c := draw(); score(c) < score(best) {
			best = c
		}
	}
	return best
}

// pickLocality narrows a priority level's candidate hosts to one locality,
// chosen as Envoy's locality weighted load balancing chooses it
// (load_balancer_impl.cc, chooseHealthyLocality; docs: load_balancing/locality_weight):
// each locality's effective weight is its load_balancing_weight times its
// availability, min(1, overprovisioning factor × healthy / hosts); a
// locality without a weight gets no traffic. When no locality has any
// effective weight the candidates are kept as they are.
func (cl *cluster) pickLocality(level int, hs []*host) []*host {
	cl.mu.RLock()
	var all []*host
	if level < len(cl.levels) {
		all = cl.levels[level]
	}
	overprov := cl.overprov
	cl.mu.RUnlock()
	type loc struct {
		weight         uint32
		total, healthy int
		candidates     []*host
	}
	byKey := map[string]*loc{}
	var keys []string
	for _, h := range all {
		a := h.attr()
		k := localityKey(a.locality)
		l := byKey[k]
		if l == nil {
			l = &loc{weight: a.localityWeight}
			byKey[k] = l
			keys = append(keys, k)
		}
		l.total++
		if h.healthy() {
			l.healthy++
		}
	}
	for _, h := range hs {
		if l := byKey[localityKey(h.attr().locality)]; l != nil {
			l.candidates = append(l.candidates, h)
		}
	}
	if overprov == 0 {
		overprov = DefaultOverprovisioningFactor
	}
	eff := make([]uint64, len(keys))
	var sum uint64
	for i, k := range keys {
		l := byKey[k]
		if len(l.candidates) == 0 || l.total == 0 {
			continue
		}
		avail := min(100, uint64(overprov)*uint64(l.healthy)/uint64(l.total))
		eff[i] = uint64(l.weight) * avail
		sum += eff[i]
	}
	if sum == 0 {
		return hs
	}
	n := cl.rnd() % sum
	for i, k := range keys {
		if n < eff[i] {
			return byKey[k].candidates
		}
		n -= eff[i]
	}
	return hs
}

func localityKey(l *corev3.Locality) string {
	return l.GetRegion() + "/" + l.GetZone() + "/" + l.GetSubZone()
}

// hostByDial is the host the proxy connects to at dial, nil when none is.
func (cl *cluster) hostByDial(dial string) *host {
	cl.mu.RLock()
	defer cl.mu.RUnlock()
	for _, h := range cl.hosts {
		if h.dial == dial {
			return h
		}
	}
	return nil
}
