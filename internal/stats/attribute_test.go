package stats

import (
	"reflect"
	"testing"

	"github.com/meshdrill/drill/pkg/event"
)

func TestParseClusterName(t *testing.T) {
	tests := []struct {
		name string
		want EnvoyCluster
		ok   bool
	}{
		{local, EnvoyCluster{Direction: "outbound", Port: 9080, Host: "reviews.default.svc.cluster.local",
			Service: "reviews", Namespace: "default", KubeCluster: "cluster1", Kind: KindLocal}, true},
		{remote, EnvoyCluster{Direction: "outbound", Port: 9080, Host: "reviews.default.svc.cluster2.global",
			Service: "reviews", Namespace: "default", KubeCluster: "cluster2", Kind: KindRemote}, true},
		{failover, EnvoyCluster{Direction: "outbound", Port: 9080, Host: "reviews-failover.default.global",
			Service: "reviews-failover", Namespace: "default", Kind: KindFailover}, true},
		{"outbound|9080|v3|reviews.default.svc.cluster2.global", EnvoyCluster{Direction: "outbound", Port: 9080, Subset: "v3",
			Host: "reviews.default.svc.cluster2.global", Service: "reviews", Namespace: "default", KubeCluster: "cluster2", Kind: KindRemote}, true},
		{"outbound_.9080_.v1_.reviews.default.svc.cluster.local", EnvoyCluster{Direction: "outbound", Port: 9080, Subset: "v1",
			Host: "reviews.default.svc.cluster.local", Service: "reviews", Namespace: "default", KubeCluster: "cluster1", Kind: KindLocal}, true},
		{"outbound_.9080_._.reviews.default.svc.cluster2.global", EnvoyCluster{Direction: "outbound", Port: 9080,
			Host: "reviews.default.svc.cluster2.global", Service: "reviews", Namespace: "default", KubeCluster: "cluster2", Kind: KindRemote}, true},
		{"outbound|443||api.example.com", EnvoyCluster{Direction: "outbound", Port: 443, Host: "api.example.com", Kind: KindOther}, true},
		{"inbound|9080||", EnvoyCluster{Direction: "inbound", Port: 9080, Kind: KindOther}, true},
		{"outbound|9080||east.prod.svc.us.west.global", EnvoyCluster{Direction: "outbound", Port: 9080,
			Host: "east.prod.svc.us.west.global", Service: "east", Namespace: "prod", KubeCluster: "us.west", Kind: KindRemote}, true},
		{"xds-grpc", EnvoyCluster{Kind: KindOther}, false},
		{"PassthroughCluster", EnvoyCluster{Kind: KindOther}, false},
		{"outbound|http|x|reviews.default.svc.cluster.local", EnvoyCluster{Kind: KindOther}, false},
		{"outbound|9080|reviews.default.svc.cluster.local", EnvoyCluster{Kind: KindOther}, false},
		{"outbound|99999||reviews.default.svc.cluster.local", EnvoyCluster{Kind: KindOther}, false},
	}
	for _, tc := range tests {
		got, ok := ParseClusterName(tc.name, "cluster1")
		tc.want.Name = tc.name
		if ok != tc.ok || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("ParseClusterName(%q) =\n %+v, %v\nwant %+v, %v", tc.name, got, ok, tc.want, tc.ok)
		}
	}
}

func TestServiceKey(t *testing.T) {
	for host, want := range map[string]string{
		"reviews.default.svc.cluster.local":   "reviews.default",
		"reviews.default.svc.cluster2.global": "reviews.default",
		"reviews-failover.default.global":     "reviews-failover.default",
		"api.example.com":                     "api.example.com",
		"unknown":                             "unknown",
	} {
		if got := ServiceKey(host); got != want {
			t.Errorf("ServiceKey(%q) = %q; want %q", host, got, want)
		}
	}
}

func TestAttributeFailover(t *testing.T) {
	before, during := at(t, "sidecar_before.prom", 0), at(t, "sidecar_during.prom", 10)
	s := Diff(before, during).Sample("productpage", "productpage-v1-abc")
	a := Attribute(s, "cluster1")

	wantEnvoy := map[string]map[string]Counts{
		"reviews.default": {"cluster1": {Requests: 12, Upstream5xx: 12}, "cluster2": {Requests: 380}},
		"details.default": {"cluster1": {Requests: 392}},
	}
	if !reflect.DeepEqual(a.ByEnvoyCluster, wantEnvoy) {
		t.Errorf("by Envoy cluster = %v; want %v", a.ByEnvoyCluster, wantEnvoy)
	}
	wantIstio := map[string]map[string]int64{
		"reviews.default": {"cluster2": 380}, // the 12 503s of no healthy upstream served nothing
		"details.default": {"cluster1": 392},
	}
	if !reflect.DeepEqual(a.ByIstio, wantIstio) {
		t.Errorf("by istio = %v; want %v", a.ByIstio, wantIstio)
	}

	got, src := a.Served("reviews.default")
	if src != SourceIstio || !reflect.DeepEqual(got, wantIstio["reviews.default"]) {
		t.Errorf("Served(reviews.default) = %v from %s", got, src)
	}
	// Without istio_requests_total the Envoy cluster names answer.
	s.Served = nil
	got, src = Attribute(s, "cluster1").Served("reviews.default")
	if src != SourceEnvoyCluster || !reflect.DeepEqual(got, map[string]int64{"cluster1": 12, "cluster2": 380}) {
		t.Errorf("Served(reviews.default) without istio = %v from %s", got, src)
	}
	if got, _ := Attribute(s, "cluster1").Served("ratings.default"); got != nil {
		t.Errorf("ratings served %v; want nothing", got)
	}
}

func TestAttributeSkipsAggregateAndInbound(t *testing.T) {
	s := event.Sample{Clusters: map[string]event.ClusterDelta{
		failover:         {Requests: 50},
		"inbound|9080||": {Requests: 70},
		"xds-grpc":       {Requests: 1},
		remote:           {Requests: 5},
	}}
	a := Attribute(s, "cluster1")
	want := map[string]map[string]Counts{"reviews.default": {"cluster2": {Requests: 5}}}
	if !reflect.DeepEqual(a.ByEnvoyCluster, want) {
		t.Errorf("by Envoy cluster = %v; want %v", a.ByEnvoyCluster, want)
	}
}
