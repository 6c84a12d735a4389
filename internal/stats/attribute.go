package stats

import (
	"strconv"
	"strings"

	"github.com/meshdrill/drill/pkg/event"
)

// ClusterKind says what an Envoy cluster stands for in a drill.
type ClusterKind string

const (
	// KindLocal is a service under .svc.cluster.local: the service as the proxy's
	// own Kubernetes cluster names it. With drill's aggregate strategy its
	// endpoints are that cluster's; in a multi-primary mesh without it, Istio
	// merges the endpoints of every cluster into it, and only
	// istio_requests_total can tell which cluster answered.
	KindLocal ClusterKind = "local"
	// KindRemote is one cluster's backing service under the aggregate strategy's
	// per-cluster host <service>.<namespace>.svc.<cluster>.global.
	KindRemote ClusterKind = "remote"
	// KindFailover is a failover host <name>.<namespace>.global: the aggregate
	// cluster, which has no endpoints of its own. Envoy charges requests to the
	// member cluster whose host served them.
	KindFailover ClusterKind = "failover"
	// KindOther is any other host (a ServiceEntry, PassthroughCluster, ...).
	KindOther ClusterKind = "other"
)

// EnvoyCluster is an Istio Envoy cluster name taken apart.
type EnvoyCluster struct {
	Name      string
	Direction string // "outbound" or "inbound"
	Port      int
	Subset    string // DestinationRule subset, e.g. "v1"; empty for none
	Host      string // may be empty for inbound clusters
	// Service and Namespace are the Kubernetes service behind the host, for the
	// local, remote and failover kinds.
	Service   string
	Namespace string
	// KubeCluster is the Kubernetes cluster whose endpoints back the Envoy
	// cluster: localCluster for a local host, the named cluster for a remote one,
	// empty otherwise.
	KubeCluster string
	Kind        ClusterKind
}

// ServiceKey is "<service>.<namespace>", the key attribution maps use; empty
// when the host names no Kubernetes service.
func (c EnvoyCluster) ServiceKey() string {
	if c.Service == "" {
		return ""
	}
	return c.Service + "." + c.Namespace
}

// ParseClusterName takes apart an Istio Envoy cluster name,
// direction|port|subset|host (e.g. "outbound|9080|v1|reviews.default.svc.cluster.local"),
// or its SNI form outbound_.9080_.v1_.reviews.default.svc.cluster.local used by
// gateways (istio pilot/pkg/model/service.go, BuildSubsetKey and
// BuildDNSSrvSubsetKey). Hosts
// under .svc.cluster.local are attributed to localCluster, the Kubernetes cluster of
// the proxy. ok is false for names of other forms (xds-grpc, PassthroughCluster,
// BlackHoleCluster, ...).
func ParseClusterName(name, localCluster string) (c EnvoyCluster, ok bool) {
	c = EnvoyCluster{Name: name, Kind: KindOther}
	var parts []string
	switch {
	case strings.HasPrefix(name, "outbound|") || strings.HasPrefix(name, "inbound|"):
		parts = strings.SplitN(name, "|", 4)
	case strings.HasPrefix(name, "outbound_.") || strings.HasPrefix(name, "inbound_."):
		parts = strings.SplitN(name, "_.", 4)
	}
	if len(parts) != 4 {
		return c, false
	}
	port, err := strconv.Atoi(parts[1])
	if err != nil || port <= 0 || port > 65535 {
		return c, false
	}
	c.Direction, c.Port, c.Subset, c.Host = parts[0], port, parts[2], parts[3]
	c.Service, c.Namespace, c.KubeCluster, c.Kind = classifyHost(c.Host, localCluster)
	return c, true
}

// classifyHost reads a service host. The Kubernetes domain suffix is taken to be
// Istio's default, cluster.local.
func classifyHost(host, localCluster string) (svc, ns, kube string, kind ClusterKind) {
	if rest, ok := strings.CutSuffix(host, ".svc.cluster.local"); ok {
		if svc, ns, ok := strings.Cut(rest, "."); ok && !strings.Contains(ns, ".") {
			return svc, ns, localCluster, KindLocal
		}
		return "", "", "", KindOther
	}
	if rest, ok := strings.CutSuffix(host, ".global"); ok {
		labels := strings.SplitN(rest, ".", 4)
		switch {
		case len(labels) == 4 && labels[2] == "svc" && labels[3] != "":
			return labels[0], labels[1], labels[3], KindRemote
		case len(labels) == 2 && labels[0] != "" && labels[1] != "":
			return labels[0], labels[1], "", KindFailover
		}
	}
	return "", "", "", KindOther
}

