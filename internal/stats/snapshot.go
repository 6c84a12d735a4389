package stats

import (
	"math"
	"sort"
	"strconv"
	"time"
)

// Format names the admin output a Snapshot was parsed from.
type Format string

const (
	// FormatPrometheus is Envoy's /stats/prometheus text (Prometheus exposition
	// format 0.0.4).
	FormatPrometheus Format = "prometheus"
	// FormatJSON is Envoy's /stats?format=json.
	FormatJSON Format = "json"
)

// Snapshot is one scrape of one Envoy, reduced to the stats drill reads. It holds
// cumulative values as Envoy reported them; Diff turns two of them into deltas.
type Snapshot struct {
	// Time is when the scrape started; Parse leaves it zero and the Scraper sets it.
	Time   time.Time `json:"time"`
	Format Format    `json:"format"`
	// Clusters holds the stats of every Envoy cluster the page mentions, keyed by
	// Envoy cluster name (e.g. "outbound|9080||reviews.default.svc.cluster.local").
	Clusters map[string]*ClusterStats `json:"clusters"`
	// Requests sums istio_requests_total over the series that share a RequestKey.
	Requests map[RequestKey]uint64 `json:"-"`
	// ActiveClusters is cluster_manager.active_clusters, or -1 when the page has
	// none. It tells a proxy that has clusters but hides their stats from one that
	// has no configuration yet.
	ActiveClusters int64 `json:"activeClusters"`
	// Uptime is server.uptime (whole seconds), or -1 when absent. It going down
	// between two scrapes means the proxy restarted.
	Uptime int64 `json:"uptime"`
	// Warnings lists what the parser tolerated: Envoy output quirks it repaired and
	// lines it skipped. Empty for a clean page.
	Warnings []string `json:"warnings,omitempty"`
}

func newSnapshot(f Format) *Snapshot {
	return &Snapshot{
		Format:         f,
		Clusters:       make(map[string]*ClusterStats),
		Requests:       make(map[RequestKey]uint64),
		ActiveClusters: -1,
		Uptime:         -1,
	}
}

// cluster returns the stats of the named Envoy cluster, creating them.
func (s *Snapshot) cluster(name string) *ClusterStats {
	c := s.Clusters[name]
	if c == nil {
		c = &ClusterStats{}
		s.Clusters[name] = c
	}
	return c
}

