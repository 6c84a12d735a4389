package stats

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/meshdrill/drill/pkg/event"
)

// Defaults of a Scraper.
const (
	// DefaultInterval matches the scenario's default `every: 1s`: failover in the
	// seed drill must show within 10 s, so a 1 s resolution leaves room.
	DefaultInterval = time.Second
	// DefaultTimeout bounds one scrape. A sidecar that knows a large mesh prints
	// megabytes of stats; a port-forward adds a round trip per request.
	DefaultTimeout = 5 * time.Second
	// DefaultPath is Envoy's Prometheus stats page. Istio also serves it on the
	// pod's port 15090; the JSON fallback exists only on the admin port (15000).
	DefaultPath = "/stats/prometheus"
	// DefaultMaxBody bounds a stats page held in memory.
	DefaultMaxBody = 64 << 20
)

// Target is the Envoy a Scraper reads and what the events say about it.
type Target struct {
	Workload string // the observed workload, e.g. "productpage"
	Pod      string // its pod, when known
	Cluster  string // the Kubernetes cluster it runs in; Event.Cluster
	// AdminURL is the base URL of the Envoy admin endpoint, e.g.
	// "http://127.0.0.1:41234" for a port-forward of the pod's 15000. A path is
	// kept as a prefix (an API-server pod proxy URL works).
	AdminURL string
	// Client, when set, makes the requests: one with a custom transport reaches a
	// port-forward or a pod through whatever dialer the provider has. Without it
	// Transport is used, and without that http.DefaultTransport.
	Client    *http.Client
	Transport http.RoundTripper
}

// Option configures a Scraper.
type Option func(*scrapeConfig)

type scrapeConfig struct {
	interval     time.Duration
	timeout      time.Duration
	path         string
	jsonFallback bool
	maxBody      int64
	log          *slog.Logger
	hosts        bool
}

// WithInterval sets the time between scrapes (default DefaultInterval).
func WithInterval(d time.Duration) Option { return func(c *scrapeConfig) { c.interval = d } }

// WithTimeout bounds one scrape (default DefaultTimeout).
func WithTimeout(d time.Duration) Option { return func(c *scrapeConfig) { c.timeout = d } }

// WithPath sets the stats path under AdminURL (default DefaultPath). A path that
// serves JSON (JSONPath) is read as JSON.
func WithPath(p string) Option { return func(c *scrapeConfig) { c.path = p } }

// WithJSONFallback turns the JSON fallback on or off (default on): when the
// Prometheus page cannot be parsed, the Scraper reads JSONPath instead, and keeps
// doing so for the rest of its life.
func WithJSONFallback(on bool) Option { return func(c *scrapeConfig) { c.jsonFallback = on } }

// WithMaxBody bounds the size of a stats page (default DefaultMaxBody).
func WithMaxBody(n int64) Option { return func(c *scrapeConfig) { c.maxBody = n } }

// WithHosts turns the reading of Envoy's /clusters?format=json on or off
// (default on): after each stats scrape the Scraper reads the Envoy's hosts
// and publishes envoy.host-ejected, envoy.host-returned and
// envoy.priority-changed for what changed since the last page.
func WithHosts(on bool) Option { return func(c *scrapeConfig) { c.hosts = on } }

// WithLogger sets where the Scraper logs (default slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(c *scrapeConfig) { c.log = l } }

// Scraper reads one Envoy's stats on an interval and publishes what changed.
type Scraper struct {
	target  Target
	pub     event.Publisher
	cfg     scrapeConfig
	client  *http.Client
	base    string
	source  string
	useJSON atomic.Bool // the JSON fallback took over
	running atomic.Bool
}

