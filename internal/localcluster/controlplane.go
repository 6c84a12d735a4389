package localcluster

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// ControlPlane is one running local cluster: etcd, kube-apiserver,
// kube-controller-manager and, unless started WithoutIstiod, istiod.
// Its processes run until Stop, independent of the context that started them.
type ControlPlane struct {
	name    string
	dir     string
	cfg     config
	bins    Binaries
	ports   ports
	pki     *kubePKI
	cacerts map[string][]byte // Istio's cacerts files, by file name

	token          string
	tokenFile      string
	kubeconfigPath string
	restConfig     *rest.Config

	mu      sync.Mutex
	procs   []*process // in start order
	timings Timings

	stopOnce sync.Once
	stopErr  error
}

type ports struct {
	etcdClient, etcdPeer, apiserver, controllerManager    int
	istiodHTTP, istiodGRPC, istiodMonitoring, istiodCtrlz int
	istiodSecureGRPC                                      int
}

// Timings says how long each phase of StartControlPlane took.
type Timings struct {
	Prepare           time.Duration // directories, certificates, ports
	Etcd              time.Duration // start to /health
	APIServer         time.Duration // start to /readyz
	ControllerManager time.Duration // start to /healthz
	IstioCRDs         time.Duration // apply to Established
	Istiod            time.Duration // start to /ready
	Total             time.Duration
}

// StartControlPlane starts a cluster named name (a DNS label: it is Istio's
// cluster ID and a file name) and returns once every process is ready. Its
// files go to <run dir>/<name>. On error nothing it started is left running.
// ctx bounds the start only; the processes run until Stop.
func StartControlPlane(ctx context.Context, name string, opts ...Option) (*ControlPlane, error) {
	cfg := defaultConfig()
	for _, o := range opts {
		o(&cfg)
	}
	return startControlPlane(ctx, name, cfg)
}

func startControlPlane(ctx context.Context, name string, cfg config) (_ *ControlPlane, err error) {
	begin := time.Now()
	if errs := validation.IsDNS1123Label(name); len(errs) > 0 {
		return nil, fmt.Errorf("cluster name %q: %s", name, strings.Join(errs, "; "))
	}
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("cluster %s: %w", name, err)
	}
	bins, err := FindBinaries(cfg.binDir, cfg.istiod)
	if err != nil {
		return nil, fmt.Errorf("cluster %s: %w", name, err)
	}
	if cfg.runDir == "" {
		if cfg.runDir, err = os.MkdirTemp("", "drill-local-"); err != nil {
			return nil, fmt.Errorf("cluster %s: create run directory: %w", name, err)
		}
	}
	cp := &ControlPlane{name: name, dir: filepath.Join(cfg.runDir, name), cfg: cfg, bins: bins}
	if err := cp.prepare(); err != nil {
		return nil, err
	}
	cp.timings.Prepare = time.Since(begin)
	cfg.log.Info("starting local control plane", "cluster", name, "dir", cp.dir, "apiserver", cp.APIServerURL())

	defer func() {
		if err != nil {
			// A half-started cluster is stopped with a fresh context: ctx may
			// be the reason we are here.
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*cfg.stopTimeout+10*time.Second)
			defer cancel()
			if serr := cp.Stop(sctx); serr != nil {
				err = errors.Join(err, fmt.Errorf("stopping what had started: %w", serr))
			}
		}
	}()

	t := time.Now()
	if err := cp.startEtcd(ctx); err != nil {
		return nil, err
	}
	cp.timings.Etcd = time.Since(t)

	t = time.Now()
	if err := cp.startAPIServer(ctx); err != nil {
		return nil, err
	}
	cp.timings.APIServer = time.Since(t)

	t = time.Now()
	kcm, err := cp.startControllerManager()
	if err != nil {
		return nil, err
	}
	// The controller-manager comes up while Istio is installed; its wait is
	// collected last so both proceed at once.
	kctx, kcancel := context.WithCancel(ctx)
	defer kcancel()
	type result struct {
		err  error
		took time.Duration
	}
	kcmReady := make(chan result, 1)
	go func() {
		err := cp.waitControllerManager(kctx, kcm)
		kcmReady <- result{err, time.Since(t)}
	}()

	if cfg.istiod {
		if err := cp.startIstio(ctx); err != nil {
			kcancel()
			<-kcmReady
			return nil, err
		}
	}
	r := <-kcmReady
	if r.err != nil {
		return nil, r.err
	}
	cp.mu.Lock()
	cp.timings.ControllerManager = r.took
	cp.timings.Total = time.Since(begin)
	cp.mu.Unlock()
	cfg.log.Info("local control plane ready", "cluster", name, "took", cp.timings.Total.Round(time.Millisecond))
	return cp, nil
}

