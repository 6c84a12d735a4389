package envoyemu

import (
	"net/http"
	"testing"
	"time"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	previouspriorities "github.com/envoyproxy/go-control-plane/envoy/extensions/retry/priority/previous_priorities/v3"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// TestPreviousPrioritiesUpdateFrequency: the previous_priorities retry
// plugin leaves the priority load alone until update_frequency hosts have
// been attempted, and takes the attempted levels out of it at every multiple
// of update_frequency (envoy source/extensions/retry/priority/
// previous_priorities/previous_priorities.cc, determinePriorityLoad:
// "attempted_hosts_.size() < update_frequency_" returns the original load,
// "attempted_hosts_.size() % update_frequency_ == 0" recomputes it). Istio
// sets update_frequency 2 with retryRemoteLocalities (istio pilot/pkg/
// networking/core/route/retry/retry.go), so there a request that fails in
// priority 0 is retried there once before it moves on.
func TestPreviousPrioritiesUpdateFrequency(t *testing.T) {
	for _, tc := range []struct {
		name      string
		frequency uint32
		wantP0    int // attempts on priority 0's failing host
	}{
		{"update_frequency 1", 1, 1},
		{"update_frequency 2 (Istio's)", 2, 2},
		{"update_frequency 3", 3, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p0, p0Hits := upstream(t, "p0", http.StatusServiceUnavailable)
			p1, p1Hits := upstream(t, "p1", http.StatusOK)
			cfg, err := anypb.New(&previouspriorities.PreviousPrioritiesConfig{UpdateFrequency: int32(tc.frequency)})
			if err != nil {
				t.Fatal(err)
			}
			p := newTestProxy(t, allStatsIdentity())
			feed(t, p,
				response(t, TypeCluster, edsCluster("svc")),
				response(t, TypeEndpoint, assignment(t, "svc", []string{p0}, []string{p1})),
				response(t, TypeListener, httpListener(t, 9080)),
				response(t, TypeRoute, routeConfig("9080", &routev3.VirtualHost{Name: "svc", Domains: []string{"svc"},
					Routes: []*routev3.Route{clusterRoute("/", "svc", func(ra *routev3.RouteAction) {
						ra.RetryPolicy = &routev3.RetryPolicy{
							RetryOn: "5xx", NumRetries: wrapperspb.UInt32(3),
							RetryHostPredicate:            []*routev3.RetryPolicy_RetryHostPredicate{{Name: "envoy.retry_host_predicates.previous_hosts"}},
							HostSelectionRetryMaxAttempts: 5,
							RetryPriority: &routev3.RetryPolicy_RetryPriority{Name: "envoy.retry_priorities.previous_priorities",
								ConfigType: &routev3.RetryPolicy_RetryPriority_TypedConfig{TypedConfig: cfg}},
							RetryBackOff: &routev3.RetryPolicy_RetryBackOff{BaseInterval: durationpb.New(time.Millisecond)},
						}
					})}})),
			)
			w := send(p, http.MethodGet, "http://svc:9080/", nil)
			if w.Code != http.StatusOK || w.Body.String() != "p1" {
				t.Fatalf("%d %q, want priority 1's answer", w.Code, w.Body)
			}
			if p0Hits() != tc.wantP0 || p1Hits() != 1 {
				t.Errorf("priority 0 got %d attempts and priority 1 %d; want %d and 1", p0Hits(), p1Hits(), tc.wantP0)
			}
		})
	}
}
