package app

import "net/http"

// Response headers naming who served a request. Upstream's workloads set none
// of them; they are drill's, so that a client (or a test) can attribute an
// answer to a cluster and pod without parsing the page.
const (
	HeaderCluster  = "X-Drill-Cluster"
	HeaderPod      = "X-Drill-Pod"
	HeaderWorkload = "X-Drill-Workload" // <service>-<version>, the Deployment's name
	// productpage repeats who served its reviews and details calls, so the
	// answer at the ingress tells which cluster's reviews it used; absent when
	// the call failed.
	HeaderReviewsCluster = "X-Drill-Reviews-Cluster"
	HeaderReviewsPod     = "X-Drill-Reviews-Pod"
	HeaderDetailsCluster = "X-Drill-Details-Cluster"
	HeaderDetailsPod     = "X-Drill-Details-Pod"
)

func attribute(h http.Handler, env Env, workload string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hdr := w.Header()
		if env.Cluster != "" {
			hdr.Set(HeaderCluster, env.Cluster)
		}
		if env.Pod != "" {
			hdr.Set(HeaderPod, env.Pod)
		}
		hdr.Set(HeaderWorkload, workload)
		h.ServeHTTP(w, r)
	})
}

// propagated are the request headers upstream's productpage and reviews copy
// from an incoming request to their outbound calls: Istio needs x-request-id
// and the trace context carried through the application to join spans, and
// Bookinfo's routing examples match on end-user, user-agent and cookie.
var propagated = []string{
	"x-request-id",
	"x-ot-span-context",
	"x-datadog-trace-id", "x-datadog-parent-id", "x-datadog-sampling-priority",
	"traceparent", "tracestate",
	"x-cloud-trace-context",
	"grpc-trace-bin",
	"x-b3-traceid", "x-b3-spanid", "x-b3-parentspanid", "x-b3-sampled", "x-b3-flags", "b3",
	"sw8",
	"end-user",
	"user-agent",
	"cookie", "authorization", "jwt",
}

func forwardHeaders(in http.Header) http.Header {
	out := http.Header{}
	for _, k := range propagated {
		if v := in.Values(k); len(v) > 0 {
			out[http.CanonicalHeaderKey(k)] = append([]string(nil), v...)
		}
	}
	return out
}
