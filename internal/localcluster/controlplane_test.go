package localcluster_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/yaml"

	"github.com/meshdrill/drill/internal/localcluster"
	"github.com/meshdrill/drill/internal/localcluster/localtest"
)

// helperEnv, when set, turns the test binary into a helper process that
// starts a control plane, reports it in the file the variable names, and
// waits to be killed (TestKubernetesControlPlane kills it).
const helperEnv = "DRILL_LOCAL_TEST_HELPER"

type helperReport struct {
	Kubeconfig string         `json:"kubeconfig"`
	PIDs       map[string]int `json:"pids"`
	CIDR       string         `json:"serviceCIDR"`
}

func TestMain(m *testing.M) {
	if out := os.Getenv(helperEnv); out != "" {
		os.Exit(runHelper(out))
	}
	os.Exit(m.Run())
}

func runHelper(out string) int {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cp, err := localcluster.StartControlPlane(ctx, "helper", localcluster.WithoutIstiod(), localcluster.WithRunDir(filepath.Dir(out)),
		localcluster.WithServiceCIDR(netip.MustParsePrefix("10.123.0.0/16")))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	b, _ := json.Marshal(helperReport{Kubeconfig: cp.Kubeconfig(), PIDs: cp.PIDs(), CIDR: cp.ServiceCIDR().String()})
	if err := os.WriteFile(out+".tmp", b, 0o644); err != nil || os.Rename(out+".tmp", out) != nil {
		fmt.Fprintln(os.Stderr, "write report:", err)
		return 1
	}
	// Wait to be killed: the point is that the children die with us.
	select {}
}

// TestKubernetesControlPlane starts a cluster without istiod in a helper
// process, uses it through its kubeconfig as a user would, then kills the
// helper with SIGKILL — no Stop, no cleanup — and checks that the kernel took
// every control-plane process with it.
func TestKubernetesControlPlane(t *testing.T) {
	localtest.SkipIfDisabled(t)
	// The control-plane tests run in parallel: most of a start is waiting on
	// the processes' own initialisation, which overlaps well.
	t.Parallel()
	if _, err := localcluster.FindBinaries("", false); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	report := filepath.Join(dir, "report.json")
	helper := exec.Command(os.Args[0], "-test.run=^$")
	helper.Env = append(os.Environ(), helperEnv+"="+report)
	var stderr bytes.Buffer
	helper.Stderr = &stderr
	if err := helper.Start(); err != nil {
		t.Fatal(err)
	}
	helperDone := make(chan error, 1)
	go func() { helperDone <- helper.Wait() }()
	t.Cleanup(func() {
		_ = helper.Process.Kill()
		<-helperDone
	})

	var rep helperReport
	waitFor(t, 3*time.Minute, "helper to start its control plane", func() (bool, error) {
		select {
		case err := <-helperDone:
			helperDone <- err
			return false, fmt.Errorf("helper exited (%v): %s", err, stderr.String())
		default:
		}
		b, err := os.ReadFile(report)
		if err != nil {
			return false, nil
		}
		return true, json.Unmarshal(b, &rep)
	})
	for _, name := range []string{"etcd", "kube-apiserver", "kube-controller-manager"} {
		if rep.PIDs[name] == 0 {
			t.Fatalf("helper reports no %s pid: %v", name, rep.PIDs)
		}
	}

	t.Run("kubeconfig", func(t *testing.T) {
		cfg, err := clientcmd.BuildConfigFromFlags("", rep.Kubeconfig)
		if err != nil {
			t.Fatalf("load kubeconfig: %v", err)
		}
		cs := kubernetes.NewForConfigOrDie(cfg)
		v, err := cs.Discovery().ServerVersion()
		if err != nil {
			t.Fatal(err)
		}
		if v.GitVersion != "v1.37.2" {
			t.Errorf("server version %q, want v1.37.2 (set by hack/build-tools.sh)", v.GitVersion)
		}
		testDeploymentGetsPods(t, cs, rep.CIDR)
	})

	if err := helper.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-helperDone
	helperDone <- nil
	waitProcessesGone(t, rep.PIDs, 10*time.Second)
}

