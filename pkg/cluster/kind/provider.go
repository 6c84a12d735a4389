package kind

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/e2e-framework/klient/k8s/resources"
	kindcluster "sigs.k8s.io/kind/pkg/cluster"

	"github.com/spf13/pflag"

	"github.com/meshdrill/drill/internal/bookinfo"
	"github.com/meshdrill/drill/internal/pki"
	"github.com/meshdrill/drill/pkg/cluster"
	"github.com/meshdrill/drill/pkg/cluster/existing"
	"github.com/meshdrill/drill/pkg/fault"
	"github.com/meshdrill/drill/pkg/scenario"
)

// DefaultNamePrefix prefixes the kind cluster of each scenario cluster:
// cluster1 runs in kind cluster drill-cluster1, so drill never takes a
// cluster of the user's own for one of its clusters.
const DefaultNamePrefix = "drill-"

// Timeouts. A cold start pulls every image over the network: the node image
// (~1 GB) once, then Istio's and Bookinfo's in each cluster.
const (
	DefaultCreateTimeout = 5 * time.Minute
	DefaultReadyTimeout  = 5 * time.Minute
)

// IngressMode is how drill reaches a cluster's ingress gateway from the host.
type IngressMode string

const (
	// IngressLoadBalancer uses the gateway's MetalLB address on the kind
	// network, which a Linux host routes to.
	IngressLoadBalancer IngressMode = "loadbalancer"
	// IngressHostPort uses the host port kind maps to the gateway's NodePort
	// (IngressNodePort) on 127.0.0.1: for Docker Desktop (macOS, Windows),
	// whose container networks the host cannot reach.
	IngressHostPort IngressMode = "hostport"
)

// DefaultIngressMode is IngressLoadBalancer on Linux, IngressHostPort
// elsewhere.
func DefaultIngressMode() IngressMode {
	if runtime.GOOS == "linux" {
		return IngressLoadBalancer
	}
	return IngressHostPort
}

// Provider is the kind provider: one kind cluster per scenario cluster,
// created in parallel, with MetalLB, Istio multi-primary on separate networks
// under one mesh CA, and Bookinfo. It drives Docker through the kind library.
type Provider struct {
	prefix          string
	nodeImage       string
	nodeImageSet    bool   // WithNodeImage: the images mode does not change it
	images          string // ImagesPull or ImagesOffline
	keep            bool
	reuse           bool
	stateDir        string
	binDir          string
	ingressMode     IngressMode
	ingressChosen   bool // the user chose ingressMode; preflight never changes it
	istioHub        string
	istioVersion    string
	registryMu      sync.Mutex
	bookinfoImages  [2]string
	istioReleases   string
	metallbReleases string
	createTimeout   time.Duration
	readyTimeout    time.Duration
	bookinfoTimeout time.Duration
	// dockerBin is the CLI drill runs for what kind's library does not
	// answer (the network's subnet, published ports); kind itself always runs
	// "docker" from PATH, and so does drill, so both see the same engine.
	dockerBin     string
	http          *http.Client
	log           *slog.Logger
	preflightOnly bool

	imagesErr error // an images mode New could not apply, reported by Up

	mu      sync.Mutex
	kind    *kindcluster.Provider
	created []string // kind clusters this provider created, to delete on Down
}

var _ cluster.Provider = (*Provider)(nil)

// Option tunes New.
type Option func(*Provider)

// WithNamePrefix changes DefaultNamePrefix.
func WithNamePrefix(p string) Option { return func(pr *Provider) { pr.prefix = p } }

// WithNodeImage runs the nodes from image instead of NodeImage. It must be
// pinned by digest.
func WithNodeImage(image string) Option {
	return func(p *Provider) { p.nodeImage, p.nodeImageSet = image, true }
}

// WithKeep leaves the clusters running after Down, and after a failed Up, for
// a later drill (WithReuse) or a look with kubectl.
func WithKeep() Option { return func(p *Provider) { p.keep = true } }

// WithReuse uses kind clusters that already exist under the drill's names
// (kept by an earlier run) instead of refusing to start. What drill installs
// is checked and completed; clusters it reuses are never deleted by Down.
func WithReuse() Option { return func(p *Provider) { p.reuse = true } }

