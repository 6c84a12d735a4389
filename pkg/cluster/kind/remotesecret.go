package kind

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	applycorev1 "k8s.io/client-go/applyconfigurations/core/v1"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/meshdrill/drill/pkg/cluster/existing"
)

// The remote secret's shape, as `istioctl create-remote-secret` writes it
// (istio.io/istio istioctl/pkg/multicluster/remote_secret.go) and istiod's
// secret controller reads it (pkg/kube/multicluster/secretcontroller.go): in
// istio-system, labelled istio/multiCluster=true, annotated with the remote
// cluster's ID, one data key per remote cluster ID holding its kubeconfig.
const (
	MultiClusterLabel        = "istio/multiCluster"
	clusterNameAnnotation    = "networking.istio.io/cluster"
	remoteSecretPrefix       = "istio-remote-secret-"
	istiodDebugPort          = 8080
	istiodClusterzPath       = "/debug/clusterz"
	defaultRemoteSyncTimeout = 3 * time.Minute
)

// RemoteSecret is the Secret that lets the istiods of other clusters read
// cluster's services and endpoints: a kubeconfig for server, trusting caData,
// authenticating with token (the cluster's istio-reader-service-account).
// server must be reachable from the other clusters' pods: on kind, the
// control-plane container's address on the kind network, not the
// <name>-control-plane name of kind's internal kubeconfig, which only Docker's
// DNS resolves (kind issues 1558, 2246; Istio's kind_provisioner.sh does the
// same replacement).
func RemoteSecret(cluster, server string, caData, token []byte) (*corev1.Secret, error) {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters[cluster] = &clientcmdapi.Cluster{Server: server, CertificateAuthorityData: caData}
	cfg.AuthInfos[cluster] = &clientcmdapi.AuthInfo{Token: string(token)}
	cfg.Contexts[cluster] = &clientcmdapi.Context{Cluster: cluster, AuthInfo: cluster}
	cfg.CurrentContext = cluster
	kc, err := clientcmd.Write(*cfg)
	if err != nil {
		return nil, fmt.Errorf("cluster %s: encode remote kubeconfig: %w", cluster, err)
	}
	return &corev1.Secret{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
		ObjectMeta: metav1.ObjectMeta{
			Name:        remoteSecretPrefix + cluster,
			Namespace:   existing.IstioNamespace,
			Labels:      map[string]string{MultiClusterLabel: "true"},
			Annotations: map[string]string{clusterNameAnnotation: cluster},
		},
		Type: corev1.SecretTypeOpaque,
		Data: map[string][]byte{cluster: kc},
	}, nil
}

// remoteSecret builds c's remote secret for the other clusters.
func (c *clusterRun) remoteSecret(ctx context.Context) (*corev1.Secret, error) {
	caData, token, err := c.readerToken(ctx)
	if err != nil {
		return nil, err
	}
	server := "https://" + c.controlPlane.String() + ":6443"
	return RemoteSecret(c.name, server, caData, token)
}

// applySecret applies s to the cluster server-side.
func (c *clusterRun) applySecret(ctx context.Context, s *corev1.Secret) error {
	ac := applycorev1.Secret(s.Name, s.Namespace).
		WithLabels(s.Labels).
		WithAnnotations(s.Annotations).
		WithType(s.Type).
		WithData(s.Data)
	if _, err := c.kube.CoreV1().Secrets(s.Namespace).Apply(ctx, ac, metav1.ApplyOptions{FieldManager: fieldManager, Force: true}); err != nil {
		return fmt.Errorf("cluster %s: apply secret %s/%s: %w", c.name, s.Namespace, s.Name, err)
	}
	return nil
}

// ClusterStatus is one entry of istiod's /debug/clusterz: a cluster it reads
// endpoints from and whether its informers have synced.
type ClusterStatus struct {
	ID         string `json:"id"`
	SecretName string `json:"secretName"`
	SyncStatus string `json:"syncStatus"`
}

