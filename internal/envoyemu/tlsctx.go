package envoyemu

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"slices"
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
)

// Envoy's TLS transport socket, as Istio configures it (istio
// pilot/pkg/networking/core/cluster_tls.go, listener builders): the
// certificate and the roots come from SDS by name, peers are checked
// against the roots and, upstream, against the SPIFFE identities of the
// service's workloads (match_subject_alt_names); SNI and ALPN are the
// context's. The emulation reads those fields and runs Go's crypto/tls with
// them.

const (
	typeUpstreamTLS   = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext"
	typeDownstreamTLS = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext"
)

// tlsContext is the part of a CommonTlsContext the emulation uses.
type tlsContext struct {
	certName string // tls_certificate_sds_secret_configs[0]
	rootName string // the validation context's SDS secret
	sans     []sanMatcher
	alpn     []string
	minVer   uint16
	maxVer   uint16
	curves   []tls.CurveID
}

// upstreamTLS is a cluster's TLS transport socket.
type upstreamTLS struct {
	tlsContext
	sni string
}

// downstreamTLS is a filter chain's TLS transport socket.
type downstreamTLS struct {
	tlsContext
	requireClientCert bool
}

// sanMatcher is one of match_subject_alt_names (Envoy's StringMatcher over
// the peer's subject alternative names).
type sanMatcher struct {
	exact, prefix, suffix, contains string
}

func (m sanMatcher) match(v string) bool {
	switch {
	case m.exact != "":
		return v == m.exact
	case m.prefix != "":
		return strings.HasPrefix(v, m.prefix)
	case m.suffix != "":
		return strings.HasSuffix(v, m.suffix)
	case m.contains != "":
		return strings.Contains(v, m.contains)
	}
	return false
}

func (m sanMatcher) String() string {
	switch {
	case m.exact != "":
		return m.exact
	case m.prefix != "":
		return m.prefix + "*"
	case m.suffix != "":
		return "*" + m.suffix
	}
	return "*" + m.contains + "*"
}

func stringMatcher(sm *matcherv3.StringMatcher) (sanMatcher, error) {
	switch p := sm.GetMatchPattern().(type) {
	case *matcherv3.StringMatcher_Exact:
		return sanMatcher{exact: p.Exact}, nil
	case *matcherv3.StringMatcher_Prefix:
		return sanMatcher{prefix: p.Prefix}, nil
	case *matcherv3.StringMatcher_Suffix:
		return sanMatcher{suffix: p.Suffix}, nil
	case *matcherv3.StringMatcher_Contains:
		return sanMatcher{contains: p.Contains}, nil
	}
	return sanMatcher{}, fmt.Errorf("subject alt name matcher %T is not supported", sm.GetMatchPattern())
}

// defaultCurves are Envoy's ECDH curves when TlsParameters.ecdh_curves is
// empty, in non-FIPS builds: X25519 and P-256 (envoy
// extensions/transport_sockets/tls/v3/common.proto). crypto/tls would offer
// the X25519MLKEM768 hybrid first, which Envoy does not by default.
var defaultCurves = []tls.CurveID{tls.X25519, tls.CurveP256}

var curveNames = map[string]tls.CurveID{
	"X25519":         tls.X25519,
	"P-256":          tls.CurveP256,
	"P-384":          tls.CurveP384,
	"P-521":          tls.CurveP521,
	"X25519MLKEM768": tls.X25519MLKEM768,
}

// ecdhCurves maps ecdh_curves as Envoy names them (BoringSSL's names) to
// crypto/tls curve IDs, Envoy's defaults when none are named.
func ecdhCurves(names []string) ([]tls.CurveID, error) {
	if len(names) == 0 {
		return defaultCurves, nil
	}
	ids := make([]tls.CurveID, 0, len(names))
	for _, n := range names {
		id, ok := curveNames[n]
		if !ok {
			return nil, fmt.Errorf("ecdh curve %q is not supported", n)
		}
		ids = append(ids, id)
	}
	return ids, nil
}

var tlsVersions = map[tlsv3.TlsParameters_TlsProtocol]uint16{
	tlsv3.TlsParameters_TLSv1_0: tls.VersionTLS10,
	tlsv3.TlsParameters_TLSv1_1: tls.VersionTLS11,
	tlsv3.TlsParameters_TLSv1_2: tls.VersionTLS12,
	tlsv3.TlsParameters_TLSv1_3: tls.VersionTLS13,
}

