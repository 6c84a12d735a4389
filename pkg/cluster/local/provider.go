package local

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strconv"
	"sync"
	"syscall"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/spf13/pflag"

	"github.com/meshdrill/drill/internal/bookinfo"
	"github.com/meshdrill/drill/internal/envoyemu"
	"github.com/meshdrill/drill/internal/localcluster"
	"github.com/meshdrill/drill/pkg/cluster"
	"github.com/meshdrill/drill/pkg/cluster/local/internal/sidecar"
	"github.com/meshdrill/drill/pkg/fault"
	"github.com/meshdrill/drill/pkg/scenario"
	"github.com/meshdrill/drill/pkg/translate"
)

// Name is the provider's name on the command line and in reports.
const Name = "local"

// gatewayAddr picks an address for a gateway of cluster i in the part of its pod
// range the node keeps back for what runs beside the pods (local.ReservedRange). As
// for pods, it is the address the API and istiod see; the gateway listens on its
// loopback twin, which other drills on the same machine may hold — start retries
// with another address then.
func gatewayAddr(i int, rng *rand.Rand) (netip.Addr, error) {
	cidr, err := localcluster.PodCIDRFor(i)
	if err != nil {
		return netip.Addr{}, err
	}
	r := localcluster.ReservedRange(cidr)
	if !r.IsValid() {
		return netip.Addr{}, fmt.Errorf("pod range %s keeps no addresses for gateways", cidr)
	}
	base := r.Addr().As4()
	size := uint32(1) << (32 - r.Bits())
	n := uint32(1) + rng.Uint32N(size-2) // neither the network nor the broadcast address
	v := uint32(base[0])<<24 | uint32(base[1])<<16 | uint32(base[2])<<8 | uint32(base[3])
	v += n
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}), nil
}

// Option configures the provider.
type Option func(*Provider)

// WithRunDir sets where the clusters keep their data, certificates, logs and
// kubeconfigs. Default: a new directory under the system's temporary directory.
func WithRunDir(dir string) Option { return func(p *Provider) { p.runDir = dir } }

// WithBinDir sets where the control-plane binaries are. Default: bin/ of the
// checkout, or $DRILL_BIN_DIR.
func WithBinDir(dir string) Option { return func(p *Provider) { p.binDir = dir } }

// WithLogger sets the logger.
func WithLogger(l *slog.Logger) Option { return func(p *Provider) { p.log = l } }

// WithStartTimeout bounds the start of each control plane and the wait for Bookinfo.
func WithStartTimeout(d time.Duration) Option { return func(p *Provider) { p.startTimeout = d } }

// Provider is the local provider.
type Provider struct {
	runDir       string
	binDir       string
	log          *slog.Logger
	startTimeout time.Duration

	mu       sync.Mutex
	mesh     *localcluster.Mesh
	nodes    []*localcluster.Node
	gateways []*envoyemu.Proxy
	remotes  map[string]translate.Endpoint
	ownDir   bool
}

// New returns the local provider.
func New(opts ...Option) *Provider {
	p := &Provider{log: slog.Default(), startTimeout: 3 * time.Minute, remotes: map[string]translate.Endpoint{}}
	for _, o := range opts {
		o(p)
	}
	return p
}

// Name implements cluster.Provider.
func (p *Provider) Name() string { return Name }

// Registration is the local provider for a command line; it has no flags of its own.
func Registration() cluster.Registration {
	return cluster.Registration{Name: Name, AddFlags: func(*pflag.FlagSet) cluster.Factory {
		return func(c cluster.Common) (cluster.Provider, error) { return New(WithLogger(c.Logger)), nil }
	}}
}

// DataPlane is drill's Envoy emulation: the local provider has no Envoy to run.
func (p *Provider) DataPlane() cluster.DataPlane { return cluster.DataPlaneEmulated }

// Remotes is where each cluster's east-west gateway takes the other clusters'
// traffic, for the aggregate strategy's per-cluster ServiceEntries.
func (p *Provider) Remotes() map[string]translate.Endpoint {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make(map[string]translate.Endpoint, len(p.remotes))
	for k, v := range p.remotes {
		out[k] = v
	}
	return out
}

