package envoyemu

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	secretv3 "github.com/envoyproxy/go-control-plane/envoy/service/secret/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	cachev3 "github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	serverv3 "github.com/envoyproxy/go-control-plane/pkg/server/v3"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/meshdrill/drill/internal/pki"
)

// testCA is a mesh's CA as drill builds it for every provider (internal/pki):
// a root, and an intermediate per cluster that signs workload certificates.
type testCA struct {
	root  *pki.MeshCA
	inter *pki.CACerts
	cert  *x509.Certificate
	key   crypto.Signer
}

func newTestCA(t testing.TB) *testCA {
	t.Helper()
	root, err := pki.New()
	if err != nil {
		t.Fatal(err)
	}
	inter, err := root.Intermediate("cluster1")
	if err != nil {
		t.Fatal(err)
	}
	kp, err := tls.X509KeyPair(inter.CACert, inter.CAKey)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(kp.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	return &testCA{root: root, inter: inter, cert: leaf, key: kp.PrivateKey.(crypto.Signer)}
}

// secrets are the two SDS secrets a workload of service account sa gets
// from pilot-agent: its certificate chain and key, and the mesh's root.
func (ca *testCA) secrets(t testing.TB, sa string) []*tlsv3.Secret {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse("spiffe://cluster.local/ns/default/sa/" + sa)
	_, leafPEM, err := pki.Sign(&x509.Certificate{
		URIs:        []*url.URL{u},
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}, ca.cert, ca.key, key.Public(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	keyPEM, err := pki.MarshalKey(key)
	if err != nil {
		t.Fatal(err)
	}
	chain := append(append([]byte{}, leafPEM...), ca.inter.CertChain...)
	return []*tlsv3.Secret{
		{Name: SecretWorkload, Type: &tlsv3.Secret_TlsCertificate{TlsCertificate: &tlsv3.TlsCertificate{
			CertificateChain: &corev3.DataSource{Specifier: &corev3.DataSource_InlineBytes{InlineBytes: chain}},
			PrivateKey:       &corev3.DataSource{Specifier: &corev3.DataSource_InlineBytes{InlineBytes: keyPEM}},
		}}},
		{Name: SecretRoots, Type: &tlsv3.Secret_ValidationContext{ValidationContext: &tlsv3.CertificateValidationContext{
			TrustedCa: &corev3.DataSource{Specifier: &corev3.DataSource_InlineBytes{InlineBytes: ca.root.CertPEM()}},
		}}},
	}
}

// sdsServer is an SDS server on a unix socket, as pilot-agent serves one
// to Envoy: go-control-plane's xDS server over a snapshot cache.
type sdsServer struct {
	target string
	cache  cachev3.SnapshotCache
	nodeID string
}

func newSDSServer(t testing.TB, nodeID string) *sdsServer {
	t.Helper()
	return newSDSServerAt(t, filepath.Join(t.TempDir(), "sds.sock"), nodeID)
}

func newSDSServerAt(t testing.TB, sock, nodeID string) *sdsServer {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(sock), 0o755); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	cache := cachev3.NewSnapshotCache(false, cachev3.IDHash{}, nil)
	g := grpc.NewServer()
	secretv3.RegisterSecretDiscoveryServiceServer(g, serverv3.NewServer(context.Background(), cache, nil))
	go g.Serve(ln)
	t.Cleanup(g.Stop)
	return &sdsServer{target: "unix://" + sock, cache: cache, nodeID: nodeID}
}

func (s *sdsServer) set(t testing.TB, version string, secrets []*tlsv3.Secret) {
	t.Helper()
	var rs []types.Resource
	for _, sec := range secrets {
		rs = append(rs, sec)
	}
	snap, err := cachev3.NewSnapshot(version, map[resourcev3.Type][]types.Resource{resourcev3.SecretType: rs})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.cache.SetSnapshot(context.Background(), s.nodeID, snap); err != nil {
		t.Fatal(err)
	}
}

// source is the proxy's SDS client pointed at the server.
func (s *sdsServer) source() *SDSSource {
	return &SDSSource{Target: s.target, Node: &corev3.Node{Id: s.nodeID}}
}

// TestSDSSource: the proxy's SDS client takes the workload certificate and
// the roots from an SDS server, and takes a rotated certificate when the
// server pushes one.
func TestSDSSource(t *testing.T) {
	ca := newTestCA(t)
	srv := newSDSServer(t, "sidecar~10.0.0.1~reviews.default~default.svc.cluster.local")
	srv.set(t, "1", ca.secrets(t, "bookinfo-reviews"))
	store := newSecretStore()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.source().Run(ctx, store.set) }()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
	defer wcancel()
	if err := store.wait(wctx, []string{SecretWorkload}, []string{SecretRoots}); err != nil {
		t.Fatal(err)
	}
	first := store.cert(SecretWorkload)
	leaf, _ := x509.ParseCertificate(first.Certificate[0])
	if got := leaf.URIs[0].String(); got != "spiffe://cluster.local/ns/default/sa/bookinfo-reviews" {
		t.Errorf("workload identity %s", got)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: store.pool(SecretRoots), Intermediates: interPool(t, first), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		t.Errorf("the certificate does not verify against the roots it came with: %v", err)
	}

	srv.set(t, "2", ca.secrets(t, "bookinfo-reviews"))
	waitFor(t, 10*time.Second, "the rotated certificate", func() bool {
		c := store.cert(SecretWorkload)
		return c != nil && string(c.Certificate[0]) != string(first.Certificate[0])
	})
}

func interPool(t testing.TB, c *tls.Certificate) *x509.CertPool {
	p := x509.NewCertPool()
	for _, der := range c.Certificate[1:] {
		x, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatal(err)
		}
		p.AddCert(x)
	}
	return p
}

