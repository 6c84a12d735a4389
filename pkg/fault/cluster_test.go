package fault_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"

	"github.com/meshdrill/drill/internal/localcluster"
	"github.com/meshdrill/drill/internal/localcluster/localtest"
	"github.com/meshdrill/drill/pkg/event"
)

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) == "1" {
		os.Exit(runChild())
	}
	os.Exit(m.Run())
}

// cluster is a real control plane (etcd, kube-apiserver and
// kube-controller-manager, no node) shared by the subtests of one test.
type cluster struct {
	cp *localcluster.ControlPlane
	cs kubernetes.Interface
}

// TestAgainstAPIServer runs the faults against one real control plane; each
// subtest works in a namespace of its own.
func TestAgainstAPIServer(t *testing.T) {
	c := startCluster(t)
	for _, tt := range []struct {
		name string
		run  func(*testing.T, *cluster)
	}{
		{"ScaleByApp", testScaleByApp},
		{"ScaleByNameAndSelector", testScaleByNameAndSelector},
		{"ScaleNoMatch", testScaleNoMatch},
		{"RevertFailsThenRestoreByHand", testRevertFailsThenRestoreByHand},
		{"PanicInEngineReverts", testPanicInEngineReverts},
		{"DeletePods", testDeletePods},
		{"GatewayLossScale", testGatewayLossScale},
		{"ControlPlaneLossScale", testControlPlaneLossScale},
		{"GuardRefuses", testGuardRefuses},
		{"CtrlCReverts", testCtrlCReverts},
		{"CtrlCRevertsStuckEngine", testCtrlCRevertsStuckEngine},
		{"KillThenUndo", testKillThenUndo},
		{"ZoneLoss", testZoneLoss},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.run(t, c)
		})
	}
}

func startCluster(t *testing.T) *cluster {
	t.Helper()
	cp := localtest.Start(t, localcluster.WithoutIstiod())
	return &cluster{cp: cp, cs: kubernetes.NewForConfigOrDie(cp.RESTConfig())}
}

// namespace creates a namespace of its own for a subtest.
func (c *cluster) namespace(t *testing.T) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "fault-"}}
	ns, err := c.cs.CoreV1().Namespaces().Create(context.Background(), ns, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return ns.Name
}

// deploy creates a Deployment the way Bookinfo labels its own: app and
// version. With no node in the cluster its pods stay Pending, which is all
// the faults need: the Deployment and ReplicaSet controllers are real.
func (c *cluster) deploy(t *testing.T, ns, app, version string, replicas int32) *appsv1.Deployment {
	t.Helper()
	lbl := map[string]string{"app": app, "version": version}
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: app + "-" + version, Namespace: ns, Labels: lbl},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: lbl},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: lbl},
				Spec: corev1.PodSpec{
					Containers: []corev1.Container{{Name: app, Image: "docker.io/istio/examples-bookinfo-" + app + "-" + version + ":1.20.3"}},
				},
			},
		},
	}
	d, err := c.cs.AppsV1().Deployments(ns).Create(context.Background(), d, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	c.waitPods(t, ns, d.Name, int(replicas))
	return d
}

// waitPods waits until the Deployment's controller reports n pods and n
// non-terminating pods of it exist.
func (c *cluster) waitPods(t *testing.T, ns, name string, n int) []corev1.Pod {
	t.Helper()
	var pods []corev1.Pod
	var last string
	err := wait.PollUntilContextTimeout(context.Background(), 100*time.Millisecond, 60*time.Second, true, func(ctx context.Context) (bool, error) {
		d, err := c.cs.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
		if err != nil {
			return false, err
		}
		list, err := c.cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: sel.String()})
		if err != nil {
			return false, err
		}
		pods = pods[:0]
		for _, p := range list.Items {
			if p.DeletionTimestamp == nil {
				pods = append(pods, p)
			}
		}
		last = fmt.Sprintf("status.replicas=%d pods=%d", d.Status.Replicas, len(pods))
		return int(d.Status.Replicas) == n && len(pods) == n && d.Status.ObservedGeneration >= d.Generation, nil
	})
	if err != nil {
		t.Fatalf("deployment %s/%s did not reach %d pods: %v (last: %s)", ns, name, n, err, last)
	}
	return pods
}

func (c *cluster) replicas(t *testing.T, ns, name string) int32 {
	t.Helper()
	d, err := c.cs.AppsV1().Deployments(ns).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return *d.Spec.Replicas
}

// breakable is a client transport that can be made to fail, as a cluster that
// becomes unreachable during a drill does.
type breakable struct {
	rt     http.RoundTripper
	broken atomic.Bool
}

func (b *breakable) RoundTrip(r *http.Request) (*http.Response, error) {
	if b.broken.Load() {
		return nil, fmt.Errorf("dial tcp %s: connect: connection refused", r.URL.Host)
	}
	return b.rt.RoundTrip(r)
}

// breakableClient is a client of the cluster whose connection the test can cut.
func (c *cluster) breakableClient(t *testing.T) (kubernetes.Interface, *breakable) {
	t.Helper()
	cfg := c.cp.RESTConfig()
	b := &breakable{}
	cfg.Wrap(func(rt http.RoundTripper) http.RoundTripper { b.rt = rt; return b })
	return kubernetes.NewForConfigOrDie(cfg), b
}

// events collects what a Bus received, once closed.
func events(t *testing.T, bus *event.Bus, sub *event.Subscription) []event.Event {
	t.Helper()
	if err := bus.Close(); err != nil {
		t.Error(err)
	}
	var out []event.Event
	for e := range sub.Events() {
		out = append(out, e)
	}
	return out
}

func faultOf(t *testing.T, e event.Event) event.Fault {
	t.Helper()
	var f event.Fault
	if err := e.Decode(&f); err != nil {
		t.Fatal(err)
	}
	return f
}

func typesOf(evs []event.Event) string {
	var s []string
	for _, e := range evs {
		s = append(s, string(e.Type))
	}
	return strings.Join(s, ",")
}