// Up implements cluster.Provider: it starts a control plane per cluster (in
// parallel), a node with sidecars, the gateways and Bookinfo, and waits until
// Bookinfo is available and the gateways are programmed.
func (p *Provider) Up(ctx context.Context, s *scenario.Scenario) (_ []*cluster.Cluster, err error) {
	defer func() {
		if err != nil {
			// Nothing Up started is left running after a failure.
			dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
			_ = p.Down(dctx)
			cancel()
		}
	}()
	if p.runDir == "" {
		dir, err := os.MkdirTemp("", "drill-local-")
		if err != nil {
			return nil, err
		}
		p.runDir, p.ownDir = dir, true
	}
	names := make([]string, len(s.Spec.Clusters))
	for i, c := range s.Spec.Clusters {
		names[i] = c.Name
	}
	opts := []localcluster.Option{localcluster.WithRunDir(p.runDir), localcluster.WithLogger(p.log), localcluster.WithStartTimeout(p.startTimeout)}
	if p.binDir != "" {
		opts = append(opts, localcluster.WithBinDir(p.binDir))
	}
	if !needsDiscovery(s) {
		opts = append(opts, localcluster.WithoutEndpointDiscovery())
	}
	mesh, err := localcluster.StartClusters(ctx, names, opts...)
	p.mu.Lock()
	p.mesh = mesh
	p.mu.Unlock()
	if err != nil {
		return nil, err
	}

	observed := observedWorkloads(s)
	var out []*cluster.Cluster
	sets := make([]*bookinfo.Set, len(s.Spec.Clusters))
	for i, c := range s.Spec.Clusters {
		cc, set, err := p.upCluster(ctx, s, i, c, mesh.Cluster(c.Name), observed[c.Name])
		if err != nil {
			return nil, fmt.Errorf("cluster %s: %w", c.Name, err)
		}
		out = append(out, cc)
		sets[i] = set
	}
	// Available Deployments are not yet reachable ones: wait for their endpoints too.
	for i, c := range s.Spec.Clusters {
		if sets[i] == nil {
			continue
		}
		if err := bookinfo.WaitAvailable(ctx, out[i].Kube, s.Spec.Namespace, sets[i].DeploymentNames(), p.startTimeout); err != nil {
			return nil, fmt.Errorf("cluster %s: %w", c.Name, err)
		}
		if err := bookinfo.WaitServing(ctx, out[i].Kube, s.Spec.Namespace, sets[i].ServingEndpoints(), p.startTimeout); err != nil {
			return nil, fmt.Errorf("cluster %s: %w", c.Name, err)
		}
	}
	p.mu.Lock()
	gws := append([]*envoyemu.Proxy(nil), p.gateways...)
	p.mu.Unlock()
	for _, gw := range gws {
		rctx, cancel := context.WithTimeout(ctx, p.startTimeout)
		err := gw.WaitReady(rctx)
		cancel()
		if err != nil {
			return nil, fmt.Errorf("gateway %s of cluster %s: %w", gw.Identity().Pod, gw.Identity().Cluster, err)
		}
	}
	return out, nil
}

func (p *Provider) upCluster(ctx context.Context, s *scenario.Scenario, i int, c scenario.Cluster, cp *localcluster.ControlPlane, observed []string) (*cluster.Cluster, *bookinfo.Set, error) {
	cfg := cp.RESTConfig()
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, nil, err
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, nil, err
	}
	log := p.log.With("cluster", c.Name)
	// Mutual TLS between the proxies, as Istio's default: every proxy's
	// certificate comes from its cluster's istiod CA.
	ca := sidecar.CA{Addr: cp.IstiodCAAddr(), RootPEM: cp.MeshRootPEM(), Cluster: c.Name, Kube: kube}
	sidecars := sidecar.New(cp.IstiodGRPCAddr(), sidecar.WithLogger(log), sidecar.WithCA(ca))
	node, err := localcluster.StartNode(ctx, c.Name, i, kube, localcluster.WithSidecars(sidecars), localcluster.WithLocality(c.Locality), localcluster.WithNodeLogger(log))
	if err != nil {
		return nil, nil, fmt.Errorf("start the node: %w", err)
	}
	p.mu.Lock()
	p.nodes = append(p.nodes, node)
	p.mu.Unlock()

	// Every cluster takes the others' traffic through its east-west gateway, as
	// Istio's multi-network multicluster setup does.
	ew, err := p.startGateway(ctx, cp, ca, i, c.Name, c.Locality, "istio-eastwestgateway", envoyemu.EastWestGatewayLabel, log)
	if err != nil {
		return nil, nil, err
	}
	if err := applyGateway(ctx, dyn, envoyemu.CrossNetworkGateway()); err != nil {
		return nil, nil, err
	}
	p.mu.Lock()
	p.remotes[c.Name] = translate.Endpoint{Address: ew.Identity().IP.String(), Port: envoyemu.EastWestPort}
	p.mu.Unlock()

	var ingress *envoyemu.Proxy
	if c.Ingress {
		ingress, err = p.startGateway(ctx, cp, ca, i, c.Name, c.Locality, "istio-ingressgateway", envoyemu.IngressGatewayLabel, log)
		if err != nil {
			return nil, nil, err
		}
	}
	var set *bookinfo.Set
	if *c.Bookinfo.Install {
		bopts := []bookinfo.Option{bookinfo.WithObserved(observed...)}
		if c.Ingress {
			bopts = append(bopts, bookinfo.WithIngress())
		}
		set, err = bookinfo.Manifests(*c.Bookinfo, s.Spec.Namespace, bopts...)
		if err != nil {
			return nil, nil, err
		}
		injectLabels(set)
		if err := bookinfo.Apply(ctx, c.Name, kube, dyn, set, bookinfo.WithoutWait(), bookinfo.WithLogger(log)); err != nil {
			return nil, nil, err
		}
	}
	return &cluster.Cluster{
		Name:       c.Name,
		Config:     cfg,
		Kube:       kube,
		Dynamic:    dyn,
		Kubeconfig: cp.Kubeconfig(),
		Context:    "",
		Owned:      true,
		DataPlane:  p.DataPlane(),
		Access:     &access{kube: kube, ingress: ingress, eastWest: ew, cp: cp, podCIDR: node.PodCIDR()},
	}, set, nil
}