// NewScraper prepares a Scraper of target publishing on pub. It does no I/O.
func NewScraper(target Target, pub event.Publisher, opts ...Option) (*Scraper, error) {
	cfg := scrapeConfig{
		interval:     DefaultInterval,
		timeout:      DefaultTimeout,
		path:         DefaultPath,
		jsonFallback: true,
		maxBody:      DefaultMaxBody,
		log:          slog.Default(),
		hosts:        true,
	}
	for _, o := range opts {
		o(&cfg)
	}
	who := target.Workload
	if who == "" {
		who = "(unnamed workload)"
	}
	switch {
	case pub == nil:
		return nil, fmt.Errorf("stats scraper for %s: no event publisher", who)
	case cfg.interval <= 0:
		return nil, fmt.Errorf("stats scraper for %s: interval %v must be positive", who, cfg.interval)
	case cfg.timeout <= 0:
		return nil, fmt.Errorf("stats scraper for %s: timeout %v must be positive", who, cfg.timeout)
	case cfg.maxBody <= 0:
		return nil, fmt.Errorf("stats scraper for %s: max body %d must be positive", who, cfg.maxBody)
	case !strings.HasPrefix(cfg.path, "/"):
		return nil, fmt.Errorf("stats scraper for %s: path %q must start with /", who, cfg.path)
	}
	u, err := url.Parse(target.AdminURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("stats scraper for %s: admin URL %q is not an http(s) URL with a host; the cluster provider should give one like http://127.0.0.1:15000", who, target.AdminURL)
	}
	client := target.Client
	if client == nil {
		rt := target.Transport
		if rt == nil {
			rt = http.DefaultTransport
		}
		client = &http.Client{Transport: rt}
	}
	return &Scraper{
		target: target,
		pub:    pub,
		cfg:    cfg,
		client: client,
		base:   strings.TrimSuffix(u.String(), "/"),
		source: "stats/" + target.Workload,
	}, nil
}

// Scrape reads the stats page once. It is safe to call while Run runs.
func (s *Scraper) Scrape(ctx context.Context) (*Snapshot, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.timeout)
	defer cancel()
	path := s.cfg.path
	if s.useJSON.Load() {
		path = JSONPath
	}
	start := time.Now()
	body, err := s.get(ctx, path)
	if err != nil {
		return nil, s.wrap(err)
	}
	snap, perr := Parse(body)
	if perr != nil && s.cfg.jsonFallback && path != JSONPath {
		start = time.Now()
		snap, err = s.fallback(ctx)
		if err != nil {
			return nil, s.wrap(fmt.Errorf("GET %s%s: %w; the JSON fallback failed too: %v", s.base, path, perr, err))
		}
		s.useJSON.Store(true)
		s.cfg.log.Warn("Envoy Prometheus stats unreadable; reading the JSON stats from now on",
			"workload", s.target.Workload, "pod", s.target.Pod, "cluster", s.target.Cluster, "error", perr)
		perr = nil
	}
	if perr != nil {
		return nil, s.wrap(fmt.Errorf("GET %s%s: %w", s.base, path, perr))
	}
	snap.Time = start
	return snap, nil
}

// ScrapeHosts reads the Envoy's /clusters?format=json once.
func (s *Scraper) ScrapeHosts(ctx context.Context) (Hosts, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.timeout)
	defer cancel()
	body, err := s.get(ctx, ClustersPath)
	if err != nil {
		return nil, s.wrap(err)
	}
	h, err := ParseClusters(body)
	if err != nil {
		return nil, s.wrap(fmt.Errorf("GET %s%s: %w", s.base, ClustersPath, err))
	}
	return h, nil
}

func (s *Scraper) fallback(ctx context.Context) (*Snapshot, error) {
	body, err := s.get(ctx, JSONPath)
	if err != nil {
		return nil, err
	}
	return ParseJSON(body)
}

func (s *Scraper) wrap(err error) error {
	return fmt.Errorf("scrape Envoy stats of %s (pod %q, cluster %q): %w", s.target.Workload, s.target.Pod, s.target.Cluster, err)
}

// get fetches base+path whole, bounded by maxBody.
func (s *Scraper) get(ctx context.Context, path string) ([]byte, error) {
	u := s.base + path
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", u, err)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w; is the Envoy admin port reachable (port-forward alive, pod running)?", u, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, s.cfg.maxBody+1))
	if err != nil {
		return nil, fmt.Errorf("GET %s: reading the body: %w", u, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: HTTP %s: %s", u, resp.Status, snippet(body))
	}
	if int64(len(body)) > s.cfg.maxBody {
		return nil, fmt.Errorf("GET %s: the stats page is larger than %d bytes; raise it with WithMaxBody or narrow the page with Envoy's filter= parameter", u, s.cfg.maxBody)
	}
	return body, nil
}

