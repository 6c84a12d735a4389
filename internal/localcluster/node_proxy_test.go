package localcluster

import (
	"errors"
	"io"
	"net"
	"net/http"
	"net/netip"
	"syscall"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
)

// testProxy builds a serviceProxy over indexers holding objs, as the node's
// informers would.
func testProxy(t testing.TB, objs ...any) *serviceProxy {
	t.Helper()
	svcIdx := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{
		cache.NamespaceIndex: cache.MetaNamespaceIndexFunc, clusterIPIndex: clusterIPIndexFunc,
	})
	sliceIdx := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{sliceServiceIndex: sliceServiceIndexFunc})
	for _, o := range objs {
		var err error
		switch o.(type) {
		case *corev1.Service:
			err = svcIdx.Add(o)
		case *discoveryv1.EndpointSlice:
			err = sliceIdx.Add(o)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	return &serviceProxy{services: corelisters.NewServiceLister(svcIdx), serviceIdx: svcIdx, sliceIdx: sliceIdx}
}

func svc(ns, name, clusterIP string, ports ...corev1.ServicePort) *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec:       corev1.ServiceSpec{ClusterIP: clusterIP, ClusterIPs: []string{clusterIP}, Ports: ports},
	}
}

type ep struct {
	ip    string
	ready *bool
}

func slice(ns, svcName, name, portName string, port int32, eps ...ep) *discoveryv1.EndpointSlice {
	s := &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Name: name, Namespace: ns, Labels: map[string]string{discoveryv1.LabelServiceName: svcName}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: &portName, Port: &port}},
	}
	for _, e := range eps {
		s.Endpoints = append(s.Endpoints, discoveryv1.Endpoint{Addresses: []string{e.ip}, Conditions: discoveryv1.EndpointConditions{Ready: e.ready}})
	}
	return s
}

func TestServiceProxyResolve(t *testing.T) {
	no, yes := false, true
	p := testProxy(t,
		svc("default", "reviews", "10.96.0.10", corev1.ServicePort{Name: "http", Port: 9080}),
		slice("default", "reviews", "reviews-a", "http", 9080, ep{"10.10.0.5", &yes}, ep{"10.10.0.6", nil}),
		slice("default", "reviews", "reviews-b", "http", 9080, ep{"10.10.0.7", &no}),
		svc("other", "ratings", "10.96.0.11", corev1.ServicePort{Name: "web", Port: 80}),
		slice("other", "ratings", "ratings-a", "web", 8080, ep{"10.11.0.9", nil}),
		svc("default", "empty", "10.96.0.12", corev1.ServicePort{Name: "http", Port: 9080}),
		slice("default", "empty", "empty-a", "http", 9080, ep{"10.10.0.8", &no}),
	)
	src := netip.MustParseAddr("127.10.0.2")
	tests := []struct {
		host    string
		port    int32
		want    []string // successive answers (round-robin)
		refused bool
		dns     bool
		unreach bool
	}{
		{host: "reviews", port: 9080, want: []string{"127.10.0.5:9080", "127.10.0.6:9080", "127.10.0.5:9080"}},
		{host: "reviews.default", port: 9080, want: []string{"127.10.0.6:9080"}},
		{host: "reviews.default.svc", port: 9080, want: []string{"127.10.0.5:9080"}},
		{host: "Reviews.default.svc.cluster.local.", port: 9080, want: []string{"127.10.0.6:9080"}},
		{host: "10.96.0.10", port: 9080, want: []string{"127.10.0.5:9080"}},
		{host: "ratings.other", port: 80, want: []string{"127.11.0.9:8080"}}, // port → targetPort from the slice
		{host: "ratings", port: 80, dns: true},                               // not in the pod's namespace
		{host: "reviews", port: 9081, refused: true},                         // no such Service port
		{host: "empty", port: 9080, refused: true},                           // no ready endpoint
		{host: "10.10.0.42", port: 9080, want: []string{"127.10.0.42:9080"}}, // a pod address: its twin
		{host: "localhost", port: 15000, want: []string{"127.10.0.2:15000"}}, // the pod's own
		{host: "127.0.0.1", port: 15000, want: []string{"127.10.0.2:15000"}},
		{host: "127.20.0.1", port: 1, want: []string{"127.20.0.1:1"}},
		{host: "example.com", port: 80, dns: true},
		{host: "a.b.c.d", port: 80, dns: true},
		{host: "192.0.2.1", port: 80, unreach: true},
	}
	for _, tc := range tests {
		t.Run(tc.host, func(t *testing.T) {
			for _, want := range tc.want {
				got, err := p.resolve("default", src, tc.host, tc.port)
				if err != nil || got.String() != want {
					t.Fatalf("resolve(%s:%d) = %v, %v; want %s", tc.host, tc.port, got, err, want)
				}
			}
			if len(tc.want) > 0 {
				return
			}
			_, err := p.resolve("default", src, tc.host, tc.port)
			var dns *net.DNSError
			switch {
			case tc.refused && !errors.Is(err, syscall.ECONNREFUSED):
				t.Errorf("got %v, want connection refused", err)
			case tc.dns && !(errors.As(err, &dns) && dns.IsNotFound):
				t.Errorf("got %v, want DNS not found", err)
			case tc.unreach && !errors.Is(err, syscall.ENETUNREACH):
				t.Errorf("got %v, want network unreachable", err)
			}
		})
	}
}