// WithStateDir keeps kubeconfigs, IstioOperators and the mesh CA in dir
// instead of the user's cache directory (~/.cache/drill/kind on Linux). Reused
// clusters need the state directory they were created with.
func WithStateDir(dir string) Option { return func(p *Provider) { p.stateDir = dir } }

// WithBinDir keeps downloads (istioctl, MetalLB's manifest) in dir instead
// of DRILL_BIN_DIR, bin/ of the drill checkout, or the cache directory.
func WithBinDir(dir string) Option { return func(p *Provider) { p.binDir = dir } }

// WithIngressMode chooses how the ingress gateway is reached (default
// DefaultIngressMode()).
func WithIngressMode(m IngressMode) Option {
	return func(p *Provider) { p.ingressMode, p.ingressChosen = m, true }
}

// WithIstioHub pulls Istio's images from a mirror instead of IstioHub.
func WithIstioHub(hub string) Option { return func(p *Provider) { p.istioHub = hub } }

// WithBookinfoImages pulls Bookinfo's images from a mirror (see
// bookinfo.WithImages).
func WithBookinfoImages(registry, tag string) Option {
	return func(p *Provider) { p.bookinfoImages = [2]string{registry, tag} }
}

// WithDownloads fetches istioctl from istioReleases (instead of
// IstioReleases) and MetalLB's manifest from metallbReleases (instead of
// MetalLBReleases): mirrors with the same layout. The checksums stay pinned.
func WithDownloads(istioReleases, metallbReleases string) Option {
	return func(p *Provider) { p.istioReleases, p.metallbReleases = istioReleases, metallbReleases }
}

// WithTimeouts bounds cluster creation, each readiness wait (MetalLB, Istio,
// remote clusters) and Bookinfo's availability. Zero keeps a default.
func WithTimeouts(create, ready, bookinfo time.Duration) Option {
	return func(p *Provider) {
		if create > 0 {
			p.createTimeout = create
		}
		if ready > 0 {
			p.readyTimeout = ready
		}
		if bookinfo > 0 {
			p.bookinfoTimeout = bookinfo
		}
	}
}

// WithHTTPClient downloads with c (default: a client with a 10-minute
// timeout and proxy settings from the environment).
func WithHTTPClient(c *http.Client) Option { return func(p *Provider) { p.http = c } }

// WithLogger reports every step to l.
func WithLogger(l *slog.Logger) Option { return func(p *Provider) { p.log = l } }

// New returns a kind provider.
func New(opts ...Option) *Provider {
	p := &Provider{
		prefix:          DefaultNamePrefix,
		nodeImage:       NodeImage,
		ingressMode:     DefaultIngressMode(),
		istioHub:        IstioHub,
		istioVersion:    IstioVersion,
		istioReleases:   IstioReleases,
		metallbReleases: MetalLBReleases,
		createTimeout:   DefaultCreateTimeout,
		readyTimeout:    DefaultReadyTimeout,
		bookinfoTimeout: bookinfo.DefaultTimeout,
		dockerBin:       "docker",
		http:            &http.Client{Timeout: 10 * time.Minute},
		log:             slog.New(slog.NewTextHandler(io.Discard, nil)),
		images:          imagesFromEnv(),
	}
	for _, o := range opts {
		o(p)
	}
	p.imagesErr = p.applyImages()
	if p.stateDir == "" {
		p.stateDir = defaultStateDir()
	}
	if p.binDir == "" {
		p.binDir = defaultBinDir()
	}
	return p
}

// Name is "kind".
func (p *Provider) Name() string { return "kind" }