// testDeploymentGetsPods checks that the controller-manager's controllers run:
// a Deployment gets a ReplicaSet, the ReplicaSet pods (Pending: there is no
// node), a Service a ClusterIP from the cluster's range and, once pods are
// ready, endpoints.
func testDeploymentGetsPods(t *testing.T, cs kubernetes.Interface, cidr string) {
	ctx := t.Context()
	ns := "drill-test"
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// The service-account controller creates "default" and the root CA
	// publisher kube-root-ca.crt in every new namespace; pods need the first.
	waitFor(t, 30*time.Second, "default service account and kube-root-ca.crt in "+ns, func() (bool, error) {
		_, err1 := cs.CoreV1().ServiceAccounts(ns).Get(ctx, "default", metav1.GetOptions{})
		_, err2 := cs.CoreV1().ConfigMaps(ns).Get(ctx, "kube-root-ca.crt", metav1.GetOptions{})
		return err1 == nil && err2 == nil, nil
	})

	replicas := int32(2)
	labels := map[string]string{"app": "reviews", "version": "v1"}
	dep := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "reviews-v1", Namespace: ns},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{
					Name: "reviews", Image: "docker.io/istio/examples-bookinfo-reviews-v1:1.20.2",
					Ports: []corev1.ContainerPort{{ContainerPort: 9080}},
				}}},
			},
		},
	}
	if _, err := cs.AppsV1().Deployments(ns).Create(ctx, dep, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "a ReplicaSet owned by the Deployment", func() (bool, error) {
		rss, err := cs.AppsV1().ReplicaSets(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, err
		}
		for _, rs := range rss.Items {
			if ref := metav1.GetControllerOf(&rs); ref != nil && ref.Kind == "Deployment" && ref.Name == dep.Name {
				return true, nil
			}
		}
		return false, nil
	})
	waitFor(t, 30*time.Second, "2 Pending pods of the ReplicaSet", func() (bool, error) {
		pods, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=reviews"})
		if err != nil {
			return false, err
		}
		n := 0
		for _, p := range pods.Items {
			if ref := metav1.GetControllerOf(&p); ref == nil || ref.Kind != "ReplicaSet" {
				return false, fmt.Errorf("pod %s not owned by a ReplicaSet: %v", p.Name, p.OwnerReferences)
			}
			if p.Status.Phase == corev1.PodPending && p.Spec.NodeName == "" {
				n++
			}
		}
		return n == 2, nil
	})

	svc, err := cs.CoreV1().Services(ns).Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "reviews", Namespace: ns},
		Spec: corev1.ServiceSpec{
			Selector: map[string]string{"app": "reviews"},
			Ports:    []corev1.ServicePort{{Name: "http", Port: 9080}},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ip, err := netip.ParseAddr(svc.Spec.ClusterIP)
	if err != nil || !netip.MustParsePrefix(cidr).Contains(ip) {
		t.Errorf("service ClusterIP %q not in the cluster's range %s", svc.Spec.ClusterIP, cidr)
	}
	// The EndpointSlice controller publishes a slice for the Service even
	// with no ready pod.
	waitFor(t, 30*time.Second, "an EndpointSlice for the reviews Service", func() (bool, error) {
		slices, err := cs.DiscoveryV1().EndpointSlices(ns).List(ctx, metav1.ListOptions{LabelSelector: "kubernetes.io/service-name=reviews"})
		return err == nil && len(slices.Items) > 0, err
	})

	// Garbage collection: deleting the Deployment takes its ReplicaSet and
	// pods with it.
	bg := metav1.DeletePropagationBackground
	if err := cs.AppsV1().Deployments(ns).Delete(ctx, dep.Name, metav1.DeleteOptions{PropagationPolicy: &bg}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "the garbage collector to delete the ReplicaSet and pods", func() (bool, error) {
		rss, err := cs.AppsV1().ReplicaSets(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, err
		}
		pods, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
		return len(rss.Items) == 0 && len(pods.Items) == 0, err
	})
}

