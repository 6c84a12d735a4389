package envoyemu

import (
	"bytes"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/meshdrill/drill/internal/stats"
)

// scrapeStore parses the proxy's /stats/prometheus with drill's own parser.
func scrapeStore(t *testing.T, p *Proxy) (*stats.Snapshot, string) {
	t.Helper()
	var b bytes.Buffer
	if err := p.store.WritePrometheus(&b); err != nil {
		t.Fatal(err)
	}
	snap, err := stats.Parse(b.Bytes())
	if err != nil {
		t.Fatalf("internal/stats cannot parse the proxy's stats: %v\n%s", err, b.String())
	}
	return snap, b.String()
}

// switchable is an upstream that can be taken down: closed, connecting to
// it is refused, as with a pod scaled away.
type switchable struct {
	srv  *httptest.Server
	name string
	hits atomic.Int64
	sni  atomic.Value
	peer atomic.Value
}

func newSwitchable(t *testing.T, name string) *switchable {
	s := &switchable{name: name}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.hits.Add(1)
		s.sni.Store(r.Header.Get(HeaderSNI))
		s.peer.Store(r.Header.Get(headerPeerMetadataID))
		w.Header().Set("X-Served-By", name)
		io.WriteString(w, name)
	}))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *switchable) addr() string { return s.srv.Listener.Addr().String() }

func (s *switchable) down() {
	s.srv.CloseClientConnections()
	s.srv.Listener.Close()
}

