package envoyemu

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	secretv3 "github.com/envoyproxy/go-control-plane/envoy/service/secret/v3"
	statuspb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
)

// The secrets Istio's TLS contexts name (istio pkg/security: WorkloadKeyCertResourceName,
// RootCertReqResourceName): the workload's certificate and key, and the mesh's
// roots to verify peers against.
const (
	SecretWorkload = "default"
	SecretRoots    = "ROOTCA"
)

// TypeSecret is SDS's resource type.
const TypeSecret = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret"

// SecretSource feeds a proxy the secrets its TLS contexts name. Run keeps
// them current until ctx ends, calling set with every secret it learns (a
// rotated certificate is set again under the same name).
type SecretSource interface {
	Run(ctx context.Context, set func(*tlsv3.Secret) error) error
}

// WithSecrets turns on mutual TLS: the proxy takes its certificate and the
// mesh's roots from src, originates TLS to upstream hosts whose transport
// socket is TLS, and terminates TLS on the listeners whose filter chains
// carry a TLS context, as Envoy does with Istio's configuration. Without
// it the proxy keeps the plaintext emulation: traffic Envoy would encrypt
// goes in the clear, its SNI in the X-Drill-Sni header.
func WithSecrets(src SecretSource) Option { return func(o *options) { o.secrets = src } }

// secretStore holds the SDS secrets by name.
type secretStore struct {
	mu      sync.RWMutex
	certs   map[string]*tls.Certificate
	roots   map[string]*x509.CertPool
	updates int
	changed chan struct{} // closed and replaced at every change
}

func newSecretStore() *secretStore {
	return &secretStore{certs: map[string]*tls.Certificate{}, roots: map[string]*x509.CertPool{}, changed: make(chan struct{})}
}

// set stores one SDS secret: a tls_certificate (PEM chain and key, inline)
// or a validation_context (PEM trusted CAs, inline). Anything else is an
// error, which NACKs the response that carried it.
func (s *secretStore) set(sec *tlsv3.Secret) error {
	name := sec.GetName()
	if name == "" {
		return errors.New("secret without a name")
	}
	var cert *tls.Certificate
	var pool *x509.CertPool
	switch t := sec.GetType().(type) {
	case *tlsv3.Secret_TlsCertificate:
		chain, err := inlineBytes(t.TlsCertificate.GetCertificateChain())
		if err != nil {
			return fmt.Errorf("secret %q: certificate_chain: %w", name, err)
		}
		key, err := inlineBytes(t.TlsCertificate.GetPrivateKey())
		if err != nil {
			return fmt.Errorf("secret %q: private_key: %w", name, err)
		}
		c, err := tls.X509KeyPair(chain, key)
		if err != nil {
			return fmt.Errorf("secret %q: %w", name, err)
		}
		cert = &c
	case *tlsv3.Secret_ValidationContext:
		ca, err := inlineBytes(t.ValidationContext.GetTrustedCa())
		if err != nil {
			return fmt.Errorf("secret %q: trusted_ca: %w", name, err)
		}
		pool = x509.NewCertPool()
		if !pool.AppendCertsFromPEM(ca) {
			return fmt.Errorf("secret %q: trusted_ca holds no PEM certificate", name)
		}
	default:
		return fmt.Errorf("secret %q: type %T is not a certificate or validation context", name, t)
	}
	s.mu.Lock()
	if cert != nil {
		s.certs[name] = cert
	} else {
		s.roots[name] = pool
	}
	s.updates++
	close(s.changed)
	s.changed = make(chan struct{})
	s.mu.Unlock()
	return nil
}

func inlineBytes(ds *corev3.DataSource) ([]byte, error) {
	switch v := ds.GetSpecifier().(type) {
	case *corev3.DataSource_InlineBytes:
		return v.InlineBytes, nil
	case *corev3.DataSource_InlineString:
		return []byte(v.InlineString), nil
	case nil:
		return nil, errors.New("empty")
	default:
		return nil, fmt.Errorf("%T: only inline data is read (Istio's SDS sends inline bytes)", v)
	}
}

