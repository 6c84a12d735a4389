package envoyemu

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// fakeClock is a Clock tests move by hand.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// testIdentity is a sidecar whose pod address twins to 127.0.0.1, where the
// tests' upstream servers listen.
func testIdentity() Identity {
	return Identity{
		Kind: Sidecar, Pod: "productpage-v1-test", Namespace: "default",
		IP:     netip.MustParseAddr("10.0.0.1"),
		Labels: map[string]string{"app": "productpage", "version": "v1"},
		Annotations: map[string]string{
			"proxy.istio.io/config": "proxyStatsMatcher:\n  inclusionPrefixes:\n  - cluster.outbound\n",
		},
		WorkloadName: "productpage-v1", ServiceAccount: "bookinfo-productpage", Cluster: "cluster1",
	}
}

// allStatsIdentity is testIdentity asking for every cluster's stats, for
// tests whose clusters are not named outbound|….
func allStatsIdentity() Identity {
	id := testIdentity()
	id.Annotations = map[string]string{"sidecar.istio.io/statsInclusionPrefixes": "cluster."}
	return id
}

// newTestProxy builds a proxy that is fed configuration by the test instead
// of istiod. Its ADS client is never started.
func newTestProxy(t *testing.T, id Identity, opts ...Option) *Proxy {
	t.Helper()
	p, err := New(id, "127.0.0.1:1", append([]Option{WithSeed(1), WithAdminPort(0), WithOutboundPort(0), WithoutStatusPorts()}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// feed applies responses in order and fails the test on a NACK.
func feed(t *testing.T, p *Proxy, resps ...*discoveryv3.DiscoveryResponse) {
	t.Helper()
	for _, r := range resps {
		if err := p.cfg.apply(r.TypeUrl, r.VersionInfo, r.Resources); err != nil {
			t.Fatalf("apply %s: %v", shortType(r.TypeUrl), err)
		}
	}
}

func response(t testing.TB, typeURL string, msgs ...proto.Message) *discoveryv3.DiscoveryResponse {
	t.Helper()
	r := &discoveryv3.DiscoveryResponse{TypeUrl: typeURL, VersionInfo: "v1"}
	for _, m := range msgs {
		a, err := anypb.New(m)
		if err != nil {
			t.Fatal(err)
		}
		r.Resources = append(r.Resources, a)
	}
	return r
}

// loadFixture reads a recorded xDS fixture: CDS, EDS, LDS, RDS.
func loadFixture(t testing.TB, name string) map[string]*discoveryv3.DiscoveryResponse {
	t.Helper()
	out := map[string]*discoveryv3.DiscoveryResponse{}
	for file, typ := range map[string]string{"cds": TypeCluster, "eds": TypeEndpoint, "lds": TypeListener, "rds": TypeRoute} {
		b, err := os.ReadFile(filepath.Join("testdata", "xds", name, file+".pb"))
		if err != nil {
			t.Fatalf("fixture %s: %v (record it: go test ./pkg/proxy/localsidecar -run TestRecordXDS -args -record)", name, err)
		}
		r := &discoveryv3.DiscoveryResponse{}
		if err := proto.Unmarshal(b, r); err != nil {
			t.Fatalf("fixture %s/%s: %v", name, file, err)
		}
		if r.TypeUrl != typ {
			t.Fatalf("fixture %s/%s holds %s", name, file, r.TypeUrl)
		}
		out[typ] = r
	}
	return out
}

// feedFixture applies a fixture in Envoy's order: clusters, their
// endpoints, listeners, their routes.
func feedFixture(t *testing.T, p *Proxy, fx map[string]*discoveryv3.DiscoveryResponse) {
	t.Helper()
	feed(t, p, fx[TypeCluster], fx[TypeEndpoint], fx[TypeListener], fx[TypeRoute])
}

// rewriteEndpoints points the endpoints of EDS assignment name at addrs
// (127.0.0.1:port), keeping priorities and metadata of the first endpoints.
func rewriteEndpoints(t *testing.T, r *discoveryv3.DiscoveryResponse, name string, addrs ...[]string) {
	t.Helper()
	for i, a := range r.Resources {
		la := &endpointv3.ClusterLoadAssignment{}
		if err := a.UnmarshalTo(la); err != nil {
			t.Fatal(err)
		}
		if la.ClusterName != name {
			continue
		}
		la.Endpoints = nil
		for prio, level := range addrs {
			lle := &endpointv3.LocalityLbEndpoints{Priority: uint32(prio), Locality: &corev3.Locality{Region: "cluster" + strconv.Itoa(prio+1)}}
			for _, hp := range level {
				lle.LbEndpoints = append(lle.LbEndpoints, lbEndpoint(t, hp, "cluster"+strconv.Itoa(prio+1)))
			}
			la.Endpoints = append(la.Endpoints, lle)
		}
		na, err := anypb.New(la)
		if err != nil {
			t.Fatal(err)
		}
		r.Resources[i] = na
		return
	}
	t.Fatalf("no EDS assignment %q in the fixture", name)
}

func lbEndpoint(t testing.TB, hostport, cluster string) *endpointv3.LbEndpoint {
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		t.Fatal(err)
	}
	pn, _ := strconv.Atoi(port)
	md, _ := structMeta(map[string]any{"istio": map[string]any{"workload": "reviews-v1;default;reviews;v1;" + cluster}})
	return &endpointv3.LbEndpoint{
		HostIdentifier: &endpointv3.LbEndpoint_Endpoint{Endpoint: &endpointv3.Endpoint{Address: &corev3.Address{Address: &corev3.Address_SocketAddress{
			SocketAddress: &corev3.SocketAddress{Address: host, PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: uint32(pn)}},
		}}}},
		HealthStatus:        corev3.HealthStatus_HEALTHY,
		LoadBalancingWeight: wrapperspb.UInt32(1),
		Metadata:            md,
	}
}

// upstream is a test server that says who it is.
func upstream(t *testing.T, name string, code int) (addr string, hits func() int) {
	t.Helper()
	var mu sync.Mutex
	n := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		n++
		mu.Unlock()
		w.Header().Set("X-Served-By", name)
		w.WriteHeader(code)
		io.WriteString(w, name)
	}))
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().String(), func() int {
		mu.Lock()
		defer mu.Unlock()
		return n
	}
}

