package localcluster

import (
	"net/netip"
	"testing"

	"k8s.io/client-go/tools/clientcmd"
)

// TestRemoteSecretShape checks the remote secret against what istiod's
// secret controller accepts: the label it selects on, one key per cluster
// ID, and a kubeconfig without file references (Istio refuses tokenFile,
// clientCertificate and clientKey paths in remote secrets).
func TestRemoteSecretShape(t *testing.T) {
	dir := t.TempDir()
	pki, err := newKubePKI(dir, "west", netip.MustParseAddr("10.97.0.1"))
	if err != nil {
		t.Fatal(err)
	}
	west := &ControlPlane{name: "west", pki: pki, token: "secret-token", ports: ports{apiserver: 6443}}
	s, err := RemoteSecret(west)
	if err != nil {
		t.Fatal(err)
	}
	if s.Name != "istio-remote-secret-west" || s.Namespace != "istio-system" {
		t.Errorf("secret %s/%s", s.Namespace, s.Name)
	}
	if s.Labels["istio/multiCluster"] != "true" || s.Annotations["networking.istio.io/cluster"] != "west" {
		t.Errorf("labels %v annotations %v", s.Labels, s.Annotations)
	}
	if len(s.Data) != 1 || s.Data["west"] == nil {
		t.Fatalf("data keys %v, want only west", s.Data)
	}
	kc, err := clientcmd.Load(s.Data["west"])
	if err != nil {
		t.Fatal(err)
	}
	if err := clientcmd.Validate(*kc); err != nil {
		t.Fatal(err)
	}
	for name, ai := range kc.AuthInfos {
		if ai.TokenFile != "" || ai.ClientCertificate != "" || ai.ClientKey != "" || ai.Exec != nil || ai.AuthProvider != nil {
			t.Errorf("user %s refers to files or plugins: %+v", name, ai)
		}
		if ai.Token != "secret-token" {
			t.Errorf("user %s token %q", name, ai.Token)
		}
	}
	c := kc.Clusters[kc.Contexts[kc.CurrentContext].Cluster]
	if c.Server != "https://127.0.0.1:6443" || len(c.CertificateAuthorityData) == 0 || c.CertificateAuthority != "" {
		t.Errorf("cluster %+v: want the server and inline CA data", c)
	}
}
