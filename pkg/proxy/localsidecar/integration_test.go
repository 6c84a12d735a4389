package localsidecar_test

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/meshdrill/drill/pkg/bookinfo"
	"github.com/meshdrill/drill/pkg/bookinfo/app"
	"github.com/meshdrill/drill/pkg/cluster/local"
	"github.com/meshdrill/drill/pkg/cluster/local/localtest"
	"github.com/meshdrill/drill/pkg/proxy/localsidecar"
	"github.com/meshdrill/drill/pkg/scenario"
	"github.com/meshdrill/drill/pkg/stats"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
)

type testWriter struct{ t testing.TB }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(b), "\n"))
	return len(b), nil
}

func testLogger(t testing.TB, level slog.Level) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: level}))
}

// TestBookinfoThroughSidecars runs Bookinfo on the emulated node of a real
// control plane with istiod, every pod with the emulated sidecar: the
// product page is served through productpage's sidecar, and that sidecar's
// admin stats, parsed by pkg/stats, show its calls to reviews and details
// under Istio's Envoy cluster names.
func TestBookinfoThroughSidecars(t *testing.T) {
	cp := localtest.Start(t)
	cs := kubernetes.NewForConfigOrDie(cp.RESTConfig())
	dyn := dynamic.NewForConfigOrDie(cp.RESTConfig())
	ctx := t.Context()

	f := localsidecar.New(cp.IstiodGRPCAddr(), localsidecar.WithLogger(testLogger(t, slog.LevelWarn)))
	node, err := local.StartNode(ctx, cp.Name(), 0, cs, local.WithSidecars(f), local.WithNodeLogger(testLogger(t, slog.LevelWarn)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := node.Stop(sctx); err != nil {
			t.Error(err)
		}
	})
	v1 := []string{"v1"}
	set, err := bookinfo.Manifests(scenario.Bookinfo{Productpage: v1, Details: v1, Reviews: []string{"v1", "v2"}, Ratings: v1}, "default", bookinfo.WithObserved("productpage"))
	if err != nil {
		t.Fatal(err)
	}
	if err := bookinfo.Apply(ctx, cp.Name(), cs, dyn, set, bookinfo.WithTimeout(3*time.Minute)); err != nil {
		t.Fatal(err)
	}
	pp := podTwin(t, cs, "default", "app=productpage")
	for i := range 10 {
		body := get(t, "http://"+net.JoinHostPort(pp, "9080")+"/productpage")
		if strings.Contains(body, app.ReviewsUnavailable) {
			t.Fatalf("request %d: productpage could not reach reviews through the sidecars:\n%s", i, body)
		}
	}

	page := get(t, "http://"+net.JoinHostPort(pp, "15000")+"/stats/prometheus")
	snap, err := stats.Parse([]byte(page))
	if err != nil {
		t.Fatalf("parse productpage sidecar stats: %v\n%s", err, page)
	}
	if err := stats.CheckOutboundStats(snap, "productpage"); err != nil {
		t.Fatal(err)
	}
	reviews := snap.Clusters["outbound|9080||reviews.default.svc.cluster.local"]
	if reviews == nil {
		t.Fatalf("no stats of outbound|9080||reviews.default.svc.cluster.local; clusters: %v\n%s", keys(snap.Clusters), page)
	}
	if reviews.Codes["200"] < 10 {
		t.Errorf("reviews cluster: %d responses 200, want at least 10\n%s", reviews.Codes["200"], page)
	}
	if dump := os.Getenv("DRILL_PROXY_DUMP"); dump != "" {
		_ = os.WriteFile(dump, []byte(page), 0o644)
	}
	if !strings.Contains(page, `istio_requests_total{reporter="source",source_workload="productpage-v1"`) {
		t.Errorf("no istio_requests_total reported by productpage's sidecar:\n%s", page)
	}
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// podTwin is the loopback twin of the first pod matching selector.
func podTwin(t *testing.T, cs kubernetes.Interface, ns, selector string) string {
	t.Helper()
	pods, err := cs.CoreV1().Pods(ns).List(t.Context(), metav1.ListOptions{LabelSelector: selector})
	if err != nil || len(pods.Items) == 0 {
		t.Fatalf("pods %s in %s: %v (%d)", selector, ns, err, len(pods.Items))
	}
	lo := local.LoopbackFor(net.ParseIP(pods.Items[0].Status.PodIP))
	if lo == nil {
		t.Fatalf("pod IP %q has no loopback twin", pods.Items[0].Status.PodIP)
	}
	return lo.String()
}

func get(t *testing.T, u string) string {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, u, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s\n%s", u, resp.Status, b)
	}
	return string(b)
}