// closedAddr is a loopback address where nothing listens: connecting is
// refused.
func closedAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// send makes a request through the sidecar's outbound listener handler.
func send(p *Proxy, method, url string, hdr http.Header) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, url, nil)
	for k, vs := range hdr {
		r.Header[k] = vs
	}
	w := httptest.NewRecorder()
	p.serveOutbound(w, r)
	return w
}

// Builders of hand-made configuration for tests that need a shape the
// fixtures do not have.

func edsCluster(name string, mods ...func(*clusterv3.Cluster)) *clusterv3.Cluster {
	c := &clusterv3.Cluster{
		Name:                 name,
		AltStatName:          name + ";",
		ClusterDiscoveryType: &clusterv3.Cluster_Type{Type: clusterv3.Cluster_EDS},
		EdsClusterConfig:     &clusterv3.Cluster_EdsClusterConfig{ServiceName: name},
		ConnectTimeout:       durationpb.New(time.Second),
		LbPolicy:             clusterv3.Cluster_ROUND_ROBIN,
	}
	for _, m := range mods {
		m(c)
	}
	return c
}

func assignment(t testing.TB, name string, levels ...[]string) *endpointv3.ClusterLoadAssignment {
	la := &endpointv3.ClusterLoadAssignment{ClusterName: name}
	for prio, level := range levels {
		lle := &endpointv3.LocalityLbEndpoints{Priority: uint32(prio)}
		for _, hp := range level {
			lle.LbEndpoints = append(lle.LbEndpoints, lbEndpoint(t, hp, "cluster"+strconv.Itoa(prio+1)))
		}
		la.Endpoints = append(la.Endpoints, lle)
	}
	return la
}

// httpListener is a sidecar outbound listener on port with RDS routes.
func httpListener(t testing.TB, port uint32) *listenerv3.Listener {
	hcm := &hcmv3.HttpConnectionManager{
		StatPrefix:     "outbound_0.0.0.0_" + portString(port),
		RouteSpecifier: &hcmv3.HttpConnectionManager_Rds{Rds: &hcmv3.Rds{RouteConfigName: portString(port)}},
	}
	a, err := anypb.New(hcm)
	if err != nil {
		t.Fatal(err)
	}
	return &listenerv3.Listener{
		Name:    "0.0.0.0_" + portString(port),
		Address: &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{Address: "0.0.0.0", PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: port}}}},
		FilterChains: []*listenerv3.FilterChain{{Filters: []*listenerv3.Filter{{
			Name: "envoy.filters.network.http_connection_manager", ConfigType: &listenerv3.Filter_TypedConfig{TypedConfig: a},
		}}}},
		BindToPort: wrapperspb.Bool(false),
	}
}

func routeConfig(name string, vhs ...*routev3.VirtualHost) *routev3.RouteConfiguration {
	return &routev3.RouteConfiguration{Name: name, VirtualHosts: vhs}
}

func clusterRoute(prefix, cluster string, mods ...func(*routev3.RouteAction)) *routev3.Route {
	ra := &routev3.RouteAction{ClusterSpecifier: &routev3.RouteAction_Cluster{Cluster: cluster}, Timeout: durationpb.New(0)}
	for _, m := range mods {
		m(ra)
	}
	return &routev3.Route{
		Match:  &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: prefix}},
		Action: &routev3.Route_Route{Route: ra},
	}
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("timed out after %s waiting for %s", within, what)
		case <-time.After(10 * time.Millisecond):
		}
	}
}

func structMeta(m map[string]any) (*corev3.Metadata, error) {
	md := &corev3.Metadata{FilterMetadata: map[string]*structpb.Struct{}}
	for k, v := range m {
		st, err := structpb.NewStruct(v.(map[string]any))
		if err != nil {
			return nil, err
		}
		md.FilterMetadata[k] = st
	}
	return md, nil
}

func metadataOf(key string, st *structpb.Struct) *corev3.Metadata {
	return &corev3.Metadata{FilterMetadata: map[string]*structpb.Struct{key: st}}
}