func (p *Provider) startGateway(ctx context.Context, cp *localcluster.ControlPlane, ca sidecar.CA, i int, cluster, locality, name, role string, log *slog.Logger) (*envoyemu.Proxy, error) {
	src, err := ca.GatewaySource(ctx, name, log.With("gateway", name))
	if err != nil {
		return nil, err
	}
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), uint64(os.Getpid())))
	var lastErr error
	for range 20 {
		addr, err := gatewayAddr(i, rng)
		if err != nil {
			return nil, err
		}
		id := envoyemu.GatewayIdentity(cluster, name, role, addr)
		// The gateway has no pod, so no node for istiod to read its
		// locality from: it says its cluster's, as the node's labels would.
		id.Locality = locality
		gw, err := envoyemu.NewGateway(id, cp.IstiodGRPCAddr(), envoyemu.WithLogger(log.With("gateway", name)), envoyemu.WithSecrets(src))
		if err != nil {
			return nil, err
		}
		if err := gw.Start(ctx); err != nil {
			if errors.Is(err, syscall.EADDRINUSE) {
				lastErr = err
				continue
			}
			return nil, fmt.Errorf("start gateway %s: %w", name, err)
		}
		p.mu.Lock()
		p.gateways = append(p.gateways, gw)
		p.mu.Unlock()
		return gw, nil
	}
	return nil, fmt.Errorf("start gateway %s: every address tried was taken: %w", name, lastErr)
}

