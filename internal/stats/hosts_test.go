package stats

import (
	"fmt"
	"os"
	"strings"
	"testing"

	adminv3 "github.com/envoyproxy/go-control-plane/envoy/admin/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/meshdrill/drill/pkg/event"
)

const reviewsCluster = "outbound|9080||reviews.default.svc.cluster.local"

// TestParseClustersEnvoyShape reads a /clusters?format=json page in Envoy's own
// shape — the proto's field names, 64-bit counters as strings, enums by name,
// absent zero values — as Envoy's admin docs (operations/admin, /clusters) and
// its admin tests (test/server/admin, ClustersJson) print it: an Istio
// sidecar's reviews cluster with an ejected host, a draining one and a remote
// gateway at priority 1, and Istio's internal clusters, which are left out.
func TestParseClustersEnvoyShape(t *testing.T) {
	body, err := os.ReadFile("testdata/clusters_envoy.json")
	if err != nil {
		t.Fatal(err)
	}
	h, err := ParseClusters(body)
	if err != nil {
		t.Fatal(err)
	}
	if len(h) != 1 {
		t.Fatalf("clusters %v: want only %s (inbound and xds-grpc are Istio's own)", keys(h), reviewsCluster)
	}
	hosts := h[reviewsCluster]
	want := map[string]Host{
		"10.244.0.12:9080": {Priority: 0, Locality: "eu-west/zone-a", Weight: 1, Ejected: true},
		"10.244.0.13:9080": {Priority: 0, Locality: "eu-west/zone-a", Weight: 1, Unhealthy: true},
		"172.18.0.3:15443": {Priority: 1, Locality: "eu-west/zone-b/rack-2", Weight: 3},
	}
	for addr, w := range want {
		if got, ok := hosts[addr]; !ok || got != w {
			t.Errorf("host %s: %+v (present %v), want %+v", addr, got, ok, w)
		}
	}
	if p := ServingPriority(hosts); p != 1 {
		t.Errorf("serving priority %d: with both priority-0 hosts out, want 1", p)
	}
}

func keys(h Hosts) []string {
	var out []string
	for k := range h {
		out = append(out, k)
	}
	return out
}

func TestParseClustersRefuses(t *testing.T) {
	for _, body := range []string{"cluster::x::cx_active::0\n", `{"stats": []}`, `{"cluster_statuses": [{"name": 5}]}`, "["} {
		if _, err := ParseClusters([]byte(body)); err == nil {
			t.Errorf("ParseClusters(%q) succeeded", body)
		}
	}
	if h, err := ParseClusters([]byte(`{"cluster_statuses": []}`)); err != nil || len(h) != 0 {
		t.Errorf("an Envoy without clusters: %v, %v", h, err)
	}
}

// TestHostChanges: a host ejected, one returned, one new (no event: EDS added
// it), and the serving priority moving from 0 to 1 and back.
func TestHostChanges(t *testing.T) {
	a, b, c := "10.0.0.1:9080", "10.0.0.2:9080", "172.18.0.3:15443"
	prev := Hosts{reviewsCluster: {a: {Priority: 0}, b: {Priority: 0, Ejected: true}, c: {Priority: 1}}}
	cur := Hosts{reviewsCluster: {a: {Priority: 0, Ejected: true}, b: {Priority: 0}, c: {Priority: 1}, "10.0.0.9:9080": {Priority: 0}}}
	got := HostChanges(prev, cur)
	want := []HostEvent{
		{event.HostEjected, event.HostChange{EnvoyCluster: reviewsCluster, Host: a}},
		{event.HostReturned, event.HostChange{EnvoyCluster: reviewsCluster, Host: b}},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("changes %v, want %v", got, want)
	}
	// Every priority-0 host ejected: traffic goes to priority 1 first.
	down := Hosts{reviewsCluster: {a: {Priority: 0, Ejected: true}, b: {Priority: 0, Ejected: true}, c: {Priority: 1}}}
	got = HostChanges(cur, down)
	if len(got) != 2 || got[0].Type != event.HostEjected || got[1].Type != event.PriorityChanged || got[1].Change.From != 0 || got[1].Change.To != 1 {
		t.Errorf("changes %v, want b ejected and the serving priority 0 → 1", got)
	}
	gone := Hosts{reviewsCluster: {}}
	if got = HostChanges(down, gone); len(got) != 1 || got[0].Change.From != 1 || got[0].Change.To != -1 {
		t.Errorf("every host gone: %v, want priority 1 → -1 (none)", got)
	}
	// A cluster new in cur has no change yet.
	if got = HostChanges(Hosts{}, cur); len(got) != 0 {
		t.Errorf("a new cluster: %v", got)
	}
}

func FuzzParseClusters(f *testing.F) {
	if b, err := os.ReadFile("testdata/clusters_envoy.json"); err == nil {
		f.Add(b)
	}
	f.Add([]byte(`{"cluster_statuses":[{"name":"a","host_statuses":[{"address":{"pipe":{"path":"/x"}}}]}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := ParseClusters(b)
		if err != nil {
			return
		}
		for name, hosts := range h {
			if strings.HasPrefix(name, "inbound|") {
				t.Errorf("inbound cluster %q kept", name)
			}
			_ = ServingPriority(hosts)
		}
		_ = HostChanges(h, h)
	})
}

// clustersPage is a sidecar's /clusters?format=json with n outbound clusters
// of hosts hosts each, as Envoy marshals it.
func clustersPage(b testing.TB, n, hosts int) []byte {
	var msg adminv3.Clusters
	for i := range n {
		cs := &adminv3.ClusterStatus{Name: fmt.Sprintf("outbound|9080||svc%d.default.svc.cluster.local", i), AddedViaApi: true}
		for j := range hosts {
			cs.HostStatuses = append(cs.HostStatuses, &adminv3.HostStatus{
				Address: &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
					Address: fmt.Sprintf("10.244.%d.%d", i, j), PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: 9080}}}},
				Stats: []*adminv3.SimpleMetric{
					{Name: "cx_total", Value: 12}, {Name: "rq_total", Value: 1234}, {Name: "rq_success", Value: 1200},
					{Type: adminv3.SimpleMetric_GAUGE, Name: "rq_active", Value: 1},
				},
				HealthStatus: &adminv3.HostHealthStatus{EdsHealthStatus: corev3.HealthStatus_HEALTHY},
				Weight:       1,
				Priority:     uint32(j % 2),
				Locality:     &corev3.Locality{Region: "eu-west", Zone: "zone-a"},
			})
		}
		msg.ClusterStatuses = append(msg.ClusterStatuses, cs)
	}
	body, err := protojson.MarshalOptions{UseProtoNames: true, Multiline: true}.Marshal(&msg)
	if err != nil {
		b.Fatal(err)
	}
	return body
}

// BenchmarkHostsScrape is the cost, per scrape, of reading a sidecar's hosts
// and finding what changed: a page of 50 clusters with 6 hosts each, parsed
// and diffed against the previous one. At the default 1 s cadence that is the
// CPU each observed sidecar costs drill per second.
func BenchmarkHostsScrape(b *testing.B) {
	body := clustersPage(b, 50, 6)
	prev, err := ParseClusters(body)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		cur, err := ParseClusters(body)
		if err != nil {
			b.Fatal(err)
		}
		if len(HostChanges(prev, cur)) != 0 {
			b.Fatal("changes in an unchanged page")
		}
	}
}
