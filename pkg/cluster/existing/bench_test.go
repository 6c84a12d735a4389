package existing

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// BenchmarkEnvoyAdminScrape measures one scrape of a sidecar's Prometheus
// stats page (about 100 KB, what a sidecar with outbound cluster stats for
// Bookinfo's services serves) directly and through drill's port-forward, the
// path every scrape takes on kind and existing clusters. Both run on
// loopback, so the difference is the forward's own cost: SPDY framing and the
// extra hop.
func BenchmarkEnvoyAdminScrape(b *testing.B) {
	var page strings.Builder
	page.WriteString("# TYPE envoy_cluster_upstream_rq counter\n")
	for i := 0; page.Len() < 100<<10; i++ {
		fmt.Fprintf(&page, "envoy_cluster_upstream_rq{envoy_response_code=\"%d\",envoy_cluster_name=\"outbound|9080|v%d|reviews.default.svc.cluster.local\"} %d\n", 200+i%5, i%3, i*7)
	}
	body := page.String()
	envoy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, body)
	}))
	defer envoy.Close()
	k := &kubeletStandIn{envoy: strings.TrimPrefix(envoy.URL, "http://"), phase: corev1.PodRunning}
	api := httptest.NewServer(k)
	defer func() {
		k.dropAll()
		api.Close()
	}()
	cfg := &rest.Config{Host: api.URL}
	kube := kubernetes.NewForConfigOrDie(cfg)

	scrape := func(b *testing.B, c *http.Client, url string) {
		b.SetBytes(int64(len(body)))
		b.ReportAllocs()
		for b.Loop() {
			resp, err := c.Get(url + "/stats/prometheus")
			if err != nil {
				b.Fatal(err)
			}
			n, _ := io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if n != int64(len(body)) {
				b.Fatalf("read %d bytes, want %d", n, len(body))
			}
		}
	}
	b.Run("direct", func(b *testing.B) {
		scrape(b, &http.Client{Timeout: 10 * time.Second}, envoy.URL)
	})
	b.Run("port-forward", func(b *testing.B) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		admin, err := NewAccess("cluster1", cfg, kube).EnvoyAdmin(ctx, "default", "productpage-v1-abc")
		if err != nil {
			b.Fatal(err)
		}
		defer admin.Close()
		scrape(b, admin.Client, admin.URL)
	})
}
