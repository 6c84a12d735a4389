package envoyemu

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"google.golang.org/protobuf/types/known/structpb"
	"sigs.k8s.io/yaml"
)

// Kind says which role a proxy plays for istiod: Istio's node types.
type Kind string

const (
	// Sidecar is a pod's sidecar: outbound routes for every service, an
	// inbound listener for the pod's own ports.
	Sidecar Kind = "sidecar"
	// Router is a gateway: listeners from the Gateway objects whose selector
	// matches its labels.
	Router Kind = "router"
)

// IstioVersion is the proxy version the emulated proxy announces in its node
// metadata (ISTIO_VERSION). istiod gates a few features on it; drill's proxy
// claims the minor version of the istio.io/api module it is built against.
const IstioVersion = "1.31.0"

// Identity is who a proxy is to istiod: what Istio's agent puts in the xDS
// node it sends (istio pkg/model/proxy.go NodeMetadata; pilot-agent builds it
// from the pod's downward API).
type Identity struct {
	Kind Kind
	// Pod and Namespace name the pod the proxy runs in (for a gateway that
	// has no pod, a stable name of the gateway's choosing).
	Pod       string
	Namespace string
	// IP is the pod's address as the Kubernetes API knows it (10.A.B.C on
	// the local provider). istiod finds the pod's services by it.
	IP netip.Addr
	// Labels and Annotations are the pod's. The proxy.istio.io/config
	// annotation is read as the pod's ProxyConfig, and its proxyStatsMatcher
	// decides which stats the proxy records.
	Labels      map[string]string
	Annotations map[string]string
	// WorkloadName is the workload the pod belongs to (the Deployment's
	// name), reported as source_workload and destination_workload.
	WorkloadName   string
	ServiceAccount string
	// Cluster is Istio's cluster ID (CLUSTER_ID), Network its network
	// (NETWORK, empty on a flat network), MeshID the mesh (MESH_ID).
	Cluster string
	Network string
	MeshID  string
	// Node is the Kubernetes node the pod is bound to (NODE_NAME).
	Node string
	// Locality is the proxy's locality, region[/zone[/subzone]], sent as the
	// xDS node's locality. istiod takes a proxy's locality from its pod's node
	// when the proxy has service targets, and from the node it sent otherwise
	// (a gateway without a pod): without it istiod cannot order the gateway's
	// endpoints by locality.
	Locality string
	// TrustDomain is the SPIFFE trust domain of the mesh (default
	// cluster.local), for the principals istio_requests_total reports.
	TrustDomain string
}

func (id *Identity) validate() error {
	var missing []string
	if id.Kind != Sidecar && id.Kind != Router {
		return fmt.Errorf("proxy identity: kind %q is neither %q nor %q", id.Kind, Sidecar, Router)
	}
	if id.Pod == "" {
		missing = append(missing, "pod name")
	}
	if id.Namespace == "" {
		missing = append(missing, "namespace")
	}
	if !id.IP.IsValid() || !id.IP.Is4() {
		missing = append(missing, "IPv4 address")
	}
	if id.Cluster == "" {
		missing = append(missing, "cluster ID")
	}
	if len(missing) > 0 {
		return fmt.Errorf("proxy identity of %s/%s: missing %s", id.Namespace, id.Pod, strings.Join(missing, ", "))
	}
	return nil
}

// NodeID is the xDS node id Istio's agent sends:
// TYPE~IP~POD.NAMESPACE~NAMESPACE.svc.cluster.local (istio pilot/pkg/model
// context.go, ParseServiceNodeWithMetadata reads the four parts back).
func (id *Identity) NodeID() string {
	return fmt.Sprintf("%s~%s~%s.%s~%s.svc.cluster.local", id.Kind, id.IP, id.Pod, id.Namespace, id.Namespace)
}

func (id *Identity) trustDomain() string {
	if id.TrustDomain == "" {
		return "cluster.local"
	}
	return id.TrustDomain
}

// principal is the SPIFFE identity Istio would put in the proxy's
// certificate.
func (id *Identity) principal() string {
	sa := id.ServiceAccount
	if sa == "" {
		sa = "default"
	}
	return fmt.Sprintf("spiffe://%s/ns/%s/sa/%s", id.trustDomain(), id.Namespace, sa)
}

// proxyConfig is the part of the pod's proxy.istio.io/config annotation the
// emulated proxy reads (istio.io/api mesh/v1alpha1 ProxyConfig).
type proxyConfig struct {
	ProxyStatsMatcher *struct {
		InclusionPrefixes []string `json:"inclusionPrefixes,omitempty"`
		InclusionSuffixes []string `json:"inclusionSuffixes,omitempty"`
		InclusionRegexps  []string `json:"inclusionRegexps,omitempty"`
	} `json:"proxyStatsMatcher,omitempty"`
	raw map[string]any
}

// Pod annotations Istio's agent reads.
const (
	annotationProxyConfig            = "proxy.istio.io/config"
	annotationStatsInclusionPrefixes = "sidecar.istio.io/statsInclusionPrefixes"
	annotationStatsInclusionSuffixes = "sidecar.istio.io/statsInclusionSuffixes"
	annotationStatsInclusionRegexps  = "sidecar.istio.io/statsInclusionRegexps"
)

