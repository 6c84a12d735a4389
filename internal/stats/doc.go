// Package stats reads what an Envoy sidecar saw of its upstreams.
//
// drill watches failover from inside the mesh: the client's sidecar (productpage's,
// in the seed drill) counts every request it sent to each Envoy cluster, by response
// code, and Istio's stats plugin counts requests by the Kubernetes cluster of the
// workload that answered them. This package
//
//   - parses an Envoy admin stats page (Prometheus text from /stats/prometheus, or
//     JSON from /stats?format=json as a fallback) into a compact Snapshot holding
//     only the stats drill reads (parse.go, jsonformat.go, snapshot.go);
//   - turns two consecutive Snapshots into per-cluster deltas, surviving counter
//     resets (delta.go);
//   - tells which Kubernetes cluster served a request, from istio_requests_total's
//     destination_cluster label or from Istio's Envoy cluster names (attribute.go);
//   - scrapes one Envoy on an interval and publishes the deltas as events on the
//     run's event bus (scrape.go);
//   - detects the sidecar that hides its outbound cluster stats, and names the
//     annotation that makes Istio expose them (inclusion.go).
//
// The engine starts one Scraper per observed workload (scenario `observe.envoy`),
// handing it the admin URL its cluster provider opened (a port-forward on kind and
// existing clusters, a loopback address on the local provider). Assertions and the
// report read the published stats.sample events, never the Scraper itself.
package stats
