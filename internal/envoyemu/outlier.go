package envoyemu

import (
	"math"
	"sync"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
)

// Clock tells the time; tests inject a fake one to drive outlier detection
// deterministically.
type Clock interface{ Now() time.Time }

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

// outlierConfig is a cluster's outlier_detection with Envoy's defaults
// filled in (envoy api v3 config/cluster/v3/outlier_detection.proto).
type outlierConfig struct {
	consecutive5xx        uint32 // default 5
	consecutiveGateway    uint32 // default 5
	consecutiveLocal      uint32 // default 5
	enforcing5xx          uint32 // percent, default 100
	enforcingGateway      uint32 // percent, default 0: detected, not enforced
	enforcingLocal        uint32 // percent, default 100
	interval              time.Duration
	baseEjection          time.Duration
	maxEjection           time.Duration
	maxEjectionPercent    uint32 // default 10
	alwaysEjectOne        bool
	splitLocalOriginError bool
	// Success rate: hosts with at least srRequestVolume requests in the
	// interval, when at least srMinHosts have, are ejected below
	// mean − stdev × srStdevFactor/1000 of their success rates.
	srMinHosts, srRequestVolume, srStdevFactor, enforcingSR uint32 // 5, 100, 1900, 100
	// Failure percentage: hosts with at least fpRequestVolume requests,
	// when at least fpMinHosts have, are ejected at a failure percentage
	// of fpThreshold or more.
	fpMinHosts, fpRequestVolume, fpThreshold, enforcingFP uint32 // 5, 50, 85, 0
}

func outlierConfigFrom(od *clusterv3.OutlierDetection) outlierConfig {
	u32 := func(v interface{ GetValue() uint32 }, isNil bool, def uint32) uint32 {
		if isNil {
			return def
		}
		return v.GetValue()
	}
	dur := func(d interface{ AsDuration() time.Duration }, isNil bool, def time.Duration) time.Duration {
		if isNil {
			return def
		}
		return d.AsDuration()
	}
	c := outlierConfig{
		consecutive5xx:        u32(od.GetConsecutive_5Xx(), od.GetConsecutive_5Xx() == nil, 5),
		consecutiveGateway:    u32(od.GetConsecutiveGatewayFailure(), od.GetConsecutiveGatewayFailure() == nil, 5),
		consecutiveLocal:      u32(od.GetConsecutiveLocalOriginFailure(), od.GetConsecutiveLocalOriginFailure() == nil, 5),
		enforcing5xx:          u32(od.GetEnforcingConsecutive_5Xx(), od.GetEnforcingConsecutive_5Xx() == nil, 100),
		enforcingGateway:      u32(od.GetEnforcingConsecutiveGatewayFailure(), od.GetEnforcingConsecutiveGatewayFailure() == nil, 0),
		enforcingLocal:        u32(od.GetEnforcingConsecutiveLocalOriginFailure(), od.GetEnforcingConsecutiveLocalOriginFailure() == nil, 100),
		interval:              dur(od.GetInterval(), od.GetInterval() == nil, 10*time.Second),
		baseEjection:          dur(od.GetBaseEjectionTime(), od.GetBaseEjectionTime() == nil, 30*time.Second),
		maxEjectionPercent:    u32(od.GetMaxEjectionPercent(), od.GetMaxEjectionPercent() == nil, 10),
		alwaysEjectOne:        od.GetAlwaysEjectOneHost().GetValue(),
		splitLocalOriginError: od.GetSplitExternalLocalOriginErrors(),
		srMinHosts:            u32(od.GetSuccessRateMinimumHosts(), od.GetSuccessRateMinimumHosts() == nil, 5),
		srRequestVolume:       u32(od.GetSuccessRateRequestVolume(), od.GetSuccessRateRequestVolume() == nil, 100),
		srStdevFactor:         u32(od.GetSuccessRateStdevFactor(), od.GetSuccessRateStdevFactor() == nil, 1900),
		enforcingSR:           u32(od.GetEnforcingSuccessRate(), od.GetEnforcingSuccessRate() == nil, 100),
		fpMinHosts:            u32(od.GetFailurePercentageMinimumHosts(), od.GetFailurePercentageMinimumHosts() == nil, 5),
		fpRequestVolume:       u32(od.GetFailurePercentageRequestVolume(), od.GetFailurePercentageRequestVolume() == nil, 50),
		fpThreshold:           u32(od.GetFailurePercentageThreshold(), od.GetFailurePercentageThreshold() == nil, 85),
		enforcingFP:           u32(od.GetEnforcingFailurePercentage(), od.GetEnforcingFailurePercentage() == nil, 0),
	}
	// max_ejection_time defaults to 300 s, or to base_ejection_time when
	// that is longer.
	c.maxEjection = dur(od.GetMaxEjectionTime(), od.GetMaxEjectionTime() == nil, max(300*time.Second, c.baseEjection))
	return c
}

