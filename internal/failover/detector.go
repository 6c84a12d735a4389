package failover

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/meshdrill/drill/internal/stats"
	"github.com/meshdrill/drill/pkg/event"
)

// DetectorSource is the Source of the events a Detector produces.
const DetectorSource = "failover-detector"

// Detection defaults. A scrape interval decides a failover when more than half of
// the requests to the service that were answered in it were answered by the
// awaited cluster, and at least DefaultMinRequests were answered at all: at 50
// requests/s and a 1 s scrape, a single request that spilled to the backup cluster
// must not count as a failover.
const (
	DefaultShare       = 0.5
	DefaultMinRequests = 5
)

// Watch is the failover a Detector looks for: traffic from clients in From toward
// Service moving to To after the step FailoverAfter starts, and coming back to From
// after the step FailbackAfter starts. Either step may be empty.
type Watch struct {
	Service   string // Kubernetes service, e.g. "reviews"
	Namespace string // its namespace; default "default"
	From      string // the Kubernetes cluster that serves it normally
	To        string // the cluster it fails over to
	// Hosts are further hosts whose traffic is the service's: the hostnames of the
	// failover services it backs (reviews-failover.default.global), whose Envoy
	// cluster and istio_requests_total destination_service name the failover host.
	Hosts []string
	// Clients are the clusters whose observed Envoys' samples are read: the clients
	// of the service. Default: From. In a priority chain (cluster1 → cluster2 →
	// cluster3) the second hop moves traffic from cluster2 to cluster3, but it is
	// still cluster1's clients that see it.
	Clients []string

	FailoverAfter string
	FailbackAfter string
}

// ClientClusters are the clusters whose Envoys the Watch reads samples from.
func (w Watch) ClientClusters() []string {
	if len(w.Clients) > 0 {
		return w.Clients
	}
	return []string{w.From}
}

// DetectorOption tunes a Detector.
type DetectorOption func(*detectorConfig)

type detectorConfig struct {
	share       float64
	minRequests int64
	workload    string
}

// WithShare sets the share of answered requests the awaited cluster must exceed in a
// scrape interval (default DefaultShare: a strict majority).
func WithShare(f float64) DetectorOption { return func(c *detectorConfig) { c.share = f } }

// WithMinRequests sets how many answered requests an interval needs to decide
// anything (default DefaultMinRequests).
func WithMinRequests(n int64) DetectorOption { return func(c *detectorConfig) { c.minRequests = n } }

// WithObserver limits the Detector to the samples of one observed workload (e.g.
// "productpage"); by default it reads every workload observed in From.
func WithObserver(workload string) DetectorOption {
	return func(c *detectorConfig) { c.workload = workload }
}

// Detector finds the moment traffic for a service moved to another Kubernetes
// cluster (failover) and the moment it came back (failback), from the stats.sample
// events of the Envoys observed in the service's home cluster.
//
// Each sample is the change of one Envoy's counters over one scrape interval. The
// Detector attributes the interval's requests to the service to the Kubernetes
// cluster that answered them: by istio_requests_total's destination_cluster (the
// identity of the answering workload) when the sample has it, otherwise by the
// Envoy cluster they were sent to (outbound|9080||reviews.default.svc.cluster.local
// is the observer's own cluster, …svc.cluster2.global is cluster2's under the
// aggregate strategy). Requests nobody answered (istio's "unknown" cluster,
// Envoy's 5xx) are left out: they show that the home cluster is failing, not that
// another one took over.
//
// Failover is detected at the end of the first scrape interval that ends after the
// FailoverAfter step started and in which To answered more than the share (by
// default half) of at least the minimum number of answered requests; failback
// likewise for From after FailbackAfter. Took is the time from the step to the end
// of that interval, so the moment traffic moved lies within (Took - Resolution,
// Took], Resolution being the interval's length: the scrape interval.
//
// A Detector is fed every event of a run in order, live from the Bus or from the
// log; it is not safe for concurrent use.
type Detector struct {
	w     Watch
	cfg   detectorConfig
	keys  []string // service keys ("reviews.default") the traffic is counted under
	hosts []string

	failover, failback watchState
}

