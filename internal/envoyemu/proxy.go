package envoyemu

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
)

// Ports of an Istio sidecar that the emulated proxy keeps.
const (
	// AdminPort is Envoy's admin port in an Istio sidecar.
	AdminPort = 15000
	// OutboundPort is where the sidecar takes the pod's outbound traffic
	// (Istio's virtualOutbound listener); workloads reach it as an HTTP
	// proxy.
	OutboundPort = 15001
	// HealthPort is the Istio agent's status port: /healthz/ready.
	HealthPort = 15021
	// PrometheusPort is the merged Prometheus endpoint: /stats/prometheus.
	PrometheusPort = 15090
)

// Inbound is a port of the pod that its sidecar serves, as Istio's inbound
// listener does after iptables redirected the connection: it records the
// request (istio_requests_total, reporter=destination), answers the peer
// metadata exchange, and hands the request to the application — in process
// (Handler) or at an address on loopback (Target, host:port).
type Inbound struct {
	Port    int
	Handler http.Handler
	Target  string
}

// Option tunes a Proxy.
type Option func(*options)

type options struct {
	log          *slog.Logger
	clock        Clock
	seed         *uint64
	adminPort    int
	outboundPort int
	inbound      []Inbound
	record       func(*discoveryv3.DiscoveryResponse)
	sweepEvery   time.Duration
	passthrough  http.RoundTripper
	statusPorts  bool
	quit         func()
	secrets      SecretSource
}

// WithQuit makes the admin endpoint's POST /quitquitquit call quit, as
// Envoy exits on it (pilot-agent calls it when the pod stops).
func WithQuit(quit func()) Option { return func(o *options) { o.quit = quit } }

// WithLogger sends the proxy's log (NACKs, broken streams, rejected
// endpoints) to l. Default: discarded.
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.log = l } }

// WithClock sets the clock outlier detection runs on (default: the real
// one).
func WithClock(c Clock) Option { return func(o *options) { o.clock = c } }

// WithSeed makes the proxy's random choices (priority, host, weighted
// cluster, retry back-off) repeatable.
func WithSeed(seed uint64) Option { return func(o *options) { o.seed = &seed } }

// WithAdminPort moves the admin endpoint from 15000 (0: any free port).
func WithAdminPort(port int) Option { return func(o *options) { o.adminPort = port } }

// WithOutboundPort moves the outbound proxy listener from 15001 (0: any
// free port).
func WithOutboundPort(port int) Option { return func(o *options) { o.outboundPort = port } }

// WithInbound adds a port the sidecar serves for its pod.
func WithInbound(in ...Inbound) Option {
	return func(o *options) { o.inbound = append(o.inbound, in...) }
}

// WithPassthrough sets the transport for traffic Istio passes through
// untouched (PassthroughCluster, ALLOW_ANY): on the local provider the node's
// kube-proxy-like transport. Without it such traffic gets a 404 (NR)
// unless its destination is a pod address.
func WithPassthrough(rt http.RoundTripper) Option { return func(o *options) { o.passthrough = rt } }

// WithoutStatusPorts leaves out the sidecar's health (15021,
// /healthz/ready) and merged Prometheus (15090, /stats/prometheus)
// listeners, for tests that run several proxies on one address.
func WithoutStatusPorts() Option { return func(o *options) { o.statusPorts = false } }

// WithRecorder hands every xDS response to f before it is applied; the
// fixture recorder uses it.
func WithRecorder(f func(*discoveryv3.DiscoveryResponse)) Option {
	return func(o *options) { o.record = f }
}

// Proxy is one emulated Envoy: a sidecar or a gateway.
type Proxy struct {
	id       Identity
	xdsAddr  string
	opts     options
	log      *slog.Logger
	node     *corev3.Node
	store    *Store
	ads      *adsClient
	listenIP netip.Addr
	addr     addressing
	// boot is the bootstrap of a proxy inside a pod (NewFromBootstrap).
	boot     *Bootstrap
	inbound  sync.Map // port → http.Handler, the captured inbound ports
	peerMeta string
	started  time.Time
	rndMu    sync.Mutex
	rndSrc   *rand.Rand
	self     *peer
	// secrets holds the SDS secrets; nil without WithSecrets (the
	// plaintext emulation).
	secrets *secretStore

	cfg     *configState
	routing atomic.Pointer[routing]

	mu       sync.Mutex
	servers  map[string]*server    // by listener name (admin, outbound, inbound_<port>, LDS names)
	conns    map[net.Conn]struct{} // connections being classified or passed through (demux.go)
	stopped  bool
	paused   bool // a gateway told to stop serving (SetServing)
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	ready    chan struct{}
	readyOne sync.Once
	stopOnce sync.Once

	upstreams sync.Map // cluster name → *http.Transport

	// noXDS starts the proxy without its ADS client: tests feed it.
	noXDS bool
	// flushEvery is the stats flush interval.
	flushEvery time.Duration
}

