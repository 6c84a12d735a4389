package watch_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"reflect"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/retry"

	"github.com/meshdrill/drill/internal/localcluster"
	"github.com/meshdrill/drill/internal/localcluster/localtest"
	"github.com/meshdrill/drill/internal/watch"
	"github.com/meshdrill/drill/pkg/event"
)

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// TestAgainstAPIServer runs Watchers against one real control plane (no
// node, so the tests play the kubelet where they need ready pods: they write
// pod status as a kubelet would). Each subtest has its own namespace.
func TestAgainstAPIServer(t *testing.T) {
	cp := localtest.Start(t, localcluster.WithoutIstiod())
	cs := kubernetes.NewForConfigOrDie(cp.RESTConfig())
	for _, tt := range []struct {
		name string
		run  func(*testing.T, kubernetes.Interface)
	}{
		{"Deployments", testDeployments},
		{"Pods", testPods},
		{"EndpointSlices", testEndpointSlices},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.run(t, cs)
		})
	}
}

// run starts a Watcher of the namespace on its own Bus and waits for it to
// sync. The returned stream reads what it published.
func run(t *testing.T, cs kubernetes.Interface, ns string, opts ...watch.Option) *stream {
	t.Helper()
	bus := event.NewBus(event.WithLogger(quiet()))
	sub := bus.Subscribe("test")
	// A short resync: every object is re-delivered unchanged many times during
	// the test, and none of that may show up as an event.
	opts = append([]watch.Option{watch.WithNamespace(ns), watch.WithResync(50 * time.Millisecond), watch.WithLogger(quiet())}, opts...)
	w := watch.New("east", cs, bus, opts...)
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- w.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-errc; err != nil {
			t.Errorf("Run: %v", err)
		}
		_ = bus.Close()
	})
	sctx, scancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer scancel()
	if err := w.WaitForSync(sctx); err != nil {
		t.Fatal(err)
	}
	return &stream{t: t, sub: sub}
}

type stream struct {
	t       *testing.T
	sub     *event.Subscription
	skipped []event.Event // passed over by next, checked by none
}

// next returns the next event of type typ about name (a pod, Deployment or
// service), skipping others, and fails after 30 s.
func (s *stream) next(typ event.Type, name string) event.Event {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var seen []string
	for {
		e, err := s.sub.Next(ctx)
		if err != nil {
			s.t.Fatalf("no %s event about %s: %v; saw %s", typ, name, err, strings.Join(seen, "; "))
		}
		seen = append(seen, fmt.Sprintf("%s %s", e.Type, e.Data))
		if e.Cluster != "east" || e.Source != watch.Source {
			s.t.Errorf("event %s has cluster %q source %q", e.Type, e.Cluster, e.Source)
		}
		var about struct {
			Name    string `json:"name"`
			Service string `json:"service"`
		}
		_ = json.Unmarshal(e.Data, &about)
		if e.Type == typ && (about.Name == name || about.Service == name) {
			return e
		}
		s.skipped = append(s.skipped, e)
	}
}

// expect checks that the next event of typ about name carries want.
func expect[T any](s *stream, typ event.Type, name string, want T) {
	s.t.Helper()
	e := s.next(typ, name)
	var got T
	if err := e.Decode(&got); err != nil {
		s.t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		s.t.Errorf("%s about %s:\n got %+v\nwant %+v", typ, name, got, want)
	}
}

// none checks that nothing was published about name but what next returned:
// neither what next passed over nor what is waiting to be read (everything
// published so far has been delivered: Publish hands events over at once).
func (s *stream) none(name string) {
	s.t.Helper()
	for {
		select {
		case e := <-s.sub.Events():
			s.skipped = append(s.skipped, e)
			continue
		default:
		}
		break
	}
	for _, e := range s.skipped {
		if strings.Contains(string(e.Data), `"`+name+`"`) {
			s.t.Errorf("unexpected %s about %s: %s", e.Type, name, e.Data)
		}
	}
}

func namespace(t *testing.T, cs kubernetes.Interface) string {
	t.Helper()
	ns, err := cs.CoreV1().Namespaces().Create(context.Background(),
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "watch-"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return ns.Name
}

func deployment(ns, app, version string, replicas int32) *appsv1.Deployment {
	lbl := map[string]string{"app": app, "version": version}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: app + "-" + version, Namespace: ns, Labels: lbl},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: lbl},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: lbl},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: app, Image: "bookinfo/" + app}}},
			},
		},
	}
}

