// Package cluster is how drill gets its clusters: a Provider brings up (or connects
// to) the clusters a scenario names and hands the engine one Cluster each. The engine
// never knows which provider it runs on: kind, existing kubeconfig contexts, or the
// embedded local provider all present the same Cluster.
package cluster

import (
	"context"
	"net/http"

	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/meshdrill/drill/pkg/scenario"
)

// DataPlane says what carries the mesh's traffic; reports state it plainly.
type DataPlane string

const (
	// DataPlaneEnvoy is real Envoy sidecars and gateways (kind, existing clusters).
	DataPlaneEnvoy DataPlane = "envoy"
	// DataPlaneEmulated is drill's Envoy-compatible proxy configured by the real
	// istiod (the local provider).
	DataPlaneEmulated DataPlane = "emulated"
	// DataPlaneNone is no mesh at all: clusters without Istio (kind on images
	// built without a registry, which have no Istio images yet).
	DataPlaneNone DataPlane = "none"
)

// Cluster is one cluster of a drill, ready to use.
type Cluster struct {
	// Name is the scenario's name for the cluster (and Istio's cluster ID).
	Name string
	// Config, Kube and Dynamic reach its API server.
	Config  *rest.Config
	Kube    kubernetes.Interface
	Dynamic dynamic.Interface
	// Kubeconfig is the path of a kubeconfig file for it and Context the context in
	// that file, so that messages can tell a human the exact kubectl command to run.
	Kubeconfig string
	Context    string
	// Owned is true when drill created the cluster (kind, local) and may therefore
	// inject destructive faults without the user allowing the context explicitly.
	Owned     bool
	DataPlane DataPlane
	// Access reaches the cluster's ingress gateway and its pods' Envoy admin ports.
	Access Access
}

// Access is what differs between providers in reaching into a cluster: through a
// LoadBalancer address and port-forwarding on real clusters, directly on loopback
// on the local provider.
type Access interface {
	// Ingress returns the base URL (scheme://host:port) of the cluster's ingress
	// gateway, reachable from where drill runs.
	Ingress(ctx context.Context) (string, error)
	// EnvoyAdmin opens a way to a pod's Envoy admin port (15000). Close the returned
	// Admin when done (it may hold a port-forward).
	EnvoyAdmin(ctx context.Context, namespace, pod string) (*Admin, error)
}

// PodForwarder is an Access that also opens a way to any port of a pod: for
// requests that must reach a workload in a cluster whose ingress does not
// serve it (the warm-up of a backup cluster).
type PodForwarder interface {
	PodPort(ctx context.Context, namespace, pod string, port int) (*Admin, error)
}

// Admin is an open way to one port of a pod: Envoy's admin endpoint
// (EnvoyAdmin), or any port (PodForwarder).
type Admin struct {
	// URL is the base URL of the way, e.g. http://127.0.0.1:41234.
	URL string
	// Client is the HTTP client to use for it.
	Client *http.Client
	// Close releases what the way holds (a port-forward); nil when nothing is held.
	Close func()
}

// Provider brings clusters up and down.
type Provider interface {
	// Name is the provider's name: "local", "kind" or "existing".
	Name() string
	// DataPlane is what will carry the mesh's traffic in the clusters Up returns,
	// known before Up so that a run can say so from its first event.
	DataPlane() DataPlane
	// Up returns one ready Cluster per scenario cluster, in scenario order, with Istio
	// running (and Bookinfo, unless a cluster says install: false). On error nothing
	// that Up started is left running.
	Up(ctx context.Context, s *scenario.Scenario) ([]*Cluster, error)
	// Down tears down what Up created (nothing, for existing clusters). It is safe to
	// call after a failed or partial Up, and more than once.
	Down(ctx context.Context) error
}

// DataPlaneDetailer is a Provider that says more about its data plane than
// its kind: which images carried it. Reports print it next to the data plane.
type DataPlaneDetailer interface {
	DataPlaneDetail() string
}

// DataPlaneDetailOf is p's DataPlaneDetail, or "" when it gives none.
func DataPlaneDetailOf(p Provider) string {
	if d, ok := p.(DataPlaneDetailer); ok {
		return d.DataPlaneDetail()
	}
	return ""
}
