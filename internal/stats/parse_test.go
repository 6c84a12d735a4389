package stats

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	goldenfile "github.com/meshdrill/drill/internal/golden"
)

const (
	local    = "outbound|9080||reviews.default.svc.cluster.local"
	remote   = "outbound|9080||reviews.default.svc.cluster2.global"
	failover = "outbound|9080||reviews-failover.default.global"
	details  = "outbound|9080||details.default.svc.cluster.local"
	ratings  = "outbound|9080||ratings.default.svc.cluster.local"
)

func readFixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mustParse(t testing.TB, name string) *Snapshot {
	t.Helper()
	s, err := Parse(readFixture(t, name))
	if err != nil {
		t.Fatalf("Parse(%s): %v", name, err)
	}
	return s
}

// view is the golden form of a Snapshot: every stat by Envoy's name, histograms
// summarised, istio series as a sorted list.
func view(s *Snapshot) any {
	type req struct {
		RequestKey
		Count uint64 `json:"count"`
	}
	clusters := map[string]map[string]any{}
	for name, c := range s.Clusters {
		m := map[string]any{}
		for st := Stat(0); st < numStats; st++ {
			if c.Has(st) {
				m[st.String()] = c.Get(st)
			}
		}
		if len(c.Codes) > 0 {
			m["codes"] = c.Codes
		}
		if len(c.Classes) > 0 {
			m["classes"] = c.Classes
		}
		if c.RqTime != nil {
			h := map[string]any{"buckets": len(c.RqTime.Bounds), "count": c.RqTime.Count, "sum": c.RqTime.Sum}
			if p50 := c.RqTime.Quantile(0.5); !math.IsNaN(p50) {
				h["p50"] = p50
			}
			m["rqTime"] = h
		}
		clusters[name] = m
	}
	var reqs []req
	for k, v := range s.Requests {
		reqs = append(reqs, req{k, v})
	}
	sort.Slice(reqs, func(i, j int) bool {
		a, b := reqs[i], reqs[j]
		ka, _ := json.Marshal(a.RequestKey)
		kb, _ := json.Marshal(b.RequestKey)
		return string(ka) < string(kb)
	})
	return map[string]any{
		"format":         s.Format,
		"activeClusters": s.ActiveClusters,
		"uptime":         s.Uptime,
		"clusters":       clusters,
		"requests":       reqs,
		"warnings":       s.Warnings,
	}
}

