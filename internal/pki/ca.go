package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"time"
)

// Validity of what this package issues. The root lasts as long as Istio's
// tools/certs makes it (ROOTCA_DAYS 3650), because a kept cluster may be
// reused for a long time; an intermediate is issued again whenever a cluster is
// created, so a year is plenty.
const (
	RootValidity         = 3650 * 24 * time.Hour
	IntermediateValidity = 365 * 24 * time.Hour
)

// File names of the root in a directory written by Save.
const (
	RootCertFile = "root-cert.pem"
	RootKeyFile  = "root-key.pem"
)

// keyBits is the RSA key size. Istio's tools/certs default to 4096; 2048 is
// what Istio's own self-signed CA uses (citadel's default) and keeps creating a
// mesh fast, which matters for a CA that lives as long as a drill's clusters.
const keyBits = 2048

// ErrNoCA is returned by Load when the directory holds no root CA.
var ErrNoCA = errors.New("no mesh root CA")

// MeshCA is the root certificate authority every cluster of a mesh trusts.
type MeshCA struct {
	cert    *x509.Certificate
	key     crypto.Signer
	certPEM []byte
}

// New generates a new root CA, as Istio's tools/certs root-ca target does:
// O=Istio, CN=Root CA, a CA certificate that may sign certificates and CRLs.
func New() (*MeshCA, error) {
	key, err := rsa.GenerateKey(rand.Reader, keyBits)
	if err != nil {
		return nil, fmt.Errorf("generate mesh root key: %w", err)
	}
	tmpl := &x509.Certificate{
		Subject:               pkix.Name{Organization: []string{"Istio"}, CommonName: "Root CA"},
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	cert, certPEM, err := Sign(tmpl, nil, key, key.Public(), RootValidity)
	if err != nil {
		return nil, fmt.Errorf("sign mesh root: %w", err)
	}
	return &MeshCA{cert: cert, key: key, certPEM: certPEM}, nil
}

// Load reads a root CA that Save wrote to dir. It returns an error wrapping
// ErrNoCA when dir holds neither file, so callers can tell "none yet" from a
// damaged directory.
func Load(dir string) (*MeshCA, error) {
	certPEM, cerr := os.ReadFile(filepath.Join(dir, RootCertFile))
	keyPEM, kerr := os.ReadFile(filepath.Join(dir, RootKeyFile))
	if errors.Is(cerr, os.ErrNotExist) && errors.Is(kerr, os.ErrNotExist) {
		return nil, fmt.Errorf("%w in %s", ErrNoCA, dir)
	}
	if cerr != nil {
		return nil, fmt.Errorf("read mesh root certificate: %w", cerr)
	}
	if kerr != nil {
		return nil, fmt.Errorf("read mesh root key: %w", kerr)
	}
	cert, err := parseCert(certPEM)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, RootCertFile), err)
	}
	key, err := parseKey(keyPEM)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, RootKeyFile), err)
	}
	if !publicKeysEqual(cert.PublicKey, key.Public()) {
		return nil, fmt.Errorf("mesh root CA in %s: %s does not belong to %s; remove the directory to start a new mesh CA",
			dir, RootKeyFile, RootCertFile)
	}
	if !cert.IsCA {
		return nil, fmt.Errorf("%s is not a CA certificate", filepath.Join(dir, RootCertFile))
	}
	return &MeshCA{cert: cert, key: key, certPEM: certPEM}, nil
}

// LoadOrNew loads the root CA in dir, or generates one and saves it there when
// dir holds none. created says which happened.
func LoadOrNew(dir string) (ca *MeshCA, created bool, err error) {
	ca, err = Load(dir)
	if err == nil {
		return ca, false, nil
	}
	if !errors.Is(err, ErrNoCA) {
		return nil, false, err
	}
	if ca, err = New(); err != nil {
		return nil, false, err
	}
	if err := ca.Save(dir); err != nil {
		return nil, false, err
	}
	return ca, true, nil
}

// Save writes root-cert.pem and root-key.pem (mode 0600) to dir.
func (ca *MeshCA) Save(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create mesh CA directory: %w", err)
	}
	keyPEM, err := MarshalKey(ca.key)
	if err != nil {
		return err
	}
	if err := writeFile(filepath.Join(dir, RootCertFile), ca.certPEM, 0o644); err != nil {
		return err
	}
	return writeFile(filepath.Join(dir, RootKeyFile), keyPEM, 0o600)
}

// CertPEM is the root certificate, PEM-encoded.
func (ca *MeshCA) CertPEM() []byte { return append([]byte(nil), ca.certPEM...) }

// Certificate is the root certificate.
func (ca *MeshCA) Certificate() *x509.Certificate { return ca.cert }