func compileCommonTLS(c *tlsv3.CommonTlsContext) (tlsContext, error) {
	tc := tlsContext{alpn: c.GetAlpnProtocols(), minVer: tls.VersionTLS12, maxVer: tls.VersionTLS13}
	if v, ok := tlsVersions[c.GetTlsParams().GetTlsMinimumProtocolVersion()]; ok {
		tc.minVer = v
	}
	if v, ok := tlsVersions[c.GetTlsParams().GetTlsMaximumProtocolVersion()]; ok {
		tc.maxVer = v
	}
	curves, err := ecdhCurves(c.GetTlsParams().GetEcdhCurves())
	if err != nil {
		return tc, err
	}
	tc.curves = curves
	if s := c.GetTlsCertificateSdsSecretConfigs(); len(s) > 0 {
		tc.certName = s[0].GetName()
	} else if len(c.GetTlsCertificates()) > 0 {
		return tc, errors.New("inline or file tls_certificates are not supported; the emulation takes certificates over SDS as Istio configures them")
	}
	var vc *tlsv3.CertificateValidationContext
	switch v := c.GetValidationContextType().(type) {
	case *tlsv3.CommonTlsContext_CombinedValidationContext:
		tc.rootName = v.CombinedValidationContext.GetValidationContextSdsSecretConfig().GetName()
		vc = v.CombinedValidationContext.GetDefaultValidationContext()
	case *tlsv3.CommonTlsContext_ValidationContextSdsSecretConfig:
		tc.rootName = v.ValidationContextSdsSecretConfig.GetName()
	case *tlsv3.CommonTlsContext_ValidationContext:
		vc = v.ValidationContext
		if vc.GetTrustedCa() != nil {
			return tc, errors.New("an inline or file trusted_ca is not supported; the emulation takes roots over SDS as Istio configures them")
		}
	}
	for _, m := range vc.GetMatchSubjectAltNames() {
		sm, err := stringMatcher(m)
		if err != nil {
			return tc, err
		}
		tc.sans = append(tc.sans, sm)
	}
	for _, m := range vc.GetMatchTypedSubjectAltNames() {
		sm, err := stringMatcher(m.GetMatcher())
		if err != nil {
			return tc, err
		}
		tc.sans = append(tc.sans, sm)
	}
	return tc, nil
}

// compileUpstreamTLS reads a cluster's transport socket: nil for plaintext
// (raw_buffer, or a socket that is not TLS).
func compileUpstreamTLS(ts *corev3.TransportSocket) (*upstreamTLS, error) {
	if ts.GetTypedConfig().GetTypeUrl() != typeUpstreamTLS {
		return nil, nil
	}
	c := &tlsv3.UpstreamTlsContext{}
	if err := ts.GetTypedConfig().UnmarshalTo(c); err != nil {
		return nil, fmt.Errorf("transport socket %q: %w", ts.GetName(), err)
	}
	common, err := compileCommonTLS(c.GetCommonTlsContext())
	if err != nil {
		return nil, fmt.Errorf("transport socket %q: %w", ts.GetName(), err)
	}
	return &upstreamTLS{tlsContext: common, sni: c.GetSni()}, nil
}

// compileDownstreamTLS reads a filter chain's transport socket: nil for
// plaintext.
func compileDownstreamTLS(ts *corev3.TransportSocket) (*downstreamTLS, error) {
	if ts.GetTypedConfig().GetTypeUrl() != typeDownstreamTLS {
		return nil, nil
	}
	c := &tlsv3.DownstreamTlsContext{}
	if err := ts.GetTypedConfig().UnmarshalTo(c); err != nil {
		return nil, fmt.Errorf("transport socket %q: %w", ts.GetName(), err)
	}
	common, err := compileCommonTLS(c.GetCommonTlsContext())
	if err != nil {
		return nil, fmt.Errorf("transport socket %q: %w", ts.GetName(), err)
	}
	return &downstreamTLS{tlsContext: common, requireClientCert: c.GetRequireClientCertificate().GetValue()}, nil
}

// Peer verification failures, told apart as Envoy's ssl stats tell them.
var (
	errVerifyChain = errors.New("certificate does not chain to the trusted roots")
	errVerifySAN   = errors.New("certificate's subject alt names match none allowed")
	errNoPeerCert  = errors.New("peer presented no certificate")
	errNoSecret    = errors.New("secret not received yet")
)