// server is one bound listener of the proxy.
type server struct {
	name string
	ln   net.Listener
	srv  *http.Server
}

// New builds a proxy for id that takes its configuration from the istiod at
// xdsAddr (host:port of istiod's plaintext gRPC port). It binds nothing
// until Start.
func New(id Identity, xdsAddr string, opts ...Option) (*Proxy, error) {
	if err := id.validate(); err != nil {
		return nil, err
	}
	if xdsAddr == "" {
		return nil, fmt.Errorf("proxy %s: no istiod address; give the cluster's istiod gRPC address (local.ControlPlane.IstiodGRPCAddr)", id.NodeID())
	}
	node, err := id.node()
	if err != nil {
		return nil, err
	}
	listenIP, err := LoopbackTwin(id.IP)
	if err != nil {
		return nil, fmt.Errorf("proxy %s: %w", id.NodeID(), err)
	}
	return newProxy(id, xdsAddr, node, listenIP, addressing{}, opts)
}

// NewFromBootstrap builds the proxy an Envoy started with bootstrap b would
// be, inside a pod: the node, admin address, ADS target and static
// listeners and clusters are b's, every address is dialled as it is, and a
// sidecar takes the traffic istio-init's iptables rules capture (outbound
// on 15001, inbound on 15006) by its original destination.
func NewFromBootstrap(b *Bootstrap, opts ...Option) (*Proxy, error) {
	id, err := b.Identity()
	if err != nil {
		return nil, err
	}
	o := []Option{WithoutStatusPorts(), WithAdminPort(int(b.Admin.Port()))}
	if b.SDS != "" {
		// Certificates come from the bootstrap's sds-grpc cluster
		// (pilot-agent's SDS server), as Envoy's TLS contexts name it.
		o = append(o, WithSecrets(&SDSSource{Target: b.SDS, Node: b.Node}))
	}
	o = append(o, opts...)
	p, err := newProxy(id, b.XDS, b.Node, netip.IPv4Unspecified(), addressing{podNetwork: true}, o)
	if err != nil {
		return nil, err
	}
	p.boot = b
	if err := p.cfg.setStatic(b.Listeners, b.Clusters); err != nil {
		return nil, fmt.Errorf("bootstrap %s: static_resources: %w", b.Path, err)
	}
	return p, nil
}

func newProxy(id Identity, xdsAddr string, node *corev3.Node, listenIP netip.Addr, addr addressing, opts []Option) (*Proxy, error) {
	o := options{adminPort: AdminPort, outboundPort: OutboundPort, clock: realClock{}, sweepEvery: 100 * time.Millisecond, statusPorts: true}
	for _, opt := range opts {
		opt(&o)
	}
	if o.log == nil {
		o.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	pc, err := id.parseProxyConfig()
	if err != nil {
		return nil, err
	}
	m, err := newStatsMatcher(&id, pc)
	if err != nil {
		return nil, err
	}
	pm, err := id.peerHeaders()
	if err != nil {
		return nil, fmt.Errorf("proxy %s: peer metadata: %w", id.NodeID(), err)
	}
	p := &Proxy{
		id: id, xdsAddr: xdsAddr, opts: o, node: node, store: newStore(m), listenIP: listenIP, peerMeta: pm, addr: addr,
		log:     o.log.With("proxy", id.NodeID()),
		servers: map[string]*server{},
		ready:   make(chan struct{}),
		self:    id.selfPeer(),
	}
	if o.seed != nil {
		p.rndSrc = rand.New(rand.NewPCG(*o.seed, *o.seed^0x9e3779b97f4a7c15))
	}
	p.flushEvery = DefaultFlushInterval
	if v := id.Annotations["sidecar.istio.io/statsFlushInterval"]; v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return nil, fmt.Errorf("pod %s/%s: annotation sidecar.istio.io/statsFlushInterval %q is not a duration", id.Namespace, id.Pod, v)
		}
		p.flushEvery = d
	}
	if o.secrets != nil {
		p.secrets = newSecretStore()
	}
	p.cfg = newConfigState(p)
	p.routing.Store(&routing{})
	p.ads = newADSClient(xdsAddr, node, p.cfg, p.log)
	p.ads.record = o.record
	p.initServerStats()
	return p, nil
}