// Registration is the kind provider for a command line: --reuse,
// --kind-ingress, the image overrides and the timeouts.
func Registration() cluster.Registration {
	return cluster.Registration{Name: "kind", AddFlags: func(fs *pflag.FlagSet) cluster.Factory {
		reuse := fs.Bool("reuse", false, "kind provider: reuse kind clusters of the same name left by an earlier --keep run")
		ingress := fs.String("kind-ingress", "", "kind provider: reach the ingress gateway by its MetalLB address (loadbalancer, Linux default) or a host port (hostport, macOS/Windows default)")
		nodeImage := fs.String("kind-node-image", "", "kind provider: node image, pinned by digest (default: the kind release's, "+NodeImage+")")
		istioHub := fs.String("istio-hub", "", "kind provider: registry of Istio's pilot and proxyv2 images, e.g. a mirror (default "+IstioHub+")")
		bookinfoRegistry := fs.String("bookinfo-registry", "", "kind provider: registry of Bookinfo's images, e.g. a mirror (default "+bookinfo.Registry+")")
		bookinfoTag := fs.String("bookinfo-tag", "", "kind provider: tag of Bookinfo's images (default "+bookinfo.Tag+")")
		createTimeout := fs.Duration("kind-create-timeout", 0, "kind provider: how long creating a cluster may take (default "+DefaultCreateTimeout.String()+")")
		images := fs.String("kind-images", "", "kind provider: "+ImagesOffline+" runs the images `make images` builds, needing no registry; "+ImagesPull+" the real ones (default: $"+ImagesEnv+", else "+ImagesPull+")")
		readyTimeout := fs.Duration("kind-ready-timeout", 0, "kind provider: how long each readiness wait (MetalLB, Istio, Bookinfo) may take (default "+DefaultReadyTimeout.String()+")")
		return func(c cluster.Common) (cluster.Provider, error) {
			opts := []Option{WithLogger(c.Logger)}
			if c.Keep {
				opts = append(opts, WithKeep())
			}
			if *reuse {
				opts = append(opts, WithReuse())
			}
			switch m := IngressMode(*ingress); m {
			case "":
			case IngressLoadBalancer, IngressHostPort:
				opts = append(opts, WithIngressMode(m))
			default:
				return nil, fmt.Errorf("--kind-ingress %q: use %s or %s", *ingress, IngressLoadBalancer, IngressHostPort)
			}
			if *images != "" {
				opts = append(opts, WithImages(*images))
			}
			if *nodeImage != "" {
				opts = append(opts, WithNodeImage(*nodeImage))
			}
			if *istioHub != "" {
				opts = append(opts, WithIstioHub(strings.TrimSuffix(*istioHub, "/")))
			}
			if *bookinfoRegistry != "" || *bookinfoTag != "" {
				reg, tag := strings.TrimSuffix(*bookinfoRegistry, "/"), *bookinfoTag
				if reg == "" {
					reg = bookinfo.Registry
				}
				if tag == "" {
					tag = bookinfo.Tag
				}
				opts = append(opts, WithBookinfoImages(reg, tag))
			}
			if *createTimeout < 0 || *readyTimeout < 0 {
				return nil, fmt.Errorf("--kind-create-timeout and --kind-ready-timeout must be positive durations")
			}
			opts = append(opts, WithTimeouts(*createTimeout, *readyTimeout, *readyTimeout))
			p := New(opts...)
			if p.imagesErr != nil {
				return nil, p.imagesErr
			}
			return p, nil
		}
	}}
}

// DataPlane is real Envoy: the clusters run Istio's proxy image with Envoy
// in it. With the offline images it is drill's emulated Envoy, run by the
// real pilot-agent in the proxy image make images builds.
func (p *Provider) DataPlane() cluster.DataPlane {
	if p.offline() {
		return cluster.DataPlaneEmulated
	}
	return cluster.DataPlaneEnvoy
}

// DataPlaneDetail names the images of an emulated data plane: drill's Envoy
// emulation as the envoy of the proxy image make images built, run by that
// image's real pilot-agent.
func (p *Provider) DataPlaneDetail() string {
	if !p.offline() {
		return ""
	}
	return fmt.Sprintf("kind clusters of node image %s; Istio %s from %s (pilot, proxyv2); in proxyv2 the real pilot-agent ran drill's emulated Envoy as its envoy (no Envoy binary was available).",
		p.nodeImage, p.istioVersion, p.istioHub)
}

// KindName is the kind cluster that runs scenario cluster name.
func (p *Provider) KindName(name string) string { return p.prefix + name }

// clusterRun is one cluster's way through Up.
type clusterRun struct {
	p            *Provider
	sc           scenario.Cluster
	index        int
	name         string
	kindName     string
	context      string
	kubeconfig   string
	reused       bool
	log          *slog.Logger
	cfg          *rest.Config
	kube         kubernetes.Interface
	dyn          dynamic.Interface
	res          *resources.Resources
	controlPlane netip.Addr
	// nodes are the cluster's node containers and their addresses on the kind
	// network, for a partition's packet filters.
	nodes     []string
	nodeAddrs []netip.Addr
	pool      [2]netip.Addr // the MetalLB pool, first and last
}