// TestAggregateFailover replays the aggregate strategy's recorded
// configuration against local upstreams: reviews in cluster1 go away, the
// outlier detector ejects each endpoint on its first failure
// (consecutive5xxErrors 1), the aggregate cluster moves the traffic to its
// next member — cluster2 through its east-west gateway, with the SNI the
// DestinationRule names — and the stats say so. After base_ejection_time the
// endpoints come back.
func TestAggregateFailover(t *testing.T) {
	clock := newFakeClock()
	p := newTestProxy(t, testIdentity(), WithClock(clock))
	fx := loadFixture(t, "aggregate-productpage")
	a, b, c := newSwitchable(t, "c1-a"), newSwitchable(t, "c1-b"), newSwitchable(t, "c2")
	rewriteEndpoints(t, fx[TypeEndpoint], "outbound|9080|cluster1|reviews.default.svc.cluster.local", []string{a.addr(), b.addr()})
	rewriteEndpoints(t, fx[TypeEndpoint], "outbound|9080||reviews.default.svc.cluster2.global", []string{c.addr()})
	feedFixture(t, p, fx)

	for i := range 10 {
		w := send(p, http.MethodGet, "http://reviews:9080/reviews/0", nil)
		if w.Code != 200 || !strings.HasPrefix(w.Body.String(), "c1-") {
			t.Fatalf("request %d before the outage: %d %q, want cluster1's reviews", i, w.Code, w.Body)
		}
	}
	id := testIdentity()
	if got := a.peer.Load(); got != id.NodeID() {
		t.Errorf("upstream saw peer id %q, want the sidecar's node id", got)
	}

	a.down()
	b.down()
	// Istio's default retry policy (connect-failure among its conditions,
	// previous_hosts) retries a refused request; by then outlier detection
	// has ejected the failed endpoint, and the aggregate sends the retry to
	// the next member. No request fails.
	for i := range 20 {
		if w := send(p, http.MethodGet, "http://reviews:9080/reviews/0", nil); w.Code != 200 || w.Body.String() != "c2" {
			t.Fatalf("request %d during the outage: %d %q, want cluster2's answer", i, w.Code, w.Body)
		}
	}
	if got := c.sni.Load(); got != "outbound_.9080_._.reviews.default.svc.cluster.local" {
		t.Errorf("cluster2's gateway saw SNI %q", got)
	}

	snap, text := scrapeStore(t, p)
	local := snap.Clusters["outbound|9080|cluster1|reviews.default.svc.cluster.local"]
	remote := snap.Clusters["outbound|9080||reviews.default.svc.cluster2.global"]
	if local == nil || remote == nil {
		t.Fatalf("member stats missing:\n%s", text)
	}
	if got := local.Get(stats.StatEjectionsEnforced); got != 2 {
		t.Errorf("cluster1 member: %d ejections enforced, want 2", got)
	}
	if got := local.Get(stats.StatEjectionsActive); got != 2 {
		t.Errorf("cluster1 member: %d ejections active, want 2", got)
	}
	// As in Envoy, the connection pool counts requests on the member that
	// took them — a refused one never had a connection, so it is not among
	// them — and the router counts codes and retries on the aggregate,
	// whose stats carry no cluster_name tag (it has no alt stat name).
	if local.Get(stats.StatCxConnectFail) != 2 {
		t.Errorf("cluster1 member: connect failures %d, want 2", local.Get(stats.StatCxConnectFail))
	}
	// cluster1 may count one more: a pooled connection the server closed is
	// found dead only when a request is put on it.
	if n := local.Get(stats.StatRqTotal); n < 10 || n > 12 || remote.Get(stats.StatRqTotal) != 20 {
		t.Errorf("upstream_rq_total: cluster1 %d (want 10, or a little more), cluster2 %d (want 20)", n, remote.Get(stats.StatRqTotal))
	}
	if len(snap.Warnings) > 0 {
		t.Logf("internal/stats warnings: %v", snap.Warnings)
	}
	if len(local.Codes)+len(remote.Codes) != 0 {
		t.Errorf("response codes on the members (%v, %v); Envoy's router counts them on the aggregate", local.Codes, remote.Codes)
	}
	agg := "cluster.outbound|9080||reviews-failover.default.global."
	if n := p.store.Counter(agg + "upstream_rq_200").Value(); n != 30 {
		t.Errorf("aggregate upstream_rq_200 %d, want 30", n)
	}
	if n := p.store.Counter(agg + "upstream_rq_retry").Value(); n == 0 {
		t.Errorf("no retries counted on the aggregate")
	}
	if !strings.Contains(text, `envoy_cluster_outbound_9080__reviews_failover_default_global_upstream_rq{response_code="200"} 30`) {
		t.Errorf("the aggregate's codes are not under its untagged metric name:\n%s", text)
	}
	if healthy := local.Get(stats.StatMembershipHealthy); healthy != 0 {
		t.Errorf("cluster1 member: membership_healthy %d while both are ejected", healthy)
	}

	// base_ejection_time (120 s) × 1 later, the interval sweep brings them back.
	cl := p.routing.Load().cluster("outbound|9080|cluster1|reviews.default.svc.cluster.local")
	clock.Advance(119 * time.Second)
	cl.outlier.sweep()
	if n := cl.outlier.stats.active.Value(); n != 2 {
		t.Fatalf("after 119 s %d ejections active, want 2", n)
	}
	clock.Advance(time.Second)
	cl.outlier.sweep()
	if n := cl.outlier.stats.active.Value(); n != 0 {
		t.Fatalf("after 120 s %d ejections active, want 0", n)
	}
}

