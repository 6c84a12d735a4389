package envoyemu

import (
	"strings"
	"testing"
	"time"

	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	faultcommonv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/common/fault/v3"
	faultv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/fault/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
)

// withFault is l with Envoy's fault filter ahead of the router in every
// chain's HTTP connection manager, as an EnvoyFilter of applyTo HTTP_FILTER,
// context SIDECAR_INBOUND, INSERT_BEFORE the router makes istiod send it.
func withFault(t *testing.T, l *listenerv3.Listener, f *faultv3.HTTPFault) *listenerv3.Listener {
	t.Helper()
	fa, err := anypb.New(f)
	if err != nil {
		t.Fatal(err)
	}
	for _, fc := range l.GetFilterChains() {
		for _, nf := range fc.GetFilters() {
			hcm := &hcmv3.HttpConnectionManager{}
			if err := nf.GetTypedConfig().UnmarshalTo(hcm); err != nil {
				t.Fatal(err)
			}
			hcm.StatPrefix = "inbound_0.0.0.0_9080"
			empty, _ := anypb.New(&faultv3.HTTPFault{})
			hcm.HttpFilters = []*hcmv3.HttpFilter{
				// Istio's own, empty: VirtualService faults configure it per route.
				{Name: "envoy.filters.http.fault", ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: empty}},
				{Name: "envoy.filters.http.fault", ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: fa}},
				{Name: "envoy.filters.http.router"},
			}
			a, err := anypb.New(hcm)
			if err != nil {
				t.Fatal(err)
			}
			nf.ConfigType = &listenerv3.Filter_TypedConfig{TypedConfig: a}
		}
	}
	return l
}

// TestInboundFault: the fault filter in a sidecar's inbound chain answers
// for the workload (FI) or holds the request first (DI); the caller sees the
// answer as its upstream's, over mutual TLS, as with Envoy.
func TestInboundFault(t *testing.T) {
	ca := newTestCA(t)
	t.Run("abort", func(t *testing.T) {
		h := newMeshHop(t, ca, ca.secrets(t, "bookinfo-productpage"), "spiffe://cluster.local/ns/default/sa/bookinfo-reviews", false)
		feed(t, h.server, response(t, TypeListener, withFault(t, inboundListener(t, uint32(h.serverPort), false), &faultv3.HTTPFault{
			Abort: &faultv3.FaultAbort{ErrorType: &faultv3.FaultAbort_HttpStatus{HttpStatus: 503},
				Percentage: &typev3.FractionalPercent{Numerator: 100, Denominator: typev3.FractionalPercent_HUNDRED}},
		})))
		code, body := h.get(t)
		if code != 503 || !strings.Contains(body, "fault filter abort") {
			t.Fatalf("%d %q, want the fault filter's 503", code, body)
		}
		var b strings.Builder
		_ = h.server.store.WritePrometheus(&b)
		if !strings.Contains(b.String(), `response_code="503",grpc_response_status="",response_flags="FI"`) {
			t.Errorf("the server did not report an FI 503:\n%s", grepLines(b.String(), "istio_requests_total{"))
		}
		// The caller's Envoy got it from its upstream: a 503 of the cluster.
		if c := h.client.routing.Load().cluster(h.cluster); c == nil || h.client.store.Counter("cluster."+c.statName+".upstream_rq_503").Value() != 1 {
			t.Errorf("the client's cluster did not count the upstream 503")
		}
	})
	t.Run("delay", func(t *testing.T) {
		h := newMeshHop(t, ca, ca.secrets(t, "bookinfo-productpage"), "spiffe://cluster.local/ns/default/sa/bookinfo-reviews", false)
		feed(t, h.server, response(t, TypeListener, withFault(t, inboundListener(t, uint32(h.serverPort), false), &faultv3.HTTPFault{
			Delay: &faultcommonv3.FaultDelay{FaultDelaySecifier: &faultcommonv3.FaultDelay_FixedDelay{FixedDelay: durationpb.New(150 * time.Millisecond)},
				Percentage: &typev3.FractionalPercent{Numerator: 1000000, Denominator: typev3.FractionalPercent_MILLION}},
		})))
		start := time.Now()
		code, body := h.get(t)
		if code != 200 || body != "reviews" {
			t.Fatalf("%d %q, want reviews' answer, late", code, body)
		}
		if d := time.Since(start); d < 150*time.Millisecond {
			t.Errorf("answered in %s, before the 150 ms delay", d)
		}
		var b strings.Builder
		_ = h.server.store.WritePrometheus(&b)
		if !strings.Contains(b.String(), `response_flags="DI"`) {
			t.Errorf("the server did not report a DI request:\n%s", grepLines(b.String(), "istio_requests_total{"))
		}
	})
	t.Run("none", func(t *testing.T) {
		h := newMeshHop(t, ca, ca.secrets(t, "bookinfo-productpage"), "spiffe://cluster.local/ns/default/sa/bookinfo-reviews", false)
		// 0 % abort: the filter is there and injects nothing.
		feed(t, h.server, response(t, TypeListener, withFault(t, inboundListener(t, uint32(h.serverPort), false), &faultv3.HTTPFault{
			Abort: &faultv3.FaultAbort{ErrorType: &faultv3.FaultAbort_HttpStatus{HttpStatus: 503}, Percentage: &typev3.FractionalPercent{}},
		})))
		for range 20 {
			if code, _ := h.get(t); code != 200 {
				t.Fatalf("a 0 %% abort answered %d", code)
			}
		}
	})
}