// startIstio installs Istio's CRDs and system namespace, then runs istiod
// and waits for it to be ready.
func (cp *ControlPlane) startIstio(ctx context.Context) error {
	t := time.Now()
	crds, err := readCRDs(cp.bins.IstioCRDs)
	if err != nil {
		return fmt.Errorf("cluster %s: %w", cp.name, err)
	}
	dyn, err := dynamic.NewForConfig(cp.restConfig)
	if err != nil {
		return fmt.Errorf("cluster %s: %w", cp.name, err)
	}
	if err := installCRDs(ctx, dyn, crds, cp.cfg.startTimeout); err != nil {
		return fmt.Errorf("cluster %s: install Istio CRDs from %s: %w", cp.name, cp.bins.IstioCRDs, err)
	}
	cs, err := kubernetes.NewForConfig(cp.restConfig)
	if err != nil {
		return fmt.Errorf("cluster %s: %w", cp.name, err)
	}
	if err := cp.prepareIstio(ctx, cs); err != nil {
		return err
	}
	cp.timings.IstioCRDs = time.Since(t)

	t = time.Now()
	p, err := cp.startIstiod()
	if err != nil {
		return err
	}
	if err := cp.waitIstiod(ctx, p); err != nil {
		return err
	}
	cp.timings.Istiod = time.Since(t)
	return nil
}

// prepare lays out the cluster directory, allocates ports and writes the
// certificates, token and kubeconfig every process needs.
func (cp *ControlPlane) prepare() error {
	if _, err := os.Stat(filepath.Join(cp.dir, "etcd")); err == nil {
		return fmt.Errorf("cluster %s: %s already holds a cluster's data; give each start a new run directory", cp.name, cp.dir)
	}
	istiodDir := filepath.Join(cp.dir, "istiod")
	if err := mkdirs(cp.dir, cp.LogsDir(), istiodDir); err != nil {
		return fmt.Errorf("cluster %s: %w", cp.name, err)
	}
	n := 4
	if cp.cfg.istiod {
		n += 5
	}
	pp, err := freePorts(n)
	if err != nil {
		return fmt.Errorf("cluster %s: %w", cp.name, err)
	}
	cp.ports = ports{etcdClient: pp[0], etcdPeer: pp[1], apiserver: pp[2], controllerManager: pp[3]}
	if cp.cfg.istiod {
		cp.ports.istiodHTTP, cp.ports.istiodGRPC, cp.ports.istiodMonitoring, cp.ports.istiodCtrlz = pp[4], pp[5], pp[6], pp[7]
		cp.ports.istiodSecureGRPC = pp[8]
	}

	if cp.pki, err = newKubePKI(filepath.Join(cp.dir, "pki"), cp.name, firstServiceIP(cp.cfg.serviceCIDR)); err != nil {
		return fmt.Errorf("cluster %s: %w", cp.name, err)
	}
	if cp.cfg.istiod {
		ca := cp.cfg.ca
		if ca == nil {
			// A cluster on its own still gets a plugged-in CA rather than
			// istiod's self-signed one, so one cluster and many behave alike.
			if ca, err = NewMeshCA(filepath.Join(cp.dir, "mesh-ca")); err != nil {
				return fmt.Errorf("cluster %s: %w", cp.name, err)
			}
		}
		if cp.cacerts, err = ca.issueIntermediate(cp.name, filepath.Join(istiodDir, "cacerts")); err != nil {
			return fmt.Errorf("cluster %s: %w", cp.name, err)
		}
	}

	tok := make([]byte, 24)
	if _, err := rand.Read(tok); err != nil {
		return fmt.Errorf("cluster %s: generate admin token: %w", cp.name, err)
	}
	cp.token = hex.EncodeToString(tok)
	// kube-apiserver's static token file: token,user,uid,"group1,group2".
	cp.tokenFile = filepath.Join(cp.dir, "pki", "tokens.csv")
	if err := writeFile(cp.tokenFile, fmt.Appendf(nil, "%s,admin,admin,\"system:masters\"\n", cp.token), 0o600); err != nil {
		return fmt.Errorf("cluster %s: %w", cp.name, err)
	}
	cp.restConfig = cp.newRESTConfig()
	kc, err := cp.kubeconfig()
	if err != nil {
		return err
	}
	cp.kubeconfigPath = filepath.Join(cp.dir, "kubeconfig")
	if err := writeFile(cp.kubeconfigPath, kc, 0o600); err != nil {
		return fmt.Errorf("cluster %s: %w", cp.name, err)
	}
	if err := writeFile(filepath.Join(cp.dir, "endpoints.env"), cp.endpointsEnv(), 0o644); err != nil {
		return fmt.Errorf("cluster %s: %w", cp.name, err)
	}
	return nil
}

