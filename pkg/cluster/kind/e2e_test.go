package kind

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/e2e-framework/klient/k8s/resources"
	"sigs.k8s.io/e2e-framework/klient/wait"
	"sigs.k8s.io/e2e-framework/klient/wait/conditions"
	"sigs.k8s.io/e2e-framework/pkg/env"
	"sigs.k8s.io/e2e-framework/pkg/envconf"
	"sigs.k8s.io/e2e-framework/pkg/features"

	"github.com/meshdrill/drill/pkg/cluster"
	"github.com/meshdrill/drill/pkg/fault"
)

// TestKindOffline runs on real kind clusters made from the node image make
// images builds: the kind provider brings up the seed scenario's two clusters
// with MetalLB, Istio multi-primary on two networks and drill's Bookinfo with
// sidecars on real kubelets — every proxy the real pilot-agent running drill's
// emulated Envoy, with istio-init's iptables capture. Requests through
// cluster1's ingress gateway reach reviews; reviews scaled to zero with
// pkg/fault empties its endpoints, and the same requests are then served by
// cluster2's reviews through both clusters' east-west gateways; the revert
// brings the endpoints back. Each cluster's node reaches the other cluster's
// pods and services through the routes the provider adds, and Down leaves no
// cluster behind.
//
// It needs a Docker engine (make docker) and the offline images (make images),
// and says so when it skips.
func TestKindOffline(t *testing.T) {
	if testing.Short() {
		t.Skip("creates kind clusters; not in -short")
	}
	if err := exec.Command("docker", "info").Run(); err != nil {
		t.Skip("no Docker engine answers (start one with make docker): ", err)
	}
	if err := exec.Command("docker", "image", "inspect", OfflineNodeImage).Run(); err != nil {
		t.Skipf("the offline node image %s is not built (make images)", OfflineNodeImage)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()

	var log bytes.Buffer
	defer func() {
		if t.Failed() {
			t.Logf("provider log:\n%s", log.String())
		}
	}()
	prefix := fmt.Sprintf("drill-e2e%d-", os.Getpid()%1000)
	p := New(WithImages(ImagesOffline), WithNamePrefix(prefix), WithStateDir(t.TempDir()),
		WithLogger(slog.New(slog.NewTextHandler(&log, &slog.HandlerOptions{Level: slog.LevelInfo}))))
	s := seed(t)
	start := time.Now()
	clusters, err := p.Up(ctx, s)
	if err != nil {
		t.Fatalf("Up: %v", err)
	}
	t.Logf("two kind clusters with Bookinfo ready in %s", time.Since(start).Round(time.Second))
	defer func() {
		if err := p.Down(context.WithoutCancel(ctx)); err != nil {
			t.Errorf("Down: %v", err)
		}
		left, err := p.kindProvider().List()
		if err != nil {
			t.Fatalf("list kind clusters: %v", err)
		}
		for _, c := range clusters {
			if slices.Contains(left, prefix+c.Name) {
				t.Errorf("kind cluster %s is still there after Down", prefix+c.Name)
			}
		}
	}()
	if p.DataPlane() != cluster.DataPlaneEmulated || clusters[0].DataPlane != cluster.DataPlaneEmulated {
		t.Errorf("data plane %s, want %s: Istio's proxy image with drill's emulated Envoy", clusters[0].DataPlane, cluster.DataPlaneEmulated)
	}

	// Each node fences its own pod range: a gone pod's address is
	// unreachable at once, never routed off the node.
	for i, c := range clusters {
		layout, _ := ClusterLayout(i)
		out, err := exec.CommandContext(ctx, "docker", "exec", prefix+c.Name+"-control-plane", "ip", "route", "show", "type", "unreachable").CombinedOutput()
		if err != nil || !strings.Contains(string(out), layout.PodSubnet.String()) {
			t.Errorf("node of %s: unreachable routes %q (%v), want %s", c.Name, out, err, layout.PodSubnet)
		}
	}

	c1, c2 := clusters[0], clusters[1]
	t.Run("partition", func(t *testing.T) { testKindPartition(ctx, t, prefix, c1, c2) })
	ingress, err := c1.Access.Ingress(ctx)
	if err != nil {
		t.Fatalf("ingress of %s: %v", c1.Name, err)
	}
	ns := s.Spec.Namespace
	reviewsPods := func(c *cluster.Cluster) []string {
		pods, err := c.Kube.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=reviews"})
		if err != nil {
			t.Fatalf("reviews pods of %s: %v", c.Name, err)
		}
		var names []string
		for _, p := range pods.Items {
			names = append(names, p.Name)
		}
		return names
	}
	testenv := env.NewWithConfig(envconf.New().WithKubeconfigFile(c1.Kubeconfig).WithNamespace(ns))
	reviews := features.New("reviews in "+c1.Name).
		Assess("Bookinfo runs on the real kubelet", func(ctx context.Context, t *testing.T, cfg *envconf.Config) context.Context {
			for _, d := range []string{"productpage-v1", "details-v1", "ratings-v1", "reviews-v1", "reviews-v2"} {
				if err := wait.For(conditions.New(cfg.Client().Resources()).DeploymentAvailable(d, ns), wait.WithTimeout(2*time.Minute)); err != nil {
					t.Fatalf("deployment %s/%s never became available: %v", ns, d, err)
				}
			}
			// Every pod has Istio's sidecar from the offline proxy image, ready:
			// pilot-agent's readiness probe passed through the emulated Envoy.
			// (On Kubernetes with native sidecars Istio injects istio-proxy as
			// an init container that keeps running.)
			var pods corev1.PodList
			if err := cfg.Client().Resources(ns).List(ctx, &pods); err != nil {
				t.Fatal(err)
			}
			for _, pod := range pods.Items {
				ok := false
				for _, cs := range append(pod.Status.InitContainerStatuses, pod.Status.ContainerStatuses...) {
					if cs.Name == "istio-proxy" && cs.Ready && strings.Contains(cs.Image, OfflineIstioHub+"/proxyv2:") {
						ok = true
					}
				}
				if !ok && pod.DeletionTimestamp == nil {
					t.Errorf("pod %s has no ready istio-proxy of %s/proxyv2: %+v", pod.Name, OfflineIstioHub, pod.Status.InitContainerStatuses)
				}
			}
			return ctx
		}).
		Assess("the ingress gateway and the sidecars serve Bookinfo", func(ctx context.Context, t *testing.T, cfg *envconf.Config) context.Context {
			all := append(reviewsPods(c1), reviewsPods(c2)...)
			who := reviewsVia(ctx, t, ingress, 10)
			for _, w := range who {
				if !slices.Contains(all, w) {
					t.Errorf("reviews answered from pod %q, which is neither cluster's", w)
				}
			}
			return ctx
		}).
		Assess("scaling reviews to zero empties its endpoints, the revert fills them", func(ctx context.Context, t *testing.T, cfg *envconf.Config) context.Context {
			r := cfg.Client().Resources(ns)
			if n := readyEndpoints(ctx, t, r, "reviews"); n == 0 {
				t.Fatal("reviews has no ready endpoints before the fault")
			}
			target := fault.Target{Name: c1.Name, Context: c1.Context, Kubeconfig: c1.Kubeconfig, Owned: c1.Owned, Client: c1.Kube}
			f, err := fault.NewScale(target, fault.ByApp(ns, "reviews"), 0)
			if err != nil {
				t.Fatal(err)
			}
			if err := f.Apply(ctx); err != nil {
				t.Fatalf("scale reviews to 0: %v", err)
			}
			if err := wait.For(func(ctx context.Context) (bool, error) { return readyEndpoints(ctx, t, r, "reviews") == 0, nil },
				wait.WithTimeout(2*time.Minute), wait.WithInterval(200*time.Millisecond)); err != nil {
				t.Fatalf("reviews still has ready endpoints after scaling to zero: %v", err)
			}
			// Now only cluster2 has reviews: cluster1's productpage reaches it
			// through the east-west gateways, as Istio's multi-network mesh
			// routes it (SNI passthrough on 15443).
			remote := reviewsPods(c2)
			if err := wait.For(func(ctx context.Context) (bool, error) {
				for _, w := range reviewsVia(ctx, t, ingress, 5) {
					if !slices.Contains(remote, w) {
						return false, nil
					}
				}
				return true, nil
			}, wait.WithTimeout(time.Minute), wait.WithInterval(time.Second)); err != nil {
				t.Errorf("with reviews gone from %s, its productpage is not served by %s's reviews %v: %v", c1.Name, c2.Name, remote, err)
			}
			// That path is mutual TLS end to end, as with Envoy: productpage's
			// sidecar made TLS handshakes with its SDS certificate (from
			// pilot-agent, signed by istiod's CA), cluster2's east-west
			// gateway passed them through by SNI, and cluster2's reviews
			// sidecars terminated them and saw cluster1's productpage as a
			// mutual_tls peer.
			pp, err := c1.Kube.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=productpage"})
			if err != nil || len(pp.Items) == 0 {
				t.Fatalf("productpage pods of %s: %v", c1.Name, err)
			}
			if prom := sidecarStats(ctx, t, c1, ns, pp.Items[0].Name); !statPositive(prom, "envoy_cluster_ssl_handshake{") {
				t.Errorf("productpage's sidecar made no TLS handshake:\n%s", grepStat(prom, "ssl"))
			}
			mtls := false
			for _, pod := range remote {
				prom := sidecarStats(ctx, t, c2, ns, pod)
				for _, l := range strings.Split(prom, "\n") {
					if strings.HasPrefix(l, "istio_requests_total{") && strings.Contains(l, `reporter="destination"`) &&
						strings.Contains(l, `source_workload="productpage-v1"`) && strings.Contains(l, `source_cluster="`+c1.Name+`"`) &&
						strings.Contains(l, `connection_security_policy="mutual_tls"`) {
						mtls = true
					}
				}
			}
			if !mtls {
				t.Errorf("no reviews sidecar of %s counted a mutual_tls request from %s's productpage", c2.Name, c1.Name)
			}
			if err := f.Revert(ctx); err != nil {
				t.Fatalf("revert: %v", err)
			}
			if err := wait.For(func(ctx context.Context) (bool, error) { return readyEndpoints(ctx, t, r, "reviews") >= 2, nil },
				wait.WithTimeout(3*time.Minute), wait.WithInterval(500*time.Millisecond)); err != nil {
				t.Fatalf("reviews' endpoints did not come back after the revert: %v", err)
			}
			return ctx
		}).Feature()
	testenv.Test(t, reviews)

	// Across clusters: cluster1's node asks cluster2's reviews, by pod address
	// and by service address.
	pods, err := c2.Kube.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=reviews"})
	if err != nil || len(pods.Items) == 0 {
		t.Fatalf("reviews pods in %s: %v (%d)", c2.Name, err, len(pods.Items))
	}
	svc, err := c2.Kube.CoreV1().Services(ns).Get(ctx, "reviews", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	node := prefix + c1.Name + "-control-plane"
	for _, addr := range []string{pods.Items[0].Status.PodIP, svc.Spec.ClusterIP} {
		out := httpFromNode(ctx, t, node, addr, 9080, "/reviews/0")
		served := slices.ContainsFunc(pods.Items, func(p corev1.Pod) bool { return strings.Contains(out, `"podname":"`+p.Name+`"`) })
		if !served {
			t.Errorf("GET http://%s:9080/reviews/0 from %s: %q, want an answer from a reviews pod of %s", addr, node, out, c2.Name)
		}
	}
}

// sidecarStats is a pod's sidecar's /stats/prometheus, read through its
// Envoy admin port.
func sidecarStats(ctx context.Context, t *testing.T, c *cluster.Cluster, ns, pod string) string {
	t.Helper()
	a, err := c.Access.EnvoyAdmin(ctx, ns, pod)
	if err != nil {
		t.Fatalf("admin of %s/%s in %s: %v", ns, pod, c.Name, err)
	}
	if a.Close != nil {
		defer a.Close()
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, a.URL+"/stats/prometheus", nil)
	resp, err := a.Client.Do(req)
	if err != nil {
		t.Fatalf("stats of %s/%s in %s: %v", ns, pod, c.Name, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// statPositive reports whether a sample line starting with prefix has a
// value above zero.
func statPositive(prom, prefix string) bool {
	for _, l := range strings.Split(prom, "\n") {
		if strings.HasPrefix(l, prefix) {
			f := strings.Fields(l)
			if len(f) >= 2 && f[len(f)-1] != "0" {
				return true
			}
		}
	}
	return false
}

func grepStat(prom, sub string) string {
	var out []string
	for _, l := range strings.Split(prom, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// reviewsVia asks cluster1's ingress gateway n times for product 0's
// reviews (Bookinfo's Gateway routes /api/v1/products to productpage, which
// asks reviews) and returns the reviews pod of each answer.
func reviewsVia(ctx context.Context, t *testing.T, ingress string, n int) []string {
	t.Helper()
	var who []string
	for range n {
		var body []byte
		err := wait.For(func(ctx context.Context) (bool, error) {
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, ingress+"/api/v1/products/0/reviews", nil)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return false, nil
			}
			defer resp.Body.Close()
			body, _ = io.ReadAll(resp.Body)
			return resp.StatusCode == http.StatusOK, nil
		}, wait.WithContext(ctx), wait.WithTimeout(time.Minute), wait.WithInterval(500*time.Millisecond))
		if err != nil {
			t.Fatalf("GET %s/api/v1/products/0/reviews never answered 200: %v; last body %q", ingress, err, body)
		}
		var r struct {
			PodName     string `json:"podname"`
			ClusterName string `json:"clustername"`
		}
		if err := json.Unmarshal(body, &r); err != nil || r.PodName == "" {
			t.Fatalf("reviews answer %q has no podname: %v", body, err)
		}
		if r.ClusterName != "cluster1" && r.ClusterName != "cluster2" {
			t.Errorf("reviews answer %q names cluster %q; the provider tells each workload its cluster", body, r.ClusterName)
		}
		who = append(who, r.PodName)
	}
	return who
}

// readyEndpoints counts the ready endpoints of a service's EndpointSlices.
func readyEndpoints(ctx context.Context, t *testing.T, r *resources.Resources, service string) int {
	t.Helper()
	var list discoveryv1.EndpointSliceList
	if err := r.List(ctx, &list, resources.WithLabelSelector("kubernetes.io/service-name="+service)); err != nil {
		t.Logf("list EndpointSlices of %s: %v", service, err)
		return -1
	}
	n := 0
	for _, s := range list.Items {
		for _, e := range s.Endpoints {
			if e.Conditions.Ready == nil || *e.Conditions.Ready {
				n++
			}
		}
	}
	return n
}

// httpFromNode makes one HTTP/1.0 request from a kind node with bash's
// /dev/tcp (the node image has no curl) and returns the answer.
func httpFromNode(ctx context.Context, t *testing.T, node, addr string, port int, path string) string {
	t.Helper()
	script := fmt.Sprintf(`exec 3<>/dev/tcp/%s/%d && printf 'GET %s HTTP/1.0\r\nHost: reviews\r\n\r\n' >&3 && timeout 10 cat <&3`, addr, port, path)
	var out string
	err := wait.For(func(ctx context.Context) (bool, error) {
		b, err := exec.CommandContext(ctx, "docker", "exec", node, "bash", "-c", script).CombinedOutput()
		out = string(b)
		return err == nil && strings.Contains(out, "200 OK"), nil
	}, wait.WithContext(ctx), wait.WithTimeout(time.Minute), wait.WithInterval(time.Second))
	if err != nil {
		t.Errorf("from %s, GET http://%s:%d%s never answered 200: %v; last answer %q", node, addr, port, path, err, out)
	}
	return out
}

// testKindPartition cuts c1 off from c2 with the partition fault's iptables
// rules in both clusters' node containers: c1's node no longer reaches c2's
// API server (the connection times out: dropped, not refused), and does
// again once reverted, with no rule left in either node.
func testKindPartition(ctx context.Context, t *testing.T, prefix string, c1, c2 *cluster.Cluster) {
	n1, ok1 := c1.Access.(fault.Network)
	n2, ok2 := c2.Access.(fault.Network)
	if !ok1 || !ok2 {
		t.Fatal("a kind cluster's access gives no network for a partition")
	}
	node1, node2 := prefix+c1.Name+"-control-plane", prefix+c2.Name+"-control-plane"
	// The node's own address is the first of its cluster's ranges.
	c2Node := n2.NetworkRanges()[0].Addr().String()
	// A TCP connection to the API server from c1's node, bash's /dev/tcp
	// under timeout: exit 0 connected, 124 timed out.
	reach := func() int {
		err := exec.CommandContext(ctx, "docker", "exec", node1, "timeout", "3", "bash", "-c", "exec 3<>/dev/tcp/"+c2Node+"/6443").Run()
		var ee *exec.ExitError
		switch {
		case err == nil:
			return 0
		case errors.As(err, &ee):
			return ee.ExitCode()
		}
		t.Fatalf("docker exec: %v", err)
		return -1
	}
	if code := reach(); code != 0 {
		t.Fatalf("before the partition, %s does not reach %s's API server at %s: exit %d", c1.Name, c2.Name, c2Node, code)
	}
	p, err := fault.NewPartition(fault.Target{Name: c1.Name, Network: n1}, []fault.Target{{Name: c2.Name, Network: n2}}, false)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Check(ctx); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = p.Revert(context.WithoutCancel(ctx)) }()
	if err := p.Apply(ctx); err != nil {
		t.Fatal(err)
	}
	if code := reach(); code != 124 {
		t.Errorf("during the partition, %s → %s's API server: exit %d, want 124 (timed out: dropped, not refused)", c1.Name, c2.Name, code)
	}
	if err := p.Revert(ctx); err != nil {
		t.Fatal(err)
	}
	if code := reach(); code != 0 {
		t.Errorf("after the partition, %s → %s's API server: exit %d", c1.Name, c2.Name, code)
	}
	for _, n := range []string{node1, node2} {
		out, err := exec.CommandContext(ctx, "docker", "exec", n, "iptables", "-w", "-S").CombinedOutput()
		if err != nil {
			t.Fatalf("iptables -S in %s: %v: %s", n, err, out)
		}
		if strings.Contains(string(out), p.Chain()) {
			t.Errorf("%s still holds %s after revert", n, p.Chain())
		}
	}
}
