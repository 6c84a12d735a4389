package envoyemu

import (
	"context"
	"io"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	aggregatev3 "github.com/envoyproxy/go-control-plane/envoy/extensions/clusters/aggregate/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/anypb"
)

// fakeADS is an ADS server that hands the test every request and sends
// what the test queues.
type fakeADS struct {
	discoveryv3.UnimplementedAggregatedDiscoveryServiceServer
	reqs chan *discoveryv3.DiscoveryRequest
	out  chan *discoveryv3.DiscoveryResponse
}

func (f *fakeADS) StreamAggregatedResources(s discoveryv3.AggregatedDiscoveryService_StreamAggregatedResourcesServer) error {
	errc := make(chan error, 1)
	go func() {
		for {
			r, err := s.Recv()
			if err != nil {
				errc <- err
				return
			}
			f.reqs <- r
		}
	}()
	for {
		select {
		case r := <-f.out:
			if err := s.Send(r); err != nil {
				return err
			}
		case err := <-errc:
			if err == io.EOF {
				return nil
			}
			return err
		}
	}
}

func startFakeADS(t *testing.T) (*fakeADS, string) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return serveFakeADS(t, l), l.Addr().String()
}

// serveFakeADS serves a fakeADS on l (TCP, or a unix socket as pilot-agent's).
func serveFakeADS(t *testing.T, l net.Listener) *fakeADS {
	f := &fakeADS{reqs: make(chan *discoveryv3.DiscoveryRequest, 100), out: make(chan *discoveryv3.DiscoveryResponse, 100)}
	srv := grpc.NewServer()
	discoveryv3.RegisterAggregatedDiscoveryServiceServer(srv, f)
	go srv.Serve(l)
	t.Cleanup(srv.Stop)
	return f
}

func (f *fakeADS) next(t *testing.T, typ string) *discoveryv3.DiscoveryRequest {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case r := <-f.reqs:
			if r.TypeUrl == typ {
				return r
			}
		case <-timeout:
			t.Fatalf("no %s request within 10s", shortType(typ))
		}
	}
}