var destinationRuleGVR = schema.GroupVersionResource{Group: "networking.istio.io", Version: "v1", Resource: "destinationrules"}

// TestMesh starts two clusters with istiod under one root CA and checks what
// Istio needs of them: istiod ready and serving its debug endpoints, the
// plugged-in CA in use, Istio's CRD schemas enforced by the API server, each
// istiod reading the other cluster through its remote secret; then that Stop
// leaves no process behind.
func TestMesh(t *testing.T) {
	t.Parallel()
	m := localtest.StartClusters(t, []string{"east", "west"})
	east, west := m.Cluster("east"), m.Cluster("west")
	for _, c := range m.Clusters() {
		t.Logf("cluster %s started in %s: %+v", c.Name(), c.Timings().Total.Round(time.Millisecond), c.Timings())
	}
	if east.ServiceCIDR() == west.ServiceCIDR() {
		t.Errorf("both clusters use service range %s", east.ServiceCIDR())
	}

	t.Run("endpoints.env", func(t *testing.T) {
		b, err := os.ReadFile(filepath.Join(east.Dir(), "endpoints.env"))
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{
			"export KUBECONFIG=" + east.Kubeconfig() + "\n",
			"ISTIOD_XDS=" + east.IstiodGRPCAddr() + "\n",
			"ISTIOD_HTTP=" + east.IstiodHTTPURL() + "\n",
		} {
			if !strings.Contains(string(b), want) {
				t.Errorf("endpoints.env lacks %q:\n%s", want, b)
			}
		}
	})

	t.Run("istiod debug endpoints", func(t *testing.T) {
		for _, path := range []string{"/syncz", "/clusterz", "/mesh"} {
			resp, err := http.Get(east.IstiodDebugURL() + path)
			if err != nil {
				t.Fatal(err)
			}
			var v any
			err = json.NewDecoder(resp.Body).Decode(&v)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK || err != nil {
				t.Errorf("GET %s: %s, JSON decode error %v", path, resp.Status, err)
			}
		}
	})

	t.Run("istiod version", func(t *testing.T) {
		v, err := east.IstiodVersion(t.Context())
		if err != nil || v == "" || strings.Contains(v, "Clean") {
			t.Errorf("IstiodVersion = %q, %v; want the version istiod was built as", v, err)
		}
		t.Logf("istiod reports version %s", v)
	})

	t.Run("plugged-in CA", func(t *testing.T) {
		// istiod publishes the root it signs under to every namespace as
		// istio-ca-root-cert; it must be the mesh's root, not a self-signed
		// one, and the same in both clusters.
		for _, c := range m.Clusters() {
			cs := kubernetes.NewForConfigOrDie(c.RESTConfig())
			var got string
			waitFor(t, 30*time.Second, "istio-ca-root-cert in "+c.Name(), func() (bool, error) {
				cm, err := cs.CoreV1().ConfigMaps("default").Get(t.Context(), "istio-ca-root-cert", metav1.GetOptions{})
				if apierrors.IsNotFound(err) {
					return false, nil
				}
				if err != nil {
					return false, err
				}
				got = cm.Data["root-cert.pem"]
				return true, nil
			})
			if !strings.Contains(got, strings.TrimSpace(string(m.CA().CertPEM()))) {
				t.Errorf("cluster %s: istio-ca-root-cert does not hold the mesh root CA:\n%s", c.Name(), got)
			}
		}
	})

	t.Run("Istio CRD validation", func(t *testing.T) {
		dyn := dynamic.NewForConfigOrDie(east.RESTConfig()).Resource(destinationRuleGVR).Namespace("default")
		tests := []struct {
			name      string
			spec      string
			wantField string // "" for a valid object
		}{
			{name: "valid", spec: `
host: reviews.default.svc.cluster.local
trafficPolicy:
  loadBalancer: {simple: ROUND_ROBIN, localityLbSetting: {enabled: true}}
  outlierDetection: {consecutive5xxErrors: 5, interval: 10s, baseEjectionTime: 30s, maxEjectionPercent: 100}
`},
			{name: "unknown-lb", wantField: "spec.trafficPolicy.loadBalancer.simple", spec: `
host: reviews
trafficPolicy: {loadBalancer: {simple: FASTEST}}
`},
			{name: "zero-interval", wantField: "spec.trafficPolicy.outlierDetection.interval", spec: `
host: reviews
trafficPolicy: {outlierDetection: {interval: 0s}}
`},
			{name: "negative-errors", wantField: "spec.trafficPolicy.outlierDetection.consecutive5xxErrors", spec: `
host: reviews
trafficPolicy: {outlierDetection: {consecutive5xxErrors: -1}}
`},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				var spec map[string]any
				if err := yaml.Unmarshal([]byte(tt.spec), &spec); err != nil {
					t.Fatal(err)
				}
				dr := &unstructured.Unstructured{Object: map[string]any{
					"apiVersion": "networking.istio.io/v1", "kind": "DestinationRule",
					"metadata": map[string]any{"name": tt.name}, "spec": spec,
				}}
				_, err := dyn.Apply(t.Context(), tt.name, dr, metav1.ApplyOptions{FieldManager: "drill-test"})
				if tt.wantField == "" {
					if err != nil {
						t.Fatalf("valid DestinationRule rejected: %v", err)
					}
					return
				}
				t.Logf("rejected: %v", err)
				if !apierrors.IsInvalid(err) {
					t.Fatalf("got %v, want an Invalid error", err)
				}
				if !strings.Contains(err.Error(), tt.wantField) {
					t.Errorf("error does not name field %s: %v", tt.wantField, err)
				}
			})
		}
	})

	t.Run("remote secrets", func(t *testing.T) {
		cs := kubernetes.NewForConfigOrDie(east.RESTConfig())
		secrets, err := cs.CoreV1().Secrets(localcluster.IstioNamespace).List(t.Context(), metav1.ListOptions{LabelSelector: localcluster.MultiClusterSecretLabel + "=true"})
		if err != nil {
			t.Fatal(err)
		}
		if len(secrets.Items) != 1 || secrets.Items[0].Name != "istio-remote-secret-west" {
			t.Fatalf("east has remote secrets %v, want istio-remote-secret-west", secrets.Items)
		}
		kc := secrets.Items[0].Data["west"]
		cfg, err := clientcmd.RESTConfigFromKubeConfig(kc)
		if err != nil {
			t.Fatalf("west's kubeconfig in east: %v", err)
		}
		if cfg.Host != west.APIServerURL() {
			t.Errorf("remote secret points at %s, want %s", cfg.Host, west.APIServerURL())
		}
		sts, err := east.IstiodClusters(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("east istiod clusters: %+v", sts)
	})

	// A Service created in west shows up in east's istiod registry.
	t.Run("cross-cluster discovery", func(t *testing.T) {
		cs := kubernetes.NewForConfigOrDie(west.RESTConfig())
		if _, err := cs.CoreV1().Services("default").Create(t.Context(), &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: "ratings"},
			Spec:       corev1.ServiceSpec{Selector: map[string]string{"app": "ratings"}, Ports: []corev1.ServicePort{{Name: "http", Port: 9080}}},
		}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 30*time.Second, "east's istiod to list ratings.default from west", func() (bool, error) {
			resp, err := http.Get(east.IstiodDebugURL() + "/registryz")
			if err != nil {
				return false, err
			}
			defer resp.Body.Close()
			var svcs []struct {
				Hostname    string `json:"hostname"`
				ClusterVIPs struct {
					Addresses map[string][]string `json:"Addresses"`
				} `json:"clusterVIPs"`
			}
			if err := json.NewDecoder(resp.Body).Decode(&svcs); err != nil {
				return false, err
			}
			for _, s := range svcs {
				if s.Hostname == "ratings.default.svc.cluster.local" && len(s.ClusterVIPs.Addresses["west"]) > 0 {
					return true, nil
				}
			}
			return false, nil
		})
	})

	var pids []map[string]int
	for _, c := range m.Clusters() {
		pids = append(pids, c.PIDs())
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	start := time.Now()
	if err := m.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("stopped in %s", time.Since(start).Round(time.Millisecond))
	for _, p := range pids {
		waitProcessesGone(t, p, 5*time.Second)
	}
}

