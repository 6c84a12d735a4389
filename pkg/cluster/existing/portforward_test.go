package existing

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/httpstream"
	"k8s.io/apimachinery/pkg/util/httpstream/spdy"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// kubeletStandIn is an API server that serves what a port-forward needs and
// nothing else: GET of a pod, and the pods/portforward subresource speaking
// the real SPDY protocol with client-go (the server side is apimachinery's
// own upgrader, as the kubelet uses). Data streams for the pod's port 15000
// are connected to envoy, a loopback HTTP server standing in for Envoy's admin
// endpoint.
type kubeletStandIn struct {
	t     *testing.T
	envoy string // host:port
	phase corev1.PodPhase

	mu       sync.Mutex
	conns    []httpstream.Connection
	forwards int
	ports    []string
}

func (k *kubeletStandIn) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	// api/v1/namespaces/NS/pods/NAME[/portforward]
	if len(parts) < 6 || parts[0] != "api" || parts[4] != "pods" {
		http.NotFound(w, r)
		return
	}
	ns, name := parts[3], parts[5]
	if len(parts) == 6 && r.Method == http.MethodGet {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(&corev1.Pod{
			TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
			Status:     corev1.PodStatus{Phase: k.phase},
		})
		return
	}
	if len(parts) != 7 || parts[6] != "portforward" {
		http.NotFound(w, r)
		return
	}
	if _, err := httpstream.Handshake(r, w, []string{"portforward.k8s.io"}); err != nil {
		return
	}
	streams := make(chan httpstream.Stream, 8)
	conn := spdy.NewResponseUpgrader().UpgradeResponse(w, r, func(s httpstream.Stream, replySent <-chan struct{}) error {
		streams <- s
		return nil
	})
	if conn == nil {
		return
	}
	k.mu.Lock()
	k.conns = append(k.conns, conn)
	k.forwards++
	k.mu.Unlock()
	go k.serve(conn, streams)
}

// serve pairs each request's error and data streams and proxies the data
// stream to the stand-in Envoy.
func (k *kubeletStandIn) serve(conn httpstream.Connection, streams chan httpstream.Stream) {
	errStreams := map[string]httpstream.Stream{}
	for {
		select {
		case <-conn.CloseChan():
			return
		case s := <-streams:
			id := s.Headers().Get(corev1.PortForwardRequestIDHeader)
			switch s.Headers().Get(corev1.StreamType) {
			case corev1.StreamTypeError:
				errStreams[id] = s
			case corev1.StreamTypeData:
				port := s.Headers().Get(corev1.PortHeader)
				k.mu.Lock()
				k.ports = append(k.ports, port)
				k.mu.Unlock()
				errStream := errStreams[id]
				delete(errStreams, id)
				go k.proxy(s, errStream, port)
			}
		}
	}
}

func (k *kubeletStandIn) proxy(data, errStream httpstream.Stream, port string) {
	defer data.Close()
	if errStream != nil {
		defer errStream.Close()
	}
	if port != strconv.Itoa(EnvoyAdminPort) {
		if errStream != nil {
			fmt.Fprintf(errStream, "nothing listens on port %s", port)
		}
		return
	}
	backend, err := net.Dial("tcp", k.envoy)
	if err != nil {
		return
	}
	defer backend.Close()
	done := make(chan struct{})
	go func() {
		_, _ = io.Copy(backend, data)
		_ = backend.(*net.TCPConn).CloseWrite()
		close(done)
	}()
	_, _ = io.Copy(data, backend)
	<-done
}

// dropAll closes every port-forward connection, as an API server restart or a
// dropped kubelet stream does.
func (k *kubeletStandIn) dropAll() {
	k.mu.Lock()
	defer k.mu.Unlock()
	for _, c := range k.conns {
		_ = c.Close()
	}
	k.conns = nil
}

func (k *kubeletStandIn) stats() (forwards int, ports []string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.forwards, append([]string(nil), k.ports...)
}

