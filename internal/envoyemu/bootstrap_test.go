package envoyemu

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
)

// The bootstraps in testdata/bootstrap were rendered by the real pilot-agent
// (istio.io/istio at the commit tools/istio pins) from Istio's
// envoy_bootstrap.json template, for a sidecar and for a router, with the
// environment the injection template gives a pod; `envoy` was a stand-in
// that saved its -c file.
func readBootstrap(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "bootstrap", name+".json"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseBootstrapFromPilotAgent(t *testing.T) {
	for _, tc := range []struct {
		name string
		kind Kind
		pod  string
	}{
		{"sidecar", Sidecar, "hello-7d9c8d8f5b-x2x9q"},
		{"router", Router, "istio-ingressgateway-6b4d8c9f7-abcde"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := ParseBootstrap(readBootstrap(t, tc.name), "/pod")
			if err != nil {
				t.Fatal(err)
			}
			if b.XDS != "unix:///pod/etc/istio/proxy/XDS" {
				t.Errorf("XDS target %q, want pilot-agent's socket unix:///pod/etc/istio/proxy/XDS", b.XDS)
			}
			if b.SDS != "unix:///pod/var/run/secrets/workload-spiffe-uds/socket" {
				t.Errorf("SDS target %q", b.SDS)
			}
			if b.Admin.String() != "127.0.0.1:15000" {
				t.Errorf("admin %s, want 127.0.0.1:15000", b.Admin)
			}
			var ls, cs []string
			for _, l := range b.Listeners {
				ls = append(ls, l.GetName())
			}
			for _, c := range b.Clusters {
				cs = append(cs, c.GetName())
			}
			slices.Sort(ls)
			slices.Sort(cs)
			if !slices.Equal(ls, []string{"0.0.0.0_15021", "0.0.0.0_15090"}) {
				t.Errorf("static listeners %v", ls)
			}
			if !slices.Equal(cs, []string{"agent", "prometheus_stats"}) {
				t.Errorf("static clusters %v (xds-grpc and sds-grpc are pipes and must be left out)", cs)
			}
			id, err := b.Identity()
			if err != nil {
				t.Fatal(err)
			}
			if id.Kind != tc.kind || id.Pod != tc.pod || id.IP.String() != "10.244.0.17" || id.Cluster != "Kubernetes" {
				t.Errorf("identity %+v", id)
			}
			// The static configuration compiles: a proxy can be built on it.
			p, err := NewFromBootstrap(b)
			if err != nil {
				t.Fatal(err)
			}
			rt := p.routing.Load()
			if rt.listeners["0.0.0.0_15021"] == nil || rt.cluster("agent") == nil {
				t.Errorf("static resources not in the routing view: listeners %v", sortedKeys(rt.listeners))
			}
		})
	}
}