// TestStartFailure checks that a start that cannot succeed says which
// process failed and why, and leaves nothing running.
func TestStartFailure(t *testing.T) {
	localtest.SkipIfDisabled(t)
	t.Parallel()
	tests := []struct {
		name        string
		opts        func(t *testing.T) []localcluster.Option
		wantProcess string // "" when the error comes before any process starts
		wantErr     error
		wantText    string
	}{
		{
			name: "missing binaries",
			opts: func(t *testing.T) []localcluster.Option {
				return []localcluster.Option{localcluster.WithBinDir(t.TempDir())}
			},
			wantErr:  localcluster.ErrMissingBinary,
			wantText: "make tools",
		},
		{
			// Accepted by drill, refused by kube-controller-manager when it
			// validates its flags: etcd and the API server are up by then,
			// and must be stopped.
			name: "controller-manager refuses its flags",
			opts: func(t *testing.T) []localcluster.Option {
				return []localcluster.Option{localcluster.WithoutIstiod(), localcluster.WithControllers("no-such-controller")}
			},
			wantProcess: "kube-controller-manager",
			wantText:    "no-such-controller",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			runDir := t.TempDir()
			opts := append([]localcluster.Option{localcluster.WithRunDir(runDir)}, tt.opts(t)...)
			cp, err := localcluster.StartControlPlane(t.Context(), "broken", opts...)
			if err == nil {
				_ = cp.Stop(context.Background())
				t.Fatal("start succeeded")
			}
			t.Logf("error: %v", err)
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Errorf("error is not %v", tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantText) {
				t.Errorf("error does not mention %q", tt.wantText)
			}
			if tt.wantProcess != "" {
				var se *localcluster.StartError
				if !errors.As(err, &se) {
					t.Fatalf("error is not a *local.StartError")
				}
				if se.Process != tt.wantProcess || se.Cluster != "broken" || se.LogTail == "" {
					t.Errorf("StartError{Process: %q, Cluster: %q, LogTail: %d bytes}, want process %q with a log tail",
						se.Process, se.Cluster, len(se.LogTail), tt.wantProcess)
				}
			}
			if left := processesMentioning(t, runDir); len(left) > 0 {
				t.Errorf("processes left running after a failed start: %v", left)
			}
		})
	}
}

