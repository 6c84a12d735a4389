package sidecar_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	kruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/meshdrill/drill/internal/bookinfo"
	"github.com/meshdrill/drill/internal/bookinfo/app"
	"github.com/meshdrill/drill/internal/envoyemu"
	"github.com/meshdrill/drill/internal/localcluster"
	"github.com/meshdrill/drill/internal/localcluster/localtest"
	"github.com/meshdrill/drill/internal/stats"
	"github.com/meshdrill/drill/pkg/cluster/local/internal/sidecar"
	"github.com/meshdrill/drill/pkg/scenario"
	"github.com/meshdrill/drill/pkg/translate"
)

// meshCluster is one cluster of the test mesh with its node and gateway.
type meshCluster struct {
	name     string
	cp       *localcluster.ControlPlane
	cs       kubernetes.Interface
	dyn      dynamic.Interface
	node     *localcluster.Node
	eastWest *envoyemu.Proxy
	ewAddr   netip.Addr
	ingress  *envoyemu.Proxy // nil unless the scenario sends load here
}

// startGateway starts a gateway proxy of cluster c and stops it with the test.
func startGateway(t *testing.T, cp *localcluster.ControlPlane, id envoyemu.Identity, opts ...envoyemu.Option) *envoyemu.Proxy {
	t.Helper()
	gw, err := envoyemu.NewGateway(id, cp.IstiodGRPCAddr(), append([]envoyemu.Option{envoyemu.WithLogger(testLogger(t, slog.LevelWarn).With("gateway", id.Pod))}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	if err := gw.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = gw.Stop(sctx)
	})
	return gw
}

// gatewaySecrets is the secret source of a gateway: its certificate from
// the cluster's istiod CA.
func gatewaySecrets(t *testing.T, ca sidecar.CA, name string) envoyemu.Option {
	t.Helper()
	src, err := ca.GatewaySource(t.Context(), name, testLogger(t, slog.LevelWarn))
	if err != nil {
		t.Fatal(err)
	}
	return envoyemu.WithSecrets(src)
}

// gatewayAddr is where the test runs a gateway of cluster i: an address of
// the cluster's pod range far from where the node starts allocating, drawn
// at random so that test processes running at once do not collide.
func gatewayAddr(i int) netip.Addr {
	return netip.AddrFrom4([4]byte{10, byte(10 + i), byte(200 + rand.IntN(50)), byte(1 + rand.IntN(250))})
}

func repoFile(t *testing.T, rel string) string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "..", "..", "..", rel)
}