// The transport dials the chosen endpoint's twin from the pod's own address.
func TestServiceProxyTransport(t *testing.T) {
	l, err := net.Listen("tcp", "127.10.200.7:0")
	if err != nil {
		t.Fatal(err)
	}
	port := int32(l.Addr().(*net.TCPAddr).Port)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, r.RemoteAddr)
	})}
	go srv.Serve(l)
	defer srv.Close()
	p := testProxy(t,
		svc("default", "details", "10.96.0.20", corev1.ServicePort{Name: "http", Port: 9080}),
		slice("default", "details", "details-a", "http", port, ep{"10.10.200.7", nil}),
	)
	client := &http.Client{Transport: p.transport("default", netip.MustParseAddr("127.10.200.8"))}
	resp, err := client.Get("http://details:9080/details/0")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if host, _, _ := net.SplitHostPort(string(b)); host != "127.10.200.8" {
		t.Errorf("the endpoint saw the call from %s, want the calling pod's address 127.10.200.8", b)
	}
	_, err = client.Get("http://details:9081/")
	var op *net.OpError
	if !errors.As(err, &op) || op.Addr == nil || op.Addr.String() != "details:9081" || !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("got %v, want a refused dial naming details:9081", err)
	}
}

func TestInjected(t *testing.T) {
	pod := func(labels, annotations map[string]string, hostNetwork bool) *corev1.Pod {
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Labels: labels, Annotations: annotations}, Spec: corev1.PodSpec{HostNetwork: hostNetwork}}
	}
	on, off := map[string]string{InjectLabel: "true"}, map[string]string{InjectLabel: "false"}
	enabled, disabled := map[string]string{NamespaceInjectionLabel: "enabled"}, map[string]string{NamespaceInjectionLabel: "disabled"}
	rev := map[string]string{RevisionLabel: "canary"}
	tests := []struct {
		name string
		pod  *corev1.Pod
		ns   map[string]string
		want bool
	}{
		{"namespace enabled", pod(nil, nil, false), enabled, true},
		{"namespace enabled, pod opts out", pod(off, nil, false), enabled, false},
		{"namespace enabled, pod annotation opts out", pod(nil, off, false), enabled, false},
		{"namespace disabled, pod asks", pod(on, nil, false), disabled, false},
		{"revision label", pod(nil, nil, false), rev, true},
		{"no label, pod asks", pod(on, nil, false), nil, true},
		{"no label", pod(nil, nil, false), nil, false},
		{"host network", pod(on, nil, true), enabled, false},
	}
	for _, tc := range tests {
		if got := Injected(tc.pod, tc.ns); got != tc.want {
			t.Errorf("%s: Injected = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestResolveEnv(t *testing.T) {
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "reviews-v2-abc", Namespace: "default", Labels: map[string]string{"app": "reviews"}},
		Spec:       corev1.PodSpec{NodeName: "east-worker", ServiceAccountName: "bookinfo-reviews"},
	}
	c := corev1.Container{Env: []corev1.EnvVar{
		{Name: "LOG_DIR", Value: "/tmp/logs"},
		{Name: "POD_NAME", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}},
		{Name: "POD_IP", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "status.podIP"}}},
		{Name: "APP", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.labels['app']"}}},
		{Name: "WHERE", Value: "$(POD_NAME) on $(NODE)"},
		{Name: "SECRET", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{Key: "k"}}},
	}}
	env, unresolved := resolveEnv(pod, c, netip.MustParseAddr("10.10.0.5"), netip.MustParseAddr("10.10.0.1"))
	want := map[string]string{
		"HOSTNAME": "reviews-v2-abc", "LOG_DIR": "/tmp/logs", "POD_NAME": "reviews-v2-abc", "POD_IP": "10.10.0.5",
		"APP": "reviews", "WHERE": "reviews-v2-abc on $(NODE)",
	}
	for k, v := range want {
		if env[k] != v {
			t.Errorf("%s = %q, want %q", k, env[k], v)
		}
	}
	if len(unresolved) != 1 || unresolved[0] != "SECRET" {
		t.Errorf("unresolved %v, want [SECRET]", unresolved)
	}
}

