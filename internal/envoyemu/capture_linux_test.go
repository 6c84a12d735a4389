package envoyemu

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	"golang.org/x/sys/unix"
)

// netnsForTest makes a network namespace of the test's own, with loopback
// up, and returns its name; it is deleted when the test ends. It skips
// where namespaces or iptables cannot be made (not root, no ip or
// iptables).
func netnsForTest(t *testing.T) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to make a network namespace and iptables rules")
	}
	for _, c := range []string{"ip", "iptables"} {
		if _, err := exec.LookPath(c); err != nil {
			t.Skipf("needs %s: %v", c, err)
		}
	}
	name := fmt.Sprintf("drill-envoyemu-%d", os.Getpid())
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		t.Skipf("cannot make a network namespace: %v: %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", name).Run() })
	inNetns(t, name, "ip", "link", "set", "lo", "up")
	return name
}

func inNetns(t *testing.T, ns string, args ...string) {
	t.Helper()
	out, err := exec.Command("ip", append([]string{"netns", "exec", ns}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v: %s", strings.Join(args, " "), err, out)
	}
}

// inNamespace runs f on an OS thread that has joined network namespace ns:
// the sockets f creates live there. The thread is thrown away afterwards.
func inNamespace(t *testing.T, ns string, f func() error) error {
	t.Helper()
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		// No UnlockOSThread: the thread ends with the goroutine.
		fd, err := unix.Open(filepath.Join("/run/netns", ns), unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			errc <- err
			return
		}
		defer unix.Close(fd)
		if err := unix.Setns(fd, unix.CLONE_NEWNET); err != nil {
			errc <- err
			return
		}
		errc <- f()
	}()
	return <-errc
}

