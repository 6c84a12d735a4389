package localcluster

import (
	"fmt"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// kubeconfig is a self-contained kubeconfig for the cluster: the CA and the
// admin token are inline, not file references, because Istio accepts no file
// references in a remote secret (istio.io/istio pkg/kube/util.go,
// sanitizeKubeConfig) and users may copy the file elsewhere.
func (cp *ControlPlane) kubeconfig() ([]byte, error) {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters[cp.name] = &clientcmdapi.Cluster{
		Server:                   cp.APIServerURL(),
		CertificateAuthorityData: cp.pki.caCertPEM,
	}
	user := "admin@" + cp.name
	cfg.AuthInfos[user] = &clientcmdapi.AuthInfo{Token: cp.token}
	cfg.Contexts[cp.name] = &clientcmdapi.Context{Cluster: cp.name, AuthInfo: user}
	cfg.CurrentContext = cp.name
	b, err := clientcmd.Write(*cfg)
	if err != nil {
		return nil, fmt.Errorf("cluster %s: encode kubeconfig: %w", cp.name, err)
	}
	return b, nil
}

// newRESTConfig is drill's own client configuration for the cluster.
func (cp *ControlPlane) newRESTConfig() *rest.Config {
	return &rest.Config{
		Host:        cp.APIServerURL(),
		BearerToken: cp.token,
		TLSClientConfig: rest.TLSClientConfig{
			CAData: cp.pki.caCertPEM,
		},
		// client-go's defaults (5 QPS, burst 10) throttle a drill that
		// creates a whole application and watches it at once; the API server
		// is local and serves nobody else.
		QPS:       100,
		Burst:     200,
		UserAgent: "drill",
	}
}
