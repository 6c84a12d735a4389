package kind

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	networking "istio.io/api/networking/v1alpha3"
	networkingv1 "istio.io/client-go/pkg/apis/networking/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	applycorev1 "k8s.io/client-go/applyconfigurations/core/v1"
	"sigs.k8s.io/yaml"

	"github.com/meshdrill/drill/internal/bookinfo"
	"github.com/meshdrill/drill/internal/pki"
	"github.com/meshdrill/drill/pkg/cluster/existing"
	"github.com/meshdrill/drill/pkg/scenario"
	"github.com/meshdrill/drill/pkg/translate"
)

// MeshID is the mesh ID every cluster's Istio is installed with
// (values.global.meshID): one mesh, several clusters and networks.
const MeshID = "drill"

// crossNetworkGateway is the Gateway of Istio's
// samples/multicluster/expose-services.yaml.
const crossNetworkGateway = "cross-network-gateway"

// IstioOperator is the IstioOperator drill installs in scenario cluster c with
// istioctl, following Istio's "Install Multi-Primary on different networks"
// (istio.io docs: setup/install/multicluster/multi-primary_multi-network):
//
//   - the default profile (istiod and the ingress gateway) from hub:tag;
//   - values.global meshID, multiCluster.clusterName (the scenario's cluster
//     name, which drill's policy selects endpoints by) and network;
//   - the east-west gateway of samples/multicluster/gen-eastwest-gateway.sh
//     --network, in the same operator;
//   - the ingress gateway's HTTP port on NodePort IngressNodePort, which the
//     kind node maps to the host;
//   - Istio's DNS proxy, so that ServiceEntry hostnames drill's policy defines
//     (a failover hostname) resolve in pods.
//   - the resource requests of Istio's demo profile (profile-demo.yaml: 10m
//     CPU for istiod, gateways and every sidecar), so that a cluster's
//     requests fit a laptop's Docker engine: with the default profile's
//     (istiod 500m, 100m a proxy) the seed's Bookinfo does not schedule on a
//     2-CPU node. Requests only place pods; they limit nothing.
func IstioOperator(c scenario.Cluster, hub, tag string) ([]byte, error) {
	port := func(name string, port, target int) map[string]any {
		return map[string]any{"name": name, "port": port, "targetPort": target}
	}
	http := port("http2", 80, 8080)
	http["nodePort"] = IngressNodePort
	iop := map[string]any{
		"apiVersion": "install.istio.io/v1alpha1",
		"kind":       "IstioOperator",
		"metadata":   map[string]any{"name": "drill", "namespace": existing.IstioNamespace},
		"spec": map[string]any{
			"profile": "default",
			"hub":     hub,
			"tag":     tag,
			"meshConfig": map[string]any{
				"defaultConfig": map[string]any{
					"proxyMetadata": map[string]any{"ISTIO_META_DNS_CAPTURE": "true"},
				},
			},
			"values": map[string]any{
				"global": map[string]any{
					"meshID":       MeshID,
					"multiCluster": map[string]any{"clusterName": c.Name},
					"network":      c.Network,
					"proxy":        map[string]any{"resources": requests("40Mi")},
				},
				"pilot": map[string]any{"resources": requests("100Mi")},
			},
			"components": map[string]any{
				"ingressGateways": []any{
					map[string]any{
						"name":    existing.IngressGatewayService,
						"enabled": true,
						"k8s": map[string]any{
							"resources": requests("40Mi"),
							"service": map[string]any{
								"type": "LoadBalancer",
								"ports": []any{
									port("status-port", 15021, 15021),
									http,
									port("https", 443, 8443),
								},
							},
						},
					},
					map[string]any{
						"name":    existing.EastWestGatewayName,
						"enabled": true,
						"label": map[string]any{
							"istio":               "eastwestgateway",
							"app":                 existing.EastWestGatewayName,
							existing.NetworkLabel: c.Network,
						},
						"k8s": map[string]any{
							"resources": requests("40Mi"),
							// Traffic through this gateway is routed inside its
							// own network (gen-eastwest-gateway.sh).
							"env": []any{map[string]any{"name": "ISTIO_META_REQUESTED_NETWORK_VIEW", "value": c.Network}},
							"service": map[string]any{
								"type": "LoadBalancer",
								"ports": []any{
									port("status-port", 15021, 15021),
									port("tls", translate.DefaultGatewayPort, translate.DefaultGatewayPort),
									port("tls-istiod", 15012, 15012),
									port("tls-webhook", 15017, 15017),
								},
							},
						},
					},
				},
			},
		},
	}
	return yaml.Marshal(iop)
}