// ServiceKey turns a destination service host as istio_requests_total names it
// into an attribution key: "reviews.default.svc.cluster.local" and
// "reviews.default.svc.cluster2.global" both give "reviews.default"; a failover
// host "reviews-failover.default.global" gives "reviews-failover.default"; any
// other host is its own key.
func ServiceKey(host string) string {
	if svc, ns, _, kind := classifyHost(host, ""); kind != KindOther {
		return svc + "." + ns
	}
	return host
}

// Counts are requests and upstream 5xx answers.
type Counts struct {
	Requests    int64 `json:"requests"`
	Upstream5xx int64 `json:"upstream5xx"`
}

// Source says which stats an attribution came from.
type Source string

const (
	// SourceIstio is istio_requests_total's destination_cluster label: the cluster
	// the answering workload's sidecar says it runs in.
	SourceIstio Source = "istio_requests_total"
	// SourceEnvoyCluster is the Envoy cluster the request went to, read with
	// ParseClusterName.
	SourceEnvoyCluster Source = "envoy_cluster"
)

// Attribution tells, for one Sample, which Kubernetes cluster served the
// upstream requests of one proxy, per service ("<service>.<namespace>").
type Attribution struct {
	// ByIstio maps service key → destination_cluster → requests, from the
	// Sample's Served. "unknown" is Istio's word for a peer it could not identify.
	ByIstio map[string]map[string]int64
	// ByEnvoyCluster maps service key → Kubernetes cluster → counts, from the
	// outbound Envoy clusters of local and remote kinds. The failover (aggregate)
	// cluster is left out: its requests are charged to its members.
	ByEnvoyCluster map[string]map[string]Counts
}

// Attribute reads both sources of a Sample of a proxy running in localCluster.
func Attribute(s event.Sample, localCluster string) *Attribution {
	a := &Attribution{
		ByIstio:        make(map[string]map[string]int64),
		ByEnvoyCluster: make(map[string]map[string]Counts),
	}
	for host, byCluster := range s.Served {
		key := ServiceKey(host)
		m := a.ByIstio[key]
		if m == nil {
			m = make(map[string]int64)
			a.ByIstio[key] = m
		}
		for cl, n := range byCluster {
			m[cl] += n
		}
	}
	for name, cd := range s.Clusters {
		ec, ok := ParseClusterName(name, localCluster)
		if !ok || ec.Direction != "outbound" || ec.KubeCluster == "" {
			continue
		}
		if cd.Requests == 0 && cd.Upstream5xx == 0 {
			continue
		}
		key := ec.ServiceKey()
		m := a.ByEnvoyCluster[key]
		if m == nil {
			m = make(map[string]Counts)
			a.ByEnvoyCluster[key] = m
		}
		c := m[ec.KubeCluster]
		c.Requests += cd.Requests
		c.Upstream5xx += cd.Upstream5xx
		m[ec.KubeCluster] = c
	}
	return a
}

// Served returns the requests for service (a service key, "reviews.default") by
// Kubernetes cluster, and where the answer came from. istio_requests_total is
// preferred when it saw the service: it knows the answering cluster even when one
// Envoy cluster holds endpoints of several. Without it the Envoy cluster names
// answer. A nil map means neither source saw the service in this Sample.
func (a *Attribution) Served(service string) (map[string]int64, Source) {
	if m := a.ByIstio[service]; len(m) > 0 {
		return m, SourceIstio
	}
	m := a.ByEnvoyCluster[service]
	if len(m) == 0 {
		return nil, SourceEnvoyCluster
	}
	out := make(map[string]int64, len(m))
	for cl, c := range m {
		out[cl] = c.Requests
	}
	return out, SourceEnvoyCluster
}
