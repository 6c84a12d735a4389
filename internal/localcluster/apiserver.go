package localcluster

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"

	"k8s.io/client-go/kubernetes"
)

// serviceAccountIssuer is the issuer kubeadm clusters use, so projected
// tokens look as they do on a real cluster.
const serviceAccountIssuer = "https://kubernetes.default.svc.cluster.local"

// startAPIServer runs kube-apiserver against the cluster's etcd. It
// authenticates drill and users with a static admin token and authorizes
// everything: the API server is reachable only on 127.0.0.1 and exists for
// one drill.
func (cp *ControlPlane) startAPIServer(ctx context.Context) error {
	p, err := cp.start("kube-apiserver", cp.dir, nil, cp.bins.APIServer,
		fmt.Sprintf("--etcd-servers=http://127.0.0.1:%d", cp.ports.etcdClient),
		"--bind-address=127.0.0.1",
		"--advertise-address=127.0.0.1",
		fmt.Sprintf("--secure-port=%d", cp.ports.apiserver),
		"--cert-dir="+filepath.Join(cp.dir, "pki", "apiserver"),
		"--tls-cert-file="+cp.pki.servingCert,
		"--tls-private-key-file="+cp.pki.servingKey,
		"--client-ca-file="+cp.pki.caCert,
		"--token-auth-file="+cp.tokenFile,
		"--authorization-mode=AlwaysAllow",
		"--service-account-issuer="+serviceAccountIssuer,
		"--service-account-key-file="+cp.pki.saPub,
		"--service-account-signing-key-file="+cp.pki.saKey,
		"--service-cluster-ip-range="+cp.cfg.serviceCIDR.String(),
		// The default reconciler publishes the advertise address as the
		// endpoint of the "kubernetes" Service, and Endpoints validation
		// rejects loopback addresses; nothing in a drill talks to the API
		// server through that Service.
		"--endpoint-reconciler-type=none",
		"--allow-privileged=true",
		"--profiling=false",
		// At -v=1 and above both print every flag at start, burying the
		// error a failed start ends with.
		"--v=0",
	)
	if err != nil {
		return err
	}
	cs, err := kubernetes.NewForConfig(cp.restConfig)
	if err != nil {
		return fmt.Errorf("cluster %s: client for kube-apiserver: %w", cp.name, err)
	}
	return p.waitReady(ctx, cp.cfg.startTimeout, "kube-apiserver /readyz ok", func(ctx context.Context) error {
		body, err := cs.Discovery().RESTClient().Get().AbsPath("/readyz").Do(ctx).Raw()
		if err != nil {
			return err
		}
		if strings.TrimSpace(string(body)) != "ok" {
			return fmt.Errorf("/readyz: %s", body)
		}
		return nil
	})
}