// ClusterNames returns the Envoy cluster names of the snapshot, sorted.
func (s *Snapshot) ClusterNames() []string {
	names := make([]string, 0, len(s.Clusters))
	for n := range s.Clusters {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Stat identifies one of the per-cluster stats a Snapshot keeps. The names are
// Envoy's (envoy docs: configuration/upstream/cluster_manager/cluster_stats), under
// cluster.<name>.
type Stat uint8

const (
	StatRqTotal           Stat = iota // upstream_rq_total, counter
	StatCxConnectFail                 // upstream_cx_connect_fail, counter
	StatRqRetry                       // upstream_rq_retry, counter
	StatEjectionsEnforced             // outlier_detection.ejections_enforced_total, counter
	StatMembershipHealthy             // membership_healthy, gauge
	StatMembershipTotal               // membership_total, gauge
	StatEjectionsActive               // outlier_detection.ejections_active, gauge
	numStats
)

var statNames = [numStats]string{
	StatRqTotal:           "upstream_rq_total",
	StatCxConnectFail:     "upstream_cx_connect_fail",
	StatRqRetry:           "upstream_rq_retry",
	StatEjectionsEnforced: "outlier_detection.ejections_enforced_total",
	StatMembershipHealthy: "membership_healthy",
	StatMembershipTotal:   "membership_total",
	StatEjectionsActive:   "outlier_detection.ejections_active",
}

// String is Envoy's name of the stat under cluster.<name>.
func (s Stat) String() string {
	if s < numStats {
		return statNames[s]
	}
	return "stat(" + strconv.Itoa(int(s)) + ")"
}

// counterStats are the Stats that only grow until the proxy restarts.
var counterStats = [...]Stat{StatRqTotal, StatCxConnectFail, StatRqRetry, StatEjectionsEnforced}

// ClusterStats are one Envoy cluster's stats at one instant.
type ClusterStats struct {
	// Values is indexed by Stat; present says which of them the page carried, so
	// that a stat missing from one scrape is not mistaken for a counter reset.
	Values  [numStats]uint64 `json:"-"`
	present uint16

	// Codes counts requests by response code ("503"): upstream_rq_<code>.
	Codes map[string]uint64 `json:"codes,omitempty"`
	// Classes counts requests by response class ("5xx"): upstream_rq_<n>xx.
	Classes map[string]uint64 `json:"classes,omitempty"`
	// RqTime is the upstream_rq_time histogram, in milliseconds, when present.
	RqTime *Histogram `json:"rqTime,omitempty"`
	// RetryCodes and RetryClasses count the answers of attempts the router
	// retried (retry.upstream_rq_<code>, retry.upstream_rq_<n>xx): Envoy
	// charges a retried attempt there and only the final answer in Codes
	// and Classes (envoy source/common/router/router.cc, the retry_ stat
	// name in chargeBasicResponseStat).
	RetryCodes   map[string]uint64 `json:"retryCodes,omitempty"`
	RetryClasses map[string]uint64 `json:"retryClasses,omitempty"`
}

func (c *ClusterStats) set(s Stat, v uint64) {
	c.Values[s] = v
	c.present |= 1 << s
}

// Has reports whether the page carried stat s for this cluster.
func (c *ClusterStats) Has(s Stat) bool { return c.present&(1<<s) != 0 }

// Get returns stat s, zero when absent.
func (c *ClusterStats) Get(s Stat) uint64 { return c.Values[s] }

func (c *ClusterStats) setCode(code string, v uint64) {
	if c.Codes == nil {
		c.Codes = make(map[string]uint64, 4)
	}
	c.Codes[code] = v
}

func (c *ClusterStats) setRetryCode(code string, v uint64) {
	if c.RetryCodes == nil {
		c.RetryCodes = make(map[string]uint64, 2)
	}
	c.RetryCodes[code] = v
}

func (c *ClusterStats) setRetryClass(class string, v uint64) {
	if c.RetryClasses == nil {
		c.RetryClasses = make(map[string]uint64, 2)
	}
	c.RetryClasses[class] = v
}

func (c *ClusterStats) setClass(class string, v uint64) {
	if c.Classes == nil {
		c.Classes = make(map[string]uint64, 4)
	}
	c.Classes[class] = v
}

// RequestKey is the part of an istio_requests_total series drill reads: who asked,
// who answered, from which cluster, and how it went. Series that differ only in
// other labels (principals, canonical revisions, protocol) are summed under one key.
type RequestKey struct {
	Reporter            string `json:"reporter"`
	SourceWorkload      string `json:"sourceWorkload"`
	SourceCluster       string `json:"sourceCluster"`
	DestinationService  string `json:"destinationService"`
	DestinationWorkload string `json:"destinationWorkload"`
	DestinationVersion  string `json:"destinationVersion"`
	DestinationCluster  string `json:"destinationCluster"`
	ResponseCode        string `json:"responseCode"`
	ResponseFlags       string `json:"responseFlags"`
}

// Histogram is a cumulative Envoy histogram: Counts[i] observations were at most
// Bounds[i]; Count is all of them (the +Inf bucket).
type Histogram struct {
	Bounds []float64 `json:"bounds"`
	Counts []uint64  `json:"counts"`
	Sum    float64   `json:"sum"`
	Count  uint64    `json:"count"`
}

// Sub returns h − prev bucket by bucket: the observations made between the two.
// It returns nil when the two do not share bucket bounds (reconfigured histogram)
// or when h went backwards (the proxy restarted), since no honest difference exists.
func (h *Histogram) Sub(prev *Histogram) *Histogram {
	if h == nil {
		return nil
	}
	if prev == nil {
		return h.clone()
	}
	if len(h.Bounds) != len(prev.Bounds) || h.Count < prev.Count {
		return nil
	}
	d := &Histogram{Bounds: h.Bounds, Counts: make([]uint64, len(h.Counts)), Sum: h.Sum - prev.Sum, Count: h.Count - prev.Count}
	for i := range h.Bounds {
		if h.Bounds[i] != prev.Bounds[i] || h.Counts[i] < prev.Counts[i] {
			return nil
		}
		d.Counts[i] = h.Counts[i] - prev.Counts[i]
	}
	return d
}

func (h *Histogram) clone() *Histogram {
	c := *h
	c.Counts = append([]uint64(nil), h.Counts...)
	return &c
}

// Quantile estimates the q-quantile (0 < q ≤ 1) by linear interpolation inside the
// bucket that holds it, as Prometheus' histogram_quantile does. Observations above
// the last finite bound are reported as that bound. It returns NaN for an empty
// histogram.
func (h *Histogram) Quantile(q float64) float64 {
	if h == nil || h.Count == 0 || len(h.Bounds) == 0 || math.IsNaN(q) {
		return math.NaN()
	}
	q = math.Min(math.Max(q, 0), 1)
	rank := q * float64(h.Count)
	lower, below := 0.0, uint64(0)
	for i, ub := range h.Bounds {
		if float64(h.Counts[i]) >= rank {
			in := h.Counts[i] - below
			if in == 0 {
				return ub
			}
			return lower + (ub-lower)*(rank-float64(below))/float64(in)
		}
		lower, below = ub, h.Counts[i]
	}
	return h.Bounds[len(h.Bounds)-1]
}