// TestSecretStoreRejects: a secret drill cannot use is an error (the SDS
// client NACKs it), and the store keeps what it had.
func TestSecretStoreRejects(t *testing.T) {
	s := newSecretStore()
	for _, sec := range []*tlsv3.Secret{
		{},
		{Name: SecretWorkload, Type: &tlsv3.Secret_TlsCertificate{TlsCertificate: &tlsv3.TlsCertificate{}}},
		{Name: SecretWorkload, Type: &tlsv3.Secret_TlsCertificate{TlsCertificate: &tlsv3.TlsCertificate{
			CertificateChain: &corev3.DataSource{Specifier: &corev3.DataSource_InlineString{InlineString: "not PEM"}},
			PrivateKey:       &corev3.DataSource{Specifier: &corev3.DataSource_InlineString{InlineString: "not PEM"}},
		}}},
		{Name: SecretRoots, Type: &tlsv3.Secret_ValidationContext{ValidationContext: &tlsv3.CertificateValidationContext{
			TrustedCa: &corev3.DataSource{Specifier: &corev3.DataSource_Filename{Filename: "/etc/ssl/ca.pem"}},
		}}},
	} {
		if err := s.set(sec); err == nil {
			t.Errorf("secret %v accepted", sec)
		}
	}
	if s.has(nil, []string{SecretRoots}) || s.has([]string{SecretWorkload}, nil) {
		t.Errorf("a rejected secret was stored")
	}
}

// staticSecrets is a SecretSource that hands over fixed secrets.
type staticSecrets []*tlsv3.Secret

func (s staticSecrets) Run(ctx context.Context, set func(*tlsv3.Secret) error) error {
	for _, sec := range s {
		if err := set(sec); err != nil {
			return err
		}
	}
	<-ctx.Done()
	return nil
}

// sdsConfig is how Istio names a secret in a TLS context: over SDS from the
// sds-grpc cluster.
func sdsConfig(name string) *tlsv3.SdsSecretConfig {
	return &tlsv3.SdsSecretConfig{Name: name, SdsConfig: &corev3.ConfigSource{
		ConfigSourceSpecifier: &corev3.ConfigSource_ApiConfigSource{ApiConfigSource: &corev3.ApiConfigSource{
			ApiType:      corev3.ApiConfigSource_GRPC,
			GrpcServices: []*corev3.GrpcService{{TargetSpecifier: &corev3.GrpcService_EnvoyGrpc_{EnvoyGrpc: &corev3.GrpcService_EnvoyGrpc{ClusterName: sdsClusterName}}}},
		}},
	}}
}

