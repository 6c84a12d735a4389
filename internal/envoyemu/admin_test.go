package envoyemu

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	adminv3 "github.com/envoyproxy/go-control-plane/envoy/admin/v3"
	"github.com/meshdrill/drill/internal/stats"
	"google.golang.org/protobuf/encoding/protojson"
)

func adminGet(t *testing.T, h http.Handler, path string) (int, string) {
	t.Helper()
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, path, nil))
	b, _ := io.ReadAll(w.Result().Body)
	return w.Code, string(b)
}

// TestAdmin: the admin endpoints an SRE and drill use, on the aggregate
// fixture after a request.
func TestAdmin(t *testing.T) {
	p := newTestProxy(t, testIdentity())
	h := p.adminHandler()
	if code, body := adminGet(t, h, "/ready"); code != 503 || !strings.Contains(body, "PRE_INITIALIZING") {
		t.Errorf("/ready before configuration: %d %q", code, body)
	}
	fx := loadFixture(t, "aggregate-productpage")
	a := newSwitchable(t, "c1")
	rewriteEndpoints(t, fx[TypeEndpoint], "outbound|9080|cluster1|reviews.default.svc.cluster.local", []string{a.addr()})
	feedFixture(t, p, fx)
	send(p, http.MethodGet, "http://reviews:9080/reviews/0", nil)

	if code, body := adminGet(t, h, "/ready"); code != 200 || strings.TrimSpace(body) != "LIVE" {
		t.Errorf("/ready: %d %q", code, body)
	}
	_, clusters := adminGet(t, h, "/clusters")
	for _, want := range []string{
		"outbound|9080|cluster1|reviews.default.svc.cluster.local::" + a.addr() + "::health_flags::healthy",
		"outbound|9080|cluster1|reviews.default.svc.cluster.local::" + a.addr() + "::priority::0",
		"outbound|9080|cluster1|reviews.default.svc.cluster.local::" + a.addr() + "::rq_success::1",
		"outbound|9080||reviews-failover.default.global::observability_name::outbound|9080||reviews-failover.default.global",
		"outbound|9080|cluster1|reviews.default.svc.cluster.local::high_priority::max_retries::3",
		"outbound|9080|cluster1|reviews.default.svc.cluster.local::default_priority::max_connections::",
		"outbound|9080|cluster1|reviews.default.svc.cluster.local::" + a.addr() + "::cx_total::1",
		"outbound|9080|cluster1|reviews.default.svc.cluster.local::" + a.addr() + "::cx_active::",
	} {
		if !strings.Contains(clusters, want) {
			t.Errorf("/clusters lacks %q", want)
		}
	}
	_, cj := adminGet(t, h, "/clusters?format=json")
	var parsed struct {
		ClusterStatuses []struct {
			Name         string `json:"name"`
			HostStatuses []struct {
				Stats []struct {
					Name  string `json:"name"`
					Value string `json:"value"` // uint64: a string in proto JSON, as Envoy prints it
				} `json:"stats"`
				HealthStatus struct {
					EdsHealthStatus string `json:"eds_health_status"`
				} `json:"health_status"`
			} `json:"host_statuses"`
		} `json:"cluster_statuses"`
	}
	if err := json.Unmarshal([]byte(cj), &parsed); err != nil || len(parsed.ClusterStatuses) < 10 {
		t.Errorf("/clusters?format=json: %v, %d clusters", err, len(parsed.ClusterStatuses))
	}
	// Envoy's own message: it reads back into envoy.admin.v3.Clusters.
	if err := protojson.Unmarshal([]byte(cj), &adminv3.Clusters{}); err != nil {
		t.Errorf("/clusters?format=json is not an envoy.admin.v3.Clusters: %v", err)
	}
	sawHealth := false
	for _, cs := range parsed.ClusterStatuses {
		for _, hs := range cs.HostStatuses {
			if hs.HealthStatus.EdsHealthStatus == "HEALTHY" {
				sawHealth = true
			}
		}
	}
	if !sawHealth {
		t.Errorf("no host with eds_health_status HEALTHY in /clusters?format=json:\n%s", cj)
	}
	_, dump := adminGet(t, h, "/config_dump")
	var cd map[string]any
	if err := json.Unmarshal([]byte(dump), &cd); err != nil {
		t.Fatalf("/config_dump is not JSON: %v", err)
	}
	if !strings.Contains(dump, `"envoy.clusters.aggregate"`) || !strings.Contains(dump, `"version_info": "recorded"`) {
		t.Errorf("/config_dump lacks the aggregate cluster or the version")
	}
	_, text := adminGet(t, h, "/stats")
	// Through the aggregate, the router counts the code on the aggregate
	// cluster (no alt stat name: no ';') and the pool the request on the member.
	for _, want := range []string{
		"cluster.outbound|9080||reviews-failover.default.global.upstream_rq_200: 1\n",
		"cluster.outbound|9080|cluster1|reviews.default.svc.cluster.local;.upstream_rq_total: 1\n",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("/stats lacks %q in Envoy's text form", want)
		}
	}
	_, filtered := adminGet(t, h, "/stats?filter=upstream_rq_200")
	if strings.Contains(filtered, "membership") || !strings.Contains(filtered, "upstream_rq_200") {
		t.Errorf("/stats?filter= did not filter:\n%s", filtered)
	}
	_, js := adminGet(t, h, "/stats?format=json")
	snap, err := stats.ParseJSON([]byte(js))
	if err != nil {
		t.Fatal(err)
	}
	if c := snap.Clusters["outbound|9080|cluster1|reviews.default.svc.cluster.local"]; c == nil || c.Get(stats.StatRqTotal) != 1 {
		t.Errorf("JSON stats: %+v", c)
	}
	_, prom := adminGet(t, h, "/stats/prometheus")
	if _, err := stats.ParseText([]byte(prom)); err != nil {
		t.Errorf("/stats/prometheus: %v", err)
	}
	if code, _ := adminGet(t, h, "/stats?filter=("); code != 400 {
		t.Errorf("bad filter regex: %d, want 400", code)
	}
}
