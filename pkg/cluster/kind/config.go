package kind

import (
	"fmt"
	"net/netip"
	"strings"

	"sigs.k8s.io/kind/pkg/apis/config/v1alpha4"
	"sigs.k8s.io/yaml"

	"github.com/meshdrill/drill/pkg/scenario"
)

// MaxClusters is how many clusters one drill may create: each takes a pod and
// a service range of its own and a block of the kind network for MetalLB.
const MaxClusters = 20

// IngressNodePort is the NodePort of the ingress gateway's HTTP port in every
// cluster. Each control-plane node maps it to a port on the host's 127.0.0.1
// (kind's extraPortMappings), which is how the gateway is reached where the
// docker network is not routable from the host (Docker Desktop on macOS and
// Windows).
const IngressNodePort = 30080

// Labels Istio reads a node's locality from (istio.io docs:
// tasks/traffic-management/locality-load-balancing): region and zone are the
// Kubernetes well-known labels, subzone Istio's own.
const (
	labelRegion  = "topology.kubernetes.io/region"
	labelZone    = "topology.kubernetes.io/zone"
	labelSubzone = "topology.istio.io/subzone"
)

// Layout is where a cluster's addresses come from. Every cluster of a drill
// has ranges of its own, as in Istio's multicluster CI on kind
// (common/scripts/kind_provisioner.sh), so an address names one pod or service
// in the whole mesh and the clusters' routes never overlap.
type Layout struct {
	PodSubnet     netip.Prefix
	ServiceSubnet netip.Prefix
}

// ClusterLayout is the layout of the index-th cluster of a drill: pods in
// 10.(10+i).0.0/16 and services in 10.(100+i).0.0/16. Both stay clear of
// kind's defaults (10.244.0.0/16, 10.96.0.0/16) and of Docker's own networks
// (172.16.0.0/12).
func ClusterLayout(index int) (Layout, error) {
	if index < 0 || index >= MaxClusters {
		return Layout{}, fmt.Errorf("cluster #%d: a drill on kind has at most %d clusters", index+1, MaxClusters)
	}
	return Layout{
		PodSubnet:     netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(10 + index), 0, 0}), 16),
		ServiceSubnet: netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(100 + index), 0, 0}), 16),
	}, nil
}

// HostSettings is what the host the nodes run on asks of every cluster's
// configuration.
type HostSettings struct {
	// CgroupV1 is set when the Docker engine runs on cgroup v1. Kubelet 1.35 and
	// later refuse to start there unless their configuration says
	// failCgroupV1: false (Kubernetes KEP-5573; kubelet's failCgroupV1 field,
	// true by default since 1.35), and kind only warns about it.
	CgroupV1 bool
}

// cgroupV1Patch lets kubelet run on a cgroup v1 host: a kubeadm config patch
// that kind merges into every node's KubeletConfiguration.
const cgroupV1Patch = `kind: KubeletConfiguration
failCgroupV1: false
`

// Config is the kind configuration of the index-th cluster c of a drill: one
// node (control plane and worker at once, which keeps several clusters
// within a laptop's memory), the cluster's own pod and service ranges, node
// labels carrying the scenario's locality, and the host port mapping of the
// ingress gateway's NodePort; on a cgroup v1 host, the kubelet setting that
// lets it start. The node image is not set here: Create pins it.
func Config(c scenario.Cluster, index int, host HostSettings) (*v1alpha4.Cluster, error) {
	layout, err := ClusterLayout(index)
	if err != nil {
		return nil, err
	}
	labels, err := LocalityLabels(c.Locality)
	if err != nil {
		return nil, fmt.Errorf("cluster %s: %w", c.Name, err)
	}
	cfg := &v1alpha4.Cluster{
		TypeMeta: v1alpha4.TypeMeta{Kind: "Cluster", APIVersion: "kind.x-k8s.io/v1alpha4"},
		Nodes: []v1alpha4.Node{{
			Role:   v1alpha4.ControlPlaneRole,
			Labels: labels,
			ExtraPortMappings: []v1alpha4.PortMapping{{
				ContainerPort: IngressNodePort,
				// Unset: kind picks a free port on the host; drill reads it back
				// from Docker (HostPort), so clusters never collide on one.
				ListenAddress: "127.0.0.1",
				Protocol:      v1alpha4.PortMappingProtocolTCP,
			}},
		}},
		Networking: v1alpha4.Networking{
			IPFamily:      v1alpha4.IPv4Family,
			PodSubnet:     layout.PodSubnet.String(),
			ServiceSubnet: layout.ServiceSubnet.String(),
		},
	}
	if host.CgroupV1 {
		cfg.KubeadmConfigPatches = append(cfg.KubeadmConfigPatches, cgroupV1Patch)
	}
	return cfg, nil
}

// LocalityLabels turns a scenario locality, region[/zone[/subzone]], into the
// node labels Istio derives a workload's locality from.
func LocalityLabels(locality string) (map[string]string, error) {
	if locality == "" {
		return nil, nil
	}
	parts := strings.Split(locality, "/")
	if len(parts) > 3 {
		return nil, fmt.Errorf("locality %q: write region[/zone[/subzone]]", locality)
	}
	keys := []string{labelRegion, labelZone, labelSubzone}
	out := map[string]string{}
	for i, p := range parts {
		if p == "" {
			return nil, fmt.Errorf("locality %q: empty part", locality)
		}
		out[keys[i]] = p
	}
	return out, nil
}

// ConfigYAML renders a kind configuration as `kind create cluster --config`
// reads it, for logs, golden files and users who want to create the cluster
// by hand.
func ConfigYAML(cfg *v1alpha4.Cluster) ([]byte, error) {
	return yaml.Marshal(cfg)
}

// copyConfig deep-copies cfg: kind's Create fills in defaults on the config it
// is given, and a retry or a log line must see the config as drill built it.
func copyConfig(cfg *v1alpha4.Cluster) *v1alpha4.Cluster {
	b, err := yaml.Marshal(cfg)
	if err != nil {
		panic(fmt.Sprintf("encode kind config: %v", err))
	}
	out := &v1alpha4.Cluster{}
	if err := yaml.Unmarshal(b, out); err != nil {
		panic(fmt.Sprintf("decode kind config: %v", err))
	}
	return out
}