// TestLocalReplies: the failures Envoy answers itself, with its codes,
// bodies, flags and stats.
func TestLocalReplies(t *testing.T) {
	ok, _ := upstream(t, "ok", 200)
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	}))
	t.Cleanup(slow.Close)
	refused := closedAddr(t)

	p := newTestProxy(t, allStatsIdentity())
	timeout := func(ra *routev3.RouteAction) { ra.Timeout = durationpb.New(100 * time.Millisecond) }
	feed(t, p,
		response(t, TypeCluster, edsCluster("ok"), edsCluster("empty"), edsCluster("refused"), edsCluster("slow"),
			edsCluster("full", func(c *clusterv3.Cluster) {
				c.CircuitBreakers = &clusterv3.CircuitBreakers{Thresholds: []*clusterv3.CircuitBreakers_Thresholds{{MaxRequests: wrapperspb.UInt32(0)}}}
			})),
		response(t, TypeEndpoint,
			assignment(t, "ok", []string{ok}),
			assignment(t, "full", []string{ok}),
			assignment(t, "empty"),
			assignment(t, "refused", []string{refused}),
			assignment(t, "slow", []string{slow.Listener.Addr().String()})),
		response(t, TypeListener, httpListener(t, 9080)),
		response(t, TypeRoute, routeConfig("9080", &routev3.VirtualHost{
			Name: "svc", Domains: []string{"svc"},
			Routes: []*routev3.Route{
				clusterRoute("/ok", "ok"),
				clusterRoute("/empty", "empty"),
				clusterRoute("/refused", "refused"),
				clusterRoute("/slow", "slow", timeout),
				clusterRoute("/gone", "no-such-cluster"),
				clusterRoute("/full", "full"),
			},
		})),
	)
	for _, tc := range []struct {
		url, body, flags string
		code             int
	}{
		{"http://svc:9080/ok", "ok", "-", 200},
		{"http://svc:9080/empty", bodyNoHealthyUpstream, "UH", 503},
		{"http://svc:9080/refused", "upstream connect error or disconnect/reset before headers. reset reason: remote connection failure", "UF", 503},
		{"http://svc:9080/slow", bodyTimeout, "UT", 504},
		{"http://svc:9080/gone", "", "NC", 503},
		{"http://svc:9080/full", "upstream connect error or disconnect/reset before headers. reset reason: overflow", "UO", 503},
		{"http://nohost:9080/ok", "", "NR", 404},
		{"http://svc:9999/ok", "", "NR", 404},
	} {
		t.Run(tc.url, func(t *testing.T) {
			w := send(p, http.MethodGet, tc.url, nil)
			if w.Code != tc.code || !strings.HasPrefix(w.Body.String(), tc.body) {
				t.Errorf("%d %q, want %d %q", w.Code, w.Body, tc.code, tc.body)
			}
			if tc.flags == "UO" && w.Header().Get("X-Envoy-Overloaded") != "true" {
				t.Errorf("overflow without x-envoy-overloaded")
			}
			if tc.code == 200 && w.Header().Get("X-Envoy-Upstream-Service-Time") == "" {
				t.Errorf("no x-envoy-upstream-service-time on a proxied response")
			}
			var b bytes.Buffer
			_ = p.store.WritePrometheus(&b)
			if !strings.Contains(b.String(), `response_flags="`+tc.flags+`"`) {
				t.Errorf("no istio_requests_total with response_flags %q", tc.flags)
			}
		})
	}
	snap, _ := scrapeStore(t, p)
	if _, text := scrapeStore(t, p); !strings.Contains(text, `envoy_cluster_upstream_cx_none_healthy{cluster_name="empty"} 1`) {
		t.Errorf("no upstream_cx_none_healthy for the empty cluster")
	}
	if c := snap.Clusters["slow"]; c == nil || c.Codes["504"] != 1 {
		t.Errorf("slow: %+v, want one 504", c)
	}
	if c := snap.Clusters["refused"]; c == nil || c.Get(stats.StatCxConnectFail) != 1 || c.Codes["503"] != 1 {
		t.Errorf("refused: %+v, want a connect failure and a 503", c)
	}
}

