// Package app is Bookinfo's four services written in Go with the HTTP
// interface and behaviour of Istio's sample (samples/bookinfo/src): the same
// paths, JSON shapes, error messages, timeouts and retries, so that a drill sees
// the same answers on drill's local provider as on a cluster running the
// upstream images.
//
//   - productpage v1 calls details and then reviews, renders the product page,
//     and degrades as upstream does: when reviews fails (twice, 3 s each) the
//     page still answers 200 with "Sorry, product reviews are currently
//     unavailable for this book."; likewise for details.
//   - details v1 answers the book's details.
//   - reviews v1 answers two reviews without ratings; v2 and v3 ask ratings for
//     the stars (black, 10 s timeout; red, 2.5 s timeout) and answer the reviews
//     with a rating error when ratings fails.
//   - ratings v1 answers 5 and 4 stars, and keeps ratings POSTed to it in memory.
//
// New returns the http.Handler of a service's version. Where a workload calls
// another service it does so through Env.Outbound, so whoever runs it decides
// how calls travel: the emulated node's kube-proxy-like transport, or the
// emulated Istio sidecar. Every response carries headers naming the cluster,
// pod and workload that served it (HeaderCluster, HeaderPod, HeaderWorkload).
package app