// TestADS: the proxy announces itself as Istio's agent does, asks for CDS
// and LDS, follows with EDS for the clusters it got, ACKs what it takes and
// NACKs what it cannot use — keeping the last good version — with the
// reason.
func TestADS(t *testing.T) {
	ads, addr := startFakeADS(t)
	p, err := New(testIdentity(), addr, WithAdminPort(0), WithOutboundPort(0), WithoutStatusPorts())
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = p.Stop(ctx)
	})

	first := ads.next(t, TypeCluster)
	id := testIdentity()
	if first.Node.GetId() != id.NodeID() || !strings.HasPrefix(first.Node.GetId(), "sidecar~10.0.0.1~productpage-v1-test.default~default.svc.cluster.local") {
		t.Errorf("node id %q", first.Node.GetId())
	}
	md := first.Node.GetMetadata().GetFields()
	for k, want := range map[string]string{"CLUSTER_ID": "cluster1", "NAMESPACE": "default", "WORKLOAD_NAME": "productpage-v1", "INTERCEPTION_MODE": "REDIRECT", "SERVICE_ACCOUNT": "bookinfo-productpage", "INSTANCE_IPS": "10.0.0.1"} {
		if got := md[k].GetStringValue(); got != want {
			t.Errorf("metadata %s = %q, want %q", k, got, want)
		}
	}
	if md["LABELS"].GetStructValue().GetFields()["app"].GetStringValue() != "productpage" {
		t.Errorf("metadata LABELS %v", md["LABELS"])
	}
	if md["PROXY_CONFIG"].GetStructValue().GetFields()["proxyStatsMatcher"] == nil {
		t.Errorf("metadata PROXY_CONFIG lacks the pod's proxyStatsMatcher: %v", md["PROXY_CONFIG"])
	}
	ads.next(t, TypeListener)

	good := response(t, TypeCluster, edsCluster("outbound|9080||reviews.default.svc.cluster.local"))
	good.VersionInfo, good.Nonce = "v1", "n1"
	ads.out <- good
	ack := ads.next(t, TypeCluster)
	if ack.VersionInfo != "v1" || ack.ResponseNonce != "n1" || ack.ErrorDetail != nil {
		t.Errorf("ACK %+v, want version v1, nonce n1, no error", ack)
	}
	eds := ads.next(t, TypeEndpoint)
	if !slices.Equal(eds.ResourceNames, []string{"outbound|9080||reviews.default.svc.cluster.local"}) {
		t.Errorf("EDS subscription %v", eds.ResourceNames)
	}

	// An aggregate cluster with no members cannot be built: NACK, version
	// stays v1.
	agg, _ := anypb.New(&aggregatev3.ClusterConfig{})
	bad := response(t, TypeCluster, &clusterv3.Cluster{Name: "broken", LbPolicy: clusterv3.Cluster_CLUSTER_PROVIDED,
		ClusterDiscoveryType: &clusterv3.Cluster_ClusterType{ClusterType: &clusterv3.Cluster_CustomClusterType{Name: "envoy.clusters.aggregate", TypedConfig: agg}}})
	bad.VersionInfo, bad.Nonce = "v2", "n2"
	ads.out <- bad
	nack := ads.next(t, TypeCluster)
	if nack.VersionInfo != "v1" || nack.ResponseNonce != "n2" || nack.ErrorDetail == nil || !strings.Contains(nack.ErrorDetail.Message, "broken") {
		t.Errorf("NACK %+v, want version v1, nonce n2 and a reason naming the cluster", nack)
	}
	if p.routing.Load().cluster("outbound|9080||reviews.default.svc.cluster.local") == nil {
		t.Error("the NACKed response replaced the good configuration")
	}

	// The rest of the configuration makes the proxy ready.
	for _, r := range []*discoveryv3.DiscoveryResponse{
		response(t, TypeEndpoint, assignment(t, "outbound|9080||reviews.default.svc.cluster.local", []string{"127.0.0.1:9"})),
		response(t, TypeListener, httpListener(t, 9080)),
		response(t, TypeRoute, routeConfig("9080")),
	} {
		r.Nonce = shortType(r.TypeUrl)
		ads.out <- r
	}
	ads.next(t, TypeRoute) // the RDS subscription after LDS
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := p.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	st := p.ads.status()
	if st.NACKs["CDS"] != 1 || st.ACKs["CDS"] != 1 || !strings.Contains(st.LastNACK["CDS"], "aggregate cluster with no clusters") {
		t.Errorf("xDS status %+v", st)
	}
}

// TestNodeIdentity checks the router form of the node id.
func TestNodeIdentity(t *testing.T) {
	id := GatewayIdentity("cluster2", "istio-eastwestgateway", EastWestGatewayLabel, testIdentity().IP)
	if got := id.NodeID(); got != "router~10.0.0.1~istio-eastwestgateway-cluster2.istio-system~istio-system.svc.cluster.local" {
		t.Errorf("gateway node id %q", got)
	}
	n, err := id.node()
	if err != nil {
		t.Fatal(err)
	}
	if n.GetMetadata().GetFields()["LABELS"].GetStructValue().GetFields()["istio"].GetStringValue() != EastWestGatewayLabel {
		t.Errorf("gateway labels %v", n.GetMetadata().GetFields()["LABELS"])
	}
	var _ *corev3.Node = n
	if l := n.GetLocality(); l.GetRegion() != "" || l.GetZone() != "" {
		t.Errorf("a gateway without a locality sends %v", l)
	}
	// A gateway without a pod tells istiod its locality in the node, as
	// istiod reads it for proxies without service targets.
	id.Locality = "eu-west/zone-a/rack-1"
	if n, err = id.node(); err != nil {
		t.Fatal(err)
	}
	if l := n.GetLocality(); l.GetRegion() != "eu-west" || l.GetZone() != "zone-a" || l.GetSubZone() != "rack-1" {
		t.Errorf("node locality %v, want eu-west/zone-a/rack-1", l)
	}
	bad := testIdentity()
	bad.IP = netip4(192, 168, 1, 1)
	if _, err := New(bad, "127.0.0.1:1"); err == nil {
		t.Error("a proxy for a non-pod, non-loopback address was built; it would send packets off the machine")
	}
}

func netip4(a, b, c, d byte) netip.Addr { return netip.AddrFrom4([4]byte{a, b, c, d}) }