// Pool is a certificate pool holding only the root, for verifying chains.
func (ca *MeshCA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.cert)
	return p
}

// Intermediate issues cluster's intermediate CA and returns it in Istio's
// cacerts layout. The certificate is Istio's tools/certs intermediate: O=Istio,
// CN=Intermediate CA, L=<cluster>, a CA with path length 0 (it signs workloads,
// no further CAs) and the DNS name istiod.istio-system.svc.
func (ca *MeshCA) Intermediate(cluster string) (*CACerts, error) {
	if cluster == "" {
		return nil, fmt.Errorf("issue intermediate CA: empty cluster name")
	}
	key, err := rsa.GenerateKey(rand.Reader, keyBits)
	if err != nil {
		return nil, fmt.Errorf("generate intermediate key for cluster %s: %w", cluster, err)
	}
	tmpl := &x509.Certificate{
		Subject: pkix.Name{
			Organization: []string{"Istio"},
			CommonName:   "Intermediate CA",
			Locality:     []string{cluster},
		},
		DNSNames:              []string{"istiod.istio-system.svc"},
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment | x509.KeyUsageContentCommitment,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	_, certPEM, err := Sign(tmpl, ca.cert, ca.key, key.Public(), IntermediateValidity)
	if err != nil {
		return nil, fmt.Errorf("sign intermediate for cluster %s: %w", cluster, err)
	}
	keyPEM, err := MarshalKey(key)
	if err != nil {
		return nil, err
	}
	return &CACerts{
		CACert:    certPEM,
		CAKey:     keyPEM,
		CertChain: append(append([]byte(nil), certPEM...), ca.certPEM...),
		RootCert:  ca.CertPEM(),
	}, nil
}

// Sign signs tmpl with parentKey (self-signed when parent is nil) and returns
// the certificate and its PEM encoding, filling in the serial number and the
// validity. Every certificate drill issues, for a mesh or for a local control
// plane, is signed here.
func Sign(tmpl, parent *x509.Certificate, parentKey crypto.Signer, pub crypto.PublicKey, validity time.Duration) (*x509.Certificate, []byte, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, nil, err
	}
	tmpl.SerialNumber = serial
	// Back-dated a little: nodes' clocks in a fresh cluster may lag the host's.
	now := time.Now()
	tmpl.NotBefore = now.Add(-time.Hour)
	tmpl.NotAfter = now.Add(validity)
	if parent == nil {
		parent = tmpl
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, parentKey)
	if err != nil {
		return nil, nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, err
	}
	return cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), nil
}

// MarshalKey encodes a private key as Istio and Kubernetes read it: PKCS#1 for
// RSA ("RSA PRIVATE KEY", the form Istio's tools/certs write and istiod reads),
// SEC 1 for ECDSA ("EC PRIVATE KEY").
func MarshalKey(key crypto.Signer) ([]byte, error) {
	switch k := key.(type) {
	case *rsa.PrivateKey:
		return pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)}), nil
	case *ecdsa.PrivateKey:
		der, err := x509.MarshalECPrivateKey(k)
		if err != nil {
			return nil, fmt.Errorf("encode EC key: %w", err)
		}
		return pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}), nil
	default:
		return nil, fmt.Errorf("unsupported key type %T", key)
	}
}

func parseKey(b []byte) (crypto.Signer, error) {
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil, fmt.Errorf("no PEM block")
	}
	switch blk.Type {
	case "RSA PRIVATE KEY":
		return x509.ParsePKCS1PrivateKey(blk.Bytes)
	case "PRIVATE KEY":
		k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
		if err != nil {
			return nil, err
		}
		s, ok := k.(crypto.Signer)
		if !ok {
			return nil, fmt.Errorf("unsupported key type %T", k)
		}
		return s, nil
	case "EC PRIVATE KEY":
		return x509.ParseECPrivateKey(blk.Bytes)
	default:
		return nil, fmt.Errorf("unexpected PEM block %q", blk.Type)
	}
}

func parseCert(b []byte) (*x509.Certificate, error) {
	certs, err := ParseCertificates(b)
	if err != nil {
		return nil, err
	}
	return certs[0], nil
}

// ParseCertificates decodes every CERTIFICATE block of a PEM bundle, in order.
func ParseCertificates(b []byte) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			break
		}
		if blk.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no certificate in PEM data")
	}
	return out, nil
}

func publicKeysEqual(a, b crypto.PublicKey) bool {
	type equaler interface{ Equal(crypto.PublicKey) bool }
	ea, ok := a.(equaler)
	return ok && ea.Equal(b)
}

func writeFile(path string, data []byte, mode os.FileMode) error {
	if err := os.WriteFile(path, data, mode); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