func checkGolden(t *testing.T, name string, got any) {
	t.Helper()
	b, err := json.MarshalIndent(got, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	b = append(b, '\n')
	path := filepath.Join("testdata", "golden", name+".json")
	goldenfile.Assert(t, path, b)
}

func TestParseFixtures(t *testing.T) {
	type want struct {
		cluster string
		stat    Stat
		value   uint64
	}
	tests := []struct {
		file     string
		format   Format
		active   int64
		uptime   int64
		clusters int
		values   []want
		codes    map[string]map[string]uint64 // cluster → code → count
		classes  map[string]map[string]uint64
		requests map[RequestKey]uint64
		warnings int
	}{
		{
			file: "sidecar_before.prom", format: FormatPrometheus, active: 27, uptime: 3600, clusters: 7,
			values: []want{
				{local, StatRqTotal, 3000}, {local, StatMembershipHealthy, 2}, {local, StatMembershipTotal, 2},
				{local, StatEjectionsActive, 0}, {remote, StatRqTotal, 0}, {remote, StatMembershipHealthy, 1},
				{failover, StatMembershipTotal, 0}, {details, StatRqTotal, 3000},
			},
			codes:   map[string]map[string]uint64{local: {"200": 3000}, details: {"200": 3000}},
			classes: map[string]map[string]uint64{local: {"2xx": 3000}},
			requests: map[RequestKey]uint64{
				{Reporter: "source", SourceWorkload: "productpage-v1", SourceCluster: "cluster1", DestinationService: "reviews.default.svc.cluster.local",
					DestinationWorkload: "reviews-v1", DestinationVersion: "v1", DestinationCluster: "cluster1", ResponseCode: "200", ResponseFlags: "-"}: 1500,
			},
		},
		{
			file: "sidecar_during.prom", format: FormatPrometheus, active: 27, uptime: 3610, clusters: 7,
			values: []want{
				{local, StatRqTotal, 3012}, {local, StatMembershipHealthy, 0}, {local, StatEjectionsActive, 2},
				{local, StatEjectionsEnforced, 2}, {local, StatCxConnectFail, 12}, {remote, StatRqTotal, 380},
			},
			codes:   map[string]map[string]uint64{local: {"200": 3000, "503": 12}, remote: {"200": 380}},
			classes: map[string]map[string]uint64{local: {"2xx": 3000, "5xx": 12}},
			requests: map[RequestKey]uint64{
				{Reporter: "source", SourceWorkload: "productpage-v1", SourceCluster: "cluster1", DestinationService: "reviews.default.svc.cluster2.global",
					DestinationWorkload: "reviews-v3", DestinationVersion: "v3", DestinationCluster: "cluster2", ResponseCode: "200", ResponseFlags: "-"}: 380,
				{Reporter: "source", SourceWorkload: "productpage-v1", SourceCluster: "cluster1", DestinationService: "reviews.default.svc.cluster.local",
					DestinationWorkload: "unknown", DestinationVersion: "unknown", DestinationCluster: "unknown", ResponseCode: "503", ResponseFlags: "UF"}: 12,
			},
		},
		{
			// The same Envoy state as sidecar_after.prom, read from the JSON form.
			file: "sidecar_after.json", format: FormatJSON, active: 27, uptime: 3620, clusters: 7,
			values: []want{
				{local, StatRqTotal, 3012}, {local, StatMembershipTotal, 0}, {remote, StatRqTotal, 880},
				{local, StatEjectionsEnforced, 2}, {"xds-grpc", StatRqTotal, 1},
			},
			codes:   map[string]map[string]uint64{local: {"200": 3000, "503": 12}, remote: {"200": 880}},
			classes: map[string]map[string]uint64{local: {"2xx": 3000, "5xx": 12}},
			requests: map[RequestKey]uint64{
				{Reporter: "source", SourceWorkload: "productpage-v1", SourceCluster: "cluster1", DestinationService: "reviews.default.svc.cluster2.global",
					DestinationWorkload: "reviews-v3", DestinationVersion: "v3", DestinationCluster: "cluster2", ResponseCode: "200", ResponseFlags: "-"}: 880,
			},
		},
		{
			file: "envoy_default_tags.prom", format: FormatPrometheus, active: 1, uptime: 120, clusters: 1,
			values: []want{
				{"service_reviews", StatRqTotal, 100}, {"service_reviews", StatCxConnectFail, 3}, {"service_reviews", StatRqRetry, 2},
				{"service_reviews", StatMembershipHealthy, 2}, {"service_reviews", StatMembershipTotal, 3},
				{"service_reviews", StatEjectionsActive, 1}, {"service_reviews", StatEjectionsEnforced, 1},
			},
			codes:   map[string]map[string]uint64{"service_reviews": {"200": 95, "503": 5}},
			classes: map[string]map[string]uint64{"service_reviews": {"2xx": 95, "5xx": 5}},
		},
		{
			file: "istio_legacy_tags.prom", format: FormatPrometheus, active: -1, uptime: -1, clusters: 5,
			values: []want{
				{remote, StatRqTotal, 40}, {remote, StatMembershipHealthy, 1}, {remote, StatMembershipTotal, 1},
				{failover, StatRqTotal, 0}, {failover, StatMembershipTotal, 0},
				{"outbound|9080||ratings.my-ns.svc.east-1.global", StatMembershipTotal, 2},
				{local, StatRqTotal, 104}, {local, StatMembershipTotal, 2}, {"xds-grpc", StatRqTotal, 1},
			},
			// The internal.upstream_rq_200 sub-tree (7) is not the cluster's own count.
			codes:    map[string]map[string]uint64{remote: {"200": 40}, local: {"200": 100, "503": 4}},
			classes:  map[string]map[string]uint64{remote: {"2xx": 40}},
			warnings: 3,
		},
		{
			file: "quirks.prom", format: FormatPrometheus, active: -1, uptime: 30, clusters: 2,
			values: []want{
				{local, StatRqTotal, 97}, {local, StatMembershipTotal, 2},
				{"outbound|9080||reviews.default.svc.cluster2.global", StatMembershipTotal, 1},
			},
			codes:   map[string]map[string]uint64{local: {"200": 90, "503": 7}},
			classes: map[string]map[string]uint64{local: {"5xx": 7}},
			requests: map[RequestKey]uint64{
				{Reporter: "source", SourceWorkload: "productpage-v1", SourceCluster: "cluster1", DestinationService: "reviews.default.svc.cluster.local",
					DestinationWorkload: "reviews-v1", DestinationVersion: "v1", DestinationCluster: "cluster1", ResponseCode: "200", ResponseFlags: "-"}: 90,
				{Reporter: "source", SourceWorkload: "productpage-v1", SourceCluster: "cluster1", DestinationService: "reviews.default.svc.cluster.local",
					DestinationWorkload: "unknown", DestinationVersion: "unknown", DestinationCluster: "unknown", ResponseCode: "503", ResponseFlags: "UF"}: 7,
			},
			// Two repeated TYPE lines, one skipped line, one repeated istio series.
			warnings: 4,
		},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			s := mustParse(t, tc.file)
			if s.Format != tc.format || s.ActiveClusters != tc.active || s.Uptime != tc.uptime {
				t.Errorf("format, active clusters, uptime = %s, %d, %d; want %s, %d, %d", s.Format, s.ActiveClusters, s.Uptime, tc.format, tc.active, tc.uptime)
			}
			if len(s.Clusters) != tc.clusters {
				t.Errorf("%d clusters %v; want %d", len(s.Clusters), s.ClusterNames(), tc.clusters)
			}
			for _, w := range tc.values {
				c := s.Clusters[w.cluster]
				if c == nil {
					t.Errorf("no cluster %q in %v", w.cluster, s.ClusterNames())
					continue
				}
				if !c.Has(w.stat) || c.Get(w.stat) != w.value {
					t.Errorf("%s %s = %d (present %v); want %d", w.cluster, w.stat, c.Get(w.stat), c.Has(w.stat), w.value)
				}
			}
			for cl, codes := range tc.codes {
				if got := s.Clusters[cl].Codes; !equalMap(got, codes) {
					t.Errorf("%s codes = %v; want %v", cl, got, codes)
				}
			}
			for cl, classes := range tc.classes {
				if got := s.Clusters[cl].Classes; !equalMap(got, classes) {
					t.Errorf("%s classes = %v; want %v", cl, got, classes)
				}
			}
			for k, v := range tc.requests {
				if s.Requests[k] != v {
					t.Errorf("istio_requests_total %+v = %d; want %d", k, s.Requests[k], v)
				}
			}
			if len(s.Warnings) != tc.warnings {
				t.Errorf("warnings = %q; want %d of them", s.Warnings, tc.warnings)
			}
			checkGolden(t, strings.ReplaceAll(tc.file, ".", "_"), view(s))
		})
	}
}

