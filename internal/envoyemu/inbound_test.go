package envoyemu

import (
	"bytes"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	"google.golang.org/protobuf/types/known/structpb"
)

// TestInbound: the server side of a hop. The pod's sidecar hands the
// request to the application, answers the metadata exchange, and counts the
// request as reporter=destination with the client's identity and the
// service this pod is an endpoint of.
func TestInbound(t *testing.T) {
	app := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get(headerPeerMetadata) != "" {
			w.WriteHeader(500) // the exchange headers stop at the sidecar
			return
		}
		io.WriteString(w, "reviews")
	})
	id := testIdentity()
	id.Pod, id.WorkloadName, id.ServiceAccount = "reviews-v1-test", "reviews-v1", "bookinfo-reviews"
	id.Labels = map[string]string{"app": "reviews", "version": "v1"}
	p := newTestProxy(t, id, WithInbound(Inbound{Port: 0, Handler: app}))
	p.noXDS = true
	startProxy(t, p)
	in := p.serverURL("inbound_0")
	_, port, _ := cutPort(strings.TrimPrefix(in, "http://"))
	pn, _ := strconv.Atoi(port)

	// Not ready: no inbound listener yet, as with Envoy.
	resp, err := http.Get(in + "/reviews/0")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 503 {
		t.Errorf("before configuration: %d, want 503", resp.StatusCode)
	}

	svc := "outbound|9080||reviews.default.svc.cluster.local"
	md, _ := structpb.NewStruct(map[string]any{"services": []any{map[string]any{"host": "reviews.default.svc.cluster.local", "name": "reviews", "namespace": "default"}}})
	feed(t, p,
		response(t, TypeCluster, edsCluster(svc, func(c *clusterv3.Cluster) { c.Metadata = metadataOf("istio", md) })),
		response(t, TypeEndpoint, assignment(t, svc, []string{"10.0.0.1:" + strconv.Itoa(pn)})),
		response(t, TypeListener),
	)
	client := testIdentity()
	meta, _ := client.peerHeaders()
	req, _ := http.NewRequest(http.MethodGet, in+"/reviews/0", nil)
	req.Host = "reviews:9080"
	req.Header.Set(headerPeerMetadata, meta)
	req.Header.Set(headerPeerMetadataID, client.NodeID())
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "reviews" {
		t.Fatalf("%d %q", resp.StatusCode, body)
	}
	back := parsePeer(resp.Header)
	if back == nil || back.workload != "reviews-v1" || back.cluster != "cluster1" {
		t.Errorf("metadata returned to the client: %+v", back)
	}
	var b bytes.Buffer
	_ = p.store.WritePrometheus(&b)
	want := `istio_requests_total{reporter="destination",source_workload="productpage-v1",source_canonical_service="productpage",source_canonical_revision="v1",source_workload_namespace="default",source_principal="spiffe://cluster.local/ns/default/sa/bookinfo-productpage",source_app="productpage",source_version="v1",source_cluster="cluster1",destination_workload="reviews-v1",destination_workload_namespace="default",destination_principal="spiffe://cluster.local/ns/default/sa/bookinfo-reviews",destination_app="reviews",destination_version="v1",destination_service="reviews.default.svc.cluster.local",destination_canonical_service="reviews",destination_canonical_revision="v1",destination_service_name="reviews",destination_service_namespace="default",destination_cluster="cluster1",request_protocol="http",response_code="200",grpc_response_status="",response_flags="-",connection_security_policy="mutual_tls"} 1`
	if !strings.Contains(b.String(), want) {
		t.Errorf("no %s in\n%s", want, b.String())
	}
}