// Up creates (or reuses) a kind cluster per scenario cluster, in parallel,
// and makes each ready: MetalLB, Istio with the mesh CA's intermediate and the
// east-west gateway, remote secrets between every pair, Bookinfo. Nothing is
// created before the preflight passes: a preflight failure is a
// *preflight.Error. On any later failure the clusters it created are deleted
// (unless WithKeep) and the error names the cluster and the step.
func (p *Provider) Up(ctx context.Context, s *scenario.Scenario) (_ []*cluster.Cluster, err error) {
	start := time.Now()
	runs, err := p.plan(s)
	if err != nil {
		return nil, err
	}
	p.log.Info("kind provider", "clusters", len(runs), "node image", p.nodeImage, "istio", p.istioVersion,
		"metallb", MetalLBVersion, "kind library", LibraryVersion(), "state", p.stateDir, "ingress", p.ingressMode)

	art, err := p.preflight(ctx, s)
	if err != nil {
		return nil, err
	}
	ca, created, err := pki.LoadOrNew(filepath.Join(p.stateDir, "mesh-ca"))
	if err != nil {
		return nil, fmt.Errorf("mesh CA: %w", err)
	}
	p.log.Info("mesh root CA", "dir", filepath.Join(p.stateDir, "mesh-ca"), "new", created, "subject", ca.Certificate().Subject.String())

	defer func() {
		if err == nil {
			return
		}
		if p.keep {
			p.log.Warn("Up failed; keeping the clusters as asked", "clusters", p.createdNames(), "delete with", "kind delete clusters "+joinNames(p.createdNames()))
			return
		}
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Minute)
		defer cancel()
		if derr := p.Down(dctx); derr != nil {
			err = errors.Join(err, fmt.Errorf("deleting the clusters this run created: %w", derr))
		}
	}()

	// Each cluster on its own goroutine: creating a kind cluster and
	// installing Istio is mostly waiting on images and controllers.
	if err := eachCluster(ctx, runs, func(ctx context.Context, c *clusterRun) error {
		return c.bringUp(ctx, ca, art)
	}); err != nil {
		return nil, err
	}

	if err := p.fencePodRanges(ctx, runs); err != nil {
		return nil, err
	}
	if p.offline() && len(runs) > 1 {
		if err := p.routeClusters(ctx, runs); err != nil {
			return nil, err
		}
	}
	if len(runs) > 1 {
		if err := p.linkClusters(ctx, runs); err != nil {
			return nil, err
		}
	}

	if err := eachCluster(ctx, runs, func(ctx context.Context, c *clusterRun) error {
		return c.installBookinfo(ctx, s)
	}); err != nil {
		return nil, err
	}

	out := make([]*cluster.Cluster, len(runs))
	for i, c := range runs {
		out[i] = c.cluster()
	}
	p.log.Info("clusters ready", "clusters", len(runs), "took", time.Since(start).Round(time.Second))
	return out, nil
}

// plan names every cluster's kind cluster and files.
func (p *Provider) plan(s *scenario.Scenario) ([]*clusterRun, error) {
	if p.imagesErr != nil {
		return nil, p.imagesErr
	}
	if n := len(s.Spec.Clusters); n == 0 || n > MaxClusters {
		return nil, fmt.Errorf("kind provider: %d clusters; it runs 1 to %d", n, MaxClusters)
	}
	if p.ingressMode != IngressLoadBalancer && p.ingressMode != IngressHostPort {
		return nil, fmt.Errorf("kind provider: ingress mode %q: use %s or %s", p.ingressMode, IngressLoadBalancer, IngressHostPort)
	}
	runs := make([]*clusterRun, len(s.Spec.Clusters))
	for i, sc := range s.Spec.Clusters {
		kindName := p.KindName(sc.Name)
		runs[i] = &clusterRun{
			p: p, sc: sc, index: i, name: sc.Name, kindName: kindName,
			context:    "kind-" + kindName,
			kubeconfig: p.kubeconfigFile(kindName),
			log:        p.log.With("cluster", sc.Name),
		}
	}
	return runs, nil
}