// parseProxyConfig reads the pod's proxy.istio.io/config annotation. A bad
// annotation is an error: Istio's injector rejects the pod.
func (id *Identity) parseProxyConfig() (*proxyConfig, error) {
	pc := &proxyConfig{}
	v := id.Annotations[annotationProxyConfig]
	if strings.TrimSpace(v) == "" {
		return pc, nil
	}
	js, err := yaml.YAMLToJSON([]byte(v))
	if err != nil {
		return nil, fmt.Errorf("pod %s/%s: annotation %s: %w", id.Namespace, id.Pod, annotationProxyConfig, err)
	}
	if err := json.Unmarshal(js, pc); err != nil {
		return nil, fmt.Errorf("pod %s/%s: annotation %s is not a ProxyConfig: %w", id.Namespace, id.Pod, annotationProxyConfig, err)
	}
	if err := json.Unmarshal(js, &pc.raw); err != nil {
		return nil, fmt.Errorf("pod %s/%s: annotation %s is not a mapping: %w", id.Namespace, id.Pod, annotationProxyConfig, err)
	}
	return pc, nil
}

// node is the xDS node the proxy sends with its first request.
func (id *Identity) node() (*corev3.Node, error) {
	pc, err := id.parseProxyConfig()
	if err != nil {
		return nil, err
	}
	meta := map[string]any{
		"CLUSTER_ID":        id.Cluster,
		"NAMESPACE":         id.Namespace,
		"NAME":              id.Pod,
		"ISTIO_VERSION":     IstioVersion,
		"INTERCEPTION_MODE": "REDIRECT",
		"INSTANCE_IPS":      id.IP.String(),
		"MESH_ID":           id.MeshID,
		"SERVICE_ACCOUNT":   id.ServiceAccount,
		"WORKLOAD_NAME":     id.WorkloadName,
		"ENVOY_STATUS_PORT": 15021,
		// The merged Prometheus port of an Istio sidecar; the emulated proxy
		// serves /stats/prometheus on its admin port as well.
		"ENVOY_PROMETHEUS_PORT": 15090,
	}
	if id.Network != "" {
		meta["NETWORK"] = id.Network
	}
	if id.Node != "" {
		meta["NODE_NAME"] = id.Node
	}
	if id.WorkloadName != "" {
		meta["OWNER"] = fmt.Sprintf("kubernetes://apis/apps/v1/namespaces/%s/deployments/%s", id.Namespace, id.WorkloadName)
	}
	if len(id.Labels) > 0 {
		meta["LABELS"] = stringMap(id.Labels)
	}
	if len(id.Annotations) > 0 {
		meta["ANNOTATIONS"] = stringMap(id.Annotations)
	}
	if id.Kind == Sidecar {
		meta["APP_CONTAINERS"] = id.WorkloadName
	}
	if len(pc.raw) > 0 {
		meta["PROXY_CONFIG"] = pc.raw
	}
	st, err := structpb.NewStruct(meta)
	if err != nil {
		return nil, fmt.Errorf("proxy %s: node metadata: %w", id.NodeID(), err)
	}
	return &corev3.Node{
		Id:            id.NodeID(),
		Cluster:       id.serviceCluster(),
		Metadata:      st,
		UserAgentName: "envoy",
		Locality:      id.locality(),
	}, nil
}

// locality is Locality as Envoy's node locality.
func (id *Identity) locality() *corev3.Locality {
	parts := strings.SplitN(id.Locality, "/", 3)
	l := &corev3.Locality{Region: parts[0]}
	if len(parts) > 1 {
		l.Zone = parts[1]
	}
	if len(parts) > 2 {
		l.SubZone = parts[2]
	}
	return l
}

// serviceCluster is the node's "cluster" field as Istio's agent fills it:
// the canonical service name and namespace.
func (id *Identity) serviceCluster() string {
	app := id.Labels["service.istio.io/canonical-name"]
	if app == "" {
		app = id.Labels["app.kubernetes.io/name"]
	}
	if app == "" {
		app = id.Labels["app"]
	}
	if app == "" {
		app = id.WorkloadName
	}
	if app == "" {
		app = "istio-proxy"
	}
	return app + "." + id.Namespace
}

// canonicalService and canonicalRevision are Istio's canonical service labels
// with their defaults (istio pkg/config/labels canonical.go).
func (id *Identity) canonicalService() string {
	for _, k := range []string{"service.istio.io/canonical-name", "app.kubernetes.io/name", "app"} {
		if v := id.Labels[k]; v != "" {
			return v
		}
	}
	if id.WorkloadName != "" {
		return id.WorkloadName
	}
	return "unknown"
}

func (id *Identity) canonicalRevision() string {
	for _, k := range []string{"service.istio.io/canonical-revision", "app.kubernetes.io/version", "version"} {
		if v := id.Labels[k]; v != "" {
			return v
		}
	}
	return "latest"
}

func stringMap(m map[string]string) map[string]any {
	out := make(map[string]any, len(m))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		out[k] = m[k]
	}
	return out
}