// markReady does what a kubelet does when a pod's containers are up: it
// gives the pod an IP and a Ready condition.
func markReady(t *testing.T, cs kubernetes.Interface, p *corev1.Pod, ip string) *corev1.Pod {
	t.Helper()
	p = p.DeepCopy()
	p.Status.Phase = corev1.PodRunning
	p.Status.PodIP = ip
	p.Status.PodIPs = []corev1.PodIP{{IP: ip}}
	now := metav1.Now()
	p.Status.Conditions = []corev1.PodCondition{
		{Type: corev1.PodScheduled, Status: corev1.ConditionTrue, LastTransitionTime: now},
		{Type: corev1.ContainersReady, Status: corev1.ConditionTrue, LastTransitionTime: now},
		{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: now},
	}
	p, err := cs.CoreV1().Pods(p.Namespace).UpdateStatus(context.Background(), p, metav1.UpdateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func podsOf(t *testing.T, cs kubernetes.Interface, ns, selector string, n int) []corev1.Pod {
	t.Helper()
	var pods []corev1.Pod
	err := wait.PollUntilContextTimeout(context.Background(), 50*time.Millisecond, 60*time.Second, true, func(ctx context.Context) (bool, error) {
		list, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: selector})
		if err != nil {
			return false, err
		}
		pods = list.Items
		return len(pods) == n, nil
	})
	if err != nil {
		t.Fatalf("%d pods with %s, want %d: %v", len(pods), selector, n, err)
	}
	return pods
}

