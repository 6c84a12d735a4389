package existing

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/spf13/pflag"

	"github.com/meshdrill/drill/internal/bookinfo"
	"github.com/meshdrill/drill/internal/stats"
	"github.com/meshdrill/drill/pkg/cluster"
	"github.com/meshdrill/drill/pkg/scenario"
)

// DefaultConnectTimeout bounds the first request to each API server.
const DefaultConnectTimeout = 15 * time.Second

// Provider connects a drill to clusters that already run Istio, named by kube
// contexts. It installs nothing unless asked (WithInstallBookinfo), never
// deletes anything on Down, and marks its clusters not Owned, so destructive
// faults run only against contexts the user allowed (fault.Guard).
type Provider struct {
	contexts        map[string]string
	kubeconfig      string
	installBookinfo bool
	ingress         map[string]string
	connectTimeout  time.Duration
	bookinfoTimeout time.Duration
	log             *slog.Logger
}

var _ cluster.Provider = (*Provider)(nil)

// Option tunes New.
type Option func(*Provider)

// WithKubeconfig reads the contexts from path instead of the default chain
// ($KUBECONFIG, ~/.kube/config).
func WithKubeconfig(path string) Option { return func(p *Provider) { p.kubeconfig = path } }

// WithInstallBookinfo applies Bookinfo (package bookinfo's manifests, as the
// other providers do) to the clusters whose bookinfo.install is true. Without
// it drill only checks that Bookinfo runs there.
func WithInstallBookinfo() Option { return func(p *Provider) { p.installBookinfo = true } }

// WithIngress gives the URL of a cluster's ingress gateway, for clusters whose
// gateway has no LoadBalancer address drill can reach (an internal load
// balancer, a tunnel, a NodePort).
func WithIngress(cluster, url string) Option {
	return func(p *Provider) { p.ingress[cluster] = url }
}

// WithConnectTimeout bounds the first request to each API server (default
// DefaultConnectTimeout).
func WithConnectTimeout(d time.Duration) Option { return func(p *Provider) { p.connectTimeout = d } }

// WithBookinfoTimeout bounds the wait for installed Bookinfo to be available
// (default bookinfo.DefaultTimeout).
func WithBookinfoTimeout(d time.Duration) Option { return func(p *Provider) { p.bookinfoTimeout = d } }

// WithLogger reports progress to l.
func WithLogger(l *slog.Logger) Option { return func(p *Provider) { p.log = l } }