// istioMutual is the transport socket match Istio gives a cluster for
// ISTIO_MUTUAL: TLS to endpoints labelled tlsMode istio, with the SNI of
// the cluster and the service's identities, plaintext to the others.
func istioMutual(t testing.TB, sni string, sans ...string) []*clusterv3.Cluster_TransportSocketMatch {
	t.Helper()
	var ms []*matcherv3.StringMatcher
	for _, s := range sans {
		ms = append(ms, &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Exact{Exact: s}})
	}
	up := &tlsv3.UpstreamTlsContext{Sni: sni, CommonTlsContext: &tlsv3.CommonTlsContext{
		AlpnProtocols:                  []string{"istio-peer-exchange", "istio"},
		TlsCertificateSdsSecretConfigs: []*tlsv3.SdsSecretConfig{sdsConfig(SecretWorkload)},
		ValidationContextType: &tlsv3.CommonTlsContext_CombinedValidationContext{CombinedValidationContext: &tlsv3.CommonTlsContext_CombinedCertificateValidationContext{
			DefaultValidationContext:         &tlsv3.CertificateValidationContext{MatchSubjectAltNames: ms},
			ValidationContextSdsSecretConfig: sdsConfig(SecretRoots),
		}},
	}}
	a, err := anypb.New(up)
	if err != nil {
		t.Fatal(err)
	}
	match, _ := structpb.NewStruct(map[string]any{"tlsMode": "istio"})
	return []*clusterv3.Cluster_TransportSocketMatch{
		{Name: "tlsMode-istio", Match: match, TransportSocket: &corev3.TransportSocket{Name: "envoy.transport_sockets.tls", ConfigType: &corev3.TransportSocket_TypedConfig{TypedConfig: a}}},
		{Name: "tlsMode-disabled", Match: &structpb.Struct{}, TransportSocket: &corev3.TransportSocket{Name: "envoy.transport_sockets.raw_buffer"}},
	}
}

// inboundListener is Istio's virtualInbound for one port: an mTLS chain
// (client certificate required, peers of the trust domain), and in
// PERMISSIVE mode a plaintext chain too.
func inboundListener(t testing.TB, port uint32, permissive bool) *listenerv3.Listener {
	t.Helper()
	down := &tlsv3.DownstreamTlsContext{
		RequireClientCertificate: wrapperspb.Bool(true),
		CommonTlsContext: &tlsv3.CommonTlsContext{
			AlpnProtocols:                  []string{"h2", "http/1.1"},
			TlsCertificateSdsSecretConfigs: []*tlsv3.SdsSecretConfig{sdsConfig(SecretWorkload)},
			ValidationContextType: &tlsv3.CommonTlsContext_CombinedValidationContext{CombinedValidationContext: &tlsv3.CommonTlsContext_CombinedCertificateValidationContext{
				DefaultValidationContext: &tlsv3.CertificateValidationContext{MatchSubjectAltNames: []*matcherv3.StringMatcher{
					{MatchPattern: &matcherv3.StringMatcher_Prefix{Prefix: "spiffe://cluster.local/"}},
				}},
				ValidationContextSdsSecretConfig: sdsConfig(SecretRoots),
			}},
		},
	}
	a, err := anypb.New(down)
	if err != nil {
		t.Fatal(err)
	}
	hcm := httpListener(t, port).GetFilterChains()[0].GetFilters()
	l := &listenerv3.Listener{Name: virtualInboundListener, FilterChains: []*listenerv3.FilterChain{{
		Name: "0.0.0.0_" + strconv.Itoa(int(port)),
		FilterChainMatch: &listenerv3.FilterChainMatch{
			DestinationPort: wrapperspb.UInt32(port), TransportProtocol: "tls",
			ApplicationProtocols: []string{"istio", "istio-peer-exchange", "istio-http/1.0", "istio-http/1.1", "istio-h2"},
		},
		TransportSocket: &corev3.TransportSocket{Name: "envoy.transport_sockets.tls", ConfigType: &corev3.TransportSocket_TypedConfig{TypedConfig: a}},
		Filters:         hcm,
	}}}
	if permissive {
		l.FilterChains = append(l.FilterChains, &listenerv3.FilterChain{
			Name:             "0.0.0.0_" + strconv.Itoa(int(port)),
			FilterChainMatch: &listenerv3.FilterChainMatch{DestinationPort: wrapperspb.UInt32(port), TransportProtocol: "raw_buffer"},
			Filters:          hcm,
		})
	}
	return l
}