// TestRetries: a route's retry policy retries the conditions it names, up
// to num_retries, onto another host with previous_hosts; the x-envoy-*
// request headers add to it.
func TestRetries(t *testing.T) {
	var mu sync.Mutex
	failFirst := map[string]int{}
	mk := func(name string, fails int) string {
		failFirst[name] = fails
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			defer mu.Unlock()
			if failFirst[name] > 0 {
				failFirst[name]--
				w.WriteHeader(503)
				return
			}
			io.WriteString(w, name)
		}))
		t.Cleanup(srv.Close)
		return srv.Listener.Addr().String()
	}
	retry := func(on string, n uint32) func(*routev3.RouteAction) {
		return func(ra *routev3.RouteAction) {
			ra.RetryPolicy = &routev3.RetryPolicy{
				RetryOn: on, NumRetries: wrapperspb.UInt32(n),
				RetryHostPredicate:            []*routev3.RetryPolicy_RetryHostPredicate{{Name: "envoy.retry_host_predicates.previous_hosts"}},
				HostSelectionRetryMaxAttempts: 5,
				RetryBackOff:                  &routev3.RetryPolicy_RetryBackOff{BaseInterval: durationpb.New(time.Millisecond)},
			}
		}
	}
	tests := []struct {
		name        string
		fails       []int // per host, how many 503s before it answers
		on          string
		n           uint32
		header      http.Header
		wantCode    int
		wantRetries uint64
	}{
		{"retried onto the other host", []int{100, 0}, "5xx", 2, nil, 200, 1},
		{"gateway-error covers 503", []int{1, 1}, "gateway-error", 3, nil, 200, 2},
		{"limit exceeded", []int{100, 100}, "5xx", 2, nil, 503, 2},
		{"not a retry condition", []int{100, 100}, "connect-failure", 3, nil, 503, 0},
		{"x-envoy-max-retries", []int{100, 100}, "5xx", 2, http.Header{"X-Envoy-Max-Retries": {"0"}}, 503, 0},
		{"x-envoy-retry-on", []int{1, 1}, "connect-failure", 3, http.Header{"X-Envoy-Retry-On": {"5xx"}}, 200, 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var hosts []string
			for i, f := range tc.fails {
				hosts = append(hosts, mk(tc.name+string(rune('a'+i)), f))
			}
			p := newTestProxy(t, allStatsIdentity())
			feed(t, p,
				response(t, TypeCluster, edsCluster("svc", func(c *clusterv3.Cluster) { c.LbPolicy = clusterv3.Cluster_ROUND_ROBIN })),
				response(t, TypeEndpoint, assignment(t, "svc", hosts)),
				response(t, TypeListener, httpListener(t, 9080)),
				response(t, TypeRoute, routeConfig("9080", &routev3.VirtualHost{Name: "svc", Domains: []string{"svc"},
					Routes: []*routev3.Route{clusterRoute("/", "svc", retry(tc.on, tc.n))}})),
			)
			w := send(p, http.MethodGet, "http://svc:9080/", tc.header)
			if w.Code != tc.wantCode {
				t.Errorf("code %d, want %d", w.Code, tc.wantCode)
			}
			snap, text := scrapeStore(t, p)
			if c := snap.Clusters["svc"]; c == nil || c.Get(stats.StatRqRetry) != tc.wantRetries {
				t.Errorf("upstream_rq_retry of %+v, want %d\n%s", c, tc.wantRetries, text)
			}
		})
	}
}