func TestParseBootstrapErrors(t *testing.T) {
	base := readBootstrap(t, "sidecar")
	mutate := func(f func(m map[string]any)) []byte {
		var m map[string]any
		if err := json.Unmarshal(base, &m); err != nil {
			t.Fatal(err)
		}
		f(m)
		out, _ := json.Marshal(m)
		return out
	}
	for _, tc := range []struct {
		name string
		data []byte
		want string
	}{
		{"not json", []byte("{"), "not an Envoy v3 bootstrap"},
		{"no node id", mutate(func(m map[string]any) { delete(m["node"].(map[string]any), "id") }), "node.id is empty"},
		{"no ads", mutate(func(m map[string]any) { delete(m["dynamic_resources"].(map[string]any), "ads_config") }), "ads_config is missing"},
		{"pipe admin", mutate(func(m map[string]any) {
			m["admin"].(map[string]any)["address"] = map[string]any{"pipe": map[string]any{"path": "/admin"}}
		}), "admin.address is not a socket address"},
		{"ads cluster missing", mutate(func(m map[string]any) {
			sr := m["static_resources"].(map[string]any)
			sr["clusters"] = slices.DeleteFunc(sr["clusters"].([]any), func(c any) bool { return c.(map[string]any)["name"] == "xds-grpc" })
		}), `cluster "xds-grpc": no such static cluster`},
		{"bad node id", mutate(func(m map[string]any) { m["node"].(map[string]any)["id"] = "sidecar~10.0.0.1" }), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := ParseBootstrap(tc.data, "/pod")
			if err == nil && tc.want == "" {
				_, err = b.Identity()
				tc.want = "is not Istio's TYPE~IP~POD.NAMESPACE~DOMAIN"
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func FuzzParseBootstrap(f *testing.F) {
	f.Add(readBootstrap(f, "sidecar"))
	f.Add(readBootstrap(f, "router"))
	f.Add([]byte(`{"node":{"id":"a~b~c~d"},"admin":{"address":{"socket_address":{"address":"::1","port_value":1}}},"dynamic_resources":{"ads_config":{"grpc_services":[{"google_grpc":{"target_uri":"x"}}]}}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := ParseBootstrap(data, "/pod")
		if err != nil {
			return
		}
		if b.Node.GetId() == "" || b.XDS == "" || !b.Admin.IsValid() {
			t.Fatalf("accepted a bootstrap without node id, ADS or admin: %+v", b)
		}
		_, _ = b.Identity()
	})
}

// TestStaticListenersForward: the bootstrap's readiness listener (15021)
// sends /healthz/ready to pilot-agent (the agent cluster), as Envoy does
// for kubelet's probe, and the admin endpoint takes pilot-agent's drain and
// quit calls.
func TestStaticListenersForward(t *testing.T) {
	agent := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "agent saw %s", r.URL.Path)
	}))
	t.Cleanup(agent.Close)
	b, err := ParseBootstrap(readBootstrap(t, "sidecar"), "/pod")
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(agent.Listener.Addr().String())
	pn, _ := strconv.Atoi(port)
	for _, c := range b.Clusters {
		if c.GetName() == "agent" {
			c.GetLoadAssignment().GetEndpoints()[0].GetLbEndpoints()[0].GetEndpoint().GetAddress().GetSocketAddress().PortSpecifier =
				&corev3.SocketAddress_PortValue{PortValue: uint32(pn)}
		}
	}
	quit := make(chan struct{})
	p, err := NewFromBootstrap(b, WithQuit(func() { close(quit) }))
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	p.gatewayHandler("0.0.0.0_15021").ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "http://pod:15021/healthz/ready", nil))
	if rec.Code != http.StatusOK || rec.Body.String() != "agent saw /healthz/ready" {
		t.Errorf("GET /healthz/ready on 15021: %d %q, want pilot-agent's answer", rec.Code, rec.Body.String())
	}
	admin := p.adminHandler()
	rec = httptest.NewRecorder()
	admin.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/drain_listeners?inboundonly&graceful", nil))
	if rec.Code != http.StatusOK || p.store.Gauge("server.state").Value() != 1 {
		t.Errorf("drain_listeners: %d, server.state %d, want 200 and DRAINING (1)", rec.Code, p.store.Gauge("server.state").Value())
	}
	rec = httptest.NewRecorder()
	admin.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/quitquitquit", nil))
	if rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("GET /quitquitquit: %d, want 405 as Envoy", rec.Code)
	}
	admin.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodPost, "/quitquitquit", nil))
	select {
	case <-quit:
	case <-time.After(5 * time.Second):
		t.Fatal("POST /quitquitquit did not ask the proxy to quit")
	}
}

// TestAdminProfiles: the admin endpoint serves the emulation's own Go
// profiles, for finding where an emulated proxy spends its CPU in a pod.
func TestAdminProfiles(t *testing.T) {
	p := newTestProxy(t, testIdentity())
	rec := httptest.NewRecorder()
	p.adminHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/debug/pprof/goroutine?debug=1", nil))
	if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), "goroutine profile:") {
		t.Errorf("GET /debug/pprof/goroutine: %d %.200q", rec.Code, rec.Body.String())
	}
}