// meshHop is one hop of a mesh with mutual TLS: productpage's sidecar
// sending to reviews' sidecar, each with its own certificate.
type meshHop struct {
	client, server *Proxy
	serverPort     int
	cluster        string
}

func newMeshHop(t *testing.T, ca *testCA, clientSecrets []*tlsv3.Secret, wantSAN string, permissive bool) *meshHop {
	t.Helper()
	app := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "reviews") })
	sid := testIdentity()
	sid.IP = testIdentity().IP.Next() // twin 127.0.0.2
	sid.Pod, sid.WorkloadName, sid.ServiceAccount = "reviews-v1-test", "reviews-v1", "bookinfo-reviews"
	sid.Labels = map[string]string{"app": "reviews", "version": "v1"}
	server := newTestProxy(t, sid, WithInbound(Inbound{Port: 0, Handler: app}), WithSecrets(staticSecrets(ca.secrets(t, "bookinfo-reviews"))))
	server.noXDS = true
	startProxy(t, server)
	_, port, _ := cutPort(strings.TrimPrefix(server.serverURL("inbound_0"), "http://"))
	pn, _ := strconv.Atoi(port)

	svc := "outbound|9080||reviews.default.svc.cluster.local"
	sni := "outbound_.9080_._.reviews.default.svc.cluster.local"
	feed(t, server,
		response(t, TypeCluster),
		response(t, TypeListener, inboundListener(t, uint32(pn), permissive)),
		response(t, TypeRoute, routeConfig(port)),
	)
	client := newTestProxy(t, testIdentity(), WithSecrets(staticSecrets(clientSecrets)))
	client.noXDS = true
	startProxy(t, client)
	la := assignment(t, svc, []string{"10.0.0.2:" + port})
	md, _ := structpb.NewStruct(map[string]any{"tlsMode": "istio"})
	la.Endpoints[0].LbEndpoints[0].Metadata = metadataOf("envoy.transport_socket_match", md)
	feed(t, client,
		response(t, TypeCluster, edsCluster(svc, func(c *clusterv3.Cluster) { c.TransportSocketMatches = istioMutual(t, sni, wantSAN) })),
		response(t, TypeEndpoint, la),
		response(t, TypeListener, httpListener(t, 9080)),
		response(t, TypeRoute, routeConfig("9080", &routev3.VirtualHost{Name: "reviews", Domains: []string{"reviews", "reviews:9080"}, Routes: []*routev3.Route{clusterRoute("/", svc)}})),
	)
	for _, p := range []*Proxy{client, server} {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := p.WaitReady(ctx)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
	}
	return &meshHop{client: client, server: server, serverPort: pn, cluster: svc}
}

func startProxy(t *testing.T, p *Proxy) {
	t.Helper()
	if err := p.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = p.Stop(ctx)
	})
}

