package envoyemu

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	"google.golang.org/protobuf/proto"
)

// FuzzParsePeer: the metadata exchange header comes from whoever sends the
// request; any value must decode to a peer or to nothing, never panic.
func FuzzParsePeer(f *testing.F) {
	id := testIdentity()
	good, err := id.peerHeaders()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add("")
	f.Add("not base64!")
	f.Add("CgA=")
	f.Fuzz(func(t *testing.T, v string) {
		p := decodePeer(v)
		if v == good && (p == nil || p.workload != id.WorkloadName || p.cluster != id.Cluster) {
			t.Fatalf("own metadata decoded to %+v", p)
		}
		_ = p.principal()
	})
}

// FuzzRetryHeaders: x-envoy-retry-on and friends come from the request.
func FuzzRetryHeaders(f *testing.F) {
	f.Add("5xx,connect-failure", "3", "250", "503,504")
	f.Add("", "", "", "")
	f.Add("bogus,,", "-1", "x", ",,")
	f.Fuzz(func(t *testing.T, on, max, perTry, codes string) {
		h := http.Header{}
		h.Set("x-envoy-retry-on", on)
		h.Set("x-envoy-max-retries", max)
		h.Set("x-envoy-upstream-rq-per-try-timeout-ms", perTry)
		h.Set("x-envoy-retriable-status-codes", codes)
		rp := (*retryPolicy)(nil).withHeaders(h)
		if rp == nil {
			return
		}
		if rp.numRetries < 0 || rp.perTry < 0 {
			t.Fatalf("policy %+v from headers", rp)
		}
		if d := rp.backoff(rp.numRetries+1, 12345); d < 0 || d > 10*defaultRetryBase {
			t.Fatalf("backoff %s", d)
		}
		_ = rp.retriableResponse(503, "14")
		_ = time.Duration(0)
	})
}

// FuzzRouteConfiguration: whatever route configuration arrives over xDS is
// compiled or rejected, and a compiled one routes a request without
// panicking.
func FuzzRouteConfiguration(f *testing.F) {
	fx := loadFixture(f, "aggregate-productpage")
	for _, a := range fx[TypeRoute].Resources {
		f.Add(a.GetValue())
	}
	fx = loadFixture(f, "ingressgateway")
	for _, a := range fx[TypeRoute].Resources {
		f.Add(a.GetValue())
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		rc := &routev3.RouteConfiguration{}
		if err := proto.Unmarshal(b, rc); err != nil {
			return
		}
		table, err := compileRouteTable(rc)
		if err != nil {
			return
		}
		r := httptest.NewRequest(http.MethodGet, "http://reviews:9080/reviews/0?x=1", nil)
		r.Header.Set("end-user", "jason")
		if vh := table.virtualHost(r.Host); vh != nil {
			if rt := vh.route(r); rt != nil {
				_ = rt.pickCluster(r, 7)
				u := *r.URL
				rt.rewritePath(&u)
			}
		}
	})
}
