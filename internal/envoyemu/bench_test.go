package envoyemu

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	"google.golang.org/protobuf/proto"
)

// benchRate is the fixed request rate of BenchmarkHop: Istio's published
// sidecar latency is measured at 1000 requests per second with a 1 KB
// payload (istio.io docs: ops/deployment/performance-and-scalability).
const benchRate = 1000

// BenchmarkHop measures what the emulated data plane adds to one call, as
// Istio measures its sidecars: the same request at a fixed rate, once
// straight to the application and once through the client's sidecar
// (outbound, routed by the route table, an EDS endpoint) and the server's
// sidecar (inbound, into the application). It reports the latency
// percentiles in microseconds; the difference between the two is the
// overhead of a hop. Run it with a fixed count, e.g.
//
//	go test -run '^$' -bench BenchmarkHop -benchtime 5000x ./pkg/proxy
func BenchmarkHop(b *testing.B) {
	payload := bytes.Repeat([]byte("x"), 1024)
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Write(payload)
	}))
	b.Cleanup(app.Close)

	// The server's sidecar: inbound on a port of its own, to the app.
	server := newBenchProxy(b, WithInbound(Inbound{Port: 0, Target: app.Listener.Addr().String()}))
	feedBench(b, server, nil)
	inbound := server.serverURL("inbound_0")[len("http://"):]

	// The client's sidecar: a route table and one endpoint, the server's
	// sidecar.
	client := newBenchProxy(b)
	feedBench(b, client, []string{inbound})

	b.Run("direct", func(b *testing.B) {
		c := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
		paced(b, c, app.URL+"/reviews/0")
	})
	b.Run("sidecars", func(b *testing.B) {
		c := &http.Client{Transport: client.Transport()}
		paced(b, c, "http://reviews:9080/reviews/0")
	})
}

func newBenchProxy(b *testing.B, opts ...Option) *Proxy {
	b.Helper()
	p, err := New(testIdentity(), "127.0.0.1:1", append([]Option{WithAdminPort(0), WithOutboundPort(0), WithoutStatusPorts(), WithSeed(1)}, opts...)...)
	if err != nil {
		b.Fatal(err)
	}
	// Started without istiod: the test feeds the configuration.
	p.noXDS = true
	if err := p.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = p.Stop(ctx)
	})
	return p
}

// feedBench gives a proxy a reviews route and cluster with the endpoints
// given (none: an empty configuration, enough to be ready).
func feedBench(b *testing.B, p *Proxy, endpoints []string) {
	b.Helper()
	if endpoints == nil {
		for _, r := range []string{TypeCluster, TypeListener} {
			if err := p.cfg.apply(r, "v1", nil); err != nil {
				b.Fatal(err)
			}
		}
		return
	}
	name := "outbound|9080||reviews.default.svc.cluster.local"
	for _, r := range []struct {
		typ  string
		msgs []proto.Message
	}{
		{TypeCluster, []proto.Message{edsCluster(name)}},
		{TypeEndpoint, []proto.Message{assignment(b, name, endpoints)}},
		{TypeListener, []proto.Message{httpListener(b, 9080)}},
		{TypeRoute, []proto.Message{routeConfig("9080", &routev3.VirtualHost{Name: "reviews", Domains: []string{"reviews", "reviews:9080"},
			Routes: []*routev3.Route{clusterRoute("/", name)}})}},
	} {
		resp := response(b, r.typ, r.msgs...)
		if err := p.cfg.apply(resp.TypeUrl, "v1", resp.Resources); err != nil {
			b.Fatal(err)
		}
	}
}

// paced sends b.N requests at benchRate, one at a time, and reports the
// p50, p90 and p99 of their latencies. Each is timed from when it was sent:
// the pacer's own wake-up delay on a busy machine is not the proxy's.
func paced(b *testing.B, c *http.Client, url string) {
	// Warm the connections up first.
	for range 50 {
		get(b, c, url)
	}
	lat := make([]time.Duration, 0, b.N)
	interval := time.Second / benchRate
	b.ResetTimer()
	start := time.Now()
	for i := range b.N {
		due := start.Add(time.Duration(i) * interval)
		if d := time.Until(due); d > 0 {
			time.Sleep(d)
		}
		sent := time.Now()
		get(b, c, url)
		lat = append(lat, time.Since(sent))
	}
	b.StopTimer()
	slices.Sort(lat)
	q := func(p float64) float64 {
		return float64(lat[min(len(lat)-1, int(p*float64(len(lat))))].Microseconds())
	}
	b.ReportMetric(q(0.50), "p50-µs")
	b.ReportMetric(q(0.90), "p90-µs")
	b.ReportMetric(q(0.99), "p99-µs")
}

func get(b *testing.B, c *http.Client, url string) {
	resp, err := c.Get(url)
	if err != nil {
		b.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		b.Fatalf("GET %s: %s", url, resp.Status)
	}
}
