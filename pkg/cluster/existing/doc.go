// Package existing is the "existing" provider of drill: clusters that already
// run Istio, reached through kube contexts the user names
// (--context cluster1=ctx-a,cluster2=ctx-b). It is how drills go past one
// machine, to staging or production-like clusters.
//
// It installs nothing unless asked: Up checks that each context reaches an API
// server, that Istio runs there as the scenario needs (istiod available with
// the scenario's cluster name as its cluster ID, the ingress gateway where the
// load enters, east-west gateways when the clusters are on several networks)
// and that Bookinfo runs, and says what is missing. Its clusters are not
// Owned, so pkg/fault's Guard refuses destructive faults against any context
// the user did not allow (--allow-context, DRILL_ALLOW_CONTEXTS).
//
// Access, the way into a real cluster from where drill runs — the ingress
// gateway's LoadBalancer address and client-go port-forwards to a pod's Envoy
// admin port — lives here too; the kind provider uses it for its clusters.
package existing