// TestCaptureThroughIptables runs a proxy built from the real pilot-agent
// bootstrap in a network namespace with iptables rules shaped like
// istio-init's: outbound connections to a service address are redirected
// to 15001 and inbound connections to the pod's port to 15006, from which
// the proxy connects back to the application as 127.0.0.6. The proxy must
// route each by its original destination.
func TestCaptureThroughIptables(t *testing.T) {
	ns := netnsForTest(t)
	// The "service" the workload calls and the pod's own application port,
	// both on the namespace's loopback.
	const svcPort, appPort = 9999, 9998
	inNetns(t, ns, "iptables", "-t", "nat", "-A", "OUTPUT", "-p", "tcp", "-s", "127.0.0.6/32", "-j", "RETURN")
	inNetns(t, ns, "iptables", "-t", "nat", "-A", "OUTPUT", "-p", "tcp", "-d", "127.0.0.1/32", "--dport", fmt.Sprint(svcPort), "-j", "REDIRECT", "--to-ports", "15001")
	inNetns(t, ns, "iptables", "-t", "nat", "-A", "OUTPUT", "-p", "tcp", "-d", "127.0.0.1/32", "--dport", fmt.Sprint(appPort), "-j", "REDIRECT", "--to-ports", "15006")

	// The upstream of the service, outside the namespace (the proxy's
	// connections leave from ordinary threads), and istiod's stand-in on
	// the bootstrap's unix socket.
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "upstream saw host=%s path=%s", r.Host, r.URL.Path)
	}))
	t.Cleanup(upstream.Close)

	dir := t.TempDir()
	sock := filepath.Join(dir, "etc", "istio", "proxy", "XDS")
	if err := os.MkdirAll(filepath.Dir(sock), 0o755); err != nil {
		t.Fatal(err)
	}
	ul, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	ads := serveFakeADS(t, ul)

	b, err := ParseBootstrap(readBootstrap(t, "sidecar"), dir)
	if err != nil {
		t.Fatal(err)
	}
	// pilot-agent's SDS server, on the socket the bootstrap names.
	sds := newSDSServerAt(t, strings.TrimPrefix(b.SDS, "unix://"), b.Node.GetId())
	sds.set(t, "1", newTestCA(t).secrets(t, "hello"))
	var p *Proxy
	if err := inNamespace(t, ns, func() error {
		var err error
		if p, err = NewFromBootstrap(b, WithSeed(1)); err != nil {
			return err
		}
		return p.Start(context.Background())
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = p.Stop(ctx)
	})

	// The node the proxy announces over the agent's socket is the
	// bootstrap's, as Envoy sends it.
	first := ads.next(t, TypeCluster)
	if first.GetNode().GetId() != b.Node.GetId() {
		t.Fatalf("node id %q, want the bootstrap's %q", first.GetNode().GetId(), b.Node.GetId())
	}
	ads.next(t, TypeListener)
	svc := "outbound|9999||reviews.default.svc.cluster.local"
	cl := &clusterv3.Cluster{
		Name:                 svc,
		ClusterDiscoveryType: &clusterv3.Cluster_Type{Type: clusterv3.Cluster_STATIC},
		LoadAssignment: &endpointv3.ClusterLoadAssignment{ClusterName: svc, Endpoints: []*endpointv3.LocalityLbEndpoints{{
			LbEndpoints: []*endpointv3.LbEndpoint{lbEndpoint(t, upstream.Listener.Addr().String(), "cluster1")},
		}}},
	}
	ads.out <- response(t, TypeCluster, cl)
	ads.out <- response(t, TypeListener, httpListener(t, svcPort))
	ads.next(t, TypeRoute)
	ads.out <- response(t, TypeRoute, routeConfig(fmt.Sprint(svcPort), &routev3.VirtualHost{
		Name: "reviews", Domains: []string{"reviews", fmt.Sprintf("reviews:%d", svcPort)},
		Routes: []*routev3.Route{clusterRoute("/", svc)},
	}))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := p.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	if !p.secrets.has([]string{SecretWorkload}, []string{SecretRoots}) {
		t.Fatalf("ready without the bootstrap's SDS secrets")
	}

	// The application the inbound side hands requests to, outside the
	// namespace at the original destination's address.
	app, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", appPort))
	if err != nil {
		t.Skipf("port %d is taken on this machine: %v", appPort, err)
	}
	appSrv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "app saw from=%s", strings.Split(r.RemoteAddr, ":")[0])
	})}
	go appSrv.Serve(app)
	t.Cleanup(func() { appSrv.Close() })

	get := func(url, host string) (string, error) {
		var body string
		err := inNamespace(t, ns, func() error {
			// The connection is made here, on the namespace's thread (a
			// Transport would dial from a goroutine of its own).
			addr := strings.TrimPrefix(url, "http://")
			addr = addr[:strings.Index(addr, "/")]
			c, err := net.Dial("tcp", addr)
			if err != nil {
				return err
			}
			tr := &http.Transport{DisableKeepAlives: true, DialContext: func(context.Context, string, string) (net.Conn, error) { return c, nil }}
			req, _ := http.NewRequest(http.MethodGet, url, nil)
			req.Host = host
			resp, err := tr.RoundTrip(req)
			if err != nil {
				return err
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			body = fmt.Sprintf("%d %s", resp.StatusCode, b)
			return nil
		})
		return body, err
	}
	out, err := get(fmt.Sprintf("http://127.0.0.1:%d/reviews/0", svcPort), "reviews:9999")
	if err != nil {
		t.Fatal(err)
	}
	if out != "200 upstream saw host=reviews:9999 path=/reviews/0" {
		t.Errorf("outbound through 15001: %q", out)
	}
	in, err := get(fmt.Sprintf("http://127.0.0.1:%d/", appPort), "productpage:9998")
	if err != nil {
		t.Fatal(err)
	}
	if in != "200 app saw from=127.0.0.6" {
		t.Errorf("inbound through 15006: %q (the proxy must reach the application from 127.0.0.6)", in)
	}
	var prom strings.Builder
	_ = p.Stats().WritePrometheus(&prom)
	if !strings.Contains(prom.String(), `reporter="destination"`) || !strings.Contains(prom.String(), `reporter="source"`) {
		t.Errorf("istio_requests_total lacks the source or destination side:\n%s", grepLines(prom.String(), "istio_requests_total"))
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