func equalMap(a, b map[string]uint64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range b {
		if av, ok := a[k]; !ok || av != v {
			return false
		}
	}
	return true
}

// The JSON page and the Prometheus page of one Envoy state must agree on every
// stat the JSON page carries.
func TestParseJSONMatchesText(t *testing.T) {
	text, js := mustParse(t, "sidecar_after.prom"), mustParse(t, "sidecar_after.json")
	if len(text.Clusters) != len(js.Clusters) {
		t.Fatalf("clusters: text %v, json %v", text.ClusterNames(), js.ClusterNames())
	}
	for name, tc := range text.Clusters {
		jc := js.Clusters[name]
		if jc == nil {
			t.Errorf("json lacks %s", name)
			continue
		}
		if tc.Values != jc.Values || !equalMap(tc.Codes, jc.Codes) || !equalMap(tc.Classes, jc.Classes) {
			t.Errorf("%s: text %+v %v %v; json %+v %v %v", name, tc.Values, tc.Codes, tc.Classes, jc.Values, jc.Codes, jc.Classes)
		}
		if tc.RqTime.Count != jc.RqTime.Count || len(tc.RqTime.Bounds) != len(jc.RqTime.Bounds) {
			t.Errorf("%s rq_time: text count %d, json count %d", name, tc.RqTime.Count, jc.RqTime.Count)
		}
	}
	if len(text.Requests) != len(js.Requests) {
		t.Errorf("istio series: text %d, json %d", len(text.Requests), len(js.Requests))
	}
	for k, v := range text.Requests {
		if js.Requests[k] != v {
			t.Errorf("istio %+v: text %d, json %d", k, v, js.Requests[k])
		}
	}
}

func TestParseHistogram(t *testing.T) {
	s := mustParse(t, "sidecar_before.prom")
	h := s.Clusters[local].RqTime
	if h == nil {
		t.Fatal("no upstream_rq_time for local reviews")
	}
	if &h.Bounds[0] != &defaultBounds[0] {
		t.Error("Envoy's default buckets are not shared")
	}
	if h.Count != 3000 || h.Sum != 27312.5 {
		t.Errorf("count, sum = %d, %g; want 3000, 27312.5", h.Count, h.Sum)
	}
	// 39 requests within 5 ms, 1890 within 10 ms: the median lies in (5, 10].
	if p50 := h.Quantile(0.5); p50 <= 5 || p50 > 10 {
		t.Errorf("p50 = %g ms; want within (5, 10]", p50)
	}
	if p100 := h.Quantile(1); p100 != 100 {
		t.Errorf("p100 = %g; want 100, the bound of the bucket holding the slowest", p100)
	}
	if !math.IsNaN((&Histogram{Bounds: defaultBounds, Counts: make([]uint64, 19)}).Quantile(0.5)) {
		t.Error("an empty histogram has a quantile")
	}
}