// TestPerTryTimeout: a per-try timeout ends a slow attempt and, with a retry
// condition that covers it, moves to another host.
func TestPerTryTimeout(t *testing.T) {
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	}))
	t.Cleanup(slow.Close)
	fast, _ := upstream(t, "fast", 200)
	p := newTestProxy(t, allStatsIdentity())
	feed(t, p,
		response(t, TypeCluster, edsCluster("svc")),
		response(t, TypeEndpoint, assignment(t, "svc", []string{slow.Listener.Addr().String(), fast})),
		response(t, TypeListener, httpListener(t, 9080)),
		response(t, TypeRoute, routeConfig("9080", &routev3.VirtualHost{Name: "svc", Domains: []string{"svc"},
			Routes: []*routev3.Route{clusterRoute("/", "svc", func(ra *routev3.RouteAction) {
				ra.RetryPolicy = &routev3.RetryPolicy{RetryOn: "5xx", NumRetries: wrapperspb.UInt32(2), PerTryTimeout: durationpb.New(50 * time.Millisecond),
					RetryHostPredicate: []*routev3.RetryPolicy_RetryHostPredicate{{Name: "envoy.retry_host_predicates.previous_hosts"}}, HostSelectionRetryMaxAttempts: 5,
					RetryBackOff: &routev3.RetryPolicy_RetryBackOff{BaseInterval: durationpb.New(time.Millisecond)}}
			})}})),
	)
	// Round robin starts on the slow host.
	w := send(p, http.MethodGet, "http://svc:9080/", nil)
	if w.Code != 200 || w.Body.String() != "fast" {
		t.Fatalf("%d %q, want the fast host's answer after a per-try timeout", w.Code, w.Body)
	}
	if got := w.Header().Get("X-Envoy-Upstream-Service-Time"); got == "" {
		t.Error("no x-envoy-upstream-service-time")
	}
	snap, text := scrapeStore(t, p)
	c := snap.Clusters["svc"]
	if c == nil || c.Get(stats.StatRqRetry) != 1 || !strings.Contains(text, `envoy_cluster_upstream_rq_per_try_timeout{cluster_name="svc"} 1`) {
		t.Errorf("stats: retries %v, per-try timeouts not 1\n%s", c, text)
	}
}

// TestEastWestPassthrough replays the east-west gateway's recorded
// configuration: a request carrying the SNI of reviews goes to the SNI
// cluster's endpoints of the gateway's own cluster only, with the SNI
// header consumed; an unknown SNI finds no chain.
func TestEastWestPassthrough(t *testing.T) {
	id := GatewayIdentity("cluster2", "istio-eastwestgateway", EastWestGatewayLabel, testIdentity().IP)
	p := newTestProxy(t, id)
	p.cfg.skipBind = true
	fx := loadFixture(t, "eastwestgateway")
	other, own := newSwitchable(t, "cluster1-reviews"), newSwitchable(t, "cluster2-reviews")
	sni := "outbound_.9080_._.reviews.default.svc.cluster.local"
	// Priority 0 holds cluster1's endpoint, priority 1 cluster2's: the
	// gateway must skip cluster1's even though it ranks first.
	rewriteEndpoints(t, fx[TypeEndpoint], sni, []string{other.addr()}, []string{own.addr()})
	feedFixture(t, p, fx)
	h := p.gatewayHandler("0.0.0.0_15443")
	for i := range 5 {
		r := httptest.NewRequest(http.MethodGet, "http://reviews:9080/reviews/0", nil)
		r.Header.Set(HeaderSNI, sni)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != 200 || w.Body.String() != "cluster2-reviews" {
			t.Fatalf("request %d: %d %q, want cluster2's reviews", i, w.Code, w.Body)
		}
	}
	if got := own.sni.Load(); got != "" {
		t.Errorf("the SNI header went past the gateway: %q", got)
	}
	if other.hits.Load() != 0 {
		t.Errorf("the gateway sent %d requests to another cluster's endpoint", other.hits.Load())
	}
	r := httptest.NewRequest(http.MethodGet, "http://nothing:9080/", nil)
	r.Header.Set(HeaderSNI, "outbound_.9080_._.nothing.default.svc.cluster.local")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code == 200 {
		t.Errorf("an unknown SNI was served")
	}
}