// ParseClusterz reads istiod's /debug/clusterz answer.
func ParseClusterz(r io.Reader) ([]ClusterStatus, error) {
	var out []ClusterStatus
	if err := json.NewDecoder(r).Decode(&out); err != nil {
		return nil, fmt.Errorf("decode %s: %w", istiodClusterzPath, err)
	}
	return out, nil
}

// Unsynced lists the clusters of want that status does not report synced,
// as "name=status" ("name=missing" for one istiod does not know).
func Unsynced(status []ClusterStatus, want []string) []string {
	var out []string
	for _, name := range want {
		i := slices.IndexFunc(status, func(s ClusterStatus) bool { return s.ID == name })
		switch {
		case i < 0:
			out = append(out, name+"=missing")
		case status[i].SyncStatus != "synced":
			out = append(out, name+"="+status[i].SyncStatus)
		}
	}
	return out
}

// waitRemoteSynced waits until the cluster's istiod reports every cluster of
// want synced, asking its debug endpoint through a port-forward: proof that
// the remote secrets work (reachable API servers, valid tokens) before the
// drill relies on cross-cluster endpoints.
func (c *clusterRun) waitRemoteSynced(ctx context.Context, want []string, timeout time.Duration) error {
	pods, err := c.kube.CoreV1().Pods(existing.IstioNamespace).List(ctx, metav1.ListOptions{LabelSelector: "app=istiod"})
	if err != nil || len(pods.Items) == 0 {
		return fmt.Errorf("cluster %s: find istiod's pod: %v", c.name, err)
	}
	pod := pods.Items[0].Name
	f, err := existing.PortForward(ctx, c.name, c.cfg, c.kube, existing.IstioNamespace, pod, istiodDebugPort, c.log)
	if err != nil {
		return err
	}
	defer f.Close()
	url := fmt.Sprintf("http://127.0.0.1:%d%s", f.LocalPort, istiodClusterzPath)
	client := &http.Client{Timeout: 10 * time.Second}
	var missing []string
	var lastErr error
	err = c.poll(ctx, "istiod to sync clusters "+strings.Join(want, ", "), timeout, func(ctx context.Context) (bool, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return false, err
		}
		resp, err := client.Do(req)
		if err != nil {
			lastErr = err
			return false, nil
		}
		defer resp.Body.Close()
		status, err := ParseClusterz(resp.Body)
		if err != nil {
			lastErr = err
			return false, nil
		}
		missing, lastErr = Unsynced(status, want), nil
		return len(missing) == 0, nil
	})
	if err != nil {
		return fmt.Errorf("%w (istiod reports %v unsynced%s, last error %v); see `kubectl --kubeconfig %s -n %s logs %s`",
			err, missing, c.remoteSecretsMissing(ctx, missing), lastErr, c.kubeconfig, existing.IstioNamespace, pod)
	}
	c.log.Info("istiod reads every cluster", "clusters", want)
	return nil
}

// remoteSecretsMissing says, for clusters istiod has not synced, whether
// their remote secret is missing or present but not (yet) usable.
func (c *clusterRun) remoteSecretsMissing(ctx context.Context, clusters []string) string {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	var out []string
	for _, name := range clusters {
		if name == c.name {
			continue
		}
		secret := remoteSecretPrefix + name
		s, err := c.kube.CoreV1().Secrets(existing.IstioNamespace).Get(ctx, secret, metav1.GetOptions{})
		switch {
		case err != nil:
			out = append(out, fmt.Sprintf("no remote secret %s/%s for cluster %s (%v)", existing.IstioNamespace, secret, name, err))
		case s.Labels[MultiClusterLabel] != "true":
			out = append(out, fmt.Sprintf("remote secret %s/%s lacks the label %s=true istiod watches", existing.IstioNamespace, secret, MultiClusterLabel))
		default:
			out = append(out, fmt.Sprintf("remote secret %s/%s is there: istiod cannot reach or read cluster %s's API server with it", existing.IstioNamespace, secret, name))
		}
	}
	if len(out) == 0 {
		return ""
	}
	return ": " + strings.Join(out, "; ")
}