// snippet is the start of an error body, fit for one log line.
func snippet(b []byte) string {
	const max = 200
	if len(b) > max {
		b = b[:max]
	}
	for len(b) > 0 && !utf8.Valid(b) {
		b = b[:len(b)-1]
	}
	s := strings.Join(strings.Fields(string(b)), " ")
	if s == "" {
		return "(empty body)"
	}
	return s
}

// Run scrapes until ctx is done and returns nil then; it returns an error only
// when the Scraper is already running. The first successful scrape is the
// baseline and publishes nothing; every later one publishes a stats.sample with
// the change since the previous success (the first sample holds every Envoy
// cluster, later ones the clusters that moved), preceded by a stats.reset when
// counters went back, and followed by an envoy.outlier-ejection per Envoy cluster
// whose active ejections changed. A failed scrape publishes a
// stats.scrape-failed and keeps the previous success as the baseline, so the
// next sample covers the gap. Only the latest snapshot is kept.
func (s *Scraper) Run(ctx context.Context) error {
	if !s.running.CompareAndSwap(false, true) {
		return fmt.Errorf("stats scraper for %s is already running", s.target.Workload)
	}
	defer s.running.Store(false)

	ticker := time.NewTicker(s.cfg.interval)
	defer ticker.Stop()
	var prev *Snapshot
	var hosts Hosts
	hostFailures := 0
	firstSample, failures := true, 0
	for {
		snap, err := s.Scrape(ctx)
		switch {
		case ctx.Err() != nil:
			return nil
		case err != nil:
			failures++
			s.publish(event.StatsScrapeFailed, event.ScrapeFailure{Workload: s.target.Workload, Pod: s.target.Pod, Error: err.Error()})
			if failures == 1 {
				s.cfg.log.Warn("Envoy stats scrape failed; retrying every interval", "workload", s.target.Workload, "pod", s.target.Pod, "cluster", s.target.Cluster, "error", err)
			}
		default:
			if failures > 0 {
				s.cfg.log.Info("Envoy stats scrape recovered", "workload", s.target.Workload, "failedScrapes", failures)
				failures = 0
			}
			for _, w := range snap.Warnings {
				s.cfg.log.Debug("Envoy stats page quirk", "workload", s.target.Workload, "warning", w)
			}
			if prev != nil {
				s.emit(prev, snap, firstSample)
				firstSample = false
			}
			prev = snap
			if s.cfg.hosts {
				cur, err := s.ScrapeHosts(ctx)
				switch {
				case ctx.Err() != nil:
					return nil
				case err != nil:
					// The stats go on without the hosts: an Envoy or a proxy in
					// between may not serve the page.
					if hostFailures++; hostFailures == 1 {
						s.cfg.log.Warn("Envoy /clusters unreadable; its hosts' ejections are not recorded until it answers", "workload", s.target.Workload, "pod", s.target.Pod, "cluster", s.target.Cluster, "error", err)
					}
				default:
					hostFailures = 0
					if hosts != nil {
						for _, c := range HostChanges(hosts, cur) {
							c.Change.Workload, c.Change.Pod = s.target.Workload, s.target.Pod
							s.publish(c.Type, c.Change)
						}
					}
					hosts = cur
				}
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-ticker.C:
		}
	}
}

// emit publishes what happened between prev and cur and carries prev's counters
// that cur lacks into cur, which becomes the next baseline.
func (s *Scraper) emit(prev, cur *Snapshot, all bool) {
	d := diff(prev, cur, all)
	if d.HasReset() {
		s.cfg.log.Info("Envoy counters went back; counting from zero", "workload", s.target.Workload,
			"restarted", d.Restarted, "clusters", d.ResetClusters, "hosts", d.ResetServed)
		s.publish(event.StatsReset, d.ResetSample(s.target.Workload, s.target.Pod))
	}
	s.publish(event.StatsSample, d.Sample(s.target.Workload, s.target.Pod))
	for _, e := range Ejections(prev, cur) {
		s.publish(event.OutlierEjection, event.Ejection{
			Workload: s.target.Workload, EnvoyCluster: e.EnvoyCluster, Active: e.Active, Previous: e.Previous,
		})
	}
	CarryForward(prev, cur, d)
}

func (s *Scraper) publish(t event.Type, payload any) {
	s.pub.Publish(event.New(t, s.target.Cluster, s.source, payload))
}
