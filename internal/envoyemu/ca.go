package envoyemu

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	securityv1alpha1 "istio.io/api/security/v1alpha1"
)

// CASource is what pilot-agent does for Envoy's certificates when there is
// no pilot-agent (the local provider): it makes a key and a certificate
// request for the workload's SPIFFE identity, has istiod's CA sign it
// (IstioCertificateService.CreateCertificate on istiod's secure gRPC port,
// Istio's 15012, authenticated with the workload's service account token),
// and renews the certificate at half its lifetime, as pilot-agent does by
// default (SECRET_GRACE_PERIOD_RATIO 0.5). The workload certificate is the
// "default" secret, the last certificate of the chain istiod returns (the
// mesh root) the "ROOTCA" secret.
type CASource struct {
	// Addr is istiod's secure gRPC address (host:port).
	Addr string
	// Roots verify istiod's serving certificate, which names ServerName
	// (istiod.istio-system.svc).
	Roots      *x509.CertPool
	ServerName string
	// Identity is the workload's SPIFFE ID, spiffe://TD/ns/NS/sa/SA.
	Identity string
	// ClusterID is the cluster the workload runs in (Istio's ClusterID
	// header), which tells istiod whose API server checks the token.
	ClusterID string
	// Token returns a service account token for the workload, with the
	// audience istiod expects (istio-ca).
	Token func(ctx context.Context) (string, error)
	// Validity is the certificate lifetime asked for (default 24 h, Istio's
	// default workload certificate TTL).
	Validity time.Duration
	Log      *slog.Logger
}

// Run implements SecretSource.
func (s *CASource) Run(ctx context.Context, set func(*tlsv3.Secret) error) error {
	if s.Addr == "" || s.Identity == "" || s.Token == nil {
		return errors.New("CA source: needs istiod's address, the workload's identity and a token source")
	}
	log := s.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	conn, err := grpc.NewClient(s.Addr, grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{RootCAs: s.Roots, ServerName: s.ServerName, MinVersion: tls.VersionTLS12})))
	if err != nil {
		return fmt.Errorf("CA client for %s: %w", s.Addr, err)
	}
	defer conn.Close()
	client := securityv1alpha1.NewIstioCertificateServiceClient(conn)
	backoff := 200 * time.Millisecond
	for {
		renewIn, err := s.issue(ctx, client, set)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			log.Warn("certificate from istiod's CA failed; retrying", "ca", s.Addr, "identity", s.Identity, "err", err, "in", backoff)
			renewIn = backoff
			backoff = min(2*backoff, 10*time.Second)
		} else {
			backoff = 200 * time.Millisecond
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(renewIn):
		}
	}
}

// issue gets one certificate and sets both secrets; it returns when to
// renew.
func (s *CASource) issue(ctx context.Context, client securityv1alpha1.IstioCertificateServiceClient, set func(*tlsv3.Secret) error) (time.Duration, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return 0, err
	}
	u, err := url.Parse(s.Identity)
	if err != nil || u.Scheme != "spiffe" {
		return 0, fmt.Errorf("identity %q is not a SPIFFE ID", s.Identity)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{URIs: []*url.URL{u}}, key)
	if err != nil {
		return 0, err
	}
	csr := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})
	token, err := s.Token(ctx)
	if err != nil {
		return 0, fmt.Errorf("service account token: %w", err)
	}
	validity := s.Validity
	if validity <= 0 {
		validity = 24 * time.Hour
	}
	rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	rctx = metadata.NewOutgoingContext(rctx, metadata.Pairs("authorization", "Bearer "+token, "ClusterID", s.ClusterID))
	resp, err := client.CreateCertificate(rctx, &securityv1alpha1.IstioCertificateRequest{Csr: string(csr), ValidityDuration: int64(validity.Seconds())})
	if err != nil {
		return 0, err
	}
	chain := resp.GetCertChain()
	if len(chain) < 2 {
		return 0, fmt.Errorf("istiod returned a chain of %d certificates; want the workload's and the root", len(chain))
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return 0, err
	}
	var certPEM strings.Builder
	for _, c := range chain[:len(chain)-1] {
		certPEM.WriteString(strings.TrimSpace(c) + "\n")
	}
	leaf, err := firstCert([]byte(chain[0]))
	if err != nil {
		return 0, err
	}
	inline := func(b []byte) *corev3.DataSource {
		return &corev3.DataSource{Specifier: &corev3.DataSource_InlineBytes{InlineBytes: b}}
	}
	if err := set(&tlsv3.Secret{Name: SecretRoots, Type: &tlsv3.Secret_ValidationContext{ValidationContext: &tlsv3.CertificateValidationContext{
		TrustedCa: inline([]byte(chain[len(chain)-1])),
	}}}); err != nil {
		return 0, err
	}
	if err := set(&tlsv3.Secret{Name: SecretWorkload, Type: &tlsv3.Secret_TlsCertificate{TlsCertificate: &tlsv3.TlsCertificate{
		CertificateChain: inline([]byte(certPEM.String())),
		PrivateKey:       inline(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})),
	}}}); err != nil {
		return 0, err
	}
	return max(time.Until(leaf.NotAfter)/2, time.Second), nil
}

func firstCert(b []byte) (*x509.Certificate, error) {
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil, errors.New("istiod returned a certificate that is not PEM")
	}
	return x509.ParseCertificate(blk.Bytes)
}