// BenchmarkServiceProxyResolve measures what the node adds to every call a
// workload makes: name to ready endpoint, through the listers.
func BenchmarkServiceProxyResolve(b *testing.B) {
	objs := []any{svc("default", "reviews", "10.96.0.10", corev1.ServicePort{Name: "http", Port: 9080})}
	var eps []ep
	for i := range 30 {
		eps = append(eps, ep{ip: netip.AddrFrom4([4]byte{10, 10, 1, byte(i)}).String()})
	}
	objs = append(objs, slice("default", "reviews", "reviews-a", "http", 9080, eps...))
	for i := range 50 { // other Services' slices in the namespace
		name := "svc" + string(rune('a'+i%26)) + string(rune('a'+i/26))
		objs = append(objs, svc("default", name, "", corev1.ServicePort{Name: "http", Port: 9080}),
			slice("default", name, name+"-a", "http", 9080, ep{ip: "10.10.2.1"}))
	}
	p := testProxy(b, objs...)
	src := netip.MustParseAddr("127.10.0.2")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := p.resolve("default", src, "reviews", 9080); err != nil {
			b.Fatal(err)
		}
	}
}

// resolve reads the host names workloads dial; whatever they are, an answer
// is a loopback address (nothing leaves the machine) or an error.
func FuzzServiceProxyResolve(f *testing.F) {
	for _, s := range []string{"reviews", "reviews.default.svc.cluster.local.", "10.96.0.10", "10.10.0.5", "localhost",
		"::1", "[::1]", "a..b", ".", "", "reviews.default.svc.cluster.local.svc", "192.0.2.1", "::ffff:10.1.2.3"} {
		f.Add(s, uint16(9080))
	}
	p := testProxy(f,
		svc("default", "reviews", "10.96.0.10", corev1.ServicePort{Name: "http", Port: 9080}),
		slice("default", "reviews", "reviews-a", "http", 9080, ep{ip: "10.10.0.5"}),
	)
	src := netip.MustParseAddr("127.10.0.2")
	f.Fuzz(func(t *testing.T, host string, port uint16) {
		got, err := p.resolve("default", src, host, int32(port))
		if err == nil && !got.Addr().IsLoopback() {
			t.Fatalf("resolve(%q) = %s: not a loopback address", host, got)
		}
	})
}