func (p *Proxy) rnd() uint64 {
	if p.rndSrc == nil {
		return rand.Uint64()
	}
	p.rndMu.Lock()
	defer p.rndMu.Unlock()
	return p.rndSrc.Uint64()
}

func (p *Proxy) percent(v uint32) bool {
	if v >= 100 {
		return true
	}
	return uint32(p.rnd()%100) < v
}

func (p *Proxy) deps() clusterDeps {
	return clusterDeps{store: p.store, clock: p.opts.clock, rnd: p.rnd, log: p.log, percent: p.percent, addr: p.addr}
}

// Identity is who the proxy is.
func (p *Proxy) Identity() Identity { return p.id }

// Address is the loopback address the proxy listens on: its pod's twin.
func (p *Proxy) Address() netip.Addr { return p.listenIP }

// Stats is the proxy's stats store.
func (p *Proxy) Stats() *Store { return p.store }

// AdminURL is the base URL of the admin endpoint (/stats/prometheus,
// /clusters, …); empty before Start.
func (p *Proxy) AdminURL() string { return p.serverURL("admin") }

// OutboundURL is the sidecar's outbound proxy listener, for
// http.Transport.Proxy; empty before Start.
func (p *Proxy) OutboundURL() string { return p.serverURL("outbound") }

func (p *Proxy) serverURL(name string) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if s := p.servers[name]; s != nil {
		return "http://" + s.ln.Addr().String()
	}
	return ""
}

// Transport is the http.RoundTripper a workload sends its outbound calls
// through: every request goes to the sidecar's outbound listener as to an
// HTTP proxy, absolute-form, so the sidecar sees the destination host and
// port as Envoy would after iptables redirection.
func (p *Proxy) Transport() http.RoundTripper {
	u, _ := url.Parse(p.OutboundURL())
	return &http.Transport{
		Proxy:               http.ProxyURL(u),
		MaxIdleConnsPerHost: 64,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}
}

// Start binds the proxy's listeners (admin, and for a sidecar its outbound
// and inbound ports) and connects to istiod. It returns once bound; the
// configuration arrives in the background (WaitReady). The proxy runs
// until Stop, independently of ctx, which bounds the start only.
func (p *Proxy) Start(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	p.started = time.Now()
	rctx, cancel := context.WithCancel(context.Background())
	p.mu.Lock()
	p.cancel = cancel
	p.mu.Unlock()
	if err := p.bindAll(); err != nil {
		p.closeServers()
		cancel()
		return err
	}
	if src, ok := p.opts.secrets.(*SDSSource); ok && src.Log == nil {
		src.Log = p.log
	}
	if p.opts.secrets != nil {
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			set := func(sec *tlsv3.Secret) error {
				if err := p.secrets.set(sec); err != nil {
					return err
				}
				p.cfg.recheckReady()
				return nil
			}
			if err := p.opts.secrets.Run(rctx, set); err != nil {
				p.log.Error("secret source stopped", "err", err)
			}
		}()
	}
	if !p.noXDS {
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			if err := p.ads.run(rctx); err != nil {
				p.log.Error("xDS client stopped", "err", err)
			}
		}()
	}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		p.sweepLoop(rctx)
	}()
	return nil
}