// startMesh starts the scenario's clusters, each with a node running
// Bookinfo behind emulated sidecars and an east-west gateway.
func startMesh(t *testing.T, sc *scenario.Scenario) []*meshCluster {
	t.Helper()
	var names []string
	for _, c := range sc.Spec.Clusters {
		names = append(names, c.Name)
	}
	m := localtest.StartClusters(t, names)
	ctx := t.Context()
	var out []*meshCluster
	for i, c := range sc.Spec.Clusters {
		cp := m.Cluster(c.Name)
		mc := &meshCluster{name: c.Name, cp: cp,
			cs: kubernetes.NewForConfigOrDie(cp.RESTConfig()), dyn: dynamic.NewForConfigOrDie(cp.RESTConfig())}
		// Mutual TLS as the local provider runs it: certificates from each
		// cluster's istiod CA.
		ca := sidecar.CA{Addr: cp.IstiodCAAddr(), RootPEM: cp.MeshRootPEM(), Cluster: c.Name, Kube: mc.cs}
		f := sidecar.New(cp.IstiodGRPCAddr(), sidecar.WithLogger(testLogger(t, slog.LevelWarn).With("cluster", c.Name)), sidecar.WithCA(ca))
		node, err := localcluster.StartNode(ctx, c.Name, i, mc.cs, localcluster.WithSidecars(f),
			localcluster.WithLocality(c.Locality), localcluster.WithNodeLogger(testLogger(t, slog.LevelWarn).With("cluster", c.Name)))
		if err != nil {
			t.Fatal(err)
		}
		mc.node = node
		t.Cleanup(func() {
			sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if err := node.Stop(sctx); err != nil {
				t.Error(err)
			}
		})
		// The east-west gateway and the Gateway object that gives it its
		// AUTO_PASSTHROUGH listener.
		mc.ewAddr = gatewayAddr(i)
		gw := startGateway(t, cp, envoyemu.GatewayIdentity(c.Name, "istio-eastwestgateway", envoyemu.EastWestGatewayLabel, mc.ewAddr), gatewaySecrets(t, ca, "istio-eastwestgateway"))
		mc.eastWest = gw
		applyObject(t, mc.dyn, envoyemu.CrossNetworkGateway())
		bopts := []bookinfo.Option{bookinfo.WithObserved("productpage")}
		if c.Ingress {
			bopts = append(bopts, bookinfo.WithIngress())
			mc.ingress = startGateway(t, cp, envoyemu.GatewayIdentity(c.Name, "istio-ingressgateway", envoyemu.IngressGatewayLabel, gatewayAddr(i)), gatewaySecrets(t, ca, "istio-ingressgateway"))
		}
		set, err := bookinfo.Manifests(*c.Bookinfo, "default", bopts...)
		if err != nil {
			t.Fatal(err)
		}
		injectLabels(set)
		if err := bookinfo.Apply(ctx, c.Name, mc.cs, mc.dyn, set, bookinfo.WithoutWait()); err != nil {
			t.Fatal(err)
		}
		out = append(out, mc)
	}
	for _, mc := range out {
		if err := bookinfo.WaitAvailable(ctx, mc.cs, "default", deploymentsOf(t, mc), 3*time.Minute); err != nil {
			t.Fatalf("cluster %s: %v", mc.name, err)
		}
		for _, gw := range []*envoyemu.Proxy{mc.eastWest, mc.ingress} {
			if gw == nil {
				continue
			}
			rctx, cancel := context.WithTimeout(ctx, time.Minute)
			err := gw.WaitReady(rctx)
			cancel()
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	return out
}

// injectLabels adds to Bookinfo's pod templates the labels Istio's sidecar
// injector adds to the pods it injects. istiod reads security.istio.io/tlsMode
// to know an endpoint speaks Istio mTLS, and sends an AUTO_PASSTHROUGH
// gateway only such endpoints.
func injectLabels(set *bookinfo.Set) {
	for _, d := range set.Deployments {
		l := d.Spec.Template.Labels
		l["security.istio.io/tlsMode"] = "istio"
		l["service.istio.io/canonical-name"] = l["app"]
		l["service.istio.io/canonical-revision"] = l["version"]
	}
}

func deploymentsOf(t *testing.T, mc *meshCluster) []string {
	list, err := mc.cs.AppsV1().Deployments("default").List(t.Context(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, d := range list.Items {
		out = append(out, d.Name)
	}
	return out
}

func applyObject(t *testing.T, dyn dynamic.Interface, obj kruntime.Object) {
	t.Helper()
	m, err := kruntime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		t.Fatal(err)
	}
	u := &unstructured.Unstructured{Object: m}
	unstructured.RemoveNestedField(u.Object, "metadata", "creationTimestamp")
	unstructured.RemoveNestedField(u.Object, "status")
	gv, _ := schema.ParseGroupVersion(u.GetAPIVersion())
	gvr := gv.WithResource(strings.ToLower(u.GetKind()) + "s")
	if _, err := dyn.Resource(gvr).Namespace(u.GetNamespace()).Apply(t.Context(), u.GetName(), u, metav1.ApplyOptions{FieldManager: "drill", Force: true}); err != nil {
		t.Fatalf("apply %s %s/%s: %v", u.GetKind(), u.GetNamespace(), u.GetName(), err)
	}
}

// applyTranslation applies each cluster's translated objects.
func applyTranslation(t *testing.T, mesh []*meshCluster, res *translate.Result) {
	t.Helper()
	for _, mc := range mesh {
		co := res.Cluster(mc.name)
		for _, o := range co.Objects() {
			u, err := translate.ToUnstructured(o)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := mc.dyn.Resource(translate.Resource(o)).Namespace(u.GetNamespace()).Apply(t.Context(), u.GetName(), u,
				metav1.ApplyOptions{FieldManager: "drill", Force: true}); err != nil {
				t.Fatalf("cluster %s: apply %s %s: %v", mc.name, u.GetKind(), u.GetName(), err)
			}
		}
	}
}

func scaleReviews(t *testing.T, mc *meshCluster, replicas int32) {
	t.Helper()
	list, err := mc.cs.AppsV1().Deployments("default").List(t.Context(), metav1.ListOptions{LabelSelector: "app=reviews"})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range list.Items {
		s, err := mc.cs.AppsV1().Deployments("default").GetScale(t.Context(), d.Name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		s.Spec.Replicas = replicas
		if _, err := mc.cs.AppsV1().Deployments("default").UpdateScale(t.Context(), d.Name, s, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
}

// page fetches the product page and says which cluster's reviews served it
// ("" when reviews were unavailable).
func page(t *testing.T, pp string) (servedBy string, err error) {
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, "http://"+net.JoinHostPort(pp, "9080")+"/productpage", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	body := string(b)
	if resp.StatusCode != 200 {
		return "", fmt.Errorf("productpage: %s", resp.Status)
	}
	if strings.Contains(body, app.ReviewsUnavailable) {
		return "", nil
	}
	if c := resp.Header.Get(app.HeaderReviewsCluster); c != "" {
		return c, nil
	}
	return "?", nil
}

// scrape parses the productpage sidecar's Prometheus stats with internal/stats.
func scrape(t *testing.T, pp string) (*stats.Snapshot, string) {
	t.Helper()
	text := get(t, "http://"+net.JoinHostPort(pp, "15000")+"/stats/prometheus")
	snap, err := stats.Parse([]byte(text))
	if err != nil {
		t.Fatalf("parse productpage sidecar stats: %v", err)
	}
	return snap, text
}

// failover drives productpage until its reviews come from cluster1, scales
// reviews in cluster1 to zero and waits until they come from cluster2.
func failover(t *testing.T, mesh []*meshCluster, statCluster string) {
	c1 := mesh[0]
	pp := podTwin(t, c1.cs, "default", "app=productpage")
	// The policy is in force once every page's reviews come from cluster1:
	// without it reviews' endpoints in both clusters take turns.
	deadline := time.Now().Add(90 * time.Second)
	for run := 0; run < 20; {
		by, err := page(t, pp)
		if err == nil && by == "cluster1" {
			run++
		} else {
			run = 0
		}
		if time.Now().After(deadline) {
			t.Fatalf("productpage in cluster1 never kept to reviews of cluster1 (last: %q, %v)\n%s", by, err, get(t, "http://"+net.JoinHostPort(pp, "15000")+"/clusters"))
		}
		time.Sleep(50 * time.Millisecond)
	}
	if c1.ingress != nil {
		// The ingress gateway routes Bookinfo's Gateway and VirtualService.
		u := "http://" + net.JoinHostPort(c1.ingress.Address().String(), "8080") + "/productpage"
		body := get(t, u)
		if !strings.Contains(body, "Book Details") || strings.Contains(body, app.ReviewsUnavailable) {
			t.Fatalf("GET %s through the ingress gateway: not the product page\n%s", u, body)
		}
	}
	scaleReviews(t, c1, 0)
	start := time.Now()
	// Failover is done when pages keep coming from cluster2: until outlier
	// detection has ejected every reviews endpoint of cluster1, some
	// requests still go to them and fail, as with Envoy.
	var seen []string
	deadline = time.Now().Add(60 * time.Second)
	for run := 0; run < 10; {
		by, err := page(t, pp)
		if err != nil {
			t.Fatal(err)
		}
		seen = append(seen, by)
		if by == "cluster2" {
			run++
		} else {
			run = 0
		}
		if time.Now().After(deadline) {
			_, text := scrape(t, pp)
			gw := mesh[1].eastWest.AdminURL()
			t.Fatalf("no failover to cluster2 within 60s; pages served by %q\n%s\nclusters:\n%s\ncluster2 east-west gateway:\n%s\n%s\n%s", compact(seen), text,
				get(t, "http://"+net.JoinHostPort(pp, "15000")+"/clusters"), get(t, gw+"/config_dump"), get(t, gw+"/stats"), get(t, gw+"/clusters"))
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("failover after %s (%d pages; served by %v)", time.Since(start).Round(time.Millisecond), len(seen), compact(seen))
	for range 10 {
		if by, err := page(t, pp); err != nil || by != "cluster2" {
			t.Fatalf("after failover a page was served by %q (%v), want cluster2", by, err)
		}
	}
	snap, text := scrape(t, pp)
	if err := stats.CheckOutboundStats(snap, "productpage"); err != nil {
		t.Error(err)
	}
	if os.Getenv("DRILL_PROXY_DUMP") != "" {
		_ = os.WriteFile(os.Getenv("DRILL_PROXY_DUMP")+"."+t.Name(), []byte(text), 0o644)
	}
	// The Envoy cluster that took the traffic counts the requests it sent
	// (upstream_rq_total, the connection pool's count: through an aggregate,
	// the router counts response codes on the aggregate itself).
	cs := snap.Clusters[statCluster]
	if cs == nil || cs.Get(stats.StatRqTotal) < 20 {
		t.Errorf("productpage sidecar stats: %s has %+v, want at least 20 requests\n%s", statCluster, cs, text)
	}
	// Every hop was mutual TLS with certificates from istiod's CA:
	// productpage's sidecar made TLS handshakes on the cluster that took
	// the traffic, and cluster2's reviews sidecars, behind the east-west
	// gateway's SNI passthrough, saw mutual_tls requests from productpage.
	if !strings.Contains(text, `envoy_cluster_ssl_handshake{cluster_name="`+statCluster+`"}`) {
		t.Errorf("productpage's sidecar made no TLS handshake on %s:\n%s", statCluster, grep(text, "ssl"))
	}
	mtls := 0
	for _, twin := range podTwins(t, mesh[1].cs, "default", "app=reviews") {
		for _, l := range strings.Split(get(t, "http://"+net.JoinHostPort(twin, "15000")+"/stats/prometheus"), "\n") {
			if strings.HasPrefix(l, "istio_requests_total{") && strings.Contains(l, `reporter="destination"`) &&
				strings.Contains(l, `source_workload="productpage-v1"`) && strings.Contains(l, `source_principal="spiffe://cluster.local/ns/default/sa/bookinfo-productpage"`) &&
				strings.Contains(l, `connection_security_policy="mutual_tls"`) {
				mtls++
			}
		}
	}
	if mtls == 0 {
		t.Errorf("no reviews sidecar of cluster2 counted a mutual_tls request from productpage")
	}
	served := map[string]uint64{}
	for k, v := range snap.Requests {
		if k.Reporter == "source" && strings.HasPrefix(k.DestinationService, "reviews") && k.ResponseCode == "200" {
			served[k.DestinationCluster] += v
		}
	}
	if served["cluster2"] < 10 || served["cluster1"] == 0 {
		t.Errorf("istio_requests_total of productpage to reviews by destination_cluster: %v; want both clusters, cluster2 at least 10", served)
	}
}

func compact(s []string) []string {
	var out []string
	for i, v := range s {
		if i == 0 || v != s[i-1] {
			out = append(out, v)
		}
	}
	return out
}

// TestFailover is the seed drill by hand, for both strategies, against real
// istiods: the scenario's policy translated and applied, reviews scaled to
// zero in cluster1, and productpage's traffic moving to cluster2 — visible
// in the pages and in productpage's sidecar stats. Both strategies run on
// one mesh, one after the other: the first one's objects are removed and
// reviews brought back before the second is applied.
func TestFailover(t *testing.T) {
	tests := []struct {
		name, file, statCluster string
	}{
		{"aggregate", "scenarios/reviews-failover.yaml", "outbound|9080||reviews.default.svc.cluster2.global"},
		{"locality", "scenarios/locality-failover.yaml", "outbound|9080||reviews.default.svc.cluster.local"},
	}
	first, err := scenario.Load(repoFile(t, tests[0].file))
	if err != nil {
		t.Fatal(err)
	}
	mesh := startMesh(t, first)
	remotes := map[string]translate.Endpoint{}
	for _, mc := range mesh {
		remotes[mc.name] = translate.Endpoint{Address: mc.ewAddr.String(), Port: envoyemu.EastWestPort}
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sc, err := scenario.Load(repoFile(t, tc.file))
			if err != nil {
				t.Fatal(err)
			}
			res, err := translate.Translate(translate.Input{Scenario: sc, Remotes: remotes})
			if err != nil {
				t.Fatal(err)
			}
			applyTranslation(t, mesh, res)
			failover(t, mesh, tc.statCluster)
			removeTranslation(t, mesh, sc.Metadata.Name)
			scaleReviews(t, mesh[0], 1)
			if err := bookinfo.WaitAvailable(t.Context(), mesh[0].cs, "default", deploymentsOf(t, mesh[0]), 2*time.Minute); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// removeTranslation deletes what applyTranslation applied for a scenario.
func removeTranslation(t *testing.T, mesh []*meshCluster, scenarioName string) {
	t.Helper()
	for _, mc := range mesh {
		for _, gvr := range []schema.GroupVersionResource{
			{Group: "networking.istio.io", Version: "v1", Resource: "serviceentries"},
			{Group: "networking.istio.io", Version: "v1", Resource: "destinationrules"},
			{Group: "networking.istio.io", Version: "v1alpha3", Resource: "envoyfilters"},
			{Group: "networking.istio.io", Version: "v1", Resource: "virtualservices"},
		} {
			list, err := mc.dyn.Resource(gvr).Namespace(metav1.NamespaceAll).List(t.Context(), metav1.ListOptions{LabelSelector: translate.Selector(scenarioName)})
			if err != nil {
				t.Fatalf("cluster %s: list %s of %s: %v", mc.name, gvr.Resource, scenarioName, err)
			}
			for _, o := range list.Items {
				if err := mc.dyn.Resource(gvr).Namespace(o.GetNamespace()).Delete(t.Context(), o.GetName(), metav1.DeleteOptions{}); err != nil {
					t.Fatalf("cluster %s: delete %s %s/%s: %v", mc.name, gvr.Resource, o.GetNamespace(), o.GetName(), err)
				}
			}
		}
	}
}
