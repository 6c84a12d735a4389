package sidecar_test

import (
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/meshdrill/drill/pkg/fault"
	"github.com/meshdrill/drill/pkg/scenario"
	"k8s.io/client-go/dynamic"
)

// TestInboundFaultFromIstiod: drill's httpFault through the real istiod —
// the EnvoyFilter rendered into reviews' inbound listener, the emulated
// sidecar answering 503 for reviews — and gone again after the revert.
func TestInboundFaultFromIstiod(t *testing.T) {
	sc, err := scenario.Load(repoFile(t, "scenarios/reviews-failover.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	sc.Spec.Clusters = sc.Spec.Clusters[:1]
	mesh := startMesh(t, sc)
	c1 := mesh[0]
	reviews := podTwin(t, c1.cs, "default", "app=reviews")
	status := func() int {
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, "http://"+net.JoinHostPort(reviews, "9080")+"/reviews/0", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := status(); code != 200 {
		t.Fatalf("reviews before the fault: %d", code)
	}
	f, err := fault.NewHTTPFault(fault.Target{Name: c1.name, Client: c1.cs, Dynamic: dynamic.Interface(c1.dyn)}, fault.ByApp("default", "reviews"),
		fault.HTTPFaultSpec{AbortStatus: 503, AbortPercent: 100})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Apply(t.Context()); err != nil {
		t.Fatal(err)
	}
	waitCode := func(want int, what string) {
		deadline := time.Now().Add(30 * time.Second)
		for status() != want {
			if time.Now().After(deadline) {
				t.Fatalf("%s: reviews never answered %d\n%s\nistiod:\n%s", what, want, grep(get(t, "http://"+net.JoinHostPort(reviews, "15000")+"/config_dump"), "virtualInbound"),
					grep(get(t, c1.cp.IstiodDebugURL()+"/configz"), "EnvoyFilter"))
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	waitCode(503, "after the fault")
	if err := f.Revert(t.Context()); err != nil {
		t.Fatal(err)
	}
	waitCode(200, "after the revert")
}