// New returns a provider for the clusters in contexts, which maps scenario
// cluster names to kube contexts (see ParseContexts).
func New(contexts map[string]string, opts ...Option) *Provider {
	p := &Provider{
		contexts:        map[string]string{},
		ingress:         map[string]string{},
		connectTimeout:  DefaultConnectTimeout,
		bookinfoTimeout: bookinfo.DefaultTimeout,
		log:             slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	for k, v := range contexts {
		p.contexts[k] = v
	}
	for _, o := range opts {
		o(p)
	}
	return p
}

// Name is "existing".
func (p *Provider) Name() string { return "existing" }

// Registration is the existing provider for a command line: --context,
// --kubeconfig, --install-bookinfo and --ingress.
func Registration() cluster.Registration {
	return cluster.Registration{Name: "existing", AddFlags: func(fs *pflag.FlagSet) cluster.Factory {
		contexts := fs.StringSlice("context", nil, "existing provider: scenario cluster to kube context, cluster1=ctx-a,cluster2=ctx-b")
		kubeconfig := fs.String("kubeconfig", "", "existing provider: kubeconfig file (default: $KUBECONFIG or ~/.kube/config)")
		install := fs.Bool("install-bookinfo", false, "existing provider: install Bookinfo where the scenario says so (default: expect it to be there)")
		ingress := fs.StringSlice("ingress", nil, "existing provider: the ingress URL of a cluster, cluster1=http://10.0.0.5:80, when its gateway has no LoadBalancer address")
		return func(c cluster.Common) (cluster.Provider, error) {
			if len(*contexts) == 0 {
				return nil, fmt.Errorf("the existing provider needs --context, mapping each scenario cluster to a kube context: --context cluster1=ctx-a,cluster2=ctx-b")
			}
			ctxs, err := ParseContexts(*contexts...)
			if err != nil {
				return nil, err
			}
			opts := []Option{WithLogger(c.Logger)}
			if *kubeconfig != "" {
				opts = append(opts, WithKubeconfig(*kubeconfig))
			}
			if *install {
				opts = append(opts, WithInstallBookinfo())
			}
			for _, kv := range *ingress {
				name, url, ok := strings.Cut(kv, "=")
				if !ok || name == "" || url == "" {
					return nil, fmt.Errorf("--ingress %q: write CLUSTER=URL, e.g. cluster1=http://10.0.0.5:80", kv)
				}
				opts = append(opts, WithIngress(name, url))
			}
			return New(ctxs, opts...), nil
		}
	}}
}

// DataPlane is real Envoy: the clusters run Istio's proxy image with Envoy in it.
func (p *Provider) DataPlane() cluster.DataPlane { return cluster.DataPlaneEnvoy }

// Up connects to each scenario cluster's context, checks that Istio runs there
// as the drill needs and that Bookinfo runs (or installs it when asked), and
// returns the clusters. Every problem of every cluster is reported at once.
func (p *Provider) Up(ctx context.Context, s *scenario.Scenario) ([]*cluster.Cluster, error) {
	if err := p.checkMapping(s); err != nil {
		return nil, err
	}
	networks := map[string]bool{}
	for _, c := range s.Spec.Clusters {
		networks[c.Network] = true
	}

	var out []*cluster.Cluster
	var problems []string
	for _, sc := range s.Spec.Clusters {
		c, found, err := p.connect(ctx, s, sc, len(networks) > 1)
		if err != nil {
			return nil, err
		}
		for _, f := range found {
			problems = append(problems, fmt.Sprintf("cluster %s (context %q): %s", sc.Name, p.contexts[sc.Name], f))
		}
		out = append(out, c)
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("the clusters are not ready for the drill:\n  - %s", strings.Join(problems, "\n  - "))
	}
	return out, nil
}

// checkMapping checks that every scenario cluster has a context, every
// context a scenario cluster, and no context serves two clusters.
func (p *Provider) checkMapping(s *scenario.Scenario) error {
	var names []string
	var problems []string
	byContext := map[string]string{}
	for _, c := range s.Spec.Clusters {
		names = append(names, c.Name)
		ctxName, ok := p.contexts[c.Name]
		if !ok {
			problems = append(problems, fmt.Sprintf("cluster %s has no kube context: add --context %s=<context>", c.Name, c.Name))
			continue
		}
		if other, dup := byContext[ctxName]; dup {
			problems = append(problems, fmt.Sprintf("clusters %s and %s are both context %q: each scenario cluster must be a cluster of its own", other, c.Name, ctxName))
		}
		byContext[ctxName] = c.Name
	}
	var extra []string
	for name := range p.contexts {
		if !slices.Contains(names, name) {
			extra = append(extra, name)
		}
	}
	sort.Strings(extra)
	for _, name := range extra {
		problems = append(problems, fmt.Sprintf("--context names cluster %s, which %s does not have (its clusters: %s)", name, s.File, strings.Join(names, ", ")))
	}
	if len(problems) > 0 {
		return fmt.Errorf("existing provider: %s", strings.Join(problems, "; "))
	}
	return nil
}

// connect builds one cluster and returns what is missing in it.
func (p *Provider) connect(ctx context.Context, s *scenario.Scenario, sc scenario.Cluster, multiNetwork bool) (*cluster.Cluster, []string, error) {
	ctxName := p.contexts[sc.Name]
	cfg, err := RESTConfig(p.kubeconfig, ctxName)
	if err != nil {
		return nil, nil, fmt.Errorf("cluster %s: %w", sc.Name, err)
	}
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, nil, fmt.Errorf("cluster %s (context %q): %w", sc.Name, ctxName, err)
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, nil, fmt.Errorf("cluster %s (context %q): %w", sc.Name, ctxName, err)
	}
	vctx, cancel := context.WithTimeout(ctx, p.connectTimeout)
	// ServerVersion ignores contexts; listing namespaces honours it and proves
	// the credentials as well as the address.
	_, err = kube.CoreV1().Namespaces().List(vctx, metav1.ListOptions{Limit: 1})
	cancel()
	if err != nil {
		if ctx.Err() != nil {
			return nil, nil, ctx.Err()
		}
		return nil, nil, fmt.Errorf("cluster %s: cannot reach the API server of context %q at %s: %w; check `kubectl --context %s get namespaces`",
			sc.Name, ctxName, cfg.Host, err, ctxName)
	}
	p.log.Info("connected", "cluster", sc.Name, "context", ctxName, "server", cfg.Host)

	findings, err := VerifyIstio(ctx, kube, IstioWant{Cluster: sc.Name, Ingress: sc.Ingress, EastWest: multiNetwork})
	if err != nil {
		return nil, nil, fmt.Errorf("cluster %s (context %q): check Istio: %w", sc.Name, ctxName, err)
	}
	var found []string
	for _, f := range findings {
		found = append(found, f.String())
	}
	if network, err := IstioNetwork(ctx, kube); err == nil && network != "" && network != sc.Network {
		p.log.Warn("the scenario's network differs from the cluster's", "cluster", sc.Name, "scenario", sc.Network, "cluster network", network,
			"fix", fmt.Sprintf("set network: %s on cluster %s in the scenario", network, sc.Name))
	}
	if len(findings) == 0 {
		p.log.Info("Istio is running", "cluster", sc.Name)
	}

	b, err := p.bookinfo(ctx, s, sc, kube, dyn)
	if err != nil {
		return nil, nil, err
	}
	found = append(found, b...)

	access := []AccessOption{WithAccessLogger(p.log)}
	if u, ok := p.ingress[sc.Name]; ok {
		access = append(access, WithIngressURL(u))
	}
	return &cluster.Cluster{
		Name:       sc.Name,
		Config:     cfg,
		Kube:       kube,
		Dynamic:    dyn,
		Kubeconfig: p.kubeconfig,
		Context:    ctxName,
		Owned:      false,
		DataPlane:  p.DataPlane(),
		Access:     NewAccess(sc.Name, cfg, kube, access...),
	}, found, nil
}

