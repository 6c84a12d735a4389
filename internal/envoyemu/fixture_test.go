package envoyemu

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"
)

// The fixtures are what real istiods sent the seed drill's proxies
// (testdata/xds, recorded by pkg/cluster/local/internal/sidecar's TestRecordXDS): the
// emulated proxy must take all of it, and read it as Envoy would.

func TestFixturesAccepted(t *testing.T) {
	for _, tc := range []struct {
		fixture string
		kind    Kind
	}{
		{"aggregate-productpage", Sidecar},
		{"locality-productpage", Sidecar},
		{"ingressgateway", Router},
		{"eastwestgateway", Router},
	} {
		t.Run(tc.fixture, func(t *testing.T) {
			id := testIdentity()
			id.Kind = tc.kind
			p := newTestProxy(t, id)
			if tc.kind == Router {
				// A gateway binds its listeners; keep them off real ports here.
				p.cfg.skipBind = true
			}
			feedFixture(t, p, loadFixture(t, tc.fixture))
			if !p.Ready() {
				t.Errorf("not ready after the whole fixture was applied")
			}
		})
	}
}

func TestAggregateFixture(t *testing.T) {
	p := newTestProxy(t, testIdentity())
	feedFixture(t, p, loadFixture(t, "aggregate-productpage"))
	rt := p.routing.Load()

	agg := rt.cluster("outbound|9080||reviews-failover.default.global")
	if agg == nil || agg.typ != clusterAggregate {
		t.Fatalf("reviews-failover: %+v, want an aggregate cluster", agg)
	}
	want := []string{"outbound|9080|cluster1|reviews.default.svc.cluster.local", "outbound|9080||reviews.default.svc.cluster2.global"}
	if !slices.Equal(agg.members, want) {
		t.Errorf("aggregate members %v, want %v", agg.members, want)
	}
	remote := rt.cluster(want[1])
	if remote.sni != "outbound_.9080_._.reviews.default.svc.cluster.local" {
		t.Errorf("remote member SNI %q, want the DestinationRule's", remote.sni)
	}
	if remote.outlier == nil {
		t.Fatalf("remote member has no outlier detection")
	}
	cfg := remote.outlier.cfg
	if cfg.consecutive5xx != 1 || cfg.interval != 5*time.Second || cfg.baseEjection != 120*time.Second || cfg.maxEjectionPercent != 100 {
		t.Errorf("outlier detection %+v, want the policy's 1 error, 5s, 120s, 100%%", cfg)
	}
	local := rt.cluster(want[0])
	if local.outlier == nil || len(local.hosts) != 2 {
		t.Errorf("local member: outlier %v, %d hosts; want outlier detection and reviews v1, v2", local.outlier != nil, len(local.hosts))
	}

	// The VirtualService sends reviews to the failover host; every other
	// service goes to its own cluster.
	for _, tc := range []struct{ host, path, cluster string }{
		{"reviews:9080", "/reviews/0", "outbound|9080||reviews-failover.default.global"},
		{"reviews.default.svc.cluster.local:9080", "/reviews/0", "outbound|9080||reviews-failover.default.global"},
		{"details:9080", "/details/0", "outbound|9080||details.default.svc.cluster.local"},
		{"ratings.default:9080", "/ratings/0", "outbound|9080||ratings.default.svc.cluster.local"},
	} {
		li := rt.listenerFor(noAddr, 9080)
		ch := li.chooseHTTPChain(noAddr, 9080)
		table := rt.routes[ch.rds]
		r := httptest.NewRequest(http.MethodGet, "http://"+tc.host+tc.path, nil)
		vh := table.virtualHost(r.Host)
		if vh == nil {
			t.Errorf("%s: no virtual host", tc.host)
			continue
		}
		route := vh.route(r)
		if route == nil || route.pickCluster(r, 0) != tc.cluster {
			t.Errorf("%s%s routed to %+v, want %s", tc.host, tc.path, route, tc.cluster)
		}
	}
}

