package localcluster

import (
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"time"
)

// Option configures StartControlPlane and StartClusters.
type Option func(*config)

type config struct {
	runDir       string
	binDir       string
	istiod       bool
	ca           *MeshCA
	serviceCIDR  netip.Prefix
	startTimeout time.Duration
	stopTimeout  time.Duration
	log          *slog.Logger
	controllers  []string
	trustDomain  string
	meshID       string
	network      string
	// noDiscovery leaves the istiods of a Mesh unwired: no remote secrets.
	noDiscovery bool
}

// DefaultControllers are the kube-controller-manager controllers a local
// cluster runs: what Deployments, Services and namespaces need to behave as
// they do on a real cluster. The node lifecycle controllers are left out
// because the emulated node has no kubelet heartbeats to judge.
var DefaultControllers = []string{
	"deployment-controller",
	"replicaset-controller",
	"statefulset-controller",
	"daemonset-controller",
	"endpoints-controller",
	"endpointslice-controller",
	"endpointslice-mirroring-controller",
	"namespace-controller",
	"garbage-collector-controller",
	"pod-garbage-collector-controller",
	"serviceaccount-controller",
	"serviceaccount-token-controller",
	"root-ca-certificate-publisher-controller",
	"disruption-controller",
	"service-cidr-controller",
}

func defaultConfig() config {
	return config{
		istiod:       true,
		serviceCIDR:  netip.MustParsePrefix("10.96.0.0/16"),
		startTimeout: 2 * time.Minute,
		stopTimeout:  15 * time.Second,
		log:          slog.New(slog.NewTextHandler(io.Discard, nil)),
		controllers:  DefaultControllers,
		trustDomain:  "cluster.local",
		meshID:       "drill",
	}
}

// WithRunDir puts the run's files (one subdirectory per cluster, plus the mesh
// CA) under dir instead of a new temporary directory. The directory is kept
// after Stop so logs can be read.
func WithRunDir(dir string) Option { return func(c *config) { c.runDir = dir } }

// WithBinDir looks for kube-apiserver, kube-controller-manager,
// pilot-discovery, istio-crds.yaml (and optionally etcd) in dir instead of the
// default (DRILL_BIN_DIR, else bin/ of the drill checkout).
func WithBinDir(dir string) Option { return func(c *config) { c.binDir = dir } }

// WithoutIstiod starts only the Kubernetes control plane: no Istio CRDs, no
// istio-system, no istiod. Tests that only need the Kubernetes API start
// several seconds faster.
func WithoutIstiod() Option { return func(c *config) { c.istiod = false } }

// WithMeshCA makes the cluster's istiod sign workload certificates with an
// intermediate of ca, so clusters started separately share one trust root.
// StartClusters sets it for the clusters it starts.
func WithMeshCA(ca *MeshCA) Option { return func(c *config) { c.ca = ca } }

// WithServiceCIDR sets the cluster's service IP range (default 10.96.0.0/16).
// StartClusters gives each cluster its own range and ignores this option.
func WithServiceCIDR(cidr netip.Prefix) Option { return func(c *config) { c.serviceCIDR = cidr } }

// WithStartTimeout bounds how long each process may take to become ready
// (default 2 minutes: a cold start on a small machine runs all four at once).
func WithStartTimeout(d time.Duration) Option { return func(c *config) { c.startTimeout = d } }

// WithStopTimeout bounds how long a process may take to exit after SIGTERM
// before it is killed (default 15 s).
func WithStopTimeout(d time.Duration) Option { return func(c *config) { c.stopTimeout = d } }

// WithLogger sends progress messages to l (default: discarded).
func WithLogger(l *slog.Logger) Option { return func(c *config) { c.log = l } }

// WithControllers replaces DefaultControllers, e.g. to add
// "node-lifecycle-controller" when the node agent keeps node leases fresh.
func WithControllers(names ...string) Option {
	return func(c *config) { c.controllers = append([]string(nil), names...) }
}

// WithTrustDomain sets the mesh's SPIFFE trust domain (default cluster.local,
// Istio's default).
func WithTrustDomain(td string) Option { return func(c *config) { c.trustDomain = td } }

// WithMeshID sets meshConfig.defaultConfig.meshId (default "drill").
func WithMeshID(id string) Option { return func(c *config) { c.meshID = id } }

// WithNetwork labels the cluster's istio-system namespace with
// topology.istio.io/network, Istio's way of saying which network a cluster is
// on. Unset (the default) means one flat network, which is what local
// clusters are: every pod address is on the loopback interface.
func WithNetwork(name string) Option { return func(c *config) { c.network = name } }

func (c *config) validate() error {
	if !c.serviceCIDR.IsValid() || !c.serviceCIDR.Addr().Is4() || c.serviceCIDR.Bits() > 28 {
		return fmt.Errorf("service CIDR %s: want an IPv4 range of at least 16 addresses", c.serviceCIDR)
	}
	if c.startTimeout <= 0 || c.stopTimeout <= 0 {
		return fmt.Errorf("start and stop timeouts must be positive")
	}
	if len(c.controllers) == 0 {
		return fmt.Errorf("no kube-controller-manager controllers given")
	}
	return nil
}

// WithoutEndpointDiscovery starts the clusters of a Mesh without remote secrets:
// each istiod sees only its own cluster's endpoints, as in separate meshes under one
// root of trust that only the policy drill applies joins (Service Mesh Hub's
// FailoverService over replicated control planes, the aggregate strategy's world).
// Istio's locality failover needs the discovery, so leave it on for that strategy.
func WithoutEndpointDiscovery() Option { return func(c *config) { c.noDiscovery = true } }
