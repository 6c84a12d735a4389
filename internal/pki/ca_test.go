package pki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// testCA is generated once: RSA key generation dominates this package's tests.
var testCA = func() *MeshCA {
	ca, err := New()
	if err != nil {
		panic(err)
	}
	return ca
}()

// workloadCert signs a workload certificate with the cluster's intermediate,
// as istiod does for a sidecar: a SPIFFE URI SAN, no CA.
func workloadCert(t *testing.T, c *CACerts, sa string) *x509.Certificate {
	t.Helper()
	inter, err := parseCert(c.CACert)
	if err != nil {
		t.Fatal(err)
	}
	key, err := parseKey(c.CAKey)
	if err != nil {
		t.Fatal(err)
	}
	leafKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse("spiffe://cluster.local/ns/default/sa/" + sa)
	tmpl := &x509.Certificate{
		Subject:     pkix.Name{},
		URIs:        []*url.URL{u},
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	leaf, _, err := Sign(tmpl, inter, key, leafKey.Public(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return leaf
}

// TestCrossClusterTrust is the point of a shared root: a workload certificate
// issued by cluster1's istiod verifies with cluster2's root-cert.pem and the
// chain cluster1's sidecar presents (its cert-chain.pem).
func TestCrossClusterTrust(t *testing.T) {
	c1, err := testCA.Intermediate("cluster1")
	if err != nil {
		t.Fatal(err)
	}
	c2, err := testCA.Intermediate("cluster2")
	if err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]*CACerts{"cluster1": c1, "cluster2": c2} {
		if err := c.Verify(testCA, time.Now()); err != nil {
			t.Errorf("%s: %v", name, err)
		}
		inter, _ := parseCert(c.CACert)
		if inter.Subject.Locality[0] != name || !inter.MaxPathLenZero || !inter.IsCA ||
			inter.DNSNames[0] != "istiod.istio-system.svc" || inter.Subject.CommonName != "Intermediate CA" {
			t.Errorf("%s intermediate: subject %v, IsCA %v, MaxPathLenZero %v, DNS %v", name, inter.Subject, inter.IsCA, inter.MaxPathLenZero, inter.DNSNames)
		}
	}

	leaf := workloadCert(t, c1, "bookinfo-reviews")
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(c2.RootCert) {
		t.Fatal("cluster2 root-cert.pem holds no certificate")
	}
	chain, err := ParseCertificates(c1.CertChain)
	if err != nil {
		t.Fatal(err)
	}
	inters := x509.NewCertPool()
	inters.AddCert(chain[0])
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inters, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Errorf("cluster1 workload certificate does not verify with cluster2's root: %v", err)
	}

	// A mesh with a different root must not trust it: that is what a missing
	// cacerts secret (istiod's own self-signed CA) looks like.
	other, err := New()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: other.Pool(), Intermediates: inters, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err == nil {
		t.Error("a workload certificate verified against an unrelated root")
	}

	// The intermediate may not issue further CAs (pathlen 0).
	sub := &x509.Certificate{Subject: pkix.Name{CommonName: "sub CA"}, IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	inter, _ := parseCert(c1.CACert)
	ikey, _ := parseKey(c1.CAKey)
	subKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	subCert, _, err := Sign(sub, inter, ikey, subKey.Public(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	leafKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	under, _, err := Sign(&x509.Certificate{Subject: pkix.Name{CommonName: "leaf"}}, subCert, subKey, leafKey.Public(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	inters.AddCert(subCert)
	if _, err := under.Verify(x509.VerifyOptions{Roots: testCA.Pool(), Intermediates: inters, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err == nil {
		t.Error("a certificate under a CA under the intermediate verified despite pathlen 0")
	}
}

func TestVerifyFailures(t *testing.T) {
	good, err := testCA.Intermediate("cluster1")
	if err != nil {
		t.Fatal(err)
	}
	other, err := testCA.Intermediate("cluster2")
	if err != nil {
		t.Fatal(err)
	}
	foreign, err := New()
	if err != nil {
		t.Fatal(err)
	}
	foreignInter, err := foreign.Intermediate("cluster1")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		mutate func(c *CACerts)
		now    time.Time
		want   string
	}{
		{"good", func(*CACerts) {}, time.Now(), ""},
		{"other root", func(c *CACerts) { *c = *foreignInter }, time.Now(), "does not chain to the mesh root"},
		{"root-cert swapped", func(c *CACerts) { c.RootCert = foreign.CertPEM() }, time.Now(), "root-cert.pem is not the mesh root"},
		{"chain without root", func(c *CACerts) { c.CertChain = c.CACert }, time.Now(), "cert-chain.pem must hold the intermediate then the root (1 certificates found)"},
		{"key of another cluster", func(c *CACerts) { c.CAKey = other.CAKey }, time.Now(), "ca-key.pem does not belong to ca-cert.pem"},
		{"expired", func(*CACerts) {}, time.Now().Add(IntermediateValidity + time.Hour), "does not chain"},
		{"garbage cert", func(c *CACerts) { c.CACert = []byte("nope") }, time.Now(), "ca-cert.pem: no certificate in PEM data"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := *good
			tt.mutate(&c)
			err := c.Verify(testCA, tt.now)
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("Verify: %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("Verify = %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

func TestSaveLoad(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "mesh-ca")
	if _, err := Load(dir); !errors.Is(err, ErrNoCA) {
		t.Fatalf("Load of an empty directory = %v, want ErrNoCA", err)
	}
	if err := testCA.Save(dir); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(filepath.Join(dir, RootKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("root key mode %v, want 0600", st.Mode().Perm())
	}
	loaded, created, err := LoadOrNew(dir)
	if err != nil || created {
		t.Fatalf("LoadOrNew = created %v, %v; want the saved CA", created, err)
	}
	if !loaded.Certificate().Equal(testCA.Certificate()) {
		t.Fatal("loaded root differs from the saved one")
	}
	// An intermediate issued by the loaded CA is trusted by the original.
	c, err := loaded.Intermediate("cluster3")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Verify(testCA, time.Now()); err != nil {
		t.Fatalf("intermediate from the loaded CA: %v", err)
	}

	// A key that is not the certificate's is refused with advice.
	if err := os.WriteFile(filepath.Join(dir, RootKeyFile), c.CAKey, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(dir); err == nil || !strings.Contains(err.Error(), "does not belong") {
		t.Fatalf("Load with a foreign key = %v", err)
	}
	// Half a CA is damage, not absence.
	if err := os.Remove(filepath.Join(dir, RootKeyFile)); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(dir); err == nil || errors.Is(err, ErrNoCA) {
		t.Fatalf("Load without the key = %v, want a read error", err)
	}
}

func TestLoadOrNewCreates(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ca")
	ca, created, err := LoadOrNew(dir)
	if err != nil || !created {
		t.Fatalf("LoadOrNew = created %v, %v", created, err)
	}
	again, created, err := LoadOrNew(dir)
	if err != nil || created || !again.Certificate().Equal(ca.Certificate()) {
		t.Fatalf("second LoadOrNew = created %v, %v, same %v", created, err, again != nil && again.Certificate().Equal(ca.Certificate()))
	}
}

func TestSecretRoundTrip(t *testing.T) {
	c, err := testCA.Intermediate("cluster1")
	if err != nil {
		t.Fatal(err)
	}
	s := c.Secret()
	if s.Name != "cacerts" || s.Namespace != "istio-system" || len(s.Data) != 4 {
		t.Fatalf("secret %s/%s with %d keys", s.Namespace, s.Name, len(s.Data))
	}
	back, err := FromSecret(s)
	if err != nil {
		t.Fatal(err)
	}
	if err := back.Verify(testCA, time.Now()); err != nil {
		t.Fatal(err)
	}
	delete(s.Data, CAKeyFile)
	if _, err := FromSecret(s); err == nil || !strings.Contains(err.Error(), "ca-key.pem") {
		t.Fatalf("FromSecret without the key = %v", err)
	}
}