func TestLocalityFixture(t *testing.T) {
	p := newTestProxy(t, testIdentity())
	feedFixture(t, p, loadFixture(t, "locality-productpage"))
	cl := p.routing.Load().cluster("outbound|9080||reviews.default.svc.cluster.local")
	if cl == nil || cl.outlier == nil {
		t.Fatalf("reviews cluster %v without outlier detection", cl)
	}
	// failoverPriority [topology.istio.io/cluster]: istiod puts the
	// client's own cluster at priority 0 and the other at 1.
	byPrio := map[int][]string{}
	for _, h := range cl.hosts {
		byPrio[int(h.priority.Load())] = append(byPrio[int(h.priority.Load())], h.cluster())
	}
	if len(byPrio[0]) == 0 || len(byPrio[1]) == 0 {
		t.Fatalf("reviews endpoints by priority %v; want cluster1 at 0 and cluster2 at 1", byPrio)
	}
	for _, c := range byPrio[0] {
		if c != "cluster1" {
			t.Errorf("priority 0 holds an endpoint of %s", c)
		}
	}
	for _, c := range byPrio[1] {
		if c != "cluster2" {
			t.Errorf("priority 1 holds an endpoint of %s", c)
		}
	}
	_, load := cl.levelsView()
	if load.healthy[0] != 100 {
		t.Errorf("priority load %v with every endpoint healthy, want all on priority 0", load.healthy)
	}
}

func TestIngressGatewayFixture(t *testing.T) {
	id := GatewayIdentity("cluster1", "istio-ingressgateway", IngressGatewayLabel, testIdentity().IP)
	p := newTestProxy(t, id)
	p.cfg.skipBind = true
	feedFixture(t, p, loadFixture(t, "ingressgateway"))
	rt := p.routing.Load()
	if rt.listeners["0.0.0.0_8080"] == nil {
		t.Fatalf("no listener 0.0.0.0_8080 for Bookinfo's Gateway; listeners %v", sortedKeys(rt.listeners))
	}
	for _, tc := range []struct {
		path    string
		cluster string
	}{
		{"/productpage", "outbound|9080||productpage.default.svc.cluster.local"},
		{"/static/css/style.css", "outbound|9080||productpage.default.svc.cluster.local"},
		{"/api/v1/products/0", "outbound|9080||productpage.default.svc.cluster.local"},
		{"/admin", ""},
	} {
		r := httptest.NewRequest(http.MethodGet, "http://bookinfo.example"+tc.path, nil)
		li := rt.listeners["0.0.0.0_8080"]
		ch := li.chooseHTTPChain(li.addr, li.port)
		vh := rt.routes[ch.rds].virtualHost(r.Host)
		var got string
		if vh != nil {
			if route := vh.route(r); route != nil {
				got = route.pickCluster(r, 0)
			}
		}
		if got != tc.cluster {
			t.Errorf("%s routed to %q, want %q", tc.path, got, tc.cluster)
		}
	}
}

func TestEastWestGatewayFixture(t *testing.T) {
	id := GatewayIdentity("cluster2", "istio-eastwestgateway", EastWestGatewayLabel, testIdentity().IP)
	p := newTestProxy(t, id)
	p.cfg.skipBind = true
	feedFixture(t, p, loadFixture(t, "eastwestgateway"))
	rt := p.routing.Load()
	li := rt.listeners["0.0.0.0_15443"]
	if li == nil {
		t.Fatalf("no AUTO_PASSTHROUGH listener on 15443; listeners %v", sortedKeys(rt.listeners))
	}
	sni := "outbound_.9080_._.reviews.default.svc.cluster.local"
	ch := li.chooseSNIChain(sni)
	if ch == nil || ch.tcpTarget(sni) != sni {
		t.Fatalf("SNI %s: chain %+v", sni, ch)
	}
	cl := rt.cluster(sni)
	if cl == nil || len(cl.hosts) == 0 {
		t.Fatalf("SNI cluster %s has no endpoints (istiod sends only mTLS-capable ones: pods labelled security.istio.io/tlsMode=istio)", sni)
	}
	if ch := li.chooseSNIChain("outbound_.9080_._.nothing.default.svc.cluster.local"); ch != nil && !strings.HasPrefix(ch.tcpTarget("x"), "outbound_.9080_._.nothing") {
		t.Errorf("unknown SNI matched chain %+v", ch)
	}
}

// noAddr is the destination of a request by name: no address known.
var noAddr netip.Addr
