package sidecar_test

import (
	"context"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/meshdrill/drill/internal/envoyemu"
	"github.com/meshdrill/drill/pkg/scenario"
	"github.com/meshdrill/drill/pkg/translate"
)

var record = flag.Bool("record", false, "record the xDS fixtures of internal/envoyemu/testdata/xds from real istiods")

// recorder keeps the latest state of every xDS type a proxy received:
// CDS and LDS whole, EDS and RDS merged by resource name.
type recorder struct {
	mu    sync.Mutex
	state map[string]map[string]*anypb.Any
	last  time.Time
}

func newRecorder() *recorder { return &recorder{state: map[string]map[string]*anypb.Any{}} }

func resourceName(a *anypb.Any) string {
	var m interface{ GetName() string }
	switch a.GetTypeUrl() {
	case envoyemu.TypeCluster:
		m = &clusterv3.Cluster{}
	case envoyemu.TypeListener:
		m = &listenerv3.Listener{}
	case envoyemu.TypeRoute:
		m = &routev3.RouteConfiguration{}
	case envoyemu.TypeEndpoint:
		la := &endpointv3.ClusterLoadAssignment{}
		_ = a.UnmarshalTo(la)
		return la.GetClusterName()
	default:
		return ""
	}
	_ = a.UnmarshalTo(m.(proto.Message))
	return m.GetName()
}

func (r *recorder) add(resp *discoveryv3.DiscoveryResponse) {
	r.mu.Lock()
	defer r.mu.Unlock()
	t := resp.TypeUrl
	if t == envoyemu.TypeCluster || t == envoyemu.TypeListener || r.state[t] == nil {
		r.state[t] = map[string]*anypb.Any{}
	}
	for _, a := range resp.Resources {
		r.state[t][resourceName(a)] = a
	}
	r.last = time.Now()
}

func (r *recorder) has(typ, name string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	_, ok := r.state[typ][name]
	return ok
}

func (r *recorder) quietFor() time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	return time.Since(r.last)
}

// save writes one DiscoveryResponse per type, resources sorted by name, and
// an index of the names for review.
func (r *recorder) save(t *testing.T, dir string) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	var index strings.Builder
	for file, typ := range map[string]string{"cds": envoyemu.TypeCluster, "eds": envoyemu.TypeEndpoint, "lds": envoyemu.TypeListener, "rds": envoyemu.TypeRoute} {
		names := make([]string, 0, len(r.state[typ]))
		for n := range r.state[typ] {
			names = append(names, n)
		}
		slices.Sort(names)
		resp := &discoveryv3.DiscoveryResponse{TypeUrl: typ, VersionInfo: "recorded", Nonce: file}
		for _, n := range names {
			resp.Resources = append(resp.Resources, r.state[typ][n])
		}
		b, err := proto.MarshalOptions{Deterministic: true}.Marshal(resp)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, file+".pb"), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, file := range []string{"cds", "eds", "lds", "rds"} {
		typ := map[string]string{"cds": envoyemu.TypeCluster, "eds": envoyemu.TypeEndpoint, "lds": envoyemu.TypeListener, "rds": envoyemu.TypeRoute}[file]
		names := make([]string, 0, len(r.state[typ]))
		for n := range r.state[typ] {
			names = append(names, n)
		}
		slices.Sort(names)
		fmt.Fprintf(&index, "%s (%d)\n", file, len(names))
		for _, n := range names {
			fmt.Fprintf(&index, "  %s\n", n)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "index.txt"), []byte(index.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}

// recordProxy runs a proxy with identity id against cluster mc's istiod
// until it has cluster marker (or any configuration when marker is empty)
// and istiod has been quiet for a second, then saves what it received.
func recordProxy(t *testing.T, mc *meshCluster, id envoyemu.Identity, marker, dir string) {
	t.Helper()
	rec := newRecorder()
	p, err := envoyemu.New(id, mc.cp.IstiodGRPCAddr(), envoyemu.WithRecorder(rec.add), envoyemu.WithAdminPort(0), envoyemu.WithOutboundPort(0), envoyemu.WithoutStatusPorts())
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = p.Stop(sctx)
	}()
	deadline := time.Now().Add(2 * time.Minute)
	for !(p.Ready() && (marker == "" || rec.has(envoyemu.TypeCluster, marker)) && rec.quietFor() > time.Second) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: no settled configuration with cluster %q within 2 minutes", id.NodeID(), marker)
		}
		time.Sleep(100 * time.Millisecond)
	}
	rec.save(t, dir)
	t.Logf("recorded %s into %s", id.NodeID(), dir)
}

// TestRecordXDS records, with -record, what real istiods send the seed
// drill's proxies: productpage's sidecar under each strategy's translated
// policy, the ingress gateway and the east-west gateway. Package proxy's
// unit tests replay them.
func TestRecordXDS(t *testing.T) {
	if !*record {
		t.Skip("run with -record to record internal/envoyemu/testdata/xds from real istiods")
	}
	out := repoFile(t, "internal/envoyemu/testdata/xds")
	for _, strategy := range []struct{ name, file, marker string }{
		{"aggregate", "scenarios/reviews-failover.yaml", "outbound|9080||reviews-failover.default.global"},
		{"locality", "scenarios/locality-failover.yaml", "outbound|9080||reviews.default.svc.cluster.local"},
	} {
		t.Run(strategy.name, func(t *testing.T) {
			sc, err := scenario.Load(repoFile(t, strategy.file))
			if err != nil {
				t.Fatal(err)
			}
			mesh := startMesh(t, sc)
			remotes := map[string]translate.Endpoint{}
			for _, mc := range mesh {
				remotes[mc.name] = translate.Endpoint{Address: mc.ewAddr.String(), Port: envoyemu.EastWestPort}
			}
			res, err := translate.Translate(translate.Input{Scenario: sc, Remotes: remotes})
			if err != nil {
				t.Fatal(err)
			}
			applyTranslation(t, mesh, res)
			pp := envoyemu.Identity{
				Kind: envoyemu.Sidecar, Pod: "productpage-v1-recorded", Namespace: "default",
				IP:           netip.MustParseAddr("10.10.250.9"),
				Labels:       map[string]string{"app": "productpage", "version": "v1", "security.istio.io/tlsMode": "istio"},
				Annotations:  map[string]string{"proxy.istio.io/config": "proxyStatsMatcher:\n  inclusionPrefixes:\n  - cluster.outbound\n"},
				WorkloadName: "productpage-v1", ServiceAccount: "bookinfo-productpage", Cluster: mesh[0].name,
			}
			recordProxy(t, mesh[0], pp, strategy.marker, filepath.Join(out, strategy.name+"-productpage"))
			if strategy.name != "aggregate" {
				return
			}
			recordProxy(t, mesh[0], envoyemu.GatewayIdentity(mesh[0].name, "istio-ingressgateway", envoyemu.IngressGatewayLabel, netip.MustParseAddr("10.10.250.8")),
				"outbound|9080||productpage.default.svc.cluster.local", filepath.Join(out, "ingressgateway"))
			recordProxy(t, mesh[1], envoyemu.GatewayIdentity(mesh[1].name, "istio-eastwestgateway", envoyemu.EastWestGatewayLabel, netip.MustParseAddr("10.11.250.8")),
				"outbound_.9080_._.reviews.default.svc.cluster.local", filepath.Join(out, "eastwestgateway"))
		})
	}
}