// endpointsEnv is a shell-sourceable summary of where the cluster listens,
// for a person poking at a running drill:
//
//	. <run>/east/endpoints.env && kubectl get pods -A && curl $ISTIOD_HTTP/debug/syncz
func (cp *ControlPlane) endpointsEnv() []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "# drill local cluster %s\n", cp.name)
	fmt.Fprintf(&b, "export KUBECONFIG=%s\n", cp.kubeconfigPath)
	fmt.Fprintf(&b, "APISERVER=%s\n", cp.APIServerURL())
	fmt.Fprintf(&b, "ETCD=http://127.0.0.1:%d\n", cp.ports.etcdClient)
	if cp.cfg.istiod {
		fmt.Fprintf(&b, "ISTIOD_HTTP=%s\n", cp.IstiodHTTPURL())
		fmt.Fprintf(&b, "ISTIOD_XDS=%s\n", cp.IstiodGRPCAddr())
		fmt.Fprintf(&b, "ISTIOD_MONITORING=%s\n", cp.IstiodMonitoringURL())
	}
	return []byte(b.String())
}

// start runs one of the cluster's processes and records it for Stop.
func (cp *ControlPlane) start(name, dir string, env []string, bin string, args ...string) (*process, error) {
	p, err := startProcess(cp.name, name, filepath.Join(cp.LogsDir(), name+".log"), dir, env, bin, args...)
	if err != nil {
		return nil, err
	}
	cp.mu.Lock()
	cp.procs = append(cp.procs, p)
	cp.mu.Unlock()
	cp.cfg.log.Debug("started", "cluster", cp.name, "process", name, "pid", p.PID())
	return p, nil
}

// PauseIstiod freezes (SIGSTOP) or thaws (SIGCONT) the cluster's istiod: a
// control plane that stops answering while its connections stay open, as
// one cut off or hung. Proxies keep the configuration they have; nothing
// they are sent changes until it is thawed.
func (cp *ControlPlane) PauseIstiod(pause bool) error {
	sig := syscall.SIGCONT
	if pause {
		sig = syscall.SIGSTOP
	}
	cp.mu.Lock()
	defer cp.mu.Unlock()
	for _, p := range cp.procs {
		if p.name == "istiod" {
			if p.exited() {
				return fmt.Errorf("cluster %s: istiod has exited", cp.name)
			}
			return p.cmd.Process.Signal(sig)
		}
	}
	return fmt.Errorf("cluster %s runs no istiod", cp.name)
}

// Stop stops the cluster's processes in the reverse of their start order —
// istiod, controller-manager, API server, etcd — each with SIGTERM, then
// SIGKILL after the stop timeout. Clients must go before their servers:
// with etcd gone first, the API server and istiod wait on it and ignore
// SIGTERM. Stop is safe to call more than once and from several goroutines.
func (cp *ControlPlane) Stop(ctx context.Context) error {
	cp.stopOnce.Do(func() {
		cp.mu.Lock()
		procs := append([]*process(nil), cp.procs...)
		for _, p := range procs {
			// A paused istiod would hold SIGTERM until thawed.
			if !p.exited() {
				_ = p.cmd.Process.Signal(syscall.SIGCONT)
			}
		}
		cp.mu.Unlock()
		var errs []error
		for i := len(procs) - 1; i >= 0; i-- {
			if err := procs[i].stop(ctx, cp.cfg.stopTimeout); err != nil {
				errs = append(errs, err)
			}
		}
		cp.stopErr = errors.Join(errs...)
		cp.cfg.log.Info("local control plane stopped", "cluster", cp.name)
	})
	return cp.stopErr
}