// eachCluster runs f for every cluster at once and waits for all; the first
// failure cancels the others, and every error is returned.
func eachCluster(ctx context.Context, runs []*clusterRun, f func(context.Context, *clusterRun) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errs := make([]error, len(runs))
	var wg sync.WaitGroup
	for i, c := range runs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if errs[i] = f(ctx, c); errs[i] != nil {
				cancel()
			}
		}()
	}
	wg.Wait()
	// A cluster stopped because another failed says only "context canceled":
	// report the causes.
	var causes []error
	for _, e := range errs {
		if e != nil && !errors.Is(e, context.Canceled) {
			causes = append(causes, e)
		}
	}
	if len(causes) == 0 {
		return errors.Join(errs...)
	}
	return errors.Join(causes...)
}

// bringUp creates or reuses the cluster, connects to it and installs MetalLB
// and Istio.
func (c *clusterRun) bringUp(ctx context.Context, ca *pki.MeshCA, art *artifacts) error {
	if err := c.create(ctx, art.host); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := c.connect(); err != nil {
		return err
	}
	if c.p.offline() {
		// The nodes pull Istio, MetalLB and Bookinfo from drill's registry.
		if err := c.p.connectRegistry(ctx); err != nil {
			return fmt.Errorf("cluster %s: %w", c.name, err)
		}
	}
	subnet, gateway, err := kindSubnet(ctx, c.p.dockerBin)
	if err != nil {
		return fmt.Errorf("cluster %s: %w", c.name, err)
	}
	if c.reused && c.metallbInstalled(ctx) {
		c.log.Info("MetalLB already installed; keeping it")
	} else {
		first, last, err := MetalLBPool(subnet, gateway, c.index)
		if err != nil {
			return fmt.Errorf("cluster %s: %w", c.name, err)
		}
		if err := c.installMetalLB(ctx, art.metallb, first, last); err != nil {
			return err
		}
	}
	if first, last, err := MetalLBPool(subnet, gateway, c.index); err == nil {
		c.pool = [2]netip.Addr{first, last}
	}
	return c.installIstio(ctx, ca, art.istioctl)
}

// create creates the kind cluster, or takes the existing one when reusing.
func (c *clusterRun) create(ctx context.Context, host HostSettings) error {
	p := c.p
	if err := os.MkdirAll(p.stateDir, 0o700); err != nil {
		return fmt.Errorf("cluster %s: state directory: %w", c.name, err)
	}
	// A kind provider of its own, so kind's progress lines carry this
	// cluster's name in the log.
	kp := kindcluster.NewProvider(kindcluster.ProviderWithDocker(), kindcluster.ProviderWithLogger(kindLogger{log: c.log}))
	existingNames, err := kp.List()
	if err != nil {
		return fmt.Errorf("cluster %s: list kind clusters: %w", c.name, err)
	}
	if slices.Contains(existingNames, c.kindName) {
		if !p.reuse {
			return fmt.Errorf("cluster %s: kind cluster %s already exists; pass --reuse to use it or delete it with `kind delete cluster --name %s`", c.name, c.kindName, c.kindName)
		}
		c.reused = true
		c.log.Info("reusing kind cluster", "kind", c.kindName)
		kc, err := kp.KubeConfig(c.kindName, false)
		if err != nil {
			return fmt.Errorf("cluster %s: kubeconfig of kind cluster %s: %w", c.name, c.kindName, err)
		}
		if err := os.WriteFile(c.kubeconfig, []byte(kc), 0o600); err != nil {
			return fmt.Errorf("cluster %s: %w", c.name, err)
		}
	} else {
		cfg, err := Config(c.sc, c.index, host)
		if err != nil {
			return err
		}
		y, _ := ConfigYAML(cfg)
		c.log.Info("creating kind cluster", "kind", c.kindName, "image", p.nodeImage, "config", string(y))
		p.recordCreated(c.kindName)
		// The mark outlives a drill killed mid-create, so that Clean can tell
		// this cluster from a user's own.
		if err := os.WriteFile(p.markFile(c.kindName), fmt.Appendf(nil, "created by drill (pid %d) at %s\n", os.Getpid(), time.Now().UTC().Format(time.RFC3339)), 0o600); err != nil {
			return fmt.Errorf("cluster %s: %w", c.name, err)
		}
		start := time.Now()
		// kind's Create cannot be interrupted: a cancelled drill waits for it
		// to finish, then deletes what it made.
		err = kp.Create(c.kindName,
			kindcluster.CreateWithV1Alpha4Config(copyConfig(cfg)),
			kindcluster.CreateWithNodeImage(p.nodeImage),
			kindcluster.CreateWithWaitForReady(p.createTimeout),
			kindcluster.CreateWithKubeconfigPath(c.kubeconfig),
			kindcluster.CreateWithDisplayUsage(false),
			kindcluster.CreateWithDisplaySalutation(false),
			// Kept on failure, so that the kubelet's own account of why can be
			// read before drill deletes the nodes (Down, which Up defers).
			kindcluster.CreateWithRetain(true),
		)
		if err != nil {
			err = fmt.Errorf("cluster %s: create kind cluster %s: %w", c.name, c.kindName, err)
			if journal := kubeletJournal(context.WithoutCancel(ctx), p.dockerBin, c.kindName+"-control-plane"); journal != "" {
				err = fmt.Errorf("%w\nthe last lines of the node's kubelet log (docker exec %s-control-plane journalctl -u kubelet):\n%s", err, c.kindName, journal)
			}
			return err
		}
		c.log.Info("kind cluster created", "kind", c.kindName, "took", time.Since(start).Round(time.Second), "kubeconfig", c.kubeconfig)
	}
	nodes, err := kp.ListNodes(c.kindName)
	if err != nil {
		return fmt.Errorf("cluster %s: nodes of kind cluster %s: %w", c.name, c.kindName, err)
	}
	c.nodes, c.nodeAddrs = nil, nil
	for _, n := range nodes {
		ip4, _, err := n.IP()
		if err != nil {
			return fmt.Errorf("cluster %s: address of node %s: %w", c.name, n.String(), err)
		}
		addr, err := netip.ParseAddr(ip4)
		if err != nil {
			return fmt.Errorf("cluster %s: address of node %s: %q: %w", c.name, n.String(), ip4, err)
		}
		c.nodes, c.nodeAddrs = append(c.nodes, n.String()), append(c.nodeAddrs, addr)
		if role, _ := n.Role(); role == "control-plane" {
			c.controlPlane = addr
		}
	}
	if !c.controlPlane.IsValid() {
		return fmt.Errorf("cluster %s: kind cluster %s has no control-plane node", c.name, c.kindName)
	}
	c.log.Info("control plane", "node", c.kindName+"-control-plane", "address", c.controlPlane)
	return nil
}

