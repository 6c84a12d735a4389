package kind

import (
	"bytes"
	"context"
	"log/slog"
	"net/netip"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/meshdrill/drill/internal/localcluster"
	"github.com/meshdrill/drill/internal/localcluster/localtest"
	"github.com/meshdrill/drill/internal/pki"
	"github.com/meshdrill/drill/pkg/cluster"
	"github.com/meshdrill/drill/pkg/fault"
	"github.com/meshdrill/drill/pkg/scenario"
)

// TestClusterStepsAgainstAPIServer runs the steps of Up that need only an API
// server — istio-system and cacerts, the reader token and the remote secret
// built from it, the waits for addresses and Deployments, the Cluster handed
// to the engine — against a real kube-apiserver and kube-controller-manager
// (the local provider's control plane). What needs kind nodes (pods that
// run) is not here.
func TestClusterStepsAgainstAPIServer(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a kube-apiserver")
	}
	cp := localtest.Start(t, localcluster.WithoutIstiod())
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	var log bytes.Buffer
	p := New(WithStateDir(t.TempDir()), WithLogger(slog.New(slog.NewTextHandler(&log, nil))),
		WithIngressMode(IngressLoadBalancer), WithTimeouts(0, 3*time.Second, 0))
	c := &clusterRun{
		p: p, sc: scenario.Cluster{Name: "cluster1", Network: "network-cluster1", Ingress: true},
		name: "cluster1", kindName: "drill-cluster1",
		kubeconfig: cp.Kubeconfig(), context: cp.Name(),
		log: p.log.With("cluster", "cluster1"),
	}
	if err := c.connect(); err != nil {
		t.Fatal(err)
	}

	// istio-system with the network label, and the cluster's intermediate CA.
	ca, err := pki.New()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.prepareIstio(ctx, ca); err != nil {
		t.Fatal(err)
	}
	ns, err := c.kube.CoreV1().Namespaces().Get(ctx, "istio-system", metav1.GetOptions{})
	if err != nil || ns.Labels["topology.istio.io/network"] != "network-cluster1" {
		t.Fatalf("istio-system: %v, labels %v", err, ns.Labels)
	}
	sec, err := c.kube.CoreV1().Secrets("istio-system").Get(ctx, "cacerts", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	certs, err := pki.FromSecret(sec)
	if err != nil {
		t.Fatal(err)
	}
	if err := certs.Verify(ca, time.Now()); err != nil {
		t.Fatalf("cacerts in the cluster: %v", err)
	}
	// Again (a reused cluster): the same intermediate is kept.
	c.reused = true
	if err := c.prepareIstio(ctx, ca); err != nil {
		t.Fatal(err)
	}
	again, _ := c.kube.CoreV1().Secrets("istio-system").Get(ctx, "cacerts", metav1.GetOptions{})
	if !bytes.Equal(again.Data["ca-cert.pem"], sec.Data["ca-cert.pem"]) {
		t.Error("the intermediate of a reused cluster was replaced")
	}
	// A cluster of another mesh CA is refused, with the way out.
	other, err := pki.New()
	if err != nil {
		t.Fatal(err)
	}
	err = c.prepareIstio(ctx, other)
	if err == nil || !strings.Contains(err.Error(), "is not of this mesh's CA") || !strings.Contains(err.Error(), "kind delete cluster --name drill-cluster1") {
		t.Errorf("prepareIstio with another mesh CA = %v", err)
	}

	// The reader token and the remote secret: the kubeconfig it carries
	// authenticates to the API server as istio-reader-service-account.
	if _, err := c.kube.CoreV1().ServiceAccounts("istio-system").Create(ctx, &corev1.ServiceAccount{
		ObjectMeta: metav1.ObjectMeta{Name: readerServiceAccount},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	c.controlPlane = mustAddr(t, "127.0.0.1")
	rs, err := c.remoteSecret(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.applySecret(ctx, rs); err != nil {
		t.Fatal(err)
	}
	applied, err := c.kube.CoreV1().Secrets("istio-system").Get(ctx, "istio-remote-secret-cluster1", metav1.GetOptions{})
	if err != nil || applied.Labels["istio/multiCluster"] != "true" {
		t.Fatalf("applied remote secret: %v, %v", err, applied.Labels)
	}
	kc, err := clientcmd.Load(applied.Data["cluster1"])
	if err != nil {
		t.Fatal(err)
	}
	if got := kc.Clusters["cluster1"].Server; got != "https://127.0.0.1:6443" {
		t.Errorf("remote server %s, want the control plane's address on port 6443", got)
	}
	// Point it at where this API server listens, and use it.
	kc.Clusters["cluster1"].Server = cp.APIServerURL()
	rc, err := clientcmd.NewDefaultClientConfig(*kc, nil).ClientConfig()
	if err != nil {
		t.Fatal(err)
	}
	reader, err := kubernetes.NewForConfig(rc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := reader.CoreV1().Services("istio-system").List(ctx, metav1.ListOptions{}); err != nil {
		t.Fatalf("the remote secret's kubeconfig does not work: %v", err)
	}

	// Waits: a Service without an address times out with advice; with one,
	// the address is returned and is the cluster's ingress.
	if _, err := c.kube.CoreV1().Services("istio-system").Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "istio-ingressgateway"},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, Selector: map[string]string{"istio": "ingressgateway"},
			Ports: []corev1.ServicePort{{Name: "http2", Port: 80, TargetPort: intstr.FromInt32(8080), NodePort: IngressNodePort}}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	_, err = c.waitLoadBalancer(ctx, "istio-system", "istio-ingressgateway", 2*time.Second)
	if err == nil || !strings.Contains(err.Error(), "cluster cluster1: a LoadBalancer address for service istio-system/istio-ingressgateway not ready within 2s: MetalLB assigned no address") {
		t.Errorf("waitLoadBalancer without an address = %v", err)
	}
	svc, _ := c.kube.CoreV1().Services("istio-system").Get(ctx, "istio-ingressgateway", metav1.GetOptions{})
	svc.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: "172.18.255.247"}}
	if _, err := c.kube.CoreV1().Services("istio-system").UpdateStatus(ctx, svc, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	addr, err := c.waitLoadBalancer(ctx, "istio-system", "istio-ingressgateway", 10*time.Second)
	if err != nil || addr != "172.18.255.247" {
		t.Errorf("waitLoadBalancer = %q, %v", addr, err)
	}
	err = c.waitDeployment(ctx, "istio-system", "istiod", 2*time.Second)
	if err == nil || !strings.Contains(err.Error(), "deployment istio-system/istiod not ready within 2s") {
		t.Errorf("waitDeployment of a missing Deployment = %v", err)
	}

	// The engine's view.
	cl := c.cluster()
	if cl.Name != "cluster1" || !cl.Owned || cl.DataPlane != cluster.DataPlaneEnvoy || cl.Context != cp.Name() || cl.Kubeconfig != cp.Kubeconfig() {
		t.Errorf("cluster = %+v", cl)
	}
	if url, err := cl.Access.Ingress(ctx); err != nil || url != "http://172.18.255.247:80" {
		t.Errorf("Ingress = %q, %v", url, err)
	}
	if a, ok := cl.Access.(*access); !ok || a.Access == nil {
		t.Errorf("Access is %T, want the kind access over an *existing.Access", cl.Access)
	} else if _, ok := cl.Access.(fault.Network); !ok {
		t.Error("a kind cluster's access gives no network for a partition")
	}

	for _, step := range []string{`msg="waiting for a LoadBalancer address for service istio-system/istio-ingressgateway" cluster=cluster1`,
		`msg="created the cluster's intermediate CA" cluster=cluster1`, `msg="keeping the cluster's intermediate CA" cluster=cluster1`} {
		if !strings.Contains(log.String(), step) {
			t.Errorf("log lacks %s", step)
		}
	}
}

func mustAddr(t *testing.T, s string) netip.Addr {
	t.Helper()
	a, err := netip.ParseAddr(s)
	if err != nil {
		t.Fatal(err)
	}
	return a
}