// TestRetryStats: the router charges a retried attempt's answer only under
// retry.upstream_rq_<code>, and the plain code counters, upstream_rq_completed
// and upstream_rq_time only for the final answer; the pool's
// upstream_rq_total counts every attempt (envoy source/common/router/router.cc:
// chargeBasicResponseStat with the retry stat name for a retried attempt,
// chargeUpstreamCode for the final one).
func TestRetryStats(t *testing.T) {
	for _, tc := range []struct {
		name                    string
		fails                   int // 503s before the host answers 200
		wantCode                int
		want200, want503, retry uint64
		total                   uint64
	}{
		{"one 503 then a 200", 1, 200, 1, 0, 1, 2},
		{"every attempt 503", 100, 503, 0, 1, 2, 3},
		{"no retry needed", 0, 200, 1, 0, 0, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var mu sync.Mutex
			fails := tc.fails
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				defer mu.Unlock()
				if fails > 0 {
					fails--
					w.WriteHeader(503)
					return
				}
				io.WriteString(w, "ok")
			}))
			t.Cleanup(srv.Close)
			p := newTestProxy(t, allStatsIdentity())
			feed(t, p,
				response(t, TypeCluster, edsCluster("svc")),
				response(t, TypeEndpoint, assignment(t, "svc", []string{srv.Listener.Addr().String()})),
				response(t, TypeListener, httpListener(t, 9080)),
				response(t, TypeRoute, routeConfig("9080", &routev3.VirtualHost{Name: "svc", Domains: []string{"svc"},
					Routes: []*routev3.Route{clusterRoute("/", "svc", func(ra *routev3.RouteAction) {
						ra.RetryPolicy = &routev3.RetryPolicy{RetryOn: "5xx", NumRetries: wrapperspb.UInt32(2),
							RetryBackOff: &routev3.RetryPolicy_RetryBackOff{BaseInterval: durationpb.New(time.Millisecond)}}
					})}})),
			)
			if w := send(p, http.MethodGet, "http://svc:9080/", nil); w.Code != tc.wantCode {
				t.Fatalf("code %d, want %d", w.Code, tc.wantCode)
			}
			snap, text := scrapeStore(t, p)
			c := snap.Clusters["svc"]
			if c == nil {
				t.Fatalf("no stats for svc\n%s", text)
			}
			p.store.Flush()
			got := []uint64{c.Codes["200"], c.Codes["503"], c.RetryCodes["503"], c.RetryClasses["5xx"], c.Get(stats.StatRqTotal),
				p.store.Counter("cluster." + p.routing.Load().cluster("svc").statName + ".upstream_rq_completed").Value()}
			want := []uint64{tc.want200, tc.want503, tc.retry, tc.retry, tc.total, 1}
			if !slices.Equal(got, want) {
				t.Errorf("upstream_rq_200, _503, retry.upstream_rq_503, retry.upstream_rq_5xx, upstream_rq_total, upstream_rq_completed = %v, want %v\n%s", got, want, text)
			}
			if len(snap.Warnings) > 0 {
				t.Errorf("parser warnings on the emulation's own stats: %v", snap.Warnings)
			}
		})
	}
}

// TestGatewaySetServing: a gateway told to stop serving refuses connections
// on its listeners, binds none when LDS changes meanwhile, and serves again
// when resumed.
func TestGatewaySetServing(t *testing.T) {
	addr := netip.AddrFrom4([4]byte{10, 77, byte(rand.IntN(250) + 1), byte(rand.IntN(250) + 1)})
	gw := newTestProxy(t, GatewayIdentity("cluster1", "istio-ingressgateway", IngressGatewayLabel, addr))
	gw.noXDS = true
	startProxy(t, gw)
	fx := loadFixture(t, "ingressgateway")
	feedFixture(t, gw, fx)
	twin, _ := LoopbackTwin(addr)
	dialable := func() bool {
		c, err := net.DialTimeout("tcp", net.JoinHostPort(twin.String(), "8080"), time.Second)
		if err != nil {
			return false
		}
		c.Close()
		return true
	}
	if !dialable() {
		t.Fatal("the ingress gateway does not listen on 8080")
	}
	if err := gw.SetServing(t.Context(), false); err != nil {
		t.Fatal(err)
	}
	if dialable() {
		t.Fatal("a stopped gateway still accepts connections")
	}
	feed(t, gw, fx[TypeListener]) // an LDS push while stopped binds nothing
	if dialable() {
		t.Fatal("an LDS push bound a stopped gateway's listener")
	}
	if err := gw.SetServing(t.Context(), true); err != nil {
		t.Fatal(err)
	}
	if !dialable() {
		t.Fatal("the gateway does not serve again after it was resumed")
	}
}