func TestParseTextTolerance(t *testing.T) {
	tests := []struct {
		name     string
		page     string
		wantErr  string // empty: parses
		warnings []string
		total    uint64
	}{
		{
			name:  "no trailing newline",
			page:  "# TYPE envoy_cluster_upstream_rq_total counter\nenvoy_cluster_upstream_rq_total{cluster_name=\"a\"} 5",
			total: 5,
		},
		{
			name:     "type repeated after samples",
			page:     "# TYPE envoy_cluster_upstream_rq_total counter\nenvoy_cluster_upstream_rq_total{cluster_name=\"b\"} 1\n# TYPE envoy_cluster_upstream_rq_total counter\nenvoy_cluster_upstream_rq_total{cluster_name=\"a\"} 5\n",
			warnings: []string{"line 3: repeated TYPE line for envoy_cluster_upstream_rq_total dropped (a known Envoy quirk)"},
			total:    5,
		},
		{
			name:     "broken sample line",
			page:     "# TYPE envoy_cluster_upstream_rq_total counter\nenvoy_cluster_upstream_rq_total{cluster_name=\"a\" 5\nenvoy_cluster_upstream_rq_total{cluster_name=\"c\"} 2\n# TYPE envoy_server_uptime gauge\nenvoy_server_uptime{} 3\n",
			warnings: []string{"line 2 skipped: "},
			total:    0,
		},
		{name: "empty", page: "\n\n", wantErr: "the page is empty"},
		{
			name:     "broken line in a family drill does not read",
			page:     "# TYPE envoy_http_downstream_rq counter\nenvoy_http_downstream_rq{x=\"a\" 5\n# TYPE envoy_server_uptime gauge\nenvoy_server_uptime{} 3\n",
			warnings: nil,
		},
		{name: "html", page: "<!DOCTYPE html>\n" + strings.Repeat("<p>Envoy Admin</p>\n", 40), wantErr: "holds none of the Envoy stats drill reads"},
		{name: "comments only", page: "# just a comment\n", wantErr: "holds none of the Envoy stats drill reads"},
		{name: "other metrics only", page: "# TYPE go_goroutines gauge\ngo_goroutines 12\n", wantErr: "holds none of the Envoy stats drill reads"},
		{
			name:    "too many broken lines",
			page:    "# TYPE envoy_server_uptime gauge\n" + strings.Repeat("envoy_server_uptime{} x\n", 20),
			wantErr: `line 2: expected float as value, got "x" (and more than 16 other broken lines)`,
		},
		{name: "bad json", page: "{\"stats\": [\n{\"name\": \"x\", \"value\": 1},\n]}", wantErr: "line 3, column 1"},
		{name: "json without stats", page: "{\"clusters\": []}", wantErr: `no "stats" array`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Parse([]byte(tc.page))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v; want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(s.Warnings) != len(tc.warnings) {
				t.Fatalf("warnings = %q; want %q", s.Warnings, tc.warnings)
			}
			for i, w := range tc.warnings {
				if !strings.HasPrefix(s.Warnings[i], w) {
					t.Errorf("warning %d = %q; want prefix %q", i, s.Warnings[i], w)
				}
			}
			if a := s.Clusters["a"]; tc.total != 0 && (a == nil || a.Get(StatRqTotal) != tc.total) {
				t.Errorf("cluster a upstream_rq_total = %+v; want %d", a, tc.total)
			}
		})
	}
}

func TestLegacyCluster(t *testing.T) {
	tests := []struct {
		truncated, junk, want string
		ok                    bool
	}{
		{"outbound|9080||reviews", "default_svc_cluster2_global", "outbound|9080||reviews.default.svc.cluster2.global", true},
		{"outbound|9080|v1|reviews", "my_ns_svc_east_1_global", "outbound|9080|v1|reviews.my-ns.svc.east-1.global", true},
		{"outbound|9080||reviews-failover", "default_global", "outbound|9080||reviews-failover.default.global", true},
		{"outbound|443||api", "example_com", "outbound|443||api.example.com", true},
		{"outbound|9080||reviews.default.svc.cluster.local", "internal", "", false},
		{"outbound|9080||reviews", "default_svc_cluster2_global_internal", "", false},
		{"outbound|9080||reviews", "default_svc_cluster2_global_zone_a_b", "", false},
		{"service_reviews", "internal", "", false},
	}
	for _, tc := range tests {
		got, ok := legacyCluster(tc.truncated, tc.junk)
		if got != tc.want || ok != tc.ok {
			t.Errorf("legacyCluster(%q, %q) = %q, %v; want %q, %v", tc.truncated, tc.junk, got, ok, tc.want, tc.ok)
		}
	}
}

