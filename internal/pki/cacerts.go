package pki

import (
	"bytes"
	"crypto/x509"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The secret istiod reads a plugged-in CA from, and its keys (istio.io/istio
// pilot/pkg/bootstrap/istio_ca.go; Istio's "Plug in CA certificates" task:
// kubectl create secret generic cacerts -n istio-system --from-file=...).
const (
	SecretName      = "cacerts"
	SecretNamespace = "istio-system"

	CACertFile    = "ca-cert.pem"
	CAKeyFile     = "ca-key.pem"
	CertChainFile = "cert-chain.pem"
	RootCertKey   = "root-cert.pem"
)

// CACerts is one cluster's intermediate CA in Istio's cacerts layout.
type CACerts struct {
	// CACert is the intermediate certificate, CAKey its private key.
	CACert []byte
	CAKey  []byte
	// CertChain is the intermediate followed by the root.
	CertChain []byte
	// RootCert is the mesh root.
	RootCert []byte
}

// Files returns the four files by the names Istio expects.
func (c *CACerts) Files() map[string][]byte {
	return map[string][]byte{
		CACertFile:    c.CACert,
		CAKeyFile:     c.CAKey,
		CertChainFile: c.CertChain,
		RootCertKey:   c.RootCert,
	}
}

// Secret is the istio-system/cacerts Secret holding c, to be created before
// istiod starts (istiod reads it at start-up and falls back to a self-signed
// CA of its own when it is missing, which would break cross-cluster trust).
func (c *CACerts) Secret() *corev1.Secret {
	return &corev1.Secret{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
		ObjectMeta: metav1.ObjectMeta{Name: SecretName, Namespace: SecretNamespace},
		Type:       corev1.SecretTypeOpaque,
		Data:       c.Files(),
	}
}

// FromSecret reads the CA out of a cacerts Secret, e.g. one found in a cluster
// drill reuses.
func FromSecret(s *corev1.Secret) (*CACerts, error) {
	c := &CACerts{
		CACert:    s.Data[CACertFile],
		CAKey:     s.Data[CAKeyFile],
		CertChain: s.Data[CertChainFile],
		RootCert:  s.Data[RootCertKey],
	}
	var missing []string
	for name, v := range c.Files() {
		if len(v) == 0 {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("secret %s/%s lacks %v", s.Namespace, s.Name, missing)
	}
	return c, nil
}

// Verify checks that c is usable by istiod and trusted by the mesh of root: the
// intermediate chains to root, is a CA and is valid at now; cert-chain.pem is
// the intermediate then root; root-cert.pem is root; and the key belongs to
// the intermediate. The error says which of these fails.
func (c *CACerts) Verify(root *MeshCA, now time.Time) error {
	inter, err := parseCert(c.CACert)
	if err != nil {
		return fmt.Errorf("%s: %w", CACertFile, err)
	}
	if !inter.IsCA {
		return fmt.Errorf("%s is not a CA certificate", CACertFile)
	}
	if _, err := inter.Verify(x509.VerifyOptions{
		Roots:       root.Pool(),
		CurrentTime: now,
		KeyUsages:   []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	}); err != nil {
		return fmt.Errorf("%s does not chain to the mesh root: %w", CACertFile, err)
	}
	if !bytes.Equal(bytes.TrimSpace(c.RootCert), bytes.TrimSpace(root.certPEM)) {
		return fmt.Errorf("%s is not the mesh root (subject %q, serial %s)", RootCertKey, root.cert.Subject, root.cert.SerialNumber)
	}
	chain, err := ParseCertificates(c.CertChain)
	if err != nil {
		return fmt.Errorf("%s: %w", CertChainFile, err)
	}
	if len(chain) != 2 || !chain[0].Equal(inter) || !chain[1].Equal(root.cert) {
		return fmt.Errorf("%s must hold the intermediate then the root (%d certificates found)", CertChainFile, len(chain))
	}
	key, err := parseKey(c.CAKey)
	if err != nil {
		return fmt.Errorf("%s: %w", CAKeyFile, err)
	}
	if !publicKeysEqual(inter.PublicKey, key.Public()) {
		return fmt.Errorf("%s does not belong to %s", CAKeyFile, CACertFile)
	}
	return nil
}
