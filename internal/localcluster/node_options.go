package localcluster

import (
	"io"
	"log/slog"
	"maps"
	"net/netip"
	"strings"
	"time"
)

// NodeOption configures StartNode.
type NodeOption func(*nodeConfig)

type nodeConfig struct {
	name           string
	podCIDR        netip.Prefix
	labels         map[string]string
	log            *slog.Logger
	sidecars       SidecarFactory
	programs       []ProgramResolver
	backoff        time.Duration
	maxBackoff     time.Duration
	leaseDuration  time.Duration
	leaseRenew     time.Duration
	statusInterval time.Duration
	workers        int
}

func defaultNodeConfig() nodeConfig {
	return nodeConfig{
		labels: map[string]string{},
		log:    slog.New(slog.NewTextHandler(io.Discard, nil)),
		// The kubelet's: crash-loop back-off from 10 s doubling to 5 min; a
		// 40 s node lease renewed every quarter of it (10 s).
		backoff:       10 * time.Second,
		maxBackoff:    5 * time.Minute,
		leaseDuration: 40 * time.Second,
		leaseRenew:    10 * time.Second,
		// The kubelet reports an unchanged node status every 5 minutes
		// (nodeStatusReportFrequency); once a minute keeps the Ready
		// condition's heartbeat recent for anyone reading it.
		statusInterval: time.Minute,
		workers:        4,
	}
}

// WithNodeName names the Node (default <cluster>-worker, as kind names its
// worker nodes).
func WithNodeName(name string) NodeOption { return func(c *nodeConfig) { c.name = name } }

// WithPodCIDR replaces the node's pod range (default PodCIDRFor(cluster index)).
func WithPodCIDR(p netip.Prefix) NodeOption { return func(c *nodeConfig) { c.podCIDR = p } }

// WithNodeLabels adds labels to the Node.
func WithNodeLabels(labels map[string]string) NodeOption {
	return func(c *nodeConfig) { maps.Copy(c.labels, labels) }
}

// WithLocality labels the Node with a locality, region[/zone[/subzone]]:
// topology.kubernetes.io/region and zone, and Istio's
// topology.istio.io/subzone. istiod reads a pod's locality from its node's
// labels, so locality-aware load balancing and failover see it.
func WithLocality(locality string) NodeOption {
	return func(c *nodeConfig) {
		parts := strings.SplitN(locality, "/", 3)
		keys := []string{"topology.kubernetes.io/region", "topology.kubernetes.io/zone", "topology.istio.io/subzone"}
		for i, p := range parts {
			if p != "" {
				c.labels[keys[i]] = p
			}
		}
	}
}

// WithNodeLogger sends the node's log (pods started, stopped, restarted;
// status updates that failed) to l (default: discarded).
func WithNodeLogger(l *slog.Logger) NodeOption { return func(c *nodeConfig) { c.log = l } }

// WithSidecars makes the node start a sidecar from f for every pod Istio
// would inject.
func WithSidecars(f SidecarFactory) NodeOption { return func(c *nodeConfig) { c.sidecars = f } }

// WithPrograms lets the node run more images: r is asked first, then the
// built-in Bookinfo programs. Resolvers added later are asked first.
func WithPrograms(r ProgramResolver) NodeOption {
	return func(c *nodeConfig) { c.programs = append([]ProgramResolver{r}, c.programs...) }
}

// WithRestartBackoff sets the restart back-off of crashed containers (default
// the kubelet's: 10 s, doubling to 5 min).
func WithRestartBackoff(initial, maxBackoff time.Duration) NodeOption {
	return func(c *nodeConfig) { c.backoff, c.maxBackoff = initial, maxBackoff }
}

// WithHeartbeat sets the node lease's duration and renew interval and the
// node status heartbeat (defaults: the kubelet's 40 s lease renewed every
// 10 s; the status once a minute).
func WithHeartbeat(leaseDuration, leaseRenew, status time.Duration) NodeOption {
	return func(c *nodeConfig) {
		c.leaseDuration, c.leaseRenew, c.statusInterval = leaseDuration, leaseRenew, status
	}
}
