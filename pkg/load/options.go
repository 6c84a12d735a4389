package load

import (
	"crypto/tls"
	"log/slog"
	"net/http"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"

	"github.com/meshdrill/drill/pkg/event"
)

// Option sets one of an Attack's knobs. Defaults follow the `vegeta attack` command's,
// so that a drill's load and a vegeta run with the same flags behave alike.
type Option func(*config)

type config struct {
	shape          Shape
	duration       time.Duration
	durationSet    bool
	timeout        time.Duration
	connections    int
	maxConnections int
	workers        uint64
	maxWorkers     uint64
	http2          bool
	keepAlive      bool
	tls            *tls.Config
	headers        http.Header
	window         time.Duration
	degraded       *DegradedWhen
	resultsFile    string
	logger         *slog.Logger
	cluster        string
	guards         []Guard
	onTrip         func(event.GuardTrip)
}

func defaults() config {
	return config{
		shape:          Constant(vegeta.Rate{Freq: 50, Per: time.Second}), // vegeta attack -rate default
		timeout:        vegeta.DefaultTimeout,
		connections:    vegeta.DefaultConnections,
		maxConnections: vegeta.DefaultMaxConnections,
		workers:        vegeta.DefaultWorkers,
		maxWorkers:     vegeta.DefaultMaxWorkers,
		http2:          true, // vegeta attack -http2 default
		keepAlive:      true,
		window:         time.Second,
		logger:         slog.New(slog.DiscardHandler),
	}
}

// WithRate sets how the request rate changes: Constant, Ramp or Steps.
// Default Constant 50/s, as `vegeta attack`.
func WithRate(s Shape) Option { return func(c *config) { c.shape = s } }

// WithDuration sets how long requests are sent. Zero sends until the context passed to
// Run is cancelled. Default: the sum of the steps for a Steps shape, zero otherwise.
func WithDuration(d time.Duration) Option {
	return func(c *config) { c.duration, c.durationSet = d, true }
}

// WithTimeout bounds each request, from sending to reading the body. It also bounds how
// late a window is published, since a window waits for every request sent in it.
// Default 30 s, as vegeta.
func WithTimeout(d time.Duration) Option { return func(c *config) { c.timeout = d } }

// WithConnections sets the maximum number of idle connections kept per host
// (vegeta -connections). Default 10000.
func WithConnections(n int) Option { return func(c *config) { c.connections = n } }

// WithMaxConnections caps the connections per host, idle or busy
// (vegeta -max-connections). Default 0: no cap.
func WithMaxConnections(n int) Option { return func(c *config) { c.maxConnections = n } }

// WithWorkers sets the number of workers vegeta starts with; it adds more when they
// are all busy, up to WithMaxWorkers. Default 10.
func WithWorkers(n uint64) Option { return func(c *config) { c.workers = n } }

// WithMaxWorkers caps the workers, and so the requests in flight. Default: no cap.
func WithMaxWorkers(n uint64) Option { return func(c *config) { c.maxWorkers = n } }

// WithHTTP2 allows HTTP/2 with servers that offer it over TLS. Default true, as
// `vegeta attack`.
func WithHTTP2(enabled bool) Option { return func(c *config) { c.http2 = enabled } }

// WithTLSConfig sets the TLS configuration for https targets, e.g. the root CA of a
// gateway's self-signed certificate. Default: the system's roots, as vegeta.
func WithTLSConfig(c *tls.Config) Option { return func(cfg *config) { cfg.tls = c } }

// WithKeepAlive reuses connections between requests. Default true. Without it every
// request opens a new connection, which is what a fleet of fresh clients looks like to
// the gateway.
func WithKeepAlive(enabled bool) Option { return func(c *config) { c.keepAlive = enabled } }

// WithHeaders adds headers to every request. Use Target.Host for the Host header.
func WithHeaders(h http.Header) Option {
	return func(c *config) {
		if c.headers == nil {
			c.headers = http.Header{}
		}
		for k, vs := range h {
			for _, v := range vs {
				c.headers.Add(k, v)
			}
		}
	}
}

// WithWindow sets the length of a load.window. Default 1 s.
func WithWindow(d time.Duration) Option { return func(c *config) { c.window = d } }

// WithDegraded counts 2xx answers whose body matches d as degraded.
func WithDegraded(d DegradedWhen) Option { return func(c *config) { c.degraded = &d } }

// WithResultsFile writes every result to path in vegeta's gob encoding, for
// `vegeta report` and `vegeta plot`. Bodies are left out: they would make the file grow
// with rate × duration × page size, and vegeta's reports do not read them.
func WithResultsFile(path string) Option { return func(c *config) { c.resultsFile = path } }

// WithLogger sets where the attack logs: its start and end at Info, each window at
// Debug, distinct transport errors at Warn. Default: nowhere.
func WithLogger(l *slog.Logger) Option {
	return func(c *config) {
		if l != nil {
			c.logger = l
		}
	}
}

// WithGuards watches every answer with the guards; the first that trips is
// passed to onTrip, once, on the goroutine that collects results: onTrip must
// not block (the load goes on; stopping it is the caller's, by cancelling
// Run's context).
func WithGuards(gs []Guard, onTrip func(event.GuardTrip)) Option {
	return func(c *config) { c.guards, c.onTrip = append([]Guard(nil), gs...), onTrip }
}

// WithCluster names the cluster the target is in, set on every event published.
func WithCluster(name string) Option { return func(c *config) { c.cluster = name } }
