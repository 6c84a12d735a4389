package localcluster_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/retry"

	"github.com/meshdrill/drill/internal/bookinfo"
	"github.com/meshdrill/drill/internal/bookinfo/app"
	"github.com/meshdrill/drill/internal/localcluster"
	"github.com/meshdrill/drill/internal/localcluster/localtest"
	"github.com/meshdrill/drill/pkg/scenario"
)

// nodeWait polls cond until it holds or timeout passes, and fails the test
// saying what it waited for.
func nodeWait(t testing.TB, timeout time.Duration, what string, cond func() (bool, error)) {
	t.Helper()
	var last error
	err := wait.PollUntilContextTimeout(context.Background(), 50*time.Millisecond, timeout, true, func(context.Context) (bool, error) {
		ok, err := cond()
		last = err
		return ok, nil
	})
	if err != nil {
		t.Fatalf("waiting %s for %s: %v (last error: %v)", timeout, what, err, last)
	}
}

type nodeLogWriter struct{ tb testing.TB }

func (w nodeLogWriter) Write(p []byte) (int, error) {
	w.tb.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func nodeLogger(tb testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(nodeLogWriter{tb}, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

// testPrograms are the test's own images, run by the node beside Bookinfo's.
type testPrograms struct {
	mu        sync.Mutex
	flakyRuns int
	// sigterm records, for each slow-stop pod, what the API said of its
	// readiness when the container got SIGTERM.
	sigterm map[string]sigtermSeen
}

type sigtermSeen struct {
	at           time.Time
	readyInAPI   bool
	returnedAt   time.Time
	killedBefore bool
}

func (tp *testPrograms) resolve(cs kubernetes.Interface) localcluster.ProgramResolver {
	serve := func(ctx context.Context, c *localcluster.Container) (*http.Server, error) {
		l, err := c.Listen(8080)
		if err != nil {
			return nil, err
		}
		srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, c.Pod.Name)
		})}
		go srv.Serve(l)
		c.Ready()
		return srv, nil
	}
	return func(image string) (localcluster.Program, bool) {
		switch image {
		case "drill.test/flaky:v1":
			// Exits with an error on its first run, then serves.
			return localcluster.ProgramFunc(func(ctx context.Context, c *localcluster.Container) error {
				tp.mu.Lock()
				tp.flakyRuns++
				first := tp.flakyRuns == 1
				tp.mu.Unlock()
				if first {
					return errors.New("flaky: first run fails")
				}
				srv, err := serve(ctx, c)
				if err != nil {
					return err
				}
				<-ctx.Done()
				return srv.Close()
			}), true
		case "drill.test/slow-stop:v1":
			// On SIGTERM, notes whether the API already shows the pod not
			// ready, then takes a second to finish, as a server draining.
			return localcluster.ProgramFunc(func(ctx context.Context, c *localcluster.Container) error {
				srv, err := serve(ctx, c)
				if err != nil {
					return err
				}
				<-ctx.Done()
				seen := sigtermSeen{at: time.Now()}
				p, err := cs.CoreV1().Pods(c.Pod.Namespace).Get(context.Background(), c.Pod.Name, metav1.GetOptions{})
				if err == nil {
					seen.readyInAPI = podReady(p)
				}
				select {
				case <-time.After(time.Second):
				case <-c.Killed():
					seen.killedBefore = true
				}
				srv.Close()
				seen.returnedAt = time.Now()
				tp.mu.Lock()
				tp.sigterm[c.Pod.Name] = seen
				tp.mu.Unlock()
				return nil
			}), true
		case "drill.test/stubborn:v1":
			// Ignores SIGTERM; stops only when killed.
			return localcluster.ProgramFunc(func(ctx context.Context, c *localcluster.Container) error {
				srv, err := serve(ctx, c)
				if err != nil {
					return err
				}
				<-c.Killed()
				return srv.Close()
			}), true
		}
		return nil, false
	}
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func podCondition(p *corev1.Pod, t corev1.PodConditionType) *corev1.PodCondition {
	for i := range p.Status.Conditions {
		if p.Status.Conditions[i].Type == t {
			return &p.Status.Conditions[i]
		}
	}
	return nil
}