// bindAll binds the admin endpoint and the listeners the proxy serves
// before any configuration: for a sidecar its outbound and inbound ports;
// inside a pod the bootstrap's static listeners and the two capture
// listeners.
func (p *Proxy) bindAll() error {
	admin := netip.AddrPortFrom(p.listenIP, uint16(p.opts.adminPort))
	if p.boot != nil {
		admin = p.boot.Admin
	}
	if err := p.listenAt("admin", admin, p.adminHandler(), nil, 0); err != nil {
		return err
	}
	if p.opts.statusPorts && p.opts.adminPort != 0 {
		for _, sp := range []struct {
			name string
			port int
		}{{"health", HealthPort}, {"prometheus", PrometheusPort}} {
			if err := p.listen(sp.name, sp.port, p.statusHandler(), 0); err != nil {
				return err
			}
		}
	}
	if p.boot != nil {
		for _, name := range sortedKeys(p.cfg.staticListeners) {
			li := p.cfg.staticListeners[name]
			if !li.bind || li.port == 0 {
				continue
			}
			h := p.gatewayHandler(name)
			quiet := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				h.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), noIstioStatsKey{}, true)))
			})
			if err := p.listenAt("static_"+name, netip.AddrPortFrom(li.addr, uint16(li.port)), quiet, nil, 0); err != nil {
				return err
			}
		}
	}
	if p.id.Kind != Sidecar {
		return nil
	}
	if p.boot != nil {
		if err := p.listenAt("virtualOutbound", netip.AddrPortFrom(p.listenIP, OutboundPort), http.HandlerFunc(p.serveOutbound), withOriginalDst, 0); err != nil {
			return err
		}
		return p.listenAt("virtualInbound", netip.AddrPortFrom(p.listenIP, InboundCapturePort), http.HandlerFunc(p.serveCapturedInbound), withOriginalDst, roleInbound)
	}
	if err := p.listen("outbound", p.opts.outboundPort, http.HandlerFunc(p.serveOutbound), 0); err != nil {
		return err
	}
	for _, in := range p.opts.inbound {
		h, err := p.inboundHandler(in)
		if err != nil {
			return err
		}
		if err := p.listen("inbound_"+strconv.Itoa(in.Port), in.Port, h, roleInbound); err != nil {
			return err
		}
	}
	return nil
}

// noIstioStatsKey marks requests of the bootstrap's own listeners
// (readiness, Prometheus), which Istio's stats filter does not see.
type noIstioStatsKey struct{}

// sweepLoop runs the outlier detectors' interval timers.
func (p *Proxy) sweepLoop(ctx context.Context) {
	t := time.NewTicker(p.opts.sweepEvery)
	defer t.Stop()
	lastFlush := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			for _, c := range p.routing.Load().clusters {
				if c.outlier != nil {
					c.outlier.tick()
				}
			}
			p.store.Gauge("server.uptime").Set(int64(time.Since(p.started).Seconds()))
			if time.Since(lastFlush) >= p.flushEvery {
				p.store.Flush()
				lastFlush = time.Now()
			}
		}
	}
}

// listen binds one listener on the proxy's address and serves h on it.
func (p *Proxy) listen(name string, port int, h http.Handler, role connRole) error {
	return p.listenAt(name, netip.AddrPortFrom(p.listenIP, uint16(port)), h, nil, role)
}

// listenAt binds one listener at ap and serves h on it; connCtx, when set,
// is the server's ConnContext. A listener with a role classifies each
// connection first (demux.go): TLS is terminated or passed through, and
// only HTTP reaches h.
func (p *Proxy) listenAt(name string, ap netip.AddrPort, h http.Handler, connCtx func(context.Context, net.Conn) context.Context, role connRole) error {
	addr := ap.String()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("proxy %s: listener %s on %s: %w", p.id.NodeID(), name, addr, err)
	}
	s := &server{name: name, ln: ln, srv: &http.Server{
		Handler:           h,
		ConnContext:       connCtx,
		ReadHeaderTimeout: 30 * time.Second,
		ErrorLog:          slog.NewLogLogger(p.log.Handler(), slog.LevelDebug),
	}}
	p.mu.Lock()
	if p.stopped {
		// A configuration applied while stopping binds nothing.
		p.mu.Unlock()
		ln.Close()
		return fmt.Errorf("proxy %s: stopped", p.id.NodeID())
	}
	if old := p.servers[name]; old != nil {
		p.mu.Unlock()
		ln.Close()
		return fmt.Errorf("proxy %s: listener %s bound twice", p.id.NodeID(), name)
	}
	p.servers[name] = s
	p.mu.Unlock()
	var serveLn net.Listener = ln
	if role != 0 {
		hl := newConnListener(ln)
		serveLn = hl
		lds := strings.TrimPrefix(name, "lds_")
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			p.demux(ln, hl, role, lds)
		}()
	}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		if err := s.srv.Serve(serveLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
			p.log.Error("listener stopped", "listener", name, "err", err)
		}
	}()
	return nil
}