// verifyPeer checks a peer's chain against roots and its names against
// sans, as Envoy's default certificate validator does.
func (tc *tlsContext) verifyPeer(certs []*x509.Certificate, roots *x509.CertPool) error {
	if len(certs) == 0 {
		return errNoPeerCert
	}
	if roots == nil {
		return nil // Envoy verifies nothing without a validation context.
	}
	inter := x509.NewCertPool()
	for _, c := range certs[1:] {
		inter.AddCert(c)
	}
	if _, err := certs[0].Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		return fmt.Errorf("%w: %v", errVerifyChain, err)
	}
	if len(tc.sans) == 0 {
		return nil
	}
	names := peerNames(certs[0])
	for _, m := range tc.sans {
		if slices.ContainsFunc(names, m.match) {
			return nil
		}
	}
	return fmt.Errorf("%w: has %v, want one of %v", errVerifySAN, names, tc.sans)
}

// peerNames are a certificate's subject alternative names.
func peerNames(c *x509.Certificate) []string {
	var out []string
	for _, u := range c.URIs {
		out = append(out, u.String())
	}
	out = append(out, c.DNSNames...)
	for _, ip := range c.IPAddresses {
		out = append(out, ip.String())
	}
	return append(out, c.EmailAddresses...)
}

// peerPrincipal is the SPIFFE identity of a verified peer certificate.
func peerPrincipal(cs *tls.ConnectionState) string {
	if cs == nil || len(cs.PeerCertificates) == 0 {
		return ""
	}
	for _, u := range cs.PeerCertificates[0].URIs {
		if u.Scheme == "spiffe" {
			return u.String()
		}
	}
	return ""
}

// clientConfig is the crypto/tls configuration of one upstream connection.
func (u *upstreamTLS) clientConfig(s *secretStore) (*tls.Config, error) {
	cfg := &tls.Config{
		ServerName:       u.sni,
		NextProtos:       u.alpn,
		MinVersion:       u.minVer,
		MaxVersion:       u.maxVer,
		CurvePreferences: u.curves,
		// The server's name is its SPIFFE identity, not the SNI: the chain
		// and the names are checked in VerifyConnection.
		InsecureSkipVerify: true,
	}
	if u.certName != "" {
		c := s.cert(u.certName)
		if c == nil {
			return nil, fmt.Errorf("%w: %s", errNoSecret, u.certName)
		}
		cfg.Certificates = []tls.Certificate{*c}
	}
	var roots *x509.CertPool
	if u.rootName != "" {
		if roots = s.pool(u.rootName); roots == nil {
			return nil, fmt.Errorf("%w: %s", errNoSecret, u.rootName)
		}
	}
	cfg.VerifyConnection = func(cs tls.ConnectionState) error { return u.verifyPeer(cs.PeerCertificates, roots) }
	return cfg, nil
}

// serverConfig is the crypto/tls configuration for a connection that
// offered alpn. ALPN is negotiated as BoringSSL does for Envoy: the
// server's first protocol the client offered, or none when they share
// none (crypto/tls would abort the handshake instead).
func (d *downstreamTLS) serverConfig(s *secretStore, offered []string) (*tls.Config, error) {
	c := s.cert(d.certName)
	if c == nil {
		return nil, fmt.Errorf("%w: %s", errNoSecret, d.certName)
	}
	var roots *x509.CertPool
	if d.rootName != "" {
		if roots = s.pool(d.rootName); roots == nil {
			return nil, fmt.Errorf("%w: %s", errNoSecret, d.rootName)
		}
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{*c}, MinVersion: d.minVer, MaxVersion: d.maxVer, CurvePreferences: d.curves, ClientAuth: tls.RequestClientCert}
	if d.requireClientCert {
		cfg.ClientAuth = tls.RequireAnyClientCert
	}
	for _, p := range d.alpn {
		if slices.Contains(offered, p) {
			cfg.NextProtos = []string{p}
			break
		}
	}
	cfg.VerifyConnection = func(cs tls.ConnectionState) error {
		if len(cs.PeerCertificates) == 0 && !d.requireClientCert {
			return nil
		}
		return d.verifyPeer(cs.PeerCertificates, roots)
	}
	return cfg, nil
}

// upstreamTLSKey carries the transport socket chosen for a request's host
// to the dialer.
type upstreamTLSKey struct{}

func withUpstreamTLS(ctx context.Context, u *upstreamTLS) context.Context {
	return context.WithValue(ctx, upstreamTLSKey{}, u)
}