func (s *secretStore) cert(name string) *tls.Certificate {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.certs[name]
}

func (s *secretStore) pool(name string) *x509.CertPool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.roots[name]
}

// has reports whether every named secret is present.
func (s *secretStore) has(certs, roots []string) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, n := range certs {
		if s.certs[n] == nil {
			return false
		}
	}
	for _, n := range roots {
		if s.roots[n] == nil {
			return false
		}
	}
	return true
}

// wait blocks until the named secrets are present or ctx ends.
func (s *secretStore) wait(ctx context.Context, certs, roots []string) error {
	for {
		s.mu.RLock()
		ch := s.changed
		s.mu.RUnlock()
		if s.has(certs, roots) {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("secrets %v %v not received: %w", certs, roots, ctx.Err())
		}
	}
}

// SDSSource is Envoy's SDS client: one StreamSecrets stream per secret
// name to an SDS server (pilot-agent's, on its unix socket), each response
// ACKed with its version and nonce, or NACKed when the secret cannot be
// used; broken streams are reopened with back-off.
type SDSSource struct {
	// Target is the gRPC target: unix:///path or host:port.
	Target string
	Node   *corev3.Node
	// Names are the secrets to fetch (default: the workload certificate
	// and the roots).
	Names []string
	Log   *slog.Logger
}

// Run implements SecretSource.
func (s *SDSSource) Run(ctx context.Context, set func(*tlsv3.Secret) error) error {
	conn, err := grpc.NewClient(s.Target, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return fmt.Errorf("SDS client for %s: %w", s.Target, err)
	}
	defer conn.Close()
	log := s.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	names := s.Names
	if len(names) == 0 {
		names = []string{SecretWorkload, SecretRoots}
	}
	client := secretv3.NewSecretDiscoveryServiceClient(conn)
	var wg sync.WaitGroup
	for _, name := range names {
		wg.Add(1)
		go func() {
			defer wg.Done()
			backoff := 100 * time.Millisecond
			for {
				start := time.Now()
				err := s.stream(ctx, client, name, set)
				if ctx.Err() != nil {
					return
				}
				if time.Since(start) > 10*time.Second {
					backoff = 100 * time.Millisecond
				}
				log.Warn("SDS stream broke; reopening", "sds", s.Target, "secret", name, "err", err, "in", backoff)
				select {
				case <-ctx.Done():
					return
				case <-time.After(backoff):
				}
				backoff = min(2*backoff, 5*time.Second)
			}
		}()
	}
	wg.Wait()
	return nil
}

func (s *SDSSource) stream(ctx context.Context, client secretv3.SecretDiscoveryServiceClient, name string, set func(*tlsv3.Secret) error) error {
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	st, err := client.StreamSecrets(sctx)
	if err != nil {
		return err
	}
	req := &discoveryv3.DiscoveryRequest{Node: s.Node, TypeUrl: TypeSecret, ResourceNames: []string{name}}
	if err := st.Send(req); err != nil {
		return err
	}
	accepted := ""
	for {
		resp, err := st.Recv()
		if err != nil {
			return err
		}
		var applyErr error
		for _, r := range resp.GetResources() {
			sec := &tlsv3.Secret{}
			if err := r.UnmarshalTo(sec); err != nil {
				applyErr = fmt.Errorf("resource %s: %w", r.GetTypeUrl(), err)
				break
			}
			if sec.GetName() != name {
				continue
			}
			if err := set(sec); err != nil {
				applyErr = err
				break
			}
		}
		ack := &discoveryv3.DiscoveryRequest{TypeUrl: TypeSecret, ResourceNames: []string{name}, ResponseNonce: resp.GetNonce()}
		if applyErr != nil {
			ack.VersionInfo = accepted
			ack.ErrorDetail = nackStatus(applyErr)
		} else {
			accepted = resp.GetVersionInfo()
			ack.VersionInfo = accepted
		}
		if err := st.Send(ack); err != nil {
			return err
		}
	}
}

func nackStatus(err error) *statuspb.Status {
	return &statuspb.Status{Code: int32(codes.InvalidArgument), Message: err.Error()}
}
