package envoyemu

import (
	"bufio"
	"bytes"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	goldenfile "github.com/meshdrill/drill/internal/golden"

	"github.com/meshdrill/drill/internal/stats"
)

func TestExtractTags(t *testing.T) {
	for _, tc := range []struct {
		name, metric, labels string
	}{
		{"cluster.outbound|9080||reviews.default.svc.cluster.local;.upstream_rq_503", "envoy_cluster_upstream_rq",
			`response_code="503",cluster_name="outbound|9080||reviews.default.svc.cluster.local"`},
		{"cluster.outbound|9080||reviews.default.svc.cluster.local;.upstream_rq_5xx", "envoy_cluster_upstream_rq",
			`response_code_class="5xx",cluster_name="outbound|9080||reviews.default.svc.cluster.local"`},
		{"cluster.outbound|9080||reviews.default.svc.cluster.local;.upstream_rq_total", "envoy_cluster_upstream_rq_total",
			`cluster_name="outbound|9080||reviews.default.svc.cluster.local"`},
		{"cluster.outbound|9080||reviews.default.svc.cluster.local;.outlier_detection.ejections_active", "envoy_cluster_outlier_detection_ejections_active",
			`cluster_name="outbound|9080||reviews.default.svc.cluster.local"`},
		// An EnvoyFilter's cluster has no "name;" alt stat name: Istio's
		// cluster_name extractor does not match, the name stays in the metric.
		{"cluster.outbound|9080||reviews-failover.default.global.upstream_rq_total", "envoy_cluster_outbound_9080__reviews_failover_default_global_upstream_rq_total", ""},
		{"cluster_manager.active_clusters", "envoy_cluster_manager_active_clusters", ""},
		{"server.uptime", "envoy_server_uptime", ""},
	} {
		_, metric, labels := extractTags(tc.name)
		if metric != tc.metric || formatLabels(labels) != tc.labels {
			t.Errorf("%s → %s{%s}, want %s{%s}", tc.name, metric, formatLabels(labels), tc.metric, tc.labels)
		}
	}
}

// goldenStore fills a store the way one failover leaves a sidecar's.
func goldenStore() *Store {
	id := testIdentity()
	pc, _ := id.parseProxyConfig()
	m, _ := newStatsMatcher(&id, pc)
	s := newStore(m)
	for _, c := range []string{"outbound|9080||reviews.default.svc.cluster.local", "outbound|9080||reviews.default.svc.cluster2.global"} {
		cs := newClusterStats(s, "cluster."+c+";.")
		newOutlierStats(s, "cluster."+c+";.")
		ts := cs.t()
		for range 3 {
			ts.rqTotal.Inc()
			cs.chargeCode(200)
			ts.rqTime.Record(4)
		}
		cs.membershipTotal.Set(2)
		cs.membershipHealthy.Set(2)
	}
	bad := newClusterStats(s, "cluster.outbound|9080||reviews.default.svc.cluster.local;.")
	bad.chargeCode(503)
	bad.t().cxConnectFail.Inc()
	s.Gauge("cluster_manager.active_clusters").Set(2)
	s.Gauge("server.uptime").Set(42)
	s.Counter("cluster.BlackHoleCluster;.upstream_rq_total").Inc() // excluded by the matcher
	src := id.selfPeer()
	dst := &peer{workload: "reviews-v3", namespace: "default", cluster: "cluster2", serviceAccount: "bookinfo-reviews", app: "reviews", version: "v3",
		canonicalService: "reviews", canonicalRevision: "v3"}
	rec := &requestRecord{reporter: "source", source: src, dest: dst, destService: "reviews.default.svc.cluster2.global", code: 200}
	s.requests.record(rec.values(), 4*time.Millisecond)
	rec = &requestRecord{reporter: "source", source: src, destService: "reviews.default.svc.cluster.local", code: 503, flags: flagUF}
	s.requests.record(rec.values(), 0)
	s.Flush()
	return s
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	goldenfile.Assert(t, filepath.Join("testdata", "golden", name), got)
}