// connect builds the cluster's clients from its kubeconfig.
func (c *clusterRun) connect() error {
	cfg, err := existing.RESTConfig(c.kubeconfig, c.context)
	if err != nil {
		return fmt.Errorf("cluster %s: %w", c.name, err)
	}
	c.cfg = cfg
	if c.kube, err = kubernetes.NewForConfig(cfg); err != nil {
		return fmt.Errorf("cluster %s: %w", c.name, err)
	}
	if c.dyn, err = dynamic.NewForConfig(cfg); err != nil {
		return fmt.Errorf("cluster %s: %w", c.name, err)
	}
	if c.res, err = resources.New(cfg); err != nil {
		return fmt.Errorf("cluster %s: %w", c.name, err)
	}
	return nil
}

// linkClusters gives every cluster's istiod a remote secret for every other
// cluster and waits until each istiod reports them all synced.
func (p *Provider) linkClusters(ctx context.Context, runs []*clusterRun) error {
	secrets := make(map[string]*corev1.Secret, len(runs))
	for _, c := range runs {
		s, err := c.remoteSecret(ctx)
		if err != nil {
			return err
		}
		secrets[c.name] = s
	}
	var names []string
	for _, c := range runs {
		names = append(names, c.name)
		for _, r := range runs {
			if r == c {
				continue
			}
			if err := c.applySecret(ctx, secrets[r.name]); err != nil {
				return err
			}
			c.log.Info("remote secret applied", "for", r.name, "server", "https://"+r.controlPlane.String()+":6443")
		}
	}
	return eachCluster(ctx, runs, func(ctx context.Context, c *clusterRun) error {
		return c.waitRemoteSynced(ctx, names, p.readyTimeout)
	})
}

