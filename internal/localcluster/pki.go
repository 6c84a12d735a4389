package localcluster

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"time"

	"github.com/meshdrill/drill/internal/pki"
)

// Certificates are valid for a year: long enough for any drill, short
// enough that a leaked run directory is not a standing credential.
const certValidity = 365 * 24 * time.Hour

// The file names Istio expects in its "cacerts" secret and in istiod's
// ROOT_CA_DIR (istio.io/istio pilot/pkg/bootstrap/istio_ca.go; Istio's
// "Plug in CA certificates" task).
const (
	caCertFile    = pki.CACertFile
	caKeyFile     = pki.CAKeyFile
	certChainFile = pki.CertChainFile
	rootCertFile  = pki.RootCertKey
)

// MeshCA is the root certificate authority every cluster of a mesh trusts.
// Each cluster's istiod signs workload certificates with its own intermediate
// CA issued from this root, as in Istio's multicluster installation guides, so
// workloads in different clusters trust each other. It is internal/pki's CA,
// the one the real-cluster providers plug into Istio too, kept on disk.
type MeshCA struct {
	ca  *pki.MeshCA
	dir string
}

// NewMeshCA generates a root CA and writes root-cert.pem and root-key.pem to
// dir.
func NewMeshCA(dir string) (*MeshCA, error) {
	ca, err := pki.New()
	if err != nil {
		return nil, err
	}
	if err := ca.Save(dir); err != nil {
		return nil, err
	}
	return &MeshCA{ca: ca, dir: dir}, nil
}

// CertPEM is the root certificate, PEM-encoded.
func (ca *MeshCA) CertPEM() []byte { return ca.ca.CertPEM() }

// Dir is where the root certificate and key were written.
func (ca *MeshCA) Dir() string { return ca.dir }

// issueIntermediate writes the four files of Istio's cacerts layout for one
// cluster into dir and returns their contents by file name.
func (ca *MeshCA) issueIntermediate(cluster, dir string) (map[string][]byte, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create cacerts directory: %w", err)
	}
	cc, err := ca.ca.Intermediate(cluster)
	if err != nil {
		return nil, err
	}
	files := cc.Files()
	for name, data := range files {
		mode := os.FileMode(0o644)
		if name == pki.CAKeyFile {
			mode = 0o600
		}
		if err := writeFile(filepath.Join(dir, name), data, mode); err != nil {
			return nil, err
		}
	}
	return files, nil
}

// kubePKI is a cluster's own Kubernetes PKI: a cluster CA (which also signs
// the controller-manager's CSRs), the API server's serving certificate and the
// service-account token signing key.
type kubePKI struct {
	caCertPEM   []byte
	caCert      string
	caKey       string
	servingCert string
	servingKey  string
	saKey       string
	saPub       string
}

func newKubePKI(dir, cluster string, serviceIP netip.Addr) (*kubePKI, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create pki directory: %w", err)
	}
	p := &kubePKI{
		caCert:      filepath.Join(dir, "ca.crt"),
		caKey:       filepath.Join(dir, "ca.key"),
		servingCert: filepath.Join(dir, "apiserver.crt"),
		servingKey:  filepath.Join(dir, "apiserver.key"),
		saKey:       filepath.Join(dir, "sa.key"),
		saPub:       filepath.Join(dir, "sa.pub"),
	}
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate cluster CA key: %w", err)
	}
	caTmpl := &x509.Certificate{
		Subject:               pkix.Name{CommonName: "drill-" + cluster + "-ca"},
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	ca, caPEM, err := pki.Sign(caTmpl, nil, caKey, caKey.Public(), certValidity)
	if err != nil {
		return nil, fmt.Errorf("sign cluster CA: %w", err)
	}
	p.caCertPEM = caPEM

	srvKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate API server key: %w", err)
	}
	// The names kubeadm puts on an API server certificate, plus loopback,
	// where this one listens.
	srvTmpl := &x509.Certificate{
		Subject:     pkix.Name{CommonName: "kube-apiserver"},
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames: []string{
			"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc",
			"kubernetes.default.svc.cluster.local",
		},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1), net.IP(serviceIP.AsSlice())},
	}
	_, srvPEM, err := pki.Sign(srvTmpl, ca, caKey, srvKey.Public(), certValidity)
	if err != nil {
		return nil, fmt.Errorf("sign API server certificate: %w", err)
	}

	saKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate service-account signing key: %w", err)
	}
	saPub, err := x509.MarshalPKIXPublicKey(saKey.Public())
	if err != nil {
		return nil, fmt.Errorf("encode service-account public key: %w", err)
	}

	for _, w := range []func() error{
		func() error { return writeFile(p.caCert, caPEM, 0o644) },
		func() error { return writeKey(p.caKey, caKey) },
		func() error { return writeFile(p.servingCert, srvPEM, 0o644) },
		func() error { return writeKey(p.servingKey, srvKey) },
		func() error { return writeKey(p.saKey, saKey) },
		func() error {
			return writeFile(p.saPub, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: saPub}), 0o644)
		},
	} {
		if err := w(); err != nil {
			return nil, err
		}
	}
	return p, nil
}

func writeKey(path string, key crypto.Signer) error {
	b, err := pki.MarshalKey(key)
	if err != nil {
		return err
	}
	return writeFile(path, b, 0o600)
}

func writeFile(path string, data []byte, mode os.FileMode) error {
	if err := os.WriteFile(path, data, mode); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