func waitFor(t *testing.T, timeout time.Duration, what string, cond func() (bool, error)) {
	t.Helper()
	var last error
	err := wait.PollUntilContextTimeout(t.Context(), 100*time.Millisecond, timeout, true, func(context.Context) (bool, error) {
		ok, err := cond()
		last = err
		return ok, nil
	})
	if err != nil {
		t.Fatalf("waiting %s for %s: %v (last error: %v)", timeout, what, err, last)
	}
}

// waitProcessesGone waits until none of pids is alive. A zombie counts as
// gone: it has exited and only waits for its new parent to reap it.
func waitProcessesGone(t *testing.T, pids map[string]int, timeout time.Duration) {
	t.Helper()
	waitFor(t, timeout, fmt.Sprintf("processes %v to exit", pids), func() (bool, error) {
		for name, pid := range pids {
			if alive(pid) {
				return false, fmt.Errorf("%s (pid %d) still running", name, pid)
			}
		}
		return true, nil
	})
}

func alive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	// /proc/<pid>/stat: "pid (comm) state ..."; comm may hold spaces.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}

// processesMentioning lists live processes whose command line contains s.
func processesMentioning(t *testing.T, s string) []string {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		cmdline, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err != nil || !bytes.Contains(cmdline, []byte(s)) || !alive(pid) {
			continue
		}
		out = append(out, fmt.Sprintf("%d: %s", pid, bytes.ReplaceAll(cmdline, []byte{0}, []byte{' '})))
	}
	return out
}
