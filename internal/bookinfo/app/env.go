package app

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
)

// Env is what a workload learns from where it runs.
type Env struct {
	// Cluster, Namespace and Pod say where the workload runs; reviews reports
	// Pod and Cluster in its answers as upstream's podname and clustername.
	Cluster   string
	Namespace string
	Pod       string
	// Outbound carries the workload's calls to other services; nil means
	// http.DefaultTransport.
	Outbound http.RoundTripper
	// Vars is the container's environment. The workloads read upstream's
	// variables: SERVICES_DOMAIN, DETAILS_HOSTNAME, REVIEWS_HOSTNAME and
	// RATINGS_HOSTNAME (where productpage and reviews send their calls).
	Vars map[string]string
	// Log receives one line per failed outbound call (default: discarded).
	Log *slog.Logger
}

func (e Env) outbound() http.RoundTripper {
	if e.Outbound == nil {
		return http.DefaultTransport
	}
	return e.Outbound
}

func (e Env) log() *slog.Logger {
	if e.Log == nil {
		return slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return e.Log
}

// serviceURL is how upstream's workloads name a service they call:
// http://<NAME_HOSTNAME or name><.SERVICES_DOMAIN>:9080.
func (e Env) serviceURL(name, hostVar string) string {
	host := name
	if h := e.Vars[hostVar]; h != "" {
		host = h
	}
	if d := e.Vars["SERVICES_DOMAIN"]; d != "" {
		host += "." + d
	}
	return "http://" + host + ":9080"
}

// Bookinfo's services and the versions this package runs.
var workloads = map[string][]string{
	"productpage": {"v1"},
	"details":     {"v1"},
	"reviews":     {"v1", "v2", "v3"},
	"ratings":     {"v1"},
}

// New returns the handler of version of service, running in env. It fails for
// a service or version this package does not run.
func New(service, version string, env Env) (http.Handler, error) {
	if !slices.Contains(workloads[service], version) {
		if _, ok := workloads[service]; !ok {
			return nil, fmt.Errorf("bookinfo app: no service %q (productpage, details, reviews, ratings)", service)
		}
		return nil, fmt.Errorf("bookinfo app: %s has no version %q drill runs (%v)", service, version, workloads[service])
	}
	var h http.Handler
	switch service {
	case "productpage":
		h = newProductpage(env)
	case "details":
		h = newDetails()
	case "reviews":
		h = newReviews(version, env)
	case "ratings":
		h = newRatings()
	}
	return attribute(h, env, service+"-"+version), nil
}