// requests is a resources block of 10m CPU and mem memory requested.
func requests(mem string) map[string]any {
	return map[string]any{"requests": map[string]any{"cpu": "10m", "memory": mem}}
}

// CrossNetworkGateway is samples/multicluster/expose-services.yaml: the
// east-west gateway passes mTLS traffic for every *.local service through,
// routed by SNI (AUTO_PASSTHROUGH).
func CrossNetworkGateway() *networkingv1.Gateway {
	gw := &networkingv1.Gateway{
		TypeMeta:   metav1.TypeMeta{APIVersion: networkingv1.SchemeGroupVersion.String(), Kind: "Gateway"},
		ObjectMeta: metav1.ObjectMeta{Name: crossNetworkGateway, Namespace: existing.IstioNamespace},
	}
	gw.Spec.Selector = map[string]string{"istio": "eastwestgateway"}
	gw.Spec.Servers = []*networking.Server{{
		Port:  &networking.Port{Number: translate.DefaultGatewayPort, Name: "tls", Protocol: "TLS"},
		Tls:   &networking.ServerTLSSettings{Mode: networking.ServerTLSSettings_AUTO_PASSTHROUGH},
		Hosts: []string{"*.local"},
	}}
	return gw
}

// installIstio installs Istio in the cluster: istio-system labelled with the
// cluster's network, the cacerts secret of the mesh CA, istioctl install of
// IstioOperator, the cross-network Gateway, then waits for istiod and both
// gateways with their addresses. On a reused cluster that already runs the
// pinned Istio it keeps it.
func (c *clusterRun) installIstio(ctx context.Context, ca *pki.MeshCA, istioctl *Istioctl) error {
	if err := c.prepareIstio(ctx, ca); err != nil {
		return err
	}

	if c.reused && c.istioInstalled(ctx) {
		c.log.Info("Istio already installed; keeping it", "version", c.p.istioVersion)
	} else {
		iop, err := IstioOperator(c.sc, c.p.istioHub, c.p.istioVersion)
		if err != nil {
			return fmt.Errorf("cluster %s: %w", c.name, err)
		}
		iopFile := filepath.Join(c.p.stateDir, c.kindName+"-istio.yaml")
		if err := os.WriteFile(iopFile, iop, 0o644); err != nil {
			return fmt.Errorf("cluster %s: %w", c.name, err)
		}
		c.log.Info("installing Istio", "version", c.p.istioVersion, "hub", c.p.istioHub, "operator", iopFile)
		start := time.Now()
		err = istioctl.Run(ctx, c.log, "install", "-y", "-f", iopFile,
			"--kubeconfig", c.kubeconfig, "--context", c.context,
			"--readiness-timeout", c.p.readyTimeout.String())
		if err != nil {
			return fmt.Errorf("cluster %s: install Istio %s: %w; the operator is %s", c.name, c.p.istioVersion, err, iopFile)
		}
		c.log.Info("Istio installed", "took", time.Since(start).Round(time.Second))
	}

	u, err := bookinfo.ToUnstructured(CrossNetworkGateway())
	if err != nil {
		return fmt.Errorf("cluster %s: %w", c.name, err)
	}
	if err := newApplier(c.kube.Discovery(), c.dyn).apply(ctx, u); err != nil {
		return fmt.Errorf("cluster %s: expose services through the east-west gateway: %w", c.name, err)
	}
	for _, d := range []string{"istiod", existing.IngressGatewayService, existing.EastWestGatewayName} {
		if err := c.waitDeployment(ctx, existing.IstioNamespace, d, c.p.readyTimeout); err != nil {
			return err
		}
	}
	for _, svc := range []string{existing.IngressGatewayService, existing.EastWestGatewayName} {
		addr, err := c.waitLoadBalancer(ctx, existing.IstioNamespace, svc, c.p.readyTimeout)
		if err != nil {
			return err
		}
		c.log.Info("gateway address", "service", svc, "address", addr)
	}
	return nil
}

// prepareIstio does what Istio's multicluster guide does before installing:
// istio-system labelled with the cluster's network, and the cacerts secret.
func (c *clusterRun) prepareIstio(ctx context.Context, ca *pki.MeshCA) error {
	ns := applycorev1.Namespace(existing.IstioNamespace).WithLabels(map[string]string{existing.NetworkLabel: c.sc.Network})
	if _, err := c.kube.CoreV1().Namespaces().Apply(ctx, ns, metav1.ApplyOptions{FieldManager: fieldManager, Force: true}); err != nil {
		return fmt.Errorf("cluster %s: create namespace %s: %w", c.name, existing.IstioNamespace, err)
	}
	return c.ensureCACerts(ctx, ca)
}