// result is what the router reports to the outlier detector after an
// attempt: an HTTP status, or a locally originated failure.
type result struct {
	code  int // HTTP status from the upstream, 0 when none
	local failure
}

// ejectionType is Envoy's OutlierEjectionType for the stats.
type ejectionType int

const (
	ejectConsecutive5xx ejectionType = iota
	ejectConsecutiveGateway
	ejectConsecutiveLocal
	ejectSuccessRate
	ejectFailurePercentage
)

type hostMonitor struct {
	consecutive5xx, consecutiveGateway, consecutiveLocal uint32
	lastEjection                                         time.Time
	// backoff multiplies base_ejection_time: it grows with each ejection
	// and shrinks by one at each interval the host spends un-ejected
	// (envoy outlier_detection_impl.cc, ejectTimeBackoff).
	backoff      uint32
	numEjections uint32
	// The interval's external-origin requests and successes, for success
	// rate and failure percentage (Envoy's SuccessRateAccumulator: the
	// current bucket is read and cleared at each interval).
	total, success uint64
}

type outlierStats struct {
	active                                  *Gauge
	enforcedTotal, overflow, total          *Counter
	enforced5xx, detected5xx, deprecated5xx *Counter
	enforcedGateway, detectedGateway        *Counter
	enforcedLocal, detectedLocal            *Counter
	deprecatedGateway                       *Counter
	enforcedSR, detectedSR, deprecatedSR    *Counter
	enforcedFP, detectedFP                  *Counter
}

func newOutlierStats(s *Store, prefix string) *outlierStats {
	p := prefix + "outlier_detection."
	return &outlierStats{
		active:            s.Gauge(p + "ejections_active"),
		enforcedTotal:     s.Counter(p + "ejections_enforced_total"),
		overflow:          s.Counter(p + "ejections_overflow"),
		total:             s.Counter(p + "ejections_total"),
		enforced5xx:       s.Counter(p + "ejections_enforced_consecutive_5xx"),
		detected5xx:       s.Counter(p + "ejections_detected_consecutive_5xx"),
		deprecated5xx:     s.Counter(p + "ejections_consecutive_5xx"),
		enforcedGateway:   s.Counter(p + "ejections_enforced_consecutive_gateway_failure"),
		detectedGateway:   s.Counter(p + "ejections_detected_consecutive_gateway_failure"),
		deprecatedGateway: s.Counter(p + "ejections_consecutive_gateway_failure"),
		enforcedLocal:     s.Counter(p + "ejections_enforced_consecutive_local_origin_failure"),
		detectedLocal:     s.Counter(p + "ejections_detected_consecutive_local_origin_failure"),
		enforcedSR:        s.Counter(p + "ejections_enforced_success_rate"),
		detectedSR:        s.Counter(p + "ejections_detected_success_rate"),
		deprecatedSR:      s.Counter(p + "ejections_success_rate"),
		enforcedFP:        s.Counter(p + "ejections_enforced_failure_percentage"),
		detectedFP:        s.Counter(p + "ejections_detected_failure_percentage"),
	}
}

// outlierDetector is Envoy's outlier detection for one cluster (envoy docs:
// intro/arch_overview/upstream/outlier; source/common/upstream/
// outlier_detection_impl.cc): consecutive 5xx, consecutive gateway failure
// and, with split_external_local_origin_errors, consecutive local origin
// failure, ejected the moment a run reaches its threshold; success rate and
// failure percentage over each interval's requests, judged at the interval
// sweep. Un-ejection happens at the sweep once base_ejection_time × backoff
// (capped at max_ejection_time) has passed. Istio turns success-rate
// enforcement off (enforcing_success_rate 0) unless an EnvoyFilter sets it.
type outlierDetector struct {
	cfg   outlierConfig
	clock Clock
	// percent decides an enforcing_* percentage: true with probability p/100.
	percent func(p uint32) bool
	stats   *outlierStats
	// changed is called, without the detector's lock, after a host's
	// ejection state changed, so the cluster recomputes its load.
	changed func()

	mu        sync.Mutex
	hosts     map[*host]*hostMonitor
	active    int
	lastSweep time.Time
}