func startPortForwardServer(t *testing.T, phase corev1.PodPhase) (*kubeletStandIn, *rest.Config, kubernetes.Interface) {
	t.Helper()
	envoy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/stats/prometheus" {
			http.NotFound(w, r)
			return
		}
		fmt.Fprintln(w, "# TYPE envoy_cluster_upstream_rq_total counter")
		fmt.Fprintln(w, `envoy_cluster_upstream_rq_total{envoy_cluster_name="outbound|9080||reviews.default.svc.cluster.local"} 42`)
	}))
	t.Cleanup(envoy.Close)
	k := &kubeletStandIn{t: t, envoy: strings.TrimPrefix(envoy.URL, "http://"), phase: phase}
	api := httptest.NewServer(k)
	t.Cleanup(func() {
		k.dropAll()
		api.Close()
	})
	cfg := &rest.Config{Host: api.URL}
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return k, cfg, kube
}

func getBody(t *testing.T, c *http.Client, url string) (string, error) {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("status %s", resp.Status)
	}
	return string(b), err
}

// TestEnvoyAdminPortForward forwards to a pod's Envoy admin port through the
// SPDY protocol, reads stats through it, survives the connection being
// dropped on the same local port, and stops listening on Close.
func TestEnvoyAdminPortForward(t *testing.T) {
	k, cfg, kube := startPortForwardServer(t, corev1.PodRunning)
	a := NewAccess("cluster1", cfg, kube)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	admin, err := a.EnvoyAdmin(ctx, "default", "productpage-v1-abc")
	if err != nil {
		t.Fatal(err)
	}
	closed := false
	defer func() {
		if !closed {
			admin.Close()
		}
	}()
	if !strings.HasPrefix(admin.URL, "http://127.0.0.1:") {
		t.Fatalf("admin URL %q is not on 127.0.0.1", admin.URL)
	}
	body, err := getBody(t, admin.Client, admin.URL+"/stats/prometheus")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(body, `envoy_cluster_upstream_rq_total{envoy_cluster_name="outbound|9080||reviews.default.svc.cluster.local"} 42`) {
		t.Fatalf("stats through the forward:\n%s", body)
	}
	if _, ports := k.stats(); len(ports) == 0 || ports[0] != "15000" {
		t.Fatalf("forwarded to pod ports %v, want 15000", ports)
	}

	// Drop the forward's connection: the same URL works again once the
	// Forward has dialled anew.
	k.dropAll()
	admin.Client.CloseIdleConnections()
	deadline := time.Now().Add(15 * time.Second)
	for {
		forwards, _ := k.stats()
		if forwards >= 2 {
			if body, err = getBody(t, admin.Client, admin.URL+"/stats/prometheus"); err == nil {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("forward not re-established within 15s (forwards %d, last error %v)", forwards, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !strings.Contains(body, "42") {
		t.Fatalf("stats after reconnecting:\n%s", body)
	}

	admin.Close()
	closed = true
	if c, err := net.DialTimeout("tcp", strings.TrimPrefix(admin.URL, "http://"), time.Second); err == nil {
		c.Close()
		t.Fatal("the local port still accepts connections after Close")
	}
}

func TestPortForwardPodNotRunning(t *testing.T) {
	_, cfg, kube := startPortForwardServer(t, corev1.PodPending)
	_, err := NewAccess("cluster2", cfg, kube).EnvoyAdmin(context.Background(), "default", "reviews-v3-xyz")
	want := "cluster cluster2: port-forward to pod default/reviews-v3-xyz: the pod is Pending, not Running; `kubectl describe pod -n default reviews-v3-xyz` says why"
	if err == nil || err.Error() != want {
		t.Fatalf("EnvoyAdmin = %v\nwant %s", err, want)
	}
}

func TestPortForwardUpgradeRefused(t *testing.T) {
	// An API server that refuses the upgrade (RBAC forbids pods/portforward).
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/portforward") {
			http.Error(w, `pods "p" is forbidden: User "ci" cannot create resource "pods/portforward"`, http.StatusForbidden)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(&corev1.Pod{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"}, Status: corev1.PodStatus{Phase: corev1.PodRunning}})
	}))
	defer srv.Close()
	cfg := &rest.Config{Host: srv.URL}
	kube := kubernetes.NewForConfigOrDie(cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, err := NewAccess("cluster1", cfg, kube).EnvoyAdmin(ctx, "default", "p")
	if err == nil || !strings.Contains(err.Error(), "cluster cluster1: port-forward to pod default/p port 15000") ||
		!strings.Contains(err.Error(), "forbidden") {
		t.Fatalf("EnvoyAdmin = %v", err)
	}
}