// ensureCACerts creates istio-system/cacerts from a new intermediate of ca,
// or keeps the one a reused cluster has when it chains to ca. A cacerts of
// another mesh is an error: replacing it under a running istiod would leave
// workloads with certificates of the old root.
func (c *clusterRun) ensureCACerts(ctx context.Context, ca *pki.MeshCA) error {
	cur, err := c.kube.CoreV1().Secrets(pki.SecretNamespace).Get(ctx, pki.SecretName, metav1.GetOptions{})
	switch {
	case err == nil:
		certs, ferr := pki.FromSecret(cur)
		if ferr == nil {
			ferr = certs.Verify(ca, time.Now())
		}
		if ferr != nil {
			return fmt.Errorf("cluster %s: its %s/%s secret is not of this mesh's CA (%v): the cluster was created with another state directory than %s; delete it (kind delete cluster --name %s) or run with that state directory",
				c.name, pki.SecretNamespace, pki.SecretName, ferr, c.p.stateDir, c.kindName)
		}
		c.log.Info("keeping the cluster's intermediate CA", "secret", pki.SecretNamespace+"/"+pki.SecretName)
		return nil
	case !apierrors.IsNotFound(err):
		return fmt.Errorf("cluster %s: get secret %s/%s: %w", c.name, pki.SecretNamespace, pki.SecretName, err)
	}
	certs, err := ca.Intermediate(c.name)
	if err != nil {
		return err
	}
	s := certs.Secret()
	if _, err := c.kube.CoreV1().Secrets(s.Namespace).Create(ctx, s, metav1.CreateOptions{FieldManager: fieldManager}); err != nil {
		return fmt.Errorf("cluster %s: create secret %s/%s: %w", c.name, s.Namespace, s.Name, err)
	}
	c.log.Info("created the cluster's intermediate CA", "secret", s.Namespace+"/"+s.Name, "root", ca.Certificate().Subject.String())
	return nil
}

// istioInstalled reports whether istiod of the pinned version runs as this
// cluster's ID, with both gateways.
func (c *clusterRun) istioInstalled(ctx context.Context) bool {
	d, err := c.kube.AppsV1().Deployments(existing.IstioNamespace).Get(ctx, "istiod", metav1.GetOptions{})
	if err != nil || len(d.Spec.Template.Spec.Containers) == 0 {
		return false
	}
	if !strings.HasSuffix(d.Spec.Template.Spec.Containers[0].Image, ":"+c.p.istioVersion) {
		c.log.Info("istiod runs another version; installing the pinned one", "image", d.Spec.Template.Spec.Containers[0].Image, "version", c.p.istioVersion)
		return false
	}
	found, err := existing.VerifyIstio(ctx, c.kube, existing.IstioWant{Cluster: c.name, Ingress: true, EastWest: true})
	return err == nil && len(found) == 0
}

// readerServiceAccount is the service account Istio's base chart creates for
// remote istiods to read a cluster with (istioctl create-remote-secret uses
// it).
const readerServiceAccount = "istio-reader-service-account"

// readerToken returns the CA and a long-lived token of the reader service
// account, creating its token secret as istioctl create-remote-secret does
// (istio.io/istio istioctl/pkg/multicluster/remote_secret.go).
func (c *clusterRun) readerToken(ctx context.Context) (caData, token []byte, err error) {
	name := readerServiceAccount + "-istio-remote-secret-token"
	_, err = c.kube.CoreV1().Secrets(existing.IstioNamespace).Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{
			Name:        name,
			Annotations: map[string]string{corev1.ServiceAccountNameKey: readerServiceAccount},
		},
		Type: corev1.SecretTypeServiceAccountToken,
	}, metav1.CreateOptions{FieldManager: fieldManager})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return nil, nil, fmt.Errorf("cluster %s: create token secret for %s: %w", c.name, readerServiceAccount, err)
	}
	var s *corev1.Secret
	err = c.poll(ctx, "the token of "+readerServiceAccount, time.Minute, func(ctx context.Context) (bool, error) {
		s, err = c.kube.CoreV1().Secrets(existing.IstioNamespace).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		return len(s.Data[corev1.ServiceAccountTokenKey]) > 0 && len(s.Data[corev1.ServiceAccountRootCAKey]) > 0, nil
	})
	if err != nil {
		return nil, nil, err
	}
	return s.Data[corev1.ServiceAccountRootCAKey], s.Data[corev1.ServiceAccountTokenKey], nil
}