// unlisten closes one listener.
func (p *Proxy) unlisten(name string) {
	p.mu.Lock()
	s := p.servers[name]
	delete(p.servers, name)
	p.mu.Unlock()
	if s != nil {
		s.srv.Close()
	}
}

func (p *Proxy) closeServers() {
	p.mu.Lock()
	servers := make([]*server, 0, len(p.servers))
	for _, s := range p.servers {
		servers = append(servers, s)
	}
	p.servers = map[string]*server{}
	p.mu.Unlock()
	for _, s := range servers {
		s.srv.Close()
	}
}

// Stop closes the listeners and the xDS stream and waits for every goroutine
// of the proxy. It is safe to call more than once.
func (p *Proxy) Stop(ctx context.Context) error {
	p.stopOnce.Do(func() {
		p.mu.Lock()
		cancel := p.cancel
		p.stopped = true
		p.mu.Unlock()
		if cancel != nil {
			cancel()
		}
		p.closeServers()
		p.closeTracked()
		p.upstreams.Range(func(_, v any) bool {
			v.(*http.Transport).CloseIdleConnections()
			return true
		})
	})
	done := make(chan struct{})
	go func() {
		p.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("proxy %s: stop: %w", p.id.NodeID(), ctx.Err())
	}
}

// Ready reports whether the proxy has its first full configuration: CDS and
// LDS applied, and every endpoint assignment and route configuration they
// named received (Envoy's cluster and listener warming).
func (p *Proxy) Ready() bool {
	select {
	case <-p.ready:
		return true
	default:
		return false
	}
}

// WaitReady waits until Ready or ctx ends.
func (p *Proxy) WaitReady(ctx context.Context) error {
	select {
	case <-p.ready:
		return nil
	case <-ctx.Done():
		st := p.ads.status()
		return fmt.Errorf("proxy %s: not ready (xDS connected=%v, accepted versions %v, NACKs %v %v): %w",
			p.id.NodeID(), st.Connected, st.Accepted, st.NACKs, st.LastNACK, ctx.Err())
	}
}

func (p *Proxy) markReady() {
	p.readyOne.Do(func() {
		close(p.ready)
		p.store.Gauge("server.state").Set(0) // LIVE
		p.store.Counter("listener_manager.workers_started").Inc()
		p.log.Info("proxy ready")
	})
}

func (p *Proxy) initServerStats() {
	s := p.store
	s.Gauge("server.state").Set(2) // PRE_INITIALIZING until the first configuration
	s.Gauge("server.live").Set(1)
	s.Gauge("server.concurrency").Set(2)
	s.Gauge("server.uptime")
	s.Counter("listener_manager.workers_started")
}

// transportFor returns the connection pool of a cluster: Envoy pools
// connections per cluster and host, and counts connection stats per cluster.
func (p *Proxy) transportFor(cl *cluster) *http.Transport {
	if v, ok := p.upstreams.Load(cl.name); ok {
		return v.(*http.Transport)
	}
	t := &http.Transport{
		DialContext:         p.dialer(cl),
		DialTLSContext:      p.tlsDialer(cl),
		MaxIdleConnsPerHost: 256,
		IdleConnTimeout:     time.Hour, // Istio's default idle timeout for upstream connections
		DisableCompression:  true,
	}
	v, loaded := p.upstreams.LoadOrStore(cl.name, t)
	if loaded {
		t.CloseIdleConnections()
	}
	return v.(*http.Transport)
}

// dialError marks a failure to connect, which Envoy reports as UF.
type dialError struct{ err error }

func (e *dialError) Error() string { return e.err.Error() }
func (e *dialError) Unwrap() error { return e.err }