// endpoints counts a Service's endpoints in its EndpointSlices: all, and ready.
func endpoints(ctx context.Context, cs kubernetes.Interface, ns, svc string) (all, ready int, err error) {
	list, err := cs.DiscoveryV1().EndpointSlices(ns).List(ctx, metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=" + svc})
	if err != nil {
		return 0, 0, err
	}
	for _, s := range list.Items {
		for _, e := range s.Endpoints {
			all++
			if e.Conditions.Ready == nil || *e.Conditions.Ready {
				ready++
			}
		}
	}
	return all, ready, nil
}

func scale(t testing.TB, cs kubernetes.Interface, ns, deployment string, replicas int32) {
	t.Helper()
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		s, err := cs.AppsV1().Deployments(ns).GetScale(t.Context(), deployment, metav1.GetOptions{})
		if err != nil {
			return err
		}
		s.Spec.Replicas = replicas
		_, err = cs.AppsV1().Deployments(ns).UpdateScale(t.Context(), deployment, s, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		t.Fatalf("scale %s/%s to %d: %v", ns, deployment, replicas, err)
	}
}

// productpageURL is the address of a ready productpage pod of ns: its
// loopback twin.
func productpageURL(t *testing.T, cs kubernetes.Interface, ns string) string {
	t.Helper()
	pods, err := cs.CoreV1().Pods(ns).List(t.Context(), metav1.ListOptions{LabelSelector: "app=productpage"})
	if err != nil || len(pods.Items) == 0 {
		t.Fatalf("productpage pods in %s: %v (%d)", ns, err, len(pods.Items))
	}
	lo := localcluster.LoopbackFor(net.ParseIP(pods.Items[0].Status.PodIP))
	if lo == nil {
		t.Fatalf("productpage pod IP %q has no loopback twin", pods.Items[0].Status.PodIP)
	}
	return "http://" + net.JoinHostPort(lo.String(), "9080")
}

func getPage(t *testing.T, u string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, u, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

func applyBookinfo(t *testing.T, cs kubernetes.Interface, dyn dynamic.Interface, ns string, b scenario.Bookinfo) *bookinfo.Set {
	t.Helper()
	set, err := bookinfo.Manifests(b, ns, bookinfo.WithObserved("productpage"))
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := bookinfo.Apply(t.Context(), "test", cs, dyn, set, bookinfo.WithTimeout(2*time.Minute)); err != nil {
		t.Fatal(err)
	}
	t.Logf("bookinfo in %s: applied and available in %s", ns, time.Since(start).Round(time.Millisecond))
	return set
}

// TestNode runs Bookinfo on the emulated node of a real control plane: two
// clusters' worth of Bookinfo in two namespaces, reached on their loopback
// addresses; reviews scaled to zero through the API and back; and the
// kubelet's behaviours the drills rely on: not ready before stopped, grace
// periods, restarts, unknown images, scheduling, heartbeats. A second node
// then runs pods with a sidecar.
func TestNode(t *testing.T) {
	cp := localtest.Start(t, localcluster.WithoutIstiod())
	cs := kubernetes.NewForConfigOrDie(cp.RESTConfig())
	dyn := dynamic.NewForConfigOrDie(cp.RESTConfig())
	tp := &testPrograms{sigterm: map[string]sigtermSeen{}}

	start := time.Now()
	node, err := localcluster.StartNode(t.Context(), "east", 0, cs,
		localcluster.WithNodeLogger(nodeLogger(t)),
		localcluster.WithPrograms(tp.resolve(cs)),
		localcluster.WithRestartBackoff(200*time.Millisecond, time.Second),
		localcluster.WithHeartbeat(4*time.Second, 500*time.Millisecond, time.Second),
		localcluster.WithLocality("east/east-a"),
	)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("node started in %s", time.Since(start).Round(time.Millisecond))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := node.Stop(ctx); err != nil {
			t.Error(err)
		}
	})

	t.Run("node", func(t *testing.T) { testNodeRegistered(t, cs, node) })
	t.Run("bookinfo", func(t *testing.T) { testBookinfo(t, cs, dyn, node) })
	t.Run("deletion", func(t *testing.T) { testDeletion(t, cs, tp) })
	t.Run("grace period", func(t *testing.T) { testGracePeriod(t, cs) })
	t.Run("restart", func(t *testing.T) { testRestart(t, cs) })
	t.Run("unknown image", func(t *testing.T) { testUnknownImage(t, cs) })
	t.Run("node selector", func(t *testing.T) { testNodeSelector(t, cs) })

	// A second node in the same cluster, with sidecars. The first stops, so
	// the second binds every new pod.
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if err := node.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	t.Run("sidecar", func(t *testing.T) { testSidecarHook(t, cs, dyn) })
}