// installBookinfo applies Bookinfo (the manifests every provider applies) and
// waits until it is available.
func (c *clusterRun) installBookinfo(ctx context.Context, s *scenario.Scenario) error {
	if c.sc.Bookinfo != nil && c.sc.Bookinfo.Install != nil && !*c.sc.Bookinfo.Install {
		c.log.Info("not installing Bookinfo: the scenario says install: false")
		return nil
	}
	var extra []bookinfo.Option
	if c.p.bookinfoImages[0] != "" {
		extra = append(extra, bookinfo.WithImages(c.p.bookinfoImages[0], c.p.bookinfoImages[1]))
	}
	if c.p.offline() {
		// drill's Go Bookinfo says which cluster answered.
		extra = append(extra, bookinfo.WithClusterName(c.name))
	}
	set, err := existing.Manifests(s, c.sc, extra...)
	if err != nil {
		return fmt.Errorf("cluster %s: %w", c.name, err)
	}
	c.log.Info("installing Bookinfo", "namespace", s.Spec.Namespace, "deployments", set.DeploymentNames())
	start := time.Now()
	if err := bookinfo.Apply(ctx, c.name, c.kube, c.dyn, set, bookinfo.WithTimeout(c.p.bookinfoTimeout), bookinfo.WithLogger(c.log)); err != nil {
		return err
	}
	c.log.Info("Bookinfo available", "took", time.Since(start).Round(time.Second))
	return nil
}

// cluster is the engine's view of the cluster.
func (c *clusterRun) cluster() *cluster.Cluster {
	opts := []existing.AccessOption{existing.WithAccessLogger(c.log), existing.WithAddressTimeout(c.p.readyTimeout)}
	if c.p.ingressMode == IngressHostPort {
		container := c.kindName + "-control-plane"
		docker := c.p.dockerBin
		opts = append(opts, existing.WithIngressResolver(func(ctx context.Context) (string, error) {
			ap, err := hostPort(ctx, docker, container, IngressNodePort)
			if err != nil {
				return "", fmt.Errorf("cluster %s: the ingress gateway's host port: %w", c.name, err)
			}
			return "http://" + ap.String(), nil
		}))
	}
	return &cluster.Cluster{
		Name:       c.name,
		Config:     c.cfg,
		Kube:       c.kube,
		Dynamic:    c.dyn,
		Kubeconfig: c.kubeconfig,
		Context:    c.context,
		// drill made these clusters (or an earlier drill did, under its own
		// names), so faults need no allowance.
		Owned:     true,
		DataPlane: c.p.DataPlane(),
		Access:    &access{Access: existing.NewAccess(c.name, c.cfg, c.kube, opts...), network: c.network()},
	}
}

// access is an existing cluster's access plus what drill knows of a kind
// cluster's network (fault.Network).
type access struct {
	*existing.Access
	network kindNetwork
}

func (a *access) NetworkRanges() []netip.Prefix       { return a.network.ranges }
func (a *access) PacketFilters() []fault.PacketFilter { return a.network.filters }

// kindNetwork is a kind cluster's network as a partition cuts it.
type kindNetwork struct {
	ranges  []netip.Prefix
	filters []fault.PacketFilter
}

// network is every address of the cluster as the other clusters see it —
// its nodes on the kind network, its pod and service ranges, its MetalLB
// pool, where its gateways' addresses come from — and a packet filter per
// node container.
func (c *clusterRun) network() kindNetwork {
	var n kindNetwork
	for _, a := range c.nodeAddrs {
		n.ranges = append(n.ranges, netip.PrefixFrom(a, a.BitLen()))
	}
	if layout, err := ClusterLayout(c.index); err == nil {
		n.ranges = append(n.ranges, layout.PodSubnet, layout.ServiceSubnet)
	}
	if c.pool[0].IsValid() {
		n.ranges = append(n.ranges, rangePrefixes(c.pool[0], c.pool[1])...)
	}
	for _, node := range c.nodes {
		n.filters = append(n.filters, fault.PacketFilter{Name: "node " + node,
			Command: []string{c.p.dockerBin, "exec", node, "iptables"},
			Restore: []string{c.p.dockerBin, "exec", "-i", node, "iptables-restore"}})
	}
	return n
}

// rangePrefixes covers first-last (IPv4, first ≤ last) with the fewest
// prefixes.
func rangePrefixes(first, last netip.Addr) []netip.Prefix {
	if !first.Is4() || !last.Is4() || last.Less(first) {
		return nil
	}
	u := func(a netip.Addr) uint64 {
		b := a.As4()
		return uint64(b[0])<<24 | uint64(b[1])<<16 | uint64(b[2])<<8 | uint64(b[3])
	}
	lo, hi := u(first), u(last)
	var out []netip.Prefix
	for lo <= hi {
		size := uint64(1)
		bits := 32
		// Grow the block while it stays aligned and within the range.
		for bits > 0 && lo%(size*2) == 0 && lo+size*2-1 <= hi {
			size *= 2
			bits--
		}
		out = append(out, netip.PrefixFrom(netip.AddrFrom4([4]byte{byte(lo >> 24), byte(lo >> 16), byte(lo >> 8), byte(lo)}), bits))
		lo += size
	}
	return out
}