func newOutlierDetector(cfg outlierConfig, clock Clock, percent func(uint32) bool, stats *outlierStats, changed func()) *outlierDetector {
	return &outlierDetector{cfg: cfg, clock: clock, percent: percent, stats: stats, changed: changed, hosts: map[*host]*hostMonitor{}}
}

// setHosts tracks the cluster's current hosts: new ones start clean,
// removed ones give back their ejection.
func (d *outlierDetector) setHosts(hs []*host) {
	d.mu.Lock()
	keep := make(map[*host]bool, len(hs))
	for _, h := range hs {
		keep[h] = true
		if _, ok := d.hosts[h]; !ok {
			d.hosts[h] = &hostMonitor{}
		}
	}
	for h := range d.hosts {
		if !keep[h] {
			if h.ejected.Load() {
				d.active--
			}
			delete(d.hosts, h)
		}
	}
	d.stats.active.Set(int64(d.active))
	d.mu.Unlock()
}

// tick runs the sweep when an interval has passed since the last one; the
// proxy calls it often, on the detector's clock.
func (d *outlierDetector) tick() {
	now := d.clock.Now()
	d.mu.Lock()
	if d.lastSweep.IsZero() {
		d.lastSweep = now
	}
	due := now.Sub(d.lastSweep) >= d.cfg.interval
	if due {
		d.lastSweep = now
	}
	d.mu.Unlock()
	if due {
		d.sweep()
	}
}

// report charges one attempt's outcome to its host.
func (d *outlierDetector) report(h *host, r result) {
	d.mu.Lock()
	m, ok := d.hosts[h]
	if !ok {
		d.mu.Unlock()
		return
	}
	var fire []ejectionType
	code := r.code
	if r.local != noFailure {
		if d.cfg.splitLocalOriginError {
			// Locally originated failures count on their own.
			m.consecutiveLocal++
			if m.consecutiveLocal == d.cfg.consecutiveLocal {
				fire = append(fire, ejectConsecutiveLocal)
			}
			code = 0
		} else {
			// Without the split, a connect failure or reset counts as a 503
			// and a timeout as a 504 (putResultNoLocalExternalSplit).
			code = 503
			if r.local == perTryTimeout {
				code = 504
			}
		}
	} else if d.cfg.splitLocalOriginError {
		m.consecutiveLocal = 0
	}
	if code != 0 {
		m.total++
		if code < 500 || code >= 600 {
			m.success++
		}
		if code >= 500 && code < 600 {
			if code == 502 || code == 503 || code == 504 {
				m.consecutiveGateway++
				if m.consecutiveGateway == d.cfg.consecutiveGateway {
					fire = append(fire, ejectConsecutiveGateway)
				}
			} else {
				m.consecutiveGateway = 0
			}
			m.consecutive5xx++
			if m.consecutive5xx == d.cfg.consecutive5xx {
				fire = append(fire, ejectConsecutive5xx)
			}
		} else {
			m.consecutive5xx, m.consecutiveGateway = 0, 0
		}
	}
	changed := false
	for _, t := range fire {
		if d.onConsecutiveError(h, m, t) {
			changed = true
		}
	}
	d.mu.Unlock()
	if changed && d.changed != nil {
		d.changed()
	}
}

// onConsecutiveError is DetectorImpl::onConsecutiveErrorWorker and
// ejectHost. It reports whether the host was ejected.
func (d *outlierDetector) onConsecutiveError(h *host, m *hostMonitor, t ejectionType) bool {
	if h.ejected.Load() {
		return false
	}
	// The counter restarts so that another full run of errors is needed.
	switch t {
	case ejectConsecutive5xx:
		d.stats.detected5xx.Inc()
		d.stats.deprecated5xx.Inc()
		m.consecutive5xx = 0
	case ejectConsecutiveGateway:
		d.stats.detectedGateway.Inc()
		d.stats.deprecatedGateway.Inc()
		m.consecutiveGateway = 0
	case ejectConsecutiveLocal:
		d.stats.detectedLocal.Inc()
		m.consecutiveLocal = 0
	case ejectSuccessRate:
		d.stats.detectedSR.Inc()
		d.stats.deprecatedSR.Inc()
	case ejectFailurePercentage:
		d.stats.detectedFP.Inc()
	}
	ejectedPct := 100 * float64(d.active+1) / float64(len(d.hosts))
	if !(ejectedPct <= float64(min(d.cfg.maxEjectionPercent, 100)) || (d.cfg.alwaysEjectOne && d.active == 0)) {
		d.stats.overflow.Inc()
		return false
	}
	if t == ejectConsecutive5xx || t == ejectSuccessRate {
		d.stats.total.Inc() // deprecated ejections_total counts 5xx and success rate only
	}
	enforce := map[ejectionType]uint32{
		ejectConsecutive5xx:     d.cfg.enforcing5xx,
		ejectConsecutiveGateway: d.cfg.enforcingGateway,
		ejectConsecutiveLocal:   d.cfg.enforcingLocal,
		ejectSuccessRate:        d.cfg.enforcingSR,
		ejectFailurePercentage:  d.cfg.enforcingFP,
	}[t]
	if !d.percent(enforce) {
		return false
	}
	d.active++
	d.stats.active.Set(int64(d.active))
	d.stats.enforcedTotal.Inc()
	switch t {
	case ejectConsecutive5xx:
		d.stats.enforced5xx.Inc()
	case ejectConsecutiveGateway:
		d.stats.enforcedGateway.Inc()
	case ejectConsecutiveLocal:
		d.stats.enforcedLocal.Inc()
	case ejectSuccessRate:
		d.stats.enforcedSR.Inc()
	case ejectFailurePercentage:
		d.stats.enforcedFP.Inc()
	}
	m.numEjections++
	m.lastEjection = d.clock.Now()
	// The back-off grows by one per ejection while base × backoff stays
	// under max + base, so it cannot grow without bound.
	if time.Duration(m.backoff)*d.cfg.baseEjection < d.cfg.maxEjection+d.cfg.baseEjection {
		m.backoff++
	}
	h.ejected.Store(true)
	return true
}

