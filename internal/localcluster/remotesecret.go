package localcluster

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	applycorev1 "k8s.io/client-go/applyconfigurations/core/v1"
	"k8s.io/client-go/kubernetes"
)

// The remote secret's shape, as `istioctl create-remote-secret` writes it
// (istio.io/istio istioctl/pkg/multicluster/remote_secret.go) and istiod's
// secret controller reads it (pkg/kube/multicluster/secretcontroller.go):
// in the system namespace, labelled istio/multiCluster=true, one data key per
// remote cluster ID holding that cluster's kubeconfig.
const (
	MultiClusterSecretLabel = "istio/multiCluster"
	clusterNameAnnotation   = "networking.istio.io/cluster"
	remoteSecretPrefix      = "istio-remote-secret-"
)

// RemoteSecret returns the Secret that lets the istiod of another cluster
// read remote's services and endpoints.
func RemoteSecret(remote *ControlPlane) (*corev1.Secret, error) {
	kc, err := remote.kubeconfig()
	if err != nil {
		return nil, err
	}
	return &corev1.Secret{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
		ObjectMeta: metav1.ObjectMeta{
			Name:        remoteSecretPrefix + remote.name,
			Namespace:   IstioNamespace,
			Labels:      map[string]string{MultiClusterSecretLabel: "true"},
			Annotations: map[string]string{clusterNameAnnotation: remote.name},
		},
		Type: corev1.SecretTypeOpaque,
		Data: map[string][]byte{remote.name: kc},
	}, nil
}

// CreateRemoteSecret applies remote's remote secret to local (server-side,
// so applying it again is harmless).
func CreateRemoteSecret(ctx context.Context, local, remote *ControlPlane) error {
	s, err := RemoteSecret(remote)
	if err != nil {
		return err
	}
	cs, err := kubernetes.NewForConfig(local.restConfig)
	if err != nil {
		return fmt.Errorf("cluster %s: %w", local.name, err)
	}
	ac := applycorev1.Secret(s.Name, s.Namespace).
		WithLabels(s.Labels).
		WithAnnotations(s.Annotations).
		WithType(s.Type).
		WithData(s.Data)
	if _, err := cs.CoreV1().Secrets(s.Namespace).Apply(ctx, ac, metav1.ApplyOptions{FieldManager: fieldManager, Force: true}); err != nil {
		return fmt.Errorf("cluster %s: apply remote secret for cluster %s: %w", local.name, remote.name, err)
	}
	return nil
}

// WaitRemoteClustersSynced waits until c's istiod lists every cluster in
// want (its own included) as synced in /debug/clusterz.
func WaitRemoteClustersSynced(ctx context.Context, c *ControlPlane, want []string, timeout time.Duration) error {
	var last []RemoteClusterStatus
	var lastErr error
	err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		last, lastErr = c.IstiodClusters(ctx)
		if lastErr != nil {
			return false, nil
		}
		for _, name := range want {
			if !slices.ContainsFunc(last, func(s RemoteClusterStatus) bool { return s.ID == name && s.SyncStatus == "synced" }) {
				return false, nil
			}
		}
		return true, nil
	})
	if err == nil {
		return nil
	}
	var got []string
	for _, s := range last {
		got = append(got, s.ID+"="+s.SyncStatus)
	}
	if lastErr != nil {
		got = append(got, "last error: "+lastErr.Error())
	}
	return fmt.Errorf("cluster %s: istiod did not sync clusters %s within %s (it reports: %s); see %s",
		c.name, strings.Join(want, ", "), timeout, strings.Join(got, ", "), c.LogsDir()+"/istiod.log")
}
