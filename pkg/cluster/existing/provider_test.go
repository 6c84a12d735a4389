package existing

import (
	"context"

	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/meshdrill/drill/internal/localcluster"
	"github.com/meshdrill/drill/internal/localcluster/localtest"
	"github.com/meshdrill/drill/pkg/cluster"
	"github.com/meshdrill/drill/pkg/scenario"
	"github.com/meshdrill/drill/pkg/translate"
)

func TestParseContexts(t *testing.T) {
	tests := []struct {
		in      []string
		want    map[string]string
		wantErr string
	}{
		{in: []string{"cluster1=kind-a,cluster2=gke_proj_eu_b"}, want: map[string]string{"cluster1": "kind-a", "cluster2": "gke_proj_eu_b"}},
		{in: []string{"cluster1=a", " cluster2 = arn:aws:eks:eu-west-1:123:cluster/b "}, want: map[string]string{"cluster1": "a", "cluster2": "arn:aws:eks:eu-west-1:123:cluster/b"}},
		{in: []string{"cluster1=a,", ""}, want: map[string]string{"cluster1": "a"}},
		{in: []string{"cluster1=a", "cluster1=a"}, want: map[string]string{"cluster1": "a"}},
		{in: []string{"cluster1"}, wantErr: `--context "cluster1": write CLUSTER=CONTEXT`},
		{in: []string{"=ctx"}, wantErr: "write CLUSTER=CONTEXT"},
		{in: []string{"Cluster_1=ctx"}, wantErr: `"Cluster_1" is not a cluster name`},
		{in: []string{"cluster1=a,cluster1=b"}, wantErr: `cluster cluster1 is given two contexts, "a" and "b"`},
	}
	for _, tt := range tests {
		got, err := ParseContexts(tt.in...)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ParseContexts(%q) = %v, want error %q", tt.in, err, tt.wantErr)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("ParseContexts(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
}

func loadScenario(t *testing.T, path string) *scenario.Scenario {
	t.Helper()
	s, err := scenario.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestUpContextMapping(t *testing.T) {
	seed := loadScenario(t, filepath.Join("..", "..", "..", "scenarios", "reviews-failover.yaml"))
	tests := []struct {
		contexts map[string]string
		want     []string
	}{
		{map[string]string{"cluster1": "a"}, []string{"cluster cluster2 has no kube context: add --context cluster2=<context>"}},
		{map[string]string{"cluster1": "a", "cluster2": "a"}, []string{`clusters cluster1 and cluster2 are both context "a"`}},
		{map[string]string{"cluster1": "a", "cluster2": "b", "cluster3": "c"}, []string{"--context names cluster cluster3, which", "(its clusters: cluster1, cluster2)"}},
	}
	for _, tt := range tests {
		_, err := New(tt.contexts).Up(context.Background(), seed)
		for _, w := range tt.want {
			if err == nil || !strings.Contains(err.Error(), w) {
				t.Errorf("Up with %v = %v, want %q", tt.contexts, err, w)
			}
		}
	}
}

func TestRESTConfigUnknownContext(t *testing.T) {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["c"] = &clientcmdapi.Cluster{Server: "https://127.0.0.1:6443"}
	cfg.AuthInfos["u"] = &clientcmdapi.AuthInfo{Token: "t"}
	cfg.Contexts["staging"] = &clientcmdapi.Context{Cluster: "c", AuthInfo: "u"}
	cfg.Contexts["prod"] = &clientcmdapi.Context{Cluster: "c", AuthInfo: "u"}
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		t.Fatal(err)
	}
	_, err := RESTConfig(path, "prdo")
	want := `kube context "prdo" is not in ` + path + `; it has prod, staging (see ` + "`kubectl config get-contexts`)"
	if err == nil || err.Error() != want {
		t.Fatalf("RESTConfig = %v\nwant %s", err, want)
	}
	rc, err := RESTConfig(path, "prod")
	if err != nil || rc.Host != "https://127.0.0.1:6443" || rc.BearerToken != "t" || rc.QPS != 50 {
		t.Fatalf("RESTConfig(prod) = %+v, %v", rc, err)
	}
}

// TestUpAgainstAPIServer runs the provider against a real kube-apiserver (the
// local provider's, without istiod and with no controller that would rewrite
// Deployment status), adding what a cluster with Istio and Bookinfo has piece
// by piece and checking what Up says is missing at each stage.
func TestUpAgainstAPIServer(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a kube-apiserver")
	}
	cp := localtest.Start(t, localcluster.WithoutIstiod(), localcluster.WithControllers("namespace-controller"))
	kube, err := kubernetes.NewForConfig(cp.RESTConfig())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	s := loadScenario(t, filepath.Join("testdata", "one-cluster.yaml"))
	p := New(map[string]string{"cluster1": cp.Name()}, WithKubeconfig(cp.Kubeconfig()))

	// Nothing installed.
	_, err = p.Up(ctx, s)
	wantErr(t, err, `cluster cluster1 (context "`+cp.Name()+`"): namespace istio-system does not exist: Istio is not installed (install Istio as in istio.io's multicluster guide`)

	// istio-system and an istiod that is not available and has the wrong ID.
	mustCreate(t, func() error {
		_, err := kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: IstioNamespace}}, metav1.CreateOptions{})
		return err
	})
	istiod := istiodDeployment("Kubernetes")
	mustCreate(t, func() error {
		_, err := kube.AppsV1().Deployments(IstioNamespace).Create(ctx, istiod, metav1.CreateOptions{})
		return err
	})
	_, err = p.Up(ctx, s)
	wantErr(t, err,
		"deployment istio-system/istiod has 0 of 1 replicas available",
		`istiod runs as cluster ID "Kubernetes", but the scenario calls this cluster "cluster1" (name the cluster "Kubernetes" in the scenario`,
		"service istio-system/istio-ingressgateway, the ingress gateway that takes the drill's load, does not exist",
		"deployment default/productpage-v1 does not exist (install Bookinfo with --install-bookinfo",
		"deployment default/reviews-v1 does not exist",
	)
	if strings.Contains(err.Error(), "reviews-v2") {
		t.Errorf("Up asks for reviews-v2, which the scenario does not run there: %v", err)
	}

	// Istio as the drill needs it, and Bookinfo's Deployments.
	d, err := kube.AppsV1().Deployments(IstioNamespace).Get(ctx, "istiod", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	d.Spec.Template.Spec.Containers[0].Env = []corev1.EnvVar{{Name: "CLUSTER_ID", Value: "cluster1"}}
	if d, err = kube.AppsV1().Deployments(IstioNamespace).Update(ctx, d, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	d.Status = appsv1.DeploymentStatus{Replicas: 1, ReadyReplicas: 1, AvailableReplicas: 1, UpdatedReplicas: 1,
		Conditions: []appsv1.DeploymentCondition{{Type: appsv1.DeploymentAvailable, Status: corev1.ConditionTrue, Reason: "MinimumReplicasAvailable"}}}
	if _, err := kube.AppsV1().Deployments(IstioNamespace).UpdateStatus(ctx, d, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	createLoadBalancer(t, ctx, kube, IngressGatewayService, "172.18.255.200", []corev1.ServicePort{
		{Name: "status-port", Port: 15021, TargetPort: intstr.FromInt32(15021)},
		{Name: "http2", Port: 80, TargetPort: intstr.FromInt32(8080)},
		{Name: "https", Port: 443, TargetPort: intstr.FromInt32(8443)},
	})
	set, err := Manifests(s, s.Spec.Clusters[0])
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range set.Deployments {
		mustCreate(t, func() error {
			_, err := kube.AppsV1().Deployments(d.Namespace).Create(ctx, d, metav1.CreateOptions{})
			return err
		})
	}

	clusters, err := p.Up(ctx, s)
	if err != nil {
		t.Fatalf("Up with Istio and Bookinfo in place: %v", err)
	}
	if len(clusters) != 1 {
		t.Fatalf("%d clusters", len(clusters))
	}
	c := clusters[0]
	if c.Name != "cluster1" || c.Context != cp.Name() || c.Kubeconfig != cp.Kubeconfig() || c.Owned || c.DataPlane != cluster.DataPlaneEnvoy {
		t.Errorf("cluster = %+v", c)
	}
	if _, err := c.Kube.CoreV1().Namespaces().Get(ctx, "default", metav1.GetOptions{}); err != nil {
		t.Errorf("the cluster's client does not reach the API server: %v", err)
	}
	url, err := c.Access.Ingress(ctx)
	if err != nil || url != "http://172.18.255.200:80" {
		t.Errorf("Ingress = %q, %v", url, err)
	}

	// The east-west gateway's address, for the aggregate strategy's remote
	// ServiceEntries.
	createLoadBalancer(t, ctx, kube, EastWestGatewayName, "172.18.255.201", []corev1.ServicePort{
		{Name: "status-port", Port: 15021, TargetPort: intstr.FromInt32(15021)},
		{Name: "tls", Port: 15443, TargetPort: intstr.FromInt32(15443)},
		{Name: "tls-istiod", Port: 15012, TargetPort: intstr.FromInt32(15012)},
	})
	ew, err := c.Access.(*Access).EastWest(ctx)
	if err != nil || ew != (translate.Endpoint{Address: "172.18.255.201", Port: 15443}) {
		t.Errorf("EastWest = %+v, %v", ew, err)
	}

	// A gateway without an address: the wait ends with advice.
	createLoadBalancer(t, ctx, kube, "pending-gateway", "", []corev1.ServicePort{{Name: "http2", Port: 80, TargetPort: intstr.FromInt32(8080)}})
	short := NewAccess("cluster1", cp.RESTConfig(), kube, WithAddressTimeout(1500*time.Millisecond))
	if _, _, err := short.waitAddress(ctx, "pending-gateway"); err == nil || !strings.Contains(err.Error(), "got no LoadBalancer address within 1.5s") {
		t.Errorf("waitAddress without an address = %v", err)
	}

	// A URL given for the ingress wins over the Service.
	p2 := New(map[string]string{"cluster1": cp.Name()}, WithKubeconfig(cp.Kubeconfig()), WithIngress("cluster1", "http://10.0.0.7:31380"))
	clusters, err = p2.Up(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	if url, err := clusters[0].Access.Ingress(ctx); err != nil || url != "http://10.0.0.7:31380" {
		t.Errorf("Ingress with WithIngress = %q, %v", url, err)
	}
	if err := p2.Down(ctx); err != nil {
		t.Errorf("Down = %v", err)
	}
	if _, err := kube.AppsV1().Deployments("default").Get(ctx, "reviews-v1", metav1.GetOptions{}); err != nil {
		t.Errorf("Down touched the cluster: %v", err)
	}
}

func TestUpUnreachable(t *testing.T) {
	cfg := clientcmdapi.NewConfig()
	// A port nothing listens on: connection refused at once.
	cfg.Clusters["c"] = &clientcmdapi.Cluster{Server: "https://127.0.0.1:1"}
	cfg.AuthInfos["u"] = &clientcmdapi.AuthInfo{Token: "t"}
	cfg.Contexts["gone"] = &clientcmdapi.Context{Cluster: "c", AuthInfo: "u"}
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		t.Fatal(err)
	}
	s := loadScenario(t, filepath.Join("testdata", "one-cluster.yaml"))
	_, err := New(map[string]string{"cluster1": "gone"}, WithKubeconfig(path), WithConnectTimeout(5*time.Second)).Up(context.Background(), s)
	wantErr(t, err, `cluster cluster1: cannot reach the API server of context "gone" at https://127.0.0.1:1`, "check `kubectl --context gone get namespaces`")
}

func istiodDeployment(clusterID string) *appsv1.Deployment {
	labels := map[string]string{"app": "istiod"}
	one := int32(1)
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "istiod", Namespace: IstioNamespace, Labels: labels},
		Spec: appsv1.DeploymentSpec{
			Replicas: &one,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{
					Name: "discovery", Image: "docker.io/istio/pilot:1.31.1",
					Env: []corev1.EnvVar{{Name: "CLUSTER_ID", Value: clusterID}},
				}}},
			},
		},
	}
}

func createLoadBalancer(t *testing.T, ctx context.Context, kube kubernetes.Interface, name, ip string, ports []corev1.ServicePort) {
	t.Helper()
	svc, err := kube.CoreV1().Services(IstioNamespace).Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: IstioNamespace},
		Spec:       corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, Ports: ports, Selector: map[string]string{"istio": name}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if ip == "" {
		return
	}
	// What MetalLB or a cloud's controller writes once it has an address.
	svc.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: ip}}
	if _, err := kube.CoreV1().Services(IstioNamespace).UpdateStatus(ctx, svc, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
}

func mustCreate(t *testing.T, f func() error) {
	t.Helper()
	if err := f(); err != nil {
		t.Fatal(err)
	}
}

func wantErr(t *testing.T, err error, parts ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want one containing %q", parts)
	}
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Errorf("error lacks %q:\n%v", p, err)
		}
	}
}