// sweep is the interval timer's work (DetectorImpl::onIntervalTimer,
// checkHostForUneject): un-eject hosts whose ejection time has passed and
// shrink the back-off of hosts that stayed healthy.
func (d *outlierDetector) sweep() {
	now := d.clock.Now()
	changed := false
	d.mu.Lock()
	for h, m := range d.hosts {
		if !h.ejected.Load() {
			if m.backoff > 0 {
				m.backoff--
			}
			continue
		}
		ejectFor := min(d.cfg.baseEjection*time.Duration(m.backoff), d.cfg.maxEjection)
		if now.Sub(m.lastEjection) >= ejectFor {
			d.active--
			h.ejected.Store(false)
			m.consecutive5xx, m.consecutiveGateway, m.consecutiveLocal = 0, 0, 0
			changed = true
		}
	}
	if d.rateEjections() {
		changed = true
	}
	d.stats.active.Set(int64(d.active))
	d.mu.Unlock()
	if changed && d.changed != nil {
		d.changed()
	}
}

// rateEjections is processSuccessRateEjections at the interval: over the
// hosts not ejected, with their interval's requests, success rate ejects
// a host whose rate is below mean − stdev × factor of the hosts with
// enough requests (when enough hosts have them), and failure percentage
// ejects a host whose failures reach the threshold (likewise). Every
// host's interval counts are then cleared. d.mu is held.
func (d *outlierDetector) rateEjections() bool {
	type rated struct {
		h    *host
		m    *hostMonitor
		rate float64 // success rate, percent
		vol  uint64
	}
	var all []rated
	for h, m := range d.hosts {
		vol, ok := m.total, m.success
		m.total, m.success = 0, 0
		if h.ejected.Load() || vol == 0 {
			continue
		}
		all = append(all, rated{h: h, m: m, rate: 100 * float64(ok) / float64(vol), vol: vol})
	}
	changed := false
	var sr []rated
	for _, r := range all {
		if r.vol >= uint64(d.cfg.srRequestVolume) {
			sr = append(sr, r)
		}
	}
	if len(sr) > 0 && len(sr) >= int(d.cfg.srMinHosts) {
		var sum float64
		for _, r := range sr {
			sum += r.rate
		}
		mean := sum / float64(len(sr))
		var variance float64
		for _, r := range sr {
			variance += (r.rate - mean) * (r.rate - mean)
		}
		variance /= float64(len(sr))
		threshold := mean - math.Sqrt(variance)*float64(d.cfg.srStdevFactor)/1000
		for _, r := range sr {
			if r.rate < threshold && d.onConsecutiveError(r.h, r.m, ejectSuccessRate) {
				changed = true
			}
		}
	}
	var fp []rated
	for _, r := range all {
		if r.vol >= uint64(d.cfg.fpRequestVolume) {
			fp = append(fp, r)
		}
	}
	if len(fp) > 0 && len(fp) >= int(d.cfg.fpMinHosts) {
		for _, r := range fp {
			if 100-r.rate >= float64(d.cfg.fpThreshold) && d.onConsecutiveError(r.h, r.m, ejectFailurePercentage) {
				changed = true
			}
		}
	}
	return changed
}