func (h *meshHop) get(t *testing.T) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, "http://reviews:9080/reviews/0", nil)
	resp, err := (&http.Client{Transport: h.client.Transport(), Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// sslStat is a cluster's ssl.<name> counter.
func sslStat(p *Proxy, cluster, name string) uint64 {
	cl := p.routing.Load().cluster(cluster)
	if cl == nil {
		return 0
	}
	return p.store.Counter("cluster." + cl.statName + ".ssl." + name).Value()
}

// TestMutualTLS: with secrets, a hop between sidecars is TLS as Istio's
// ISTIO_MUTUAL makes it — the client checks the server's SPIFFE identity,
// the server requires a client certificate from the mesh — and the server
// reports the request as mutual_tls.
func TestMutualTLS(t *testing.T) {
	ca := newTestCA(t)
	reviewsSA := "spiffe://cluster.local/ns/default/sa/bookinfo-reviews"

	t.Run("hop", func(t *testing.T) {
		h := newMeshHop(t, ca, ca.secrets(t, "bookinfo-productpage"), reviewsSA, false)
		if code, body := h.get(t); code != 200 || body != "reviews" {
			t.Fatalf("%d %q", code, body)
		}
		if n := sslStat(h.client, h.cluster, "handshake"); n != 1 {
			t.Errorf("ssl.handshake %d, want 1", n)
		}
		var b strings.Builder
		_ = h.server.store.WritePrometheus(&b)
		if !strings.Contains(b.String(), `source_principal="spiffe://cluster.local/ns/default/sa/bookinfo-productpage"`) ||
			!strings.Contains(b.String(), `connection_security_policy="mutual_tls"`) {
			t.Errorf("the server did not report an mTLS request from productpage:\n%s", b.String())
		}
		// STRICT: plaintext to the server's port finds no filter chain.
		resp, err := http.Get("http://" + net.JoinHostPort("127.0.0.2", strconv.Itoa(h.serverPort)) + "/reviews/0")
		if err == nil {
			resp.Body.Close()
			t.Errorf("plaintext to a STRICT port answered %d; want the connection closed", resp.StatusCode)
		}
	})

	t.Run("permissive", func(t *testing.T) {
		h := newMeshHop(t, ca, ca.secrets(t, "bookinfo-productpage"), reviewsSA, true)
		resp, err := http.Get("http://" + net.JoinHostPort("127.0.0.2", strconv.Itoa(h.serverPort)) + "/reviews/0")
		if err != nil {
			t.Fatalf("plaintext to a PERMISSIVE port: %v", err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("plaintext to a PERMISSIVE port: %d", resp.StatusCode)
		}
		var b strings.Builder
		_ = h.server.store.WritePrometheus(&b)
		if !strings.Contains(b.String(), `connection_security_policy="none"`) {
			t.Errorf("a plaintext request was not reported as such:\n%s", b.String())
		}
	})

	t.Run("wrong identity", func(t *testing.T) {
		h := newMeshHop(t, ca, ca.secrets(t, "bookinfo-productpage"), "spiffe://cluster.local/ns/default/sa/bookinfo-ratings", false)
		if code, _ := h.get(t); code != 503 {
			t.Errorf("a server with the wrong identity answered %d; want 503", code)
		}
		if n := sslStat(h.client, h.cluster, "fail_verify_san"); n == 0 {
			t.Errorf("ssl.fail_verify_san not counted")
		}
	})

	t.Run("untrusted client", func(t *testing.T) {
		other := newTestCA(t) // another mesh: its root is not this one's
		mixed := append(other.secrets(t, "bookinfo-productpage")[:1], ca.secrets(t, "x")[1])
		h := newMeshHop(t, ca, mixed, reviewsSA, false)
		if code, _ := h.get(t); code != 503 {
			t.Errorf("a client certificate of another mesh was accepted: %d", code)
		}
	})
}

// TestEastWestTLSPassthrough: an east-west gateway passes a client's mTLS
// connection through by its SNI, untouched, to an endpoint of its own
// cluster, where the destination sidecar terminates it (Istio's
// AUTO_PASSTHROUGH).
func TestEastWestTLSPassthrough(t *testing.T) {
	ca := newTestCA(t)
	h := newMeshHop(t, ca, ca.secrets(t, "bookinfo-productpage"), "spiffe://cluster.local/ns/default/sa/bookinfo-reviews", false)

	// The fixture's priority 0 holds cluster1's endpoint, priority 1
	// cluster2's: the gateway of cluster2 must skip cluster1's.
	gid := GatewayIdentity("cluster2", "istio-eastwestgateway", EastWestGatewayLabel, testIdentity().IP.Next().Next())
	gw := newTestProxy(t, gid, WithSecrets(staticSecrets(ca.secrets(t, "istio-eastwestgateway-service-account"))))
	gw.cfg.skipBind = true
	gw.noXDS = true
	startProxy(t, gw)
	fx := loadFixture(t, "eastwestgateway")
	sni := "outbound_.9080_._.reviews.default.svc.cluster.local"
	other := closedAddr(t) // another cluster's endpoint: the gateway must not use it
	rewriteEndpoints(t, fx[TypeEndpoint], sni, []string{other}, []string{"127.0.0.2:" + strconv.Itoa(h.serverPort)})
	feedFixture(t, gw, fx)
	ln, err := net.Listen("tcp", "127.0.0.3:0")
	if err != nil {
		t.Fatal(err)
	}
	hl := newConnListener(ln)
	go gw.demux(ln, hl, roleGateway, "0.0.0.0_15443")
	t.Cleanup(func() { ln.Close() })

	// Point the client's cluster at the gateway, as istiod does for a
	// remote network's endpoints.
	la := assignment(t, h.cluster, []string{ln.Addr().String()})
	md, _ := structpb.NewStruct(map[string]any{"tlsMode": "istio"})
	la.Endpoints[0].LbEndpoints[0].Metadata = metadataOf("envoy.transport_socket_match", md)
	feed(t, h.client, response(t, TypeEndpoint, la))
	for i := range 3 {
		if code, body := h.get(t); code != 200 || body != "reviews" {
			t.Fatalf("request %d through the gateway: %d %q", i, code, body)
		}
	}
	var b strings.Builder
	_ = h.server.store.WritePrometheus(&b)
	if !strings.Contains(b.String(), `connection_security_policy="mutual_tls"`) {
		t.Errorf("the destination did not terminate the client's mTLS")
	}

	// An SNI the gateway has no chain for: the connection is closed.
	conn, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{ServerName: "outbound_.9080_._.nothing.default.svc.cluster.local", InsecureSkipVerify: true, NextProtos: []string{"istio"}})
	if err == nil {
		conn.Close()
		t.Errorf("a connection with an unknown SNI was passed through")
	}
}

// TestECDHCurves: with no ecdh_curves, both ends of an Istio mTLS hop
// negotiate X25519 as Envoy would (its defaults are X25519 and P-256;
// crypto/tls alone would pick the X25519MLKEM768 hybrid); a named curve is
// used, and a curve BoringSSL names that crypto/tls lacks is an error.
func TestECDHCurves(t *testing.T) {
	ca := newTestCA(t)
	store := newSecretStore()
	for _, s := range ca.secrets(t, "bookinfo-reviews") {
		if err := store.set(s); err != nil {
			t.Fatal(err)
		}
	}
	handshake := func(t *testing.T, params *tlsv3.TlsParameters) tls.CurveID {
		t.Helper()
		common := &tlsv3.CommonTlsContext{
			TlsParams:                      params,
			TlsCertificateSdsSecretConfigs: []*tlsv3.SdsSecretConfig{{Name: SecretWorkload}},
			ValidationContextType: &tlsv3.CommonTlsContext_ValidationContextSdsSecretConfig{
				ValidationContextSdsSecretConfig: &tlsv3.SdsSecretConfig{Name: SecretRoots},
			},
		}
		c, err := compileCommonTLS(common)
		if err != nil {
			t.Fatal(err)
		}
		up := &upstreamTLS{tlsContext: c, sni: "outbound_.9080_._.reviews.default.svc.cluster.local"}
		down := &downstreamTLS{tlsContext: c, requireClientCert: true}
		ccfg, err := up.clientConfig(store)
		if err != nil {
			t.Fatal(err)
		}
		scfg, err := down.serverConfig(store, nil)
		if err != nil {
			t.Fatal(err)
		}
		a, b := net.Pipe()
		defer a.Close()
		defer b.Close()
		errc := make(chan error, 1)
		srv := tls.Server(b, scfg)
		go func() { errc <- srv.Handshake() }()
		cli := tls.Client(a, ccfg)
		if err := cli.Handshake(); err != nil {
			t.Fatalf("client handshake: %v", err)
		}
		if err := <-errc; err != nil {
			t.Fatalf("server handshake: %v", err)
		}
		if got, want := srv.ConnectionState().CurveID, cli.ConnectionState().CurveID; got != want {
			t.Fatalf("server negotiated %v, client %v", got, want)
		}
		return cli.ConnectionState().CurveID
	}
	if got := handshake(t, nil); got != tls.X25519 {
		t.Errorf("default curves negotiated %v, want X25519", got)
	}
	if got := handshake(t, &tlsv3.TlsParameters{EcdhCurves: []string{"P-256"}}); got != tls.CurveP256 {
		t.Errorf("ecdh_curves [P-256] negotiated %v", got)
	}
	_, err := compileCommonTLS(&tlsv3.CommonTlsContext{TlsParams: &tlsv3.TlsParameters{EcdhCurves: []string{"P-224"}}})
	if err == nil || !strings.Contains(err.Error(), `"P-224"`) {
		t.Errorf("an unsupported curve: %v", err)
	}
}