// bookinfo installs Bookinfo when asked, else checks it runs; it returns what
// is missing.
func (p *Provider) bookinfo(ctx context.Context, s *scenario.Scenario, sc scenario.Cluster, kube kubernetes.Interface, dyn dynamic.Interface) ([]string, error) {
	if sc.Bookinfo == nil || (sc.Bookinfo.Install != nil && !*sc.Bookinfo.Install) {
		return nil, nil
	}
	set, err := Manifests(s, sc)
	if err != nil {
		return nil, fmt.Errorf("cluster %s: %w", sc.Name, err)
	}
	ns := s.Spec.Namespace
	if p.installBookinfo {
		p.log.Info("installing Bookinfo", "cluster", sc.Name, "namespace", ns, "deployments", set.DeploymentNames())
		if err := bookinfo.Apply(ctx, sc.Name, kube, dyn, set, bookinfo.WithTimeout(p.bookinfoTimeout), bookinfo.WithLogger(p.log)); err != nil {
			return nil, err
		}
		return nil, nil
	}
	var missing []string
	for _, d := range set.Deployments {
		got, err := kube.AppsV1().Deployments(ns).Get(ctx, d.Name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			missing = append(missing, fmt.Sprintf("deployment %s/%s does not exist (install Bookinfo with --install-bookinfo, or set bookinfo.install: false and name the workloads the cluster runs)", ns, d.Name))
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("cluster %s: get deployment %s/%s: %w", sc.Name, ns, d.Name, err)
		}
		key, _ := stats.StatsAnnotation()
		if _, ok := d.Spec.Template.Annotations[key]; ok {
			if _, changed, err := stats.MergeStatsInclusion(got.Spec.Template.Annotations[key]); err == nil && changed {
				p.log.Warn("the observed workload's sidecar records no outbound cluster stats, so drill cannot see its upstream errors",
					"cluster", sc.Name, "deployment", ns+"/"+d.Name,
					"fix", "add the pod annotation "+key+" with proxyStatsMatcher.inclusionPrefixes [cluster.outbound], or install Bookinfo with --install-bookinfo")
			}
		}
	}
	if len(missing) == 0 {
		p.log.Info("Bookinfo is running", "cluster", sc.Name, "namespace", ns)
	}
	return missing, nil
}

// Manifests is Bookinfo's objects for scenario cluster sc, with the ingress
// objects when it takes the load and the stats annotation on the workloads the
// scenario observes there: what every provider of real clusters applies.
// extra options follow those (e.g. bookinfo.WithImages for a mirror).
func Manifests(s *scenario.Scenario, sc scenario.Cluster, extra ...bookinfo.Option) (*bookinfo.Set, error) {
	var opts []bookinfo.Option
	for _, o := range s.Spec.Observe.Envoy {
		if o.Cluster == sc.Name {
			opts = append(opts, bookinfo.WithObserved(o.Workload))
		}
	}
	if sc.Ingress {
		opts = append(opts, bookinfo.WithIngress())
	}
	b := scenario.DefaultBookinfo
	if sc.Bookinfo != nil {
		b = *sc.Bookinfo
	}
	return bookinfo.Manifests(b, s.Spec.Namespace, append(opts, extra...)...)
}

// Down does nothing: drill created none of these clusters. It leaves Bookinfo
// installed with --install-bookinfo in place, since a later drill reuses it.
func (p *Provider) Down(context.Context) error { return nil }