type watchState struct {
	step     string
	armed    bool
	at       time.Duration // Elapsed of the step's step.started
	done     bool
	prior    string // the cluster that answered most in the last decided interval before the step
	seen     int    // samples after the step
	best     float64
	lastMain string // majority cluster of the latest decided interval
}

// NewDetector prepares a Detector for w.
func NewDetector(w Watch, opts ...DetectorOption) (*Detector, error) {
	cfg := detectorConfig{share: DefaultShare, minRequests: DefaultMinRequests}
	for _, o := range opts {
		o(&cfg)
	}
	switch {
	case w.Service == "":
		return nil, fmt.Errorf("failover detector: no service to watch")
	case w.From == "" || w.To == "":
		return nil, fmt.Errorf("failover detector for %s: both clusters are needed (from %q, to %q)", w.Service, w.From, w.To)
	case w.From == w.To:
		return nil, fmt.Errorf("failover detector for %s: from and to are both %s", w.Service, w.From)
	case cfg.share <= 0 || cfg.share >= 1:
		return nil, fmt.Errorf("failover detector for %s: share %v must be between 0 and 1", w.Service, cfg.share)
	case cfg.minRequests < 1:
		return nil, fmt.Errorf("failover detector for %s: minimum requests %d must be at least 1", w.Service, cfg.minRequests)
	}
	if w.Namespace == "" {
		w.Namespace = "default"
	}
	d := &Detector{w: w, cfg: cfg}
	d.keys = []string{w.Service + "." + w.Namespace}
	for _, h := range w.Hosts {
		d.hosts = append(d.hosts, h)
		if k := stats.ServiceKey(h); k != h && !slices.Contains(d.keys, k) {
			d.keys = append(d.keys, k)
		}
	}
	d.failover.step, d.failback.step = w.FailoverAfter, w.FailbackAfter
	return d, nil
}

// Observe reads the next event of the run and returns the failover.detected and
// failback.detected events it completes, if any (each is returned once). Their Time
// and Elapsed are those of the sample that decided them; a Bus publishing them sets
// its own.
func (d *Detector) Observe(e event.Event) []event.Event {
	switch e.Type {
	case event.StepStarted:
		var st event.Step
		if e.Decode(&st) != nil {
			return nil
		}
		for _, ws := range []*watchState{&d.failover, &d.failback} {
			if ws.step != "" && ws.step == st.Name && !ws.armed {
				ws.armed, ws.at = true, e.Elapsed
				ws.prior = ws.lastMain
			}
		}
	case event.StatsSample:
		if !slices.Contains(d.w.ClientClusters(), e.Cluster) {
			return nil
		}
		var s event.Sample
		if e.Decode(&s) != nil || !d.observes(e, s) {
			return nil
		}
		return d.sample(e, s)
	}
	return nil
}

func (d *Detector) observes(e event.Event, s event.Sample) bool {
	return d.cfg.workload == "" || ObservedBy(e, s, d.cfg.workload)
}

// ObservedBy reports whether a sample comes from the observed workload: the
// Scraper's Source is "stats/<workload>"; the payload's Workload may be the
// workload or its Deployment's name.
func ObservedBy(e event.Event, s event.Sample, workload string) bool {
	return s.Workload == workload || e.Source == "stats/"+workload
}