func TestPrometheusOutput(t *testing.T) {
	s := goldenStore()
	var b bytes.Buffer
	if err := s.WritePrometheus(&b); err != nil {
		t.Fatal(err)
	}
	golden(t, "stats.prom", b.Bytes())
	snap, err := stats.ParseText(b.Bytes())
	if err != nil {
		t.Fatalf("internal/stats cannot parse the output: %v", err)
	}
	if len(snap.Warnings) > 0 {
		t.Errorf("internal/stats had to repair the output: %v", snap.Warnings)
	}
	local := snap.Clusters["outbound|9080||reviews.default.svc.cluster.local"]
	if local == nil || local.Codes["200"] != 3 || local.Codes["503"] != 1 || local.Get(stats.StatCxConnectFail) != 1 {
		t.Errorf("parsed local cluster %+v", local)
	}
	if local.RqTime == nil || local.RqTime.Count != 3 {
		t.Errorf("upstream_rq_time %+v, want 3 observations", local.RqTime)
	}
	if snap.ActiveClusters != 2 || snap.Uptime != 42 {
		t.Errorf("active clusters %d, uptime %d", snap.ActiveClusters, snap.Uptime)
	}
	if _, ok := snap.Clusters["BlackHoleCluster"]; ok {
		t.Error("a stat the matcher excludes is in the output")
	}
	served := uint64(0)
	for k, v := range snap.Requests {
		if k.DestinationCluster == "cluster2" && k.ResponseCode == "200" {
			served += v
		}
	}
	if served != 1 {
		t.Errorf("istio_requests_total to cluster2: %d, want 1 (%v)", served, snap.Requests)
	}

	var j bytes.Buffer
	if err := s.WriteJSON(&j, nil); err != nil {
		t.Fatal(err)
	}
	js, err := stats.ParseJSON(j.Bytes())
	if err != nil {
		t.Fatalf("internal/stats cannot parse the JSON output: %v\n%s", err, j.String())
	}
	if c := js.Clusters["outbound|9080||reviews.default.svc.cluster.local"]; c == nil || c.Codes["503"] != 1 || c.RqTime == nil {
		t.Errorf("JSON: local cluster %+v", c)
	}
}

// TestPrometheusLikeEnvoy compares the output with internal/stats's hand-written
// sample of a real Istio sidecar's page: every metric the emulation prints
// that the sample has must carry the same TYPE, and every series the same
// label names in the same order.
func TestPrometheusLikeEnvoy(t *testing.T) {
	sample, err := os.ReadFile(filepath.Join("..", "stats", "testdata", "sidecar_during.prom"))
	if err != nil {
		t.Fatal(err)
	}
	types := map[string]string{}
	shapes := map[string]bool{}
	labelNames := regexp.MustCompile(`([a-z_]+)="`)
	shape := func(line string) string {
		name, rest, _ := strings.Cut(line, "{")
		var ls []string
		for _, m := range labelNames.FindAllStringSubmatch(rest, -1) {
			ls = append(ls, m[1])
		}
		return name + "{" + strings.Join(ls, ",") + "}"
	}
	sc := bufio.NewScanner(bytes.NewReader(sample))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if f := strings.Fields(line); len(f) == 4 && f[1] == "TYPE" {
			types[f[2]] = f[3]
		} else if line != "" && !strings.HasPrefix(line, "#") {
			shapes[shape(line)] = true
		}
	}
	var b bytes.Buffer
	_ = goldenStore().WritePrometheus(&b)
	matched := 0
	sc = bufio.NewScanner(&b)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if f := strings.Fields(line); len(f) == 4 && f[1] == "TYPE" {
			if want, ok := types[f[2]]; ok && want != f[3] {
				t.Errorf("%s is a %s here, a %s in Envoy's sample", f[2], f[3], want)
			}
			continue
		}
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, _, _ := strings.Cut(line, "{")
		base := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(name, "_bucket"), "_sum"), "_count")
		if _, known := types[base]; !known {
			if _, known = types[name]; !known {
				continue
			}
		}
		if !shapes[shape(line)] {
			t.Errorf("series %s has no like in Envoy's sample", shape(line))
			continue
		}
		matched++
	}
	if matched < 20 {
		t.Errorf("only %d series compared with the sample", matched)
	}
}