// Down implements cluster.Provider: gateways, then nodes (so workloads stop before
// their API server), then the control planes. Safe to call more than once.
func (p *Provider) Down(ctx context.Context) error {
	p.mu.Lock()
	gws, nodes, mesh := p.gateways, p.nodes, p.mesh
	p.gateways, p.nodes, p.mesh = nil, nil, nil
	p.mu.Unlock()
	var errs []error
	for _, gw := range gws {
		if err := gw.Stop(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	for _, n := range nodes {
		if err := n.Stop(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	if mesh != nil {
		if err := mesh.Stop(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	if p.ownDir && len(errs) == 0 {
		_ = os.RemoveAll(p.runDir)
	}
	return errors.Join(errs...)
}

// RunDir is where the clusters keep their files (kubeconfigs under it).
func (p *Provider) RunDir() string { return p.runDir }

// needsDiscovery says whether the istiods must see each other's endpoints: Istio's
// locality failover works on one host whose endpoints are merged across clusters.
// The aggregate strategy joins the clusters itself, through the east-west gateways and
// the ServiceEntries it applies; without discovery the clusters are separate meshes
// under one root of trust, as in the Service Mesh Hub setup the strategy comes from,
// so a drill whose policy does not join them sees traffic stay home.
func needsDiscovery(s *scenario.Scenario) bool {
	if s.Spec.Mesh.Strategy == scenario.StrategyLocality {
		return true
	}
	for _, st := range s.Spec.Steps {
		if st.Apply != nil && st.Apply.Mesh != nil && st.Apply.Mesh.Strategy == scenario.StrategyLocality {
			return true
		}
	}
	return false
}

// observedWorkloads maps each cluster to the workloads whose sidecars drill scrapes:
// their pods need the stats-inclusion annotation, as on a real cluster.
func observedWorkloads(s *scenario.Scenario) map[string][]string {
	out := map[string][]string{}
	for _, e := range s.Spec.Observe.Envoy {
		out[e.Cluster] = append(out[e.Cluster], e.Workload)
	}
	return out
}

// injectLabels adds to the pod templates the labels Istio's sidecar injector adds
// to the pods it injects; istiod reads security.istio.io/tlsMode to know an
// endpoint takes Istio mTLS (and sends an AUTO_PASSTHROUGH gateway only those).
func injectLabels(set *bookinfo.Set) {
	for _, d := range set.Deployments {
		l := d.Spec.Template.Labels
		l["security.istio.io/tlsMode"] = "istio"
		l["service.istio.io/canonical-name"] = l["app"]
		l["service.istio.io/canonical-revision"] = l["version"]
	}
}

// applyGateway server-side applies an Istio Gateway, rendered as Bookinfo's own
// Gateway is.
func applyGateway(ctx context.Context, dyn dynamic.Interface, gw bookinfo.Object) error {
	u, err := bookinfo.ToUnstructured(gw)
	if err != nil {
		return err
	}
	gvr, err := bookinfo.Resource(gw)
	if err != nil {
		return err
	}
	_, err = dyn.Resource(gvr).Namespace(u.GetNamespace()).Apply(ctx, u.GetName(), u, metav1.ApplyOptions{FieldManager: "drill", Force: true})
	if err != nil {
		return fmt.Errorf("apply Gateway %s/%s: %w", u.GetNamespace(), u.GetName(), err)
	}
	return nil
}

// access reaches a local cluster's gateways and pods on their loopback twins.
type access struct {
	kube     kubernetes.Interface
	ingress  *envoyemu.Proxy
	eastWest *envoyemu.Proxy
	cp       *localcluster.ControlPlane
	podCIDR  netip.Prefix // 10.A.0.0/16: pods and gateways
}

// NetworkRanges is where the cluster's pods and gateways live on this host:
// the loopback twin of its pod range, 127.A.0.0/16 (fault.Network). Its
// proxies and workloads open their connections from their own twins, so a
// partition's rules match them by source as well as by destination.
func (a *access) NetworkRanges() []netip.Prefix {
	twin, err := envoyemu.LoopbackTwin(a.podCIDR.Addr())
	if err != nil {
		return nil
	}
	return []netip.Prefix{netip.PrefixFrom(twin, a.podCIDR.Bits())}
}

// PacketFilters is the host's own netfilter, which every local cluster
// shares: partitioning them needs iptables and the right to change it
// (root, or CAP_NET_ADMIN).
func (a *access) PacketFilters() []fault.PacketFilter {
	return []fault.PacketFilter{fault.HostFilter}
}

// SetControlPlane freezes or thaws the cluster's istiod process
// (fault.ControlPlaneHost).
func (a *access) SetControlPlane(_ context.Context, running bool) error {
	return a.cp.PauseIstiod(!running)
}

// SetGateway stops or restarts one of the cluster's gateways, which the
// local provider runs in its own process (fault.GatewayHost).
func (a *access) SetGateway(ctx context.Context, role string, serving bool) error {
	gw := map[string]*envoyemu.Proxy{"eastwest": a.eastWest, "ingress": a.ingress}[role]
	if gw == nil {
		return fmt.Errorf("this cluster runs no %s gateway", role)
	}
	return gw.SetServing(ctx, serving)
}

// IstioVersion is the version the cluster's istiod reports (drill.IstioVersioner):
// it runs as a process here, with no image tag to read.
func (a *access) IstioVersion(ctx context.Context) (string, error) {
	return a.cp.IstiodVersion(ctx)
}

func (a *access) Ingress(context.Context) (string, error) {
	if a.ingress == nil {
		return "", errors.New("this cluster runs no ingress gateway; set ingress: true on it in the scenario")
	}
	return "http://" + net.JoinHostPort(a.ingress.Address().String(), strconv.Itoa(bookinfo.GatewayPort)), nil
}

func (a *access) EnvoyAdmin(ctx context.Context, namespace, pod string) (*cluster.Admin, error) {
	return a.PodPort(ctx, namespace, pod, envoyemu.AdminPort)
}

// PodPort is the pod's port on its loopback twin (cluster.PodForwarder).
func (a *access) PodPort(ctx context.Context, namespace, pod string, port int) (*cluster.Admin, error) {
	p, err := a.kube.CoreV1().Pods(namespace).Get(ctx, pod, metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	ip := net.ParseIP(p.Status.PodIP)
	if ip == nil {
		return nil, fmt.Errorf("pod %s/%s has no address yet", namespace, pod)
	}
	twin := localcluster.LoopbackFor(ip)
	return &cluster.Admin{
		URL:    "http://" + net.JoinHostPort(twin.String(), strconv.Itoa(port)),
		Client: &http.Client{Timeout: 10 * time.Second},
	}, nil
}
