package localcluster

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/yaml"
)

// IstioNamespace is where istiod, its configuration and the remote secrets
// live, as in every Istio installation.
const IstioNamespace = "istio-system"

// NetworkLabel is the label on the system namespace that tells istiod which
// network its cluster is on (Istio's label.TopologyNetwork).
const NetworkLabel = "topology.istio.io/network"

// meshConfig is istiod's mesh configuration (istio.io/api mesh/v1alpha1
// MeshConfig). The root CA is listed as a trust anchor so the trust bundle
// istiod pushes names it explicitly, as a multicluster install with a shared
// root does.
func (cp *ControlPlane) meshConfig() ([]byte, error) {
	return yaml.Marshal(map[string]any{
		"trustDomain":   cp.cfg.trustDomain,
		"rootNamespace": IstioNamespace,
		"defaultConfig": map[string]any{
			"discoveryAddress": cp.IstiodGRPCAddr(),
			"meshId":           cp.cfg.meshID,
		},
		"caCertificates": []any{map[string]any{
			"pem":          string(cp.cacerts[rootCertFile]),
			"trustDomains": []string{cp.cfg.trustDomain},
		}},
		// Istio's default since 1.10; said here because the emulated sidecar
		// serves the merged /stats/prometheus endpoint on that premise.
		"enablePrometheusMerge": true,
	})
}

// prepareIstio creates what an Istio installation puts in the cluster before
// istiod runs: the istio-system namespace, the "cacerts" secret with the
// cluster's intermediate CA, and the "istio" ConfigMap with the mesh
// configuration; and writes the files istiod reads.
func (cp *ControlPlane) prepareIstio(ctx context.Context, cs kubernetes.Interface) error {
	dir := filepath.Join(cp.dir, "istiod")
	mesh, err := cp.meshConfig()
	if err != nil {
		return fmt.Errorf("encode mesh config: %w", err)
	}
	// No meshNetworks: local clusters share one flat network (loopback),
	// so istiod sends every endpoint's own address, not a gateway's.
	networks := []byte("networks: {}\n")
	if err := writeFile(filepath.Join(dir, "mesh.yaml"), mesh, 0o644); err != nil {
		return err
	}
	if err := writeFile(filepath.Join(dir, "meshNetworks.yaml"), networks, 0o644); err != nil {
		return err
	}

	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: IstioNamespace}}
	if cp.cfg.network != "" {
		ns.Labels = map[string]string{NetworkLabel: cp.cfg.network}
	}
	objs := []func() error{
		func() error {
			_, err := cs.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{FieldManager: fieldManager})
			return err
		},
		func() error {
			// The secret Istio's "Plug in CA certificates" task creates; istiod
			// here reads the same files from ROOT_CA_DIR, as it would from the
			// secret mounted at /etc/cacerts.
			_, err := cs.CoreV1().Secrets(IstioNamespace).Create(ctx, &corev1.Secret{
				ObjectMeta: metav1.ObjectMeta{Name: "cacerts", Namespace: IstioNamespace},
				Type:       corev1.SecretTypeOpaque,
				Data:       cp.cacerts,
			}, metav1.CreateOptions{FieldManager: fieldManager})
			return err
		},
		func() error {
			_, err := cs.CoreV1().ConfigMaps(IstioNamespace).Create(ctx, &corev1.ConfigMap{
				ObjectMeta: metav1.ObjectMeta{Name: "istio", Namespace: IstioNamespace},
				Data:       map[string]string{"mesh": string(mesh), "meshNetworks": string(networks)},
			}, metav1.CreateOptions{FieldManager: fieldManager})
			return err
		},
	}
	for _, create := range objs {
		if err := create(); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("cluster %s: prepare %s: %w", cp.name, IstioNamespace, err)
		}
	}
	return nil
}

// startIstiod runs pilot-discovery against the cluster. Every port it would
// open on all interfaces by default is moved to its own port on 127.0.0.1,
// the secure gRPC port (15012) too: the emulated proxies get their
// workload certificates from istiod's CA there, as pilot-agent does. The
// webhook port (15017) is turned off: webhooks then share the HTTP port,
// where nothing calls them.
func (cp *ControlPlane) startIstiod() (*process, error) {
	dir := filepath.Join(cp.dir, "istiod")
	cacertsDir := filepath.Join(dir, "cacerts")
	env := []string{
		"POD_NAMESPACE=" + IstioNamespace,
		"POD_NAME=istiod-" + cp.name,
		"CLUSTER_ID=" + cp.name,
		"ROOT_CA_DIR=" + cacertsDir,
		"PILOT_CERT_PROVIDER=istiod",
	}
	return cp.start("istiod", dir, env, cp.bins.Istiod,
		"discovery",
		"--kubeconfig="+cp.kubeconfigPath,
		"--clusterID="+cp.name,
		"--meshConfig="+filepath.Join(dir, "mesh.yaml"),
		"--networksConfig="+filepath.Join(dir, "meshNetworks.yaml"),
		fmt.Sprintf("--httpAddr=127.0.0.1:%d", cp.ports.istiodHTTP),
		fmt.Sprintf("--grpcAddr=127.0.0.1:%d", cp.ports.istiodGRPC),
		fmt.Sprintf("--monitoringAddr=127.0.0.1:%d", cp.ports.istiodMonitoring),
		fmt.Sprintf("--ctrlz_port=%d", cp.ports.istiodCtrlz),
		"--ctrlz_address=127.0.0.1",
		fmt.Sprintf("--secureGRPCAddr=127.0.0.1:%d", cp.ports.istiodSecureGRPC),
		"--httpsAddr=",
		"--domain=cluster.local",
		"--log_output_level=default:info",
	)
}

func (cp *ControlPlane) waitIstiod(ctx context.Context, p *process) error {
	return p.waitReady(ctx, cp.cfg.startTimeout, "istiod /ready ok", func(ctx context.Context) error {
		return httpOK(ctx, http.DefaultClient, cp.IstiodHTTPURL()+"/ready")
	})
}

// RemoteClusterStatus is one entry of istiod's /debug/clusterz: a cluster it
// reads endpoints from, and whether its informers have synced.
type RemoteClusterStatus struct {
	ID         string `json:"id"`
	SecretName string `json:"secretName"`
	SyncStatus string `json:"syncStatus"` // "syncing", "synced", "timeout", "closed"
}

// IstiodClusters asks istiod which clusters it reads endpoints from (its own
// first, then one per remote secret).
func (cp *ControlPlane) IstiodClusters(ctx context.Context) ([]RemoteClusterStatus, error) {
	if !cp.cfg.istiod {
		return nil, fmt.Errorf("cluster %s runs no istiod", cp.name)
	}
	url := cp.IstiodDebugURL() + "/clusterz"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("cluster %s: GET %s: %w", cp.name, url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("cluster %s: GET %s: %s", cp.name, url, resp.Status)
	}
	var out []RemoteClusterStatus
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return nil, fmt.Errorf("cluster %s: decode %s: %w", cp.name, url, err)
	}
	return out, nil
}

func mkdirs(dirs ...string) error {
	for _, d := range dirs {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return fmt.Errorf("create %s: %w", d, err)
		}
	}
	return nil
}