func testNodeRegistered(t *testing.T, cs kubernetes.Interface, node *localcluster.Node) {
	ctx := t.Context()
	n, err := cs.CoreV1().Nodes().Get(ctx, node.Name(), metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if node.Name() != "east-worker" {
		t.Errorf("node name %q, want east-worker", node.Name())
	}
	var ready bool
	for _, c := range n.Status.Conditions {
		ready = ready || (c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue)
	}
	if !ready {
		t.Errorf("node not Ready: %+v", n.Status.Conditions)
	}
	if n.Spec.PodCIDR != "10.10.0.0/16" || node.PodCIDR().String() != "10.10.0.0/16" {
		t.Errorf("pod CIDR %q, want 10.10.0.0/16 (cluster index 0)", n.Spec.PodCIDR)
	}
	if got := n.Labels["topology.kubernetes.io/region"] + "/" + n.Labels["topology.kubernetes.io/zone"]; got != "east/east-a" {
		t.Errorf("locality labels give %q, want east/east-a", got)
	}
	if len(n.Spec.Taints) > 0 {
		t.Errorf("node has taints %v", n.Spec.Taints)
	}
	l, err := cs.CoordinationV1().Leases(localcluster.NodeLeaseNamespace).Get(ctx, node.Name(), metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	first := l.Spec.RenewTime.Time
	nodeWait(t, 10*time.Second, "the node lease to be renewed", func() (bool, error) {
		l, err := cs.CoordinationV1().Leases(localcluster.NodeLeaseNamespace).Get(ctx, node.Name(), metav1.GetOptions{})
		return err == nil && l.Spec.RenewTime.Time.After(first), err
	})
}

func testBookinfo(t *testing.T, cs kubernetes.Interface, dyn dynamic.Interface, node *localcluster.Node) {
	ctx := t.Context()
	// The seed's two clusters, each in its own namespace of this cluster.
	all := []string{"v1"}
	applyBookinfo(t, cs, dyn, "east", scenario.Bookinfo{Productpage: all, Details: all, Reviews: []string{"v1", "v2"}, Ratings: all})
	applyBookinfo(t, cs, dyn, "west", scenario.Bookinfo{Productpage: all, Details: all, Reviews: []string{"v3"}, Ratings: all})

	t.Run("pods", func(t *testing.T) {
		seen := map[string]string{}
		for _, ns := range []string{"east", "west"} {
			pods, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if len(pods.Items) != map[string]int{"east": 5, "west": 4}[ns] {
				t.Errorf("%d pods in %s", len(pods.Items), ns)
			}
			for _, p := range pods.Items {
				ip, err := netip.ParseAddr(p.Status.PodIP)
				switch {
				case err != nil || !node.PodCIDR().Contains(ip):
					t.Errorf("%s/%s: pod IP %q not in the node's range %s", ns, p.Name, p.Status.PodIP, node.PodCIDR())
				case seen[ip.String()] != "":
					t.Errorf("%s/%s and %s share the address %s", ns, p.Name, seen[ip.String()], ip)
				}
				seen[ip.String()] = p.Name
				if p.Status.Phase != corev1.PodRunning || !podReady(&p) || p.Spec.NodeName != node.Name() || p.Status.HostIP != node.IP().String() {
					t.Errorf("%s/%s: phase %s, ready %v, node %q, hostIP %q", ns, p.Name, p.Status.Phase, podReady(&p), p.Spec.NodeName, p.Status.HostIP)
				}
				// Istio would inject these pods; this node has no sidecars.
				if c := podCondition(&p, localcluster.SidecarCondition); c == nil || c.Status != corev1.ConditionFalse || c.Reason != "NoSidecarFactory" {
					t.Errorf("%s/%s: sidecar condition %+v, want False/NoSidecarFactory", ns, p.Name, c)
				}
			}
		}
	})

	east, west := productpageURL(t, cs, "east"), productpageURL(t, cs, "west")
	t.Run("productpage", func(t *testing.T) {
		// Two reviews pods in east: successive pages alternate between them.
		served := map[string]string{}
		for range 6 {
			resp, body := getPage(t, east+"/productpage")
			if resp.StatusCode != 200 || !strings.Contains(body, "Book Details") || !strings.Contains(body, "Book Reviews") {
				t.Fatalf("east productpage: %d\n%s", resp.StatusCode, body)
			}
			pod := resp.Header.Get(app.HeaderReviewsPod)
			served[pod] = body
			if got := resp.Header.Get(app.HeaderReviewsCluster); got != "east" {
				t.Errorf("reviews answered for cluster %q, want east (the node's cluster)", got)
			}
		}
		var v1, v2 bool
		for pod, body := range served {
			switch {
			case strings.HasPrefix(pod, "reviews-v1-"):
				v1 = !strings.Contains(body, "glyphicon-star")
			case strings.HasPrefix(pod, "reviews-v2-"):
				v2 = strings.Contains(body, `<font color="black">`)
			}
		}
		if !v1 || !v2 {
			t.Errorf("want pages from reviews v1 (no stars) and v2 (black stars), got from %v", keys(served))
		}
		resp, body := getPage(t, west+"/productpage")
		if resp.StatusCode != 200 || !strings.Contains(body, `<font color="red">`) {
			t.Errorf("west productpage: %d, want red stars from reviews v3:\n%s", resp.StatusCode, body)
		}
	})

	t.Run("node transport", func(t *testing.T) {
		client := &http.Client{Transport: node.Transport("east"), Timeout: 10 * time.Second}
		for _, u := range []string{
			"http://productpage:9080/health",
			"http://reviews.west:9080/reviews/0",
			"http://ratings.west.svc.cluster.local:9080/ratings/0",
		} {
			resp, err := client.Get(u)
			if err != nil {
				t.Fatalf("GET %s: %v", u, err)
			}
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Errorf("GET %s: %d", u, resp.StatusCode)
			}
		}
		if _, err := client.Get("http://nosuchservice:9080/"); !isDNSNotFound(err) {
			t.Errorf("unknown service: got %v, want a DNS not-found error", err)
		}
		if _, err := client.Get("http://198.51.100.7:80/"); err == nil {
			t.Errorf("an address off the machine must be unreachable")
		}
	})

	t.Run("scale reviews to zero and back", func(t *testing.T) {
		nodeWait(t, 10*time.Second, "2 ready reviews endpoints in east", func() (bool, error) {
			_, ready, err := endpoints(ctx, cs, "east", "reviews")
			return ready == 2, err
		})
		begin := time.Now()
		scale(t, cs, "east", "reviews-v1", 0)
		scale(t, cs, "east", "reviews-v2", 0)
		var notReady time.Duration
		nodeWait(t, 20*time.Second, "the reviews EndpointSlice in east to empty", func() (bool, error) {
			all, ready, err := endpoints(ctx, cs, "east", "reviews")
			if ready == 0 && notReady == 0 {
				notReady = time.Since(begin)
			}
			return err == nil && all == 0, err
		})
		t.Logf("scale to zero: no ready endpoint after %s, no endpoint after %s", notReady.Round(time.Millisecond), time.Since(begin).Round(time.Millisecond))

		resp, body := getPage(t, east+"/productpage")
		if resp.StatusCode != 200 || !strings.Contains(body, app.ReviewsUnavailable) {
			t.Fatalf("with reviews at zero: %d, want 200 with %q:\n%s", resp.StatusCode, app.ReviewsUnavailable, body)
		}
		client := &http.Client{Transport: node.Transport("east")}
		if _, err := client.Get("http://reviews:9080/reviews/0"); !errors.Is(err, syscall.ECONNREFUSED) {
			t.Errorf("reviews without endpoints: got %v, want connection refused", err)
		}

		begin = time.Now()
		scale(t, cs, "east", "reviews-v1", 1)
		scale(t, cs, "east", "reviews-v2", 1)
		nodeWait(t, 30*time.Second, "2 ready reviews endpoints in east again", func() (bool, error) {
			_, ready, err := endpoints(ctx, cs, "east", "reviews")
			return ready == 2, err
		})
		t.Logf("scale back: 2 ready endpoints after %s", time.Since(begin).Round(time.Millisecond))
		resp, body = getPage(t, east+"/productpage")
		if resp.StatusCode != 200 || strings.Contains(body, app.ReviewsUnavailable) || !strings.Contains(body, "Book Reviews") {
			t.Errorf("after scaling back: %d\n%s", resp.StatusCode, body)
		}
	})
}

func isDNSNotFound(err error) bool {
	var dns *net.DNSError
	return errors.As(err, &dns) && dns.IsNotFound
}

func keys(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// deploy creates a one-replica Deployment and Service app=name on port
// running image, and waits for its pod when wantReady.
func deploy(t testing.TB, cs kubernetes.Interface, ns, name, image string, port int32, grace int64, wantReady bool) *corev1.Pod {
	t.Helper()
	ctx := t.Context()
	if _, err := cs.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{}); apierrors.IsNotFound(err) {
		if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	nodeWait(t, 30*time.Second, "the default ServiceAccount of "+ns, func() (bool, error) {
		_, err := cs.CoreV1().ServiceAccounts(ns).Get(ctx, "default", metav1.GetOptions{})
		return err == nil, nil
	})
	one := int32(1)
	labels := map[string]string{"app": name}
	_, err := cs.AppsV1().Deployments(ns).Create(ctx, &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: appsv1.DeploymentSpec{
			Replicas: &one,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					TerminationGracePeriodSeconds: &grace,
					Containers:                    []corev1.Container{{Name: name, Image: image, Ports: []corev1.ContainerPort{{ContainerPort: port}}}},
				},
			},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cs.CoreV1().Services(ns).Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec:       corev1.ServiceSpec{Selector: labels, Ports: []corev1.ServicePort{{Name: "http", Port: port}}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	var pod *corev1.Pod
	nodeWait(t, 60*time.Second, "a pod of "+name, func() (bool, error) {
		pods, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=" + name})
		if err != nil || len(pods.Items) == 0 {
			return false, err
		}
		pod = &pods.Items[0]
		return !wantReady || podReady(pod), nil
	})
	return pod
}

// watchPod records every state of a pod until it is deleted. A watch the API
// server ends (on a loaded machine its watch cache may answer "too large
// resource version" while it catches up) is taken up again from the last
// state seen.
func watchPod(t *testing.T, cs kubernetes.Interface, pod *corev1.Pod) (states func() []*corev1.Pod, deleted <-chan time.Time) {
	t.Helper()
	ctx := t.Context()
	var mu sync.Mutex
	var seen []*corev1.Pod
	del := make(chan time.Time, 1)
	go func() {
		rv := pod.ResourceVersion
		for ctx.Err() == nil {
			w, err := cs.CoreV1().Pods(pod.Namespace).Watch(ctx, metav1.ListOptions{
				FieldSelector: "metadata.name=" + pod.Name, ResourceVersion: rv,
			})
			if err != nil {
				time.Sleep(100 * time.Millisecond) // the API server is busy; ask again
				continue
			}
			for ev := range w.ResultChan() {
				p, ok := ev.Object.(*corev1.Pod)
				if !ok {
					break // an error: watch again from rv
				}
				rv = p.ResourceVersion
				mu.Lock()
				seen = append(seen, p)
				mu.Unlock()
				if ev.Type == watch.Deleted {
					del <- time.Now()
					w.Stop()
					return
				}
			}
			w.Stop()
		}
	}()
	return func() []*corev1.Pod {
		mu.Lock()
		defer mu.Unlock()
		return append([]*corev1.Pod(nil), seen...)
	}, del
}

// testDeletion: a deleted pod turns not ready before its containers get
// SIGTERM, and is removed as soon as they have stopped, well within its grace.
func testDeletion(t *testing.T, cs kubernetes.Interface, tp *testPrograms) {
	ctx := t.Context()
	pod := deploy(t, cs, "lifecycle", "slowstop", "drill.test/slow-stop:v1", 8080, 10, true)
	nodeWait(t, 10*time.Second, "a ready slowstop endpoint", func() (bool, error) {
		_, ready, err := endpoints(ctx, cs, "lifecycle", "slowstop")
		return ready == 1, err
	})
	states, deleted := watchPod(t, cs, pod)
	begin := time.Now()
	if err := cs.CoreV1().Pods(pod.Namespace).Delete(ctx, pod.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	var gone time.Time
	select {
	case gone = <-deleted:
	case <-time.After(30 * time.Second):
		t.Fatal("the deleted pod was not removed within 30s")
	}
	tp.mu.Lock()
	seen, ok := tp.sigterm[pod.Name]
	tp.mu.Unlock()
	if !ok {
		t.Fatal("the container never got SIGTERM")
	}
	if seen.readyInAPI {
		t.Error("at SIGTERM the API still showed the pod ready: the node must mark it not ready first")
	}
	if seen.killedBefore {
		t.Error("the container was killed before the end of its grace period")
	}
	if gone.Before(seen.returnedAt) {
		t.Error("the pod was removed before its container had stopped")
	}
	if took := gone.Sub(begin); took < time.Second || took > 8*time.Second {
		t.Errorf("removed %s after deletion; want after the container's 1s drain and well within the 10s grace", took)
	}
	// The last state before removal is the kubelet's terminal one.
	all := states()
	var last *corev1.Pod
	for _, p := range all {
		if p.DeletionTimestamp != nil {
			last = p
		}
	}
	if last == nil || last.Status.Phase != corev1.PodSucceeded || len(last.Status.ContainerStatuses) != 1 ||
		last.Status.ContainerStatuses[0].State.Terminated == nil || last.Status.ContainerStatuses[0].State.Terminated.ExitCode != 0 {
		t.Errorf("last state before removal: %+v, want Succeeded with the container terminated with exit code 0", last.Status)
	}
	t.Logf("deletion: SIGTERM %s after the delete, removed %s after it", seen.at.Sub(begin).Round(time.Millisecond), gone.Sub(begin).Round(time.Millisecond))
}

// testGracePeriod: a container that ignores SIGTERM is killed when the grace
// period ends, and the pod is then removed.
func testGracePeriod(t *testing.T, cs kubernetes.Interface) {
	ctx := t.Context()
	pod := deploy(t, cs, "lifecycle", "stubborn", "drill.test/stubborn:v1", 8080, 2, true)
	states, deleted := watchPod(t, cs, pod)
	begin := time.Now()
	if err := cs.CoreV1().Pods(pod.Namespace).Delete(ctx, pod.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	select {
	case gone := <-deleted:
		if took := gone.Sub(begin); took < 2*time.Second || took > 10*time.Second {
			t.Errorf("removed %s after deletion; want just after its 2s grace period", took)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the pod was not removed within 30s")
	}
	var last *corev1.Pod
	for _, p := range states() {
		if len(p.Status.ContainerStatuses) == 1 && p.Status.ContainerStatuses[0].State.Terminated != nil {
			last = p
		}
	}
	if last == nil || last.Status.Phase != corev1.PodFailed || last.Status.ContainerStatuses[0].State.Terminated.ExitCode != 137 {
		t.Errorf("want a Failed pod whose container was killed (exit code 137) before removal, got %+v", last)
	}
}

// testRestart: a container that exits is restarted after a back-off, and the
// pod reports the restart.
func testRestart(t *testing.T, cs kubernetes.Interface) {
	pod := deploy(t, cs, "lifecycle", "flaky", "drill.test/flaky:v1", 8080, 1, false)
	nodeWait(t, 20*time.Second, "flaky to be ready after a restart", func() (bool, error) {
		p, err := cs.CoreV1().Pods(pod.Namespace).Get(t.Context(), pod.Name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		pod = p
		return podReady(p), nil
	})
	st := pod.Status.ContainerStatuses[0]
	if st.RestartCount != 1 || st.LastTerminationState.Terminated == nil || st.LastTerminationState.Terminated.ExitCode != 1 ||
		!strings.Contains(st.LastTerminationState.Terminated.Message, "first run fails") {
		t.Errorf("container status %+v: want restart count 1 and the first run's exit (code 1, its error)", st)
	}
	// kubectl describe tells the same story as on a real node.
	nodeWait(t, 10*time.Second, "the kubelet's Scheduled, Started and BackOff events for "+pod.Name, func() (bool, error) {
		evs, err := cs.CoreV1().Events(pod.Namespace).List(t.Context(), metav1.ListOptions{FieldSelector: "involvedObject.name=" + pod.Name})
		if err != nil {
			return false, err
		}
		seen := map[string]bool{}
		for _, e := range evs.Items {
			seen[e.Reason] = true
		}
		return seen["Scheduled"] && seen["Started"] && seen["BackOff"], nil
	})
}

// testUnknownImage: an image the node cannot run leaves the pod pending with
// the reason, and the Bookinfo wait says so.
func testUnknownImage(t *testing.T, cs kubernetes.Interface) {
	pod := deploy(t, cs, "lifecycle", "nginx", "nginx:1.27", 8080, 1, false)
	nodeWait(t, 20*time.Second, "nginx to report its image cannot run", func() (bool, error) {
		p, err := cs.CoreV1().Pods(pod.Namespace).Get(t.Context(), pod.Name, metav1.GetOptions{})
		if err != nil || len(p.Status.ContainerStatuses) == 0 {
			return false, err
		}
		w := p.Status.ContainerStatuses[0].State.Waiting
		return w != nil && w.Reason == "ErrImagePull" && strings.Contains(w.Message, `no program for image "nginx:1.27"`), nil
	})
	err := bookinfo.WaitAvailable(t.Context(), cs, "lifecycle", []string{"nginx"}, time.Second)
	if !errors.Is(err, bookinfo.ErrNotAvailable) || !strings.Contains(err.Error(), "ErrImagePull") || !strings.Contains(err.Error(), "nginx: 0 of 1 replicas available") {
		t.Errorf("WaitAvailable: %v; want it to name nginx and ErrImagePull", err)
	}
}

// testNodeSelector: a pod asking for labels the node lacks stays pending,
// marked unschedulable as kube-scheduler marks it.
func testNodeSelector(t *testing.T, cs kubernetes.Interface) {
	ctx := t.Context()
	pod, err := cs.CoreV1().Pods("lifecycle").Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "picky", Namespace: "lifecycle"},
		Spec: corev1.PodSpec{
			NodeSelector: map[string]string{"disk": "ssd"},
			Containers:   []corev1.Container{{Name: "c", Image: "drill.test/stubborn:v1"}},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	nodeWait(t, 10*time.Second, "picky to be marked unschedulable", func() (bool, error) {
		p, err := cs.CoreV1().Pods(pod.Namespace).Get(ctx, pod.Name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		c := podCondition(p, corev1.PodScheduled)
		return c != nil && c.Status == corev1.ConditionFalse && c.Reason == corev1.PodReasonUnschedulable && p.Spec.NodeName == "", nil
	})
}

// testSidecars is a minimal sidecar for the test: an inbound reverse proxy
// on the pod's address in front of the application, and an outbound
// transport that counts what the application sends through it.
type testSidecars struct {
	mu       sync.Mutex
	started  map[string]localcluster.SidecarPod
	stopped  map[string]bool
	inbound  atomic.Int64
	outbound atomic.Int64
}

type testSidecar struct {
	f       *testSidecars
	pod     string
	servers []*http.Server
	direct  http.RoundTripper
}

func (f *testSidecars) StartSidecar(ctx context.Context, p localcluster.SidecarPod) (localcluster.Sidecar, error) {
	sc := &testSidecar{f: f, pod: p.Pod.Name, direct: p.Direct}
	for port, app := range p.AppPorts {
		l, err := net.Listen("tcp", netip.AddrPortFrom(p.Addr, uint16(port)).String())
		if err != nil {
			sc.Stop(ctx)
			return nil, err
		}
		rp := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: "http", Host: app.String()})
		srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			f.inbound.Add(1)
			rp.ServeHTTP(w, r)
		})}
		go srv.Serve(l)
		sc.servers = append(sc.servers, srv)
	}
	f.mu.Lock()
	f.started[p.Pod.Name] = p
	f.mu.Unlock()
	return sc, nil
}

func (s *testSidecar) Outbound() http.RoundTripper {
	return roundTripFunc(func(r *http.Request) (*http.Response, error) {
		s.f.outbound.Add(1)
		return s.direct.RoundTrip(r)
	})
}

func (s *testSidecar) Stop(ctx context.Context) error {
	for _, srv := range s.servers {
		srv.Close()
	}
	s.f.mu.Lock()
	s.f.stopped[s.pod] = true
	s.f.mu.Unlock()
	return nil
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// testSidecarHook: on a node with a SidecarFactory, injected pods get a sidecar
// in front of their application (inbound) and behind it (outbound), and the
// sidecar stops with the pod.
func testSidecarHook(t *testing.T, cs kubernetes.Interface, dyn dynamic.Interface) {
	ctx := t.Context()
	f := &testSidecars{started: map[string]localcluster.SidecarPod{}, stopped: map[string]bool{}}
	node, err := localcluster.StartNode(ctx, "mesh", 1, cs, localcluster.WithSidecars(f), localcluster.WithNodeLogger(nodeLogger(t)))
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := node.Stop(sctx); err != nil {
			t.Error(err)
		}
	}()
	v1 := []string{"v1"}
	applyBookinfo(t, cs, dyn, "mesh", scenario.Bookinfo{Productpage: v1, Details: v1, Reviews: v1, Ratings: v1})

	pods, err := cs.CoreV1().Pods("mesh").List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pods.Items {
		if c := podCondition(&p, localcluster.SidecarCondition); c == nil || c.Status != corev1.ConditionTrue {
			t.Errorf("%s: sidecar condition %+v, want True", p.Name, c)
		}
		if !node.PodCIDR().Contains(netip.MustParseAddr(p.Status.PodIP)) {
			t.Errorf("%s: pod IP %s not in the second node's range %s", p.Name, p.Status.PodIP, node.PodCIDR())
		}
		sp, ok := f.started[p.Name]
		if !ok {
			t.Errorf("%s: no sidecar started", p.Name)
			continue
		}
		if app := sp.AppPorts[9080]; app.Addr() != sp.Addr || app.Port() == 9080 {
			t.Errorf("%s: the application listens at %s; want a free port of the pod's address %s, 9080 being the sidecar's", p.Name, app, sp.Addr)
		}
	}
	resp, body := getPage(t, productpageURL(t, cs, "mesh")+"/productpage")
	if resp.StatusCode != 200 || strings.Contains(body, app.ReviewsUnavailable) {
		t.Fatalf("productpage through sidecars: %d\n%s", resp.StatusCode, body)
	}
	// The page came in through productpage's sidecar and out through it to
	// details and reviews, and into theirs.
	if in, out := f.inbound.Load(), f.outbound.Load(); in < 3 || out < 2 {
		t.Errorf("sidecars saw %d inbound and %d outbound requests; want the page's (3 in, 2 out at least)", in, out)
	}
	pp := pods.Items[0].Name
	for _, p := range pods.Items {
		if strings.HasPrefix(p.Name, "details-") {
			pp = p.Name
		}
	}
	if err := cs.CoreV1().Pods("mesh").Delete(ctx, pp, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	nodeWait(t, 30*time.Second, "the deleted pod's sidecar to stop", func() (bool, error) {
		f.mu.Lock()
		defer f.mu.Unlock()
		return f.stopped[pp], nil
	})
}