// TestStatsMatcher: a sidecar keeps cluster.outbound… stats only when its
// pod asks, as Istio's bootstrap stats matcher does.
func TestStatsMatcher(t *testing.T) {
	const stat = "cluster.outbound|9080||reviews.default.svc.cluster.local;.upstream_rq_total"
	for _, tc := range []struct {
		name  string
		annos map[string]string
		want  bool
	}{
		{"no annotation", nil, false},
		{"proxyStatsMatcher prefixes", map[string]string{annotationProxyConfig: "proxyStatsMatcher:\n  inclusionPrefixes: [cluster.outbound]\n"}, true},
		{"proxyStatsMatcher regexps", map[string]string{annotationProxyConfig: "proxyStatsMatcher:\n  inclusionRegexps: ['.*upstream_rq_total']\n"}, true},
		{"legacy annotation", map[string]string{annotationStatsInclusionPrefixes: "cluster.outbound"}, true},
		{"legacy annotation wins over ProxyConfig", map[string]string{annotationStatsInclusionPrefixes: "listener", annotationProxyConfig: "proxyStatsMatcher:\n  inclusionPrefixes: [cluster.outbound]\n"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id := Identity{Kind: Sidecar, Pod: "p", Namespace: "default", IP: netip.MustParseAddr("10.0.0.9"), Cluster: "c", Annotations: tc.annos}
			pc, err := id.parseProxyConfig()
			if err != nil {
				t.Fatal(err)
			}
			m, err := newStatsMatcher(&id, pc)
			if err != nil {
				t.Fatal(err)
			}
			if got := m.match(stat); got != tc.want {
				t.Errorf("match %v, want %v", got, tc.want)
			}
			for _, always := range []string{"cluster_manager.active_clusters", "server.uptime", "cluster.xds-grpc.upstream_rq_total", "reporter=.=source;.;istio_requests_total"} {
				if !m.match(always) {
					t.Errorf("%s excluded; Istio always keeps it", always)
				}
			}
		})
	}
	id := Identity{Kind: Sidecar, Pod: "p", Namespace: "default", IP: netip.MustParseAddr("10.0.0.9"), Cluster: "c",
		Annotations: map[string]string{annotationProxyConfig: "proxyStatsMatcher: ["}}
	if _, err := id.parseProxyConfig(); err == nil {
		t.Error("a broken proxy.istio.io/config parsed")
	}
}

func TestResponseFlags(t *testing.T) {
	for _, tc := range []struct {
		f    responseFlags
		want string
	}{
		{0, "-"}, {flagUF, "UF"}, {flagURX | flagUF, "UF,URX"}, {flagUH | flagUT, "UH,UT"}, {flagNR, "NR"},
	} {
		if got := tc.f.String(); got != tc.want {
			t.Errorf("%b → %q, want %q", tc.f, got, tc.want)
		}
	}
}

func TestBucketOrder(t *testing.T) {
	if !slices.IsSorted(DefaultBuckets) {
		t.Fatal("DefaultBuckets out of order")
	}
	h := &Histogram{}
	for _, v := range []float64{0.5, 1, 3, 3600000, 9e6} {
		h.Record(v)
	}
	if _, count, _ := h.snapshot(); count != 0 {
		t.Errorf("%d values visible before the stats flush", count)
	}
	h.flush()
	cum, count, _ := h.snapshot()
	if cum[0] != 1 || cum[1] != 2 || cum[2] != 3 || cum[len(cum)-2] != 4 || cum[len(cum)-1] != 5 || count != 5 {
		t.Errorf("cumulative buckets %v (count %d): values on a bound count in its bucket", cum, count)
	}
}