func TestSplitClusterStat(t *testing.T) {
	tests := []struct {
		name, cluster, stat string
		ok                  bool
	}{
		{"cluster.outbound|9080||reviews.default.svc.cluster.local;.upstream_rq_503", local, "upstream_rq_503", true},
		{"cluster.outbound|9080||reviews.default.svc.cluster.local.upstream_rq_503", local, "upstream_rq_503", true},
		{"cluster.outbound|9080||reviews.default.svc.cluster.local.outlier_detection.ejections_active", local, "outlier_detection.ejections_active", true},
		{"cluster.xds-grpc;.outlier_detection.ejections_active", "xds-grpc", "outlier_detection.ejections_active", true},
		{"cluster.outbound|9080||reviews.default.svc.cluster.local.internal.upstream_rq_200", "", "", false},
		{"cluster.outbound|9080||reviews.default.svc.cluster.local.zone.a.b.upstream_rq_200", "", "", false},
		{"cluster_manager.active_clusters", "", "", false},
		{"cluster.", "", "", false},
		{"cluster.outbound|9080||reviews.default.svc.cluster.local;.retry.upstream_rq_503", local, "retry.upstream_rq_503", true},
		{"cluster.outbound|9080||reviews.default.svc.cluster.local.retry.upstream_rq_503", local, "retry.upstream_rq_503", true},
	}
	for _, tc := range tests {
		c, s, ok := splitClusterStat(tc.name)
		if ok != tc.ok || (ok && (c != tc.cluster || s != tc.stat)) {
			t.Errorf("splitClusterStat(%q) = %q, %q, %v; want %q, %q, %v", tc.name, c, s, ok, tc.cluster, tc.stat, tc.ok)
		}
	}
}

// TestParseRetryStats: the router's retry.upstream_rq_* stats, as an Istio
// sidecar prints them (its tag regexes take the code and the cluster out of
// cluster.<name>;.retry.upstream_rq_503), are the retried attempts of their
// cluster — not a cluster called "<name>.retry", and nothing to warn about.
func TestParseRetryStats(t *testing.T) {
	text := `# TYPE envoy_cluster_retry_upstream_rq counter
envoy_cluster_retry_upstream_rq{response_code="503",cluster_name="inbound|9080||"} 3
envoy_cluster_retry_upstream_rq{response_code_class="5xx",cluster_name="inbound|9080||"} 3
envoy_cluster_retry_upstream_rq{response_code="503",cluster_name="outbound|9080||reviews.default.svc.cluster.local"} 7
# TYPE envoy_cluster_upstream_rq counter
envoy_cluster_upstream_rq{response_code="200",cluster_name="outbound|9080||reviews.default.svc.cluster.local"} 40
envoy_cluster_upstream_rq{response_code="503",cluster_name="outbound|9080||reviews.default.svc.cluster.local"} 1
`
	s, err := Parse([]byte(text))
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Warnings) > 0 {
		t.Errorf("warnings: %v", s.Warnings)
	}
	for name := range s.Clusters {
		if strings.Contains(name, "retry") {
			t.Errorf("phantom cluster %q", name)
		}
	}
	in := s.Clusters["inbound|9080||"]
	if in == nil || in.RetryCodes["503"] != 3 || in.RetryClasses["5xx"] != 3 || len(in.Codes) != 0 {
		t.Errorf("inbound|9080||: %+v, want 3 retried 503s and no final answers", in)
	}
	c := s.Clusters[local]
	if c == nil || c.RetryCodes["503"] != 7 || c.Codes["503"] != 1 || c.Codes["200"] != 40 {
		t.Errorf("%s: %+v, want 7 retried 503s beside final 40 200s and one 503", local, c)
	}
	j, err := ParseJSON([]byte(`{"stats":[{"name":"cluster.` + local + `;.retry.upstream_rq_503","value":7},{"name":"cluster.` + local + `;.upstream_rq_503","value":1}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if jc := j.Clusters[local]; jc == nil || jc.RetryCodes["503"] != 7 || jc.Codes["503"] != 1 {
		t.Errorf("JSON: %+v", jc)
	}
}