// Name is the cluster's name, also its Istio cluster ID.
func (cp *ControlPlane) Name() string { return cp.name }

// Dir is the cluster's directory: data, certificates, kubeconfig, logs.
func (cp *ControlPlane) Dir() string { return cp.dir }

// LogsDir holds one <process>.log per process, each headed by its command line.
func (cp *ControlPlane) LogsDir() string { return filepath.Join(cp.dir, "logs") }

// Kubeconfig is the path of a self-contained kubeconfig with admin rights:
// `kubectl --kubeconfig $(that) get pods -A`.
func (cp *ControlPlane) Kubeconfig() string { return cp.kubeconfigPath }

// RESTConfig is a client configuration for the cluster's API server with
// admin rights. Each call returns a new copy.
func (cp *ControlPlane) RESTConfig() *rest.Config { return rest.CopyConfig(cp.restConfig) }

// APIServerURL is the API server's address, https://127.0.0.1:<port>.
func (cp *ControlPlane) APIServerURL() string {
	return fmt.Sprintf("https://127.0.0.1:%d", cp.ports.apiserver)
}

// ServiceCIDR is the cluster's service IP range.
func (cp *ControlPlane) ServiceCIDR() netip.Prefix { return cp.cfg.serviceCIDR }

// HasIstiod says whether the cluster runs istiod.
func (cp *ControlPlane) HasIstiod() bool { return cp.cfg.istiod }

// IstiodGRPCAddr is istiod's plaintext xDS address (host:port), where the
// emulated sidecars connect; empty without istiod.
func (cp *ControlPlane) IstiodGRPCAddr() string {
	if !cp.cfg.istiod {
		return ""
	}
	return fmt.Sprintf("127.0.0.1:%d", cp.ports.istiodGRPC)
}

// IstiodCAAddr is istiod's secure gRPC address (host:port; Istio's 15012):
// its certificate signing API (IstioCertificateService), served with
// istiod's own certificate from the mesh CA; empty without istiod.
func (cp *ControlPlane) IstiodCAAddr() string {
	if !cp.cfg.istiod {
		return ""
	}
	return fmt.Sprintf("127.0.0.1:%d", cp.ports.istiodSecureGRPC)
}

// MeshRootPEM is the mesh's root certificate (PEM), which istiod's serving
// certificate and every workload certificate chain to; nil without istiod.
func (cp *ControlPlane) MeshRootPEM() []byte {
	return append([]byte(nil), cp.cacerts[rootCertFile]...)
}

// IstiodHTTPURL is istiod's HTTP address (its --httpAddr: /ready, /debug/…);
// empty without istiod.
func (cp *ControlPlane) IstiodHTTPURL() string {
	if !cp.cfg.istiod {
		return ""
	}
	return fmt.Sprintf("http://127.0.0.1:%d", cp.ports.istiodHTTP)
}

// IstiodDebugURL is the base of istiod's debug endpoints (append /syncz,
// /configz, /clusterz, …); empty without istiod.
func (cp *ControlPlane) IstiodDebugURL() string {
	if !cp.cfg.istiod {
		return ""
	}
	return cp.IstiodHTTPURL() + "/debug"
}

// IstiodMonitoringURL is istiod's self-monitoring address (/metrics);
// empty without istiod.
func (cp *ControlPlane) IstiodMonitoringURL() string {
	if !cp.cfg.istiod {
		return ""
	}
	return fmt.Sprintf("http://127.0.0.1:%d", cp.ports.istiodMonitoring)
}

// PIDs maps each started process name to its pid.
func (cp *ControlPlane) PIDs() map[string]int {
	cp.mu.Lock()
	defer cp.mu.Unlock()
	out := make(map[string]int, len(cp.procs))
	for _, p := range cp.procs {
		out[p.name] = p.PID()
	}
	return out
}

// Timings says how long the start took, phase by phase.
func (cp *ControlPlane) Timings() Timings {
	cp.mu.Lock()
	defer cp.mu.Unlock()
	return cp.timings
}

// firstServiceIP is the first address of the service range, which the API
// server takes for the "kubernetes" Service and so must be on its certificate.
func firstServiceIP(cidr netip.Prefix) netip.Addr {
	return cidr.Masked().Addr().Next()
}
