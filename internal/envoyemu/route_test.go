package envoyemu

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

func TestVirtualHostDomains(t *testing.T) {
	vh := func(name string, domains ...string) *routev3.VirtualHost {
		return &routev3.VirtualHost{Name: name, Domains: domains, Routes: []*routev3.Route{clusterRoute("/", name)}}
	}
	table, err := compileRouteTable(routeConfig("9080",
		vh("exact", "reviews.default.svc.cluster.local", "reviews", "reviews:9080"),
		vh("suffix-long", "*.svc.cluster.local"),
		vh("suffix-short", "*.local"),
		vh("prefix", "api.*"),
		vh("default", "*"),
	))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ host, want string }{
		{"reviews", "exact"},
		{"reviews:9080", "exact"},
		{"REVIEWS.default.svc.cluster.local:9080", "exact"},
		{"details.default.svc.cluster.local", "suffix-long"},
		{"foo.cluster.local", "suffix-short"},
		{"api.example.com", "prefix"},
		{"other:9080", "default"},
	} {
		got := table.virtualHost(tc.host)
		if got == nil || got.name != tc.want {
			t.Errorf("%s → %v, want %s", tc.host, got, tc.want)
		}
	}
	if _, err := compileRouteTable(routeConfig("x", vh("a", "dup"), vh("b", "dup"))); err == nil {
		t.Error("duplicate domains accepted; Envoy rejects them")
	}
}

func TestRouteMatch(t *testing.T) {
	exact := func(s string) *routev3.HeaderMatcher {
		return &routev3.HeaderMatcher{Name: "end-user", HeaderMatchSpecifier: &routev3.HeaderMatcher_StringMatch{
			StringMatch: &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Exact{Exact: s}}}}
	}
	routes := []*routev3.Route{
		{Match: &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: "/"}, Headers: []*routev3.HeaderMatcher{exact("jason")}},
			Action: &routev3.Route_Route{Route: &routev3.RouteAction{ClusterSpecifier: &routev3.RouteAction_Cluster{Cluster: "v2"}}}},
		{Match: &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Path{Path: "/productpage"}},
			Action: &routev3.Route_Route{Route: &routev3.RouteAction{ClusterSpecifier: &routev3.RouteAction_Cluster{Cluster: "exact"}}}},
		{Match: &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_SafeRegex{SafeRegex: &matcherv3.RegexMatcher{Regex: "/reviews/[0-9]+"}}},
			Action: &routev3.Route_Route{Route: &routev3.RouteAction{ClusterSpecifier: &routev3.RouteAction_Cluster{Cluster: "regex"}}}},
		{Match: &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: "/API"}, CaseSensitive: wrapperspb.Bool(false)},
			Action: &routev3.Route_Route{Route: &routev3.RouteAction{ClusterSpecifier: &routev3.RouteAction_Cluster{Cluster: "nocase"}}}},
		{Match: &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: "/static"}},
			Action: &routev3.Route_DirectResponse{DirectResponse: &routev3.DirectResponseAction{Status: 418}}},
	}
	table, err := compileRouteTable(routeConfig("r", &routev3.VirtualHost{Name: "vh", Domains: []string{"*"}, Routes: routes}))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		path, user, want string
	}{
		{"/productpage", "", "exact"},
		{"/productpage?u=normal", "", "exact"},
		{"/productpage", "jason", "v2"},
		{"/productpage/x", "", ""},
		{"/reviews/12", "", "regex"},
		{"/reviews/12x", "", ""},
		{"/api/v1/products", "", "nocase"},
		{"/static/x.css", "", "direct"},
	} {
		r := httptest.NewRequest(http.MethodGet, "http://h"+tc.path, nil)
		if tc.user != "" {
			r.Header.Set("end-user", tc.user)
		}
		got := ""
		if rt := table.virtualHost("h").route(r); rt != nil {
			if rt.kind == routeDirect {
				got = "direct"
			} else {
				got = rt.pickCluster(r, 0)
			}
		}
		if got != tc.want {
			t.Errorf("%s (user %q) → %q, want %q", tc.path, tc.user, got, tc.want)
		}
	}
	if _, err := compileRouteTable(routeConfig("bad", &routev3.VirtualHost{Name: "vh", Domains: []string{"*"}, Routes: []*routev3.Route{
		{Match: &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_SafeRegex{SafeRegex: &matcherv3.RegexMatcher{Regex: "(("}}},
			Action: &routev3.Route_Route{Route: &routev3.RouteAction{ClusterSpecifier: &routev3.RouteAction_Cluster{Cluster: "x"}}}},
	}})); err == nil {
		t.Error("a bad regex compiled; it must NACK")
	}
}

// TestWeightedClusters: traffic splits by weight, as a VirtualService's
// route weights ask.
func TestWeightedClusters(t *testing.T) {
	rc := routeConfig("r", &routev3.VirtualHost{Name: "vh", Domains: []string{"*"}, Routes: []*routev3.Route{{
		Match: &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: "/"}},
		Action: &routev3.Route_Route{Route: &routev3.RouteAction{ClusterSpecifier: &routev3.RouteAction_WeightedClusters{
			WeightedClusters: &routev3.WeightedCluster{Clusters: []*routev3.WeightedCluster_ClusterWeight{
				{Name: "v1", Weight: wrapperspb.UInt32(80)}, {Name: "v3", Weight: wrapperspb.UInt32(20)},
			}}}}},
	}}})
	table, err := compileRouteTable(rc)
	if err != nil {
		t.Fatal(err)
	}
	rt := table.virtualHost("x").route(httptest.NewRequest(http.MethodGet, "http://x/", nil))
	counts := map[string]int{}
	for r := uint64(0); r < 100; r++ {
		counts[rt.pickCluster(nil, r)]++
	}
	if counts["v1"] != 80 || counts["v3"] != 20 {
		t.Errorf("over 100 draws: %v, want v1 80, v3 20", counts)
	}
}

func TestRetryPolicy(t *testing.T) {
	rp, err := compileRetryPolicy(&routev3.RetryPolicy{
		RetryOn: "connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes", NumRetries: wrapperspb.UInt32(2),
		RetriableStatusCodes: []uint32{503}, PerTryTimeout: durationpb.New(2 * time.Second),
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		code int
		grpc string
		want bool
	}{
		{503, "", true}, {500, "", false}, {504, "", false}, {200, "14", true}, {200, "2", false},
	} {
		if got := rp.retriableResponse(tc.code, tc.grpc); got != tc.want {
			t.Errorf("Istio's default policy retries %d/grpc %q: %v, want %v", tc.code, tc.grpc, got, tc.want)
		}
	}
	if !rp.retriableFailure(connectFailure) || rp.retriableFailure(resetFailure) {
		t.Error("connect-failure retries connect failures only")
	}
	if _, err := compileRetryPolicy(&routev3.RetryPolicy{RetryOn: "5xx,bogus"}); err == nil {
		t.Error("an unknown retry_on condition compiled")
	}
	for n := 1; n <= 6; n++ {
		for _, r := range []uint64{0, 1 << 20, 1<<63 - 1} {
			if d := rp.backoff(n, r); d < 0 || d > 250*time.Millisecond {
				t.Errorf("backoff %d = %s, want within [0, 250ms]", n, d)
			}
		}
	}
}