// dialer connects to a host's loopback twin within the cluster's
// connect_timeout, charging the cluster's connection stats.
func (p *Proxy) dialer(cl *cluster) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		ts := cl.stats.t()
		if _, err := p.addr.hostPort(addr); err != nil {
			ts.cxConnectFail.Inc()
			return nil, &dialError{err}
		}
		d := net.Dialer{Timeout: cl.connectTimeout, LocalAddr: p.sourceAddr()}
		start := time.Now()
		c, err := d.DialContext(ctx, network, addr)
		if err != nil {
			ts.cxConnectFail.Inc()
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() && ctx.Err() == nil {
				ts.cxConnectTimeout.Inc()
			}
			return nil, &dialError{err}
		}
		ts.cxConnectMs.Record(float64(time.Since(start).Milliseconds()))
		ts.cxTotal.Inc()
		ts.cxActive.Add(1)
		// The host's own connection counts (/clusters cx_total, cx_active).
		h := cl.hostByDial(addr)
		if h != nil {
			h.cxTotal.Add(1)
			h.cxActive.Add(1)
		}
		return &countedConn{Conn: c, onClose: func() {
			ts.cxActive.Add(-1)
			ts.cxDestroy.Inc()
			if h != nil {
				h.cxActive.Add(-1)
			}
		}}, nil
	}
}

// sourceAddr is where the proxy's upstream connections come from. On the
// local provider that is its pod's loopback twin, as a pod's connections come
// from the pod's address, so that what filters by source (a partition's
// iptables rules) sees which cluster a connection is from; 127.0.0.1 would
// hide it. Inside a real pod the kernel picks the pod's address itself.
func (p *Proxy) sourceAddr() net.Addr {
	if p.addr.podNetwork || !p.listenIP.IsValid() || p.listenIP == netip.AddrFrom4([4]byte{127, 0, 0, 1}) {
		return nil
	}
	return &net.TCPAddr{IP: p.listenIP.AsSlice()}
}

// tlsDialer connects as dialer does, then runs the TLS handshake of the
// transport socket the request chose (upstreamTLSKey), charging Envoy's
// ssl stats of the cluster. A failed handshake is a connection failure
// (UF), as with Envoy.
func (p *Proxy) tlsDialer(cl *cluster) func(ctx context.Context, network, addr string) (net.Conn, error) {
	dial := p.dialer(cl)
	prefix := "cluster." + cl.statName + ".ssl."
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		sock, _ := ctx.Value(upstreamTLSKey{}).(*upstreamTLS)
		if sock == nil || p.secrets == nil {
			return nil, &dialError{errors.New("TLS requested without a TLS transport socket")}
		}
		cfg, err := sock.clientConfig(p.secrets)
		if err != nil {
			p.store.Counter(prefix + "connection_error").Inc()
			return nil, &dialError{err}
		}
		raw, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		tc := tls.Client(raw, cfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			raw.Close()
			switch {
			case errors.Is(err, errVerifySAN):
				p.store.Counter(prefix + "fail_verify_san").Inc()
			case errors.Is(err, errVerifyChain):
				p.store.Counter(prefix + "fail_verify_error").Inc()
			case errors.Is(err, errNoPeerCert):
				p.store.Counter(prefix + "fail_verify_no_cert").Inc()
			default:
				p.store.Counter(prefix + "connection_error").Inc()
			}
			return nil, &dialError{fmt.Errorf("TLS handshake with %s (SNI %q): %w", addr, sock.sni, err)}
		}
		p.store.Counter(prefix + "handshake").Inc()
		return tc, nil
	}
}

type countedConn struct {
	net.Conn
	once    sync.Once
	onClose func()
}

// NetConn is the connection underneath.
func (c *countedConn) NetConn() net.Conn { return c.Conn }

func (c *countedConn) Close() error {
	c.once.Do(c.onClose)
	return c.Conn.Close()
}

// routing is the immutable view of the configuration the data path reads.
type routing struct {
	listeners map[string]*listenerInfo
	byPort    map[uint32][]*listenerInfo
	routes    map[string]*routeTable
	clusters  map[string]*cluster
}

func (r *routing) cluster(name string) *cluster {
	if r == nil {
		return nil
	}
	return r.clusters[name]
}

// listenerFor finds the listener Envoy's virtual outbound listener would
// hand a connection to dst:port: the one bound to exactly that address, or
// else the 0.0.0.0 one.
func (r *routing) listenerFor(dst netip.Addr, port uint32) *listenerInfo {
	var wild *listenerInfo
	for _, l := range r.byPort[port] {
		if dst.IsValid() && l.addr == dst {
			return l
		}
		if l.addr.IsUnspecified() && (wild == nil || l.name < wild.name) {
			wild = l
		}
	}
	return wild
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