// Down deletes the kind clusters Up created, unless WithKeep; reused
// clusters are left as they were. It is safe to call more than once.
func (p *Provider) Down(ctx context.Context) error {
	names := p.createdNames()
	if len(names) == 0 {
		return nil
	}
	if p.keep {
		p.log.Info("keeping the kind clusters as asked", "clusters", names,
			"reuse with", "--reuse", "delete with", "kind delete clusters "+joinNames(names))
		return nil
	}
	var errs []error
	for _, name := range names {
		if err := ctx.Err(); err != nil {
			errs = append(errs, fmt.Errorf("not deleting kind cluster %s: %w; delete it with `kind delete cluster --name %s`", name, err, name))
			continue
		}
		if err := p.deleteCluster(name); err != nil {
			errs = append(errs, err)
			continue
		}
		p.forget(name)
	}
	return errors.Join(errs...)
}

// deleteCluster deletes a kind cluster drill created and its files in the
// state directory.
func (p *Provider) deleteCluster(name string) error {
	p.log.Info("deleting kind cluster", "kind", name)
	kubeconfig := p.kubeconfigFile(name)
	if err := p.kindProvider().Delete(name, kubeconfig); err != nil {
		return fmt.Errorf("delete kind cluster %s: %w; delete it with `kind delete cluster --name %s` or `docker rm -f %s-control-plane`", name, err, name, name)
	}
	_ = os.Remove(kubeconfig)
	_ = os.Remove(p.markFile(name))
	return nil
}

// kubeconfigFile is where a kind cluster's kubeconfig is kept.
func (p *Provider) kubeconfigFile(kindName string) string {
	return filepath.Join(p.stateDir, kindName+".kubeconfig")
}

// markFile is where the state directory records that drill created a kind
// cluster.
func (p *Provider) markFile(kindName string) string {
	return filepath.Join(p.stateDir, kindName+".created")
}

// Clean deletes every kind cluster drill created and did not delete: kept
// with --keep, or left by a drill that was killed (SIGKILL, a lost machine).
// It knows them by the marks and kubeconfigs in the state directory, so a
// kind cluster of the user's own is never touched, whatever its name. It
// returns the clusters it deleted.
func (p *Provider) Clean(ctx context.Context) ([]string, error) {
	names, err := p.kindProvider().List()
	if err != nil {
		return nil, fmt.Errorf("list kind clusters: %w; check that `docker ps` works", err)
	}
	var deleted []string
	var errs []error
	for _, name := range names {
		if !exists(p.markFile(name)) && !exists(p.kubeconfigFile(name)) {
			continue
		}
		if err := ctx.Err(); err != nil {
			return deleted, err
		}
		if err := p.deleteCluster(name); err != nil {
			errs = append(errs, err)
			continue
		}
		deleted = append(deleted, name)
	}
	// Marks of clusters that are gone already (deleted by hand) go too.
	marks, _ := filepath.Glob(filepath.Join(p.stateDir, "*.created"))
	for _, m := range marks {
		if !slices.Contains(names, strings.TrimSuffix(filepath.Base(m), ".created")) {
			_ = os.Remove(m)
		}
	}
	return deleted, errors.Join(errs...)
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

func (p *Provider) kindProvider() *kindcluster.Provider {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.kind == nil {
		p.kind = kindcluster.NewProvider(kindcluster.ProviderWithDocker(), kindcluster.ProviderWithLogger(kindLogger{log: p.log}))
	}
	return p.kind
}

func (p *Provider) recordCreated(name string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !slices.Contains(p.created, name) {
		p.created = append(p.created, name)
	}
}

func (p *Provider) forget(name string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.created = slices.DeleteFunc(p.created, func(n string) bool { return n == name })
}

func (p *Provider) createdNames() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.created)
}

func joinNames(names []string) string {
	out := ""
	for i, n := range names {
		if i > 0 {
			out += " "
		}
		out += n
	}
	return out
}

func isNotFound(err error) bool { return apierrors.IsNotFound(err) }