func scale(t *testing.T, cs kubernetes.Interface, ns, name string, n int32) {
	t.Helper()
	// The controllers write the Deployment's status at the same time, which moves
	// the scale's resourceVersion: retry on conflict, as any client must.
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		sc, err := cs.AppsV1().Deployments(ns).GetScale(context.Background(), name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		sc.Spec.Replicas = n
		_, err = cs.AppsV1().Deployments(ns).UpdateScale(context.Background(), name, sc, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

func testDeployments(t *testing.T, cs kubernetes.Interface) {
	ns := namespace(t, cs)
	ctx := context.Background()
	// reviews-v1 exists before the watch starts: its state is the baseline.
	if _, err := cs.AppsV1().Deployments(ns).Create(ctx, deployment(ns, "reviews", "v1", 1), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	s := run(t, cs, ns, watch.WithWorkloads("reviews"))
	expect(s, event.ReplicasChanged, "reviews-v1", event.Workload{Namespace: ns, Name: "reviews-v1", Desired: 1})

	if _, err := cs.AppsV1().Deployments(ns).Create(ctx, deployment(ns, "ratings", "v1", 1), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	scale(t, cs, ns, "reviews-v1", 2)
	expect(s, event.ReplicasChanged, "reviews-v1", event.Workload{Namespace: ns, Name: "reviews-v1", Desired: 2})

	// Play the kubelet: both pods come up, and the Deployment counts them.
	for i, p := range podsOf(t, cs, ns, "app=reviews", 2) {
		markReady(t, cs, &p, fmt.Sprintf("10.1.0.%d", i+1))
	}
	// The controllers may count the two pods in one sync or in two.
	for ready := int32(0); ready < 2; {
		var wl event.Workload
		if err := s.next(event.ReplicasChanged, "reviews-v1").Decode(&wl); err != nil {
			t.Fatal(err)
		}
		if wl.Desired != 2 || wl.Ready <= ready || wl.Ready > 2 || wl.Available != wl.Ready {
			t.Fatalf("replicas %+v after %d ready: want desired 2 and one or two more ready and available", wl, ready)
		}
		ready = wl.Ready
	}

	// The seed's fault: reviews to zero.
	scale(t, cs, ns, "reviews-v1", 0)
	expect(s, event.ReplicasChanged, "reviews-v1", event.Workload{Namespace: ns, Name: "reviews-v1", Desired: 0, Ready: 2, Available: 2})
	expect(s, event.ReplicasChanged, "reviews-v1", event.Workload{Namespace: ns, Name: "reviews-v1", Desired: 0, Ready: 0, Available: 0})

	if err := cs.AppsV1().Deployments(ns).Delete(ctx, "reviews-v1", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	// Deleting a Deployment already at zero changes nothing drill counts; the
	// next change of another watched Deployment must be the next event.
	if _, err := cs.AppsV1().Deployments(ns).Create(ctx, deployment(ns, "reviews", "v2", 3), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	expect(s, event.ReplicasChanged, "reviews-v2", event.Workload{Namespace: ns, Name: "reviews-v2", Desired: 3})
	s.none("reviews-v1")
	s.none("ratings-v1")
}

func testPods(t *testing.T, cs kubernetes.Interface) {
	ns := namespace(t, cs)
	ctx := context.Background()
	s := run(t, cs, ns, watch.WithWorkloads("reviews"))

	// A pod held by a finalizer shows its terminating phase, as a pod does on
	// a node while its containers stop.
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "reviews-v1-abc", Namespace: ns,
			Labels:     map[string]string{"app": "reviews", "version": "v1"},
			Finalizers: []string{"drill.test/hold"}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "reviews", Image: "bookinfo/reviews"}}},
	}
	p, err := cs.CoreV1().Pods(ns).Create(ctx, p, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	other := p.DeepCopy()
	other.ObjectMeta = metav1.ObjectMeta{Name: "ratings-v1-abc", Namespace: ns, Labels: map[string]string{"app": "ratings", "version": "v1"}}
	other, err = cs.CoreV1().Pods(ns).Create(ctx, other, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}

	markReady(t, cs, p, "10.1.0.7")
	markReady(t, cs, other, "10.1.0.8")
	want := event.Pod{Namespace: ns, Name: "reviews-v1-abc", App: "reviews", Version: "v1", IP: "10.1.0.7"}
	expect(s, event.PodReady, "reviews-v1-abc", want)

	if err := cs.CoreV1().Pods(ns).Delete(ctx, p.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	expect(s, event.PodTerminating, "reviews-v1-abc", want)

	patch := []byte(`{"metadata":{"finalizers":null}}`)
	if _, err := cs.CoreV1().Pods(ns).Patch(ctx, p.Name, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	expect(s, event.PodDeleted, "reviews-v1-abc", want)
	s.none("reviews-v1-abc")
	s.none("ratings-v1-abc")
}

func testEndpointSlices(t *testing.T, cs kubernetes.Interface) {
	ns := namespace(t, cs)
	ctx := context.Background()
	api := cs.DiscoveryV1().EndpointSlices(ns)
	yes, no := true, false
	mk := func(name, svc string, eps ...discoveryv1.Endpoint) *discoveryv1.EndpointSlice {
		return &discoveryv1.EndpointSlice{
			ObjectMeta:  metav1.ObjectMeta{Name: name, Namespace: ns, Labels: map[string]string{discoveryv1.LabelServiceName: svc}},
			AddressType: discoveryv1.AddressTypeIPv4,
			Endpoints:   eps,
		}
	}
	ep := func(ready *bool, ip string) discoveryv1.Endpoint {
		return discoveryv1.Endpoint{Addresses: []string{ip}, Conditions: discoveryv1.EndpointConditions{Ready: ready}}
	}
	create := func(es *discoveryv1.EndpointSlice) *discoveryv1.EndpointSlice {
		t.Helper()
		es, err := api.Create(ctx, es, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return es
	}
	update := func(es *discoveryv1.EndpointSlice) *discoveryv1.EndpointSlice {
		t.Helper()
		es, err := api.Update(ctx, es, metav1.UpdateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return es
	}

	a := create(mk("reviews-a", "reviews", ep(&yes, "10.1.0.1"), ep(&no, "10.1.0.2")))
	s := run(t, cs, ns, watch.WithWorkloads("reviews"))
	expect(s, event.EndpointsChanged, "reviews",
		event.Endpoints{Namespace: ns, Service: "reviews", Ready: []string{"10.1.0.1"}, NotReady: []string{"10.1.0.2"}})

	create(mk("ratings-a", "ratings", ep(&yes, "10.1.0.9")))
	b := create(mk("reviews-b", "reviews", ep(nil, "10.1.0.3")))
	expect(s, event.EndpointsChanged, "reviews",
		event.Endpoints{Namespace: ns, Service: "reviews", Ready: []string{"10.1.0.1", "10.1.0.3"}, NotReady: []string{"10.1.0.2"}})

	// A change no endpoint sees publishes nothing: the next event is the one
	// after it.
	a.Annotations = map[string]string{"drill.test/touched": "yes"}
	a = update(a)
	a.Endpoints[1].Conditions.Ready = &yes
	a = update(a)
	expect(s, event.EndpointsChanged, "reviews",
		event.Endpoints{Namespace: ns, Service: "reviews", Ready: []string{"10.1.0.1", "10.1.0.2", "10.1.0.3"}})

	// reviews goes down: its endpoints terminate, then their slices go.
	a.Endpoints = []discoveryv1.Endpoint{ep(&no, "10.1.0.1"), ep(&no, "10.1.0.2")}
	update(a)
	expect(s, event.EndpointsChanged, "reviews",
		event.Endpoints{Namespace: ns, Service: "reviews", Ready: []string{"10.1.0.3"}, NotReady: []string{"10.1.0.1", "10.1.0.2"}})
	for _, es := range []*discoveryv1.EndpointSlice{a, b} {
		if err := api.Delete(ctx, es.Name, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	expect(s, event.EndpointsChanged, "reviews",
		event.Endpoints{Namespace: ns, Service: "reviews", Ready: []string{"10.1.0.3"}})
	expect(s, event.EndpointsChanged, "reviews",
		event.Endpoints{Namespace: ns, Service: "reviews", Ready: []string{}})
	s.none("reviews")
	s.none("ratings")
}

func TestWaitForSyncFailsWhenRunCannotStart(t *testing.T) {
	w := watch.New("east", nil, nil, watch.WithWorkloads("not a label value!"))
	errc := make(chan error, 1)
	go func() { errc <- w.Run(context.Background()) }()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := w.WaitForSync(ctx)
	if err == nil || errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "workloads") {
		t.Errorf("WaitForSync = %v, want Run's error about the workloads", err)
	}
	if err := <-errc; err == nil {
		t.Error("Run accepted an invalid workload name")
	}
}