func (d *Detector) sample(e event.Event, s event.Sample) []event.Event {
	byCluster, basis := d.answered(e, s)
	var total int64
	for _, n := range byCluster {
		total += n
	}
	decided := total >= d.cfg.minRequests
	main := ""
	if decided {
		main = majority(byCluster)
	}
	var out []event.Event
	for _, k := range []struct {
		ws       *watchState
		typ      event.Type
		awaited  string
		from, to string
	}{
		{&d.failover, event.FailoverDetected, d.w.To, d.w.From, d.w.To},
		{&d.failback, event.FailbackDetected, d.w.From, d.w.To, d.w.From},
	} {
		ws := k.ws
		if !ws.armed || ws.done || e.Elapsed <= ws.at {
			continue
		}
		ws.seen++
		if !decided {
			continue
		}
		got := byCluster[k.awaited]
		share := float64(got) / float64(total)
		ws.best = max(ws.best, share)
		if share <= d.cfg.share {
			continue
		}
		ws.done = true
		f := event.Failover{
			Service: d.w.Service, From: k.from, To: k.to, After: ws.step,
			Took: e.Elapsed - ws.at, Resolution: s.Interval,
			Basis: string(basis), Served: got, Total: total,
		}
		ev := event.New(k.typ, d.w.From, DetectorSource, f)
		ev.Time, ev.Elapsed = e.Time, e.Elapsed
		out = append(out, ev)
	}
	if decided {
		d.failover.lastMain, d.failback.lastMain = main, main
	}
	return out
}

// answered attributes the sample's answered requests to the service by Kubernetes
// cluster, preferring the identity of the answering workload.
func (d *Detector) answered(e event.Event, s event.Sample) (map[string]int64, stats.Source) {
	return answeredBy(e, s, d.matches)
}

func answeredBy(e event.Event, s event.Sample, match func(host string) bool) (map[string]int64, stats.Source) {
	byIstio := map[string]int64{}
	for host, byCluster := range s.Served {
		if !match(host) {
			continue
		}
		for cl, n := range byCluster {
			if cl == "" || cl == "unknown" || n <= 0 {
				continue
			}
			byIstio[cl] += n
		}
	}
	if len(byIstio) > 0 {
		return byIstio, stats.SourceIstio
	}
	byEnvoy := map[string]int64{}
	for name, cd := range s.Clusters {
		ec, ok := stats.ParseClusterName(name, e.Cluster)
		if !ok || ec.Direction != "outbound" || ec.KubeCluster == "" || !match(ec.Host) {
			continue
		}
		// Requests counts every attempt; the 5xx answers, final or
		// retried, answered nothing.
		if n := cd.Requests - cd.Upstream5xx - cd.Retried5xx; n > 0 {
			byEnvoy[ec.KubeCluster] += n
		}
	}
	return byEnvoy, stats.SourceEnvoyCluster
}

// matches reports whether host (an Envoy cluster's host or an
// istio_requests_total destination_service) carries the watched service's traffic.
func (d *Detector) matches(host string) bool {
	return slices.Contains(d.hosts, host) || slices.Contains(d.keys, stats.ServiceKey(host))
}

// majority is the cluster that answered the most, ties broken by name so that the
// result does not depend on map order.
func majority(byCluster map[string]int64) string {
	best, bestN := "", int64(-1)
	for cl, n := range byCluster {
		if n > bestN || (n == bestN && strings.Compare(cl, best) < 0) {
			best, bestN = cl, n
		}
	}
	return best
}

// Outcome is what a Detector knows of one of its watches once the run is read,
// for a report to explain a failover that was not detected.
type Outcome struct {
	Armed bool          // the watch's step started
	At    time.Duration // when it started
	Prior string        // majority cluster before the step, "" when undecided
	Seen  int           // samples after the step
	Best  float64       // highest share the awaited cluster reached after the step
}

// Outcome returns what the Detector saw of its failover watch, or of its
// failback watch when failback is true.
func (d *Detector) Outcome(failback bool) Outcome {
	ws := d.failover
	if failback {
		ws = d.failback
	}
	return Outcome{Armed: ws.armed, At: ws.at, Prior: ws.prior, Seen: ws.seen, Best: ws.best}
}
