package localcluster

import (
	"crypto/x509"
	"encoding/pem"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
)

func parseCertPEM(t *testing.T, b []byte) []*x509.Certificate {
	t.Helper()
	var out []*x509.Certificate
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			break
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		t.Fatal("no certificate in PEM")
	}
	return out
}

// TestIntermediateChainsToRoot checks Istio's cacerts layout: cert-chain.pem
// is the intermediate then the root, ca-cert.pem the intermediate, and the
// intermediates of two clusters both verify against the one root.
func TestIntermediateChainsToRoot(t *testing.T) {
	dir := t.TempDir()
	ca, err := NewMeshCA(filepath.Join(dir, "mesh-ca"))
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(parseCertPEM(t, ca.CertPEM())[0])
	for _, cluster := range []string{"east", "west"} {
		files, err := ca.issueIntermediate(cluster, filepath.Join(dir, cluster))
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range []string{caCertFile, caKeyFile, certChainFile, rootCertFile} {
			onDisk, err := os.ReadFile(filepath.Join(dir, cluster, name))
			if err != nil || string(onDisk) != string(files[name]) {
				t.Errorf("%s/%s on disk differs from the returned data (err %v)", cluster, name, err)
			}
		}
		inter := parseCertPEM(t, files[caCertFile])[0]
		if !inter.IsCA || !inter.MaxPathLenZero || inter.Subject.Locality[0] != cluster {
			t.Errorf("%s intermediate: IsCA %v, MaxPathLenZero %v, L %v", cluster, inter.IsCA, inter.MaxPathLenZero, inter.Subject.Locality)
		}
		if _, err := inter.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
			t.Errorf("%s intermediate does not verify against the root: %v", cluster, err)
		}
		chain := parseCertPEM(t, files[certChainFile])
		if len(chain) != 2 || !chain[0].Equal(inter) || !chain[1].Equal(parseCertPEM(t, ca.CertPEM())[0]) {
			t.Errorf("%s cert-chain.pem is not [intermediate, root]", cluster)
		}
		if st, err := os.Stat(filepath.Join(dir, cluster, caKeyFile)); err != nil || st.Mode().Perm() != 0o600 {
			t.Errorf("%s ca-key.pem mode: %v %v, want 0600", cluster, st.Mode(), err)
		}
	}
}

func TestAPIServerCertificate(t *testing.T) {
	p, err := newKubePKI(t.TempDir(), "east", netip.MustParseAddr("10.97.0.1"))
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(p.caCertPEM)
	b, err := os.ReadFile(p.servingCert)
	if err != nil {
		t.Fatal(err)
	}
	cert := parseCertPEM(t, b)[0]
	// The names clients use: kubectl and drill on loopback, pods through the
	// kubernetes Service.
	for _, name := range []string{"127.0.0.1", "10.97.0.1", "localhost", "kubernetes.default.svc"} {
		if _, err := cert.Verify(x509.VerifyOptions{Roots: roots, DNSName: name}); err != nil {
			t.Errorf("serving certificate for %s: %v", name, err)
		}
	}
}

func TestFirstServiceIP(t *testing.T) {
	for cidr, want := range map[string]string{
		"10.96.0.0/16":  "10.96.0.1",
		"10.97.12.0/16": "10.97.0.1",
		"192.0.2.16/28": "192.0.2.17",
	} {
		if got := firstServiceIP(netip.MustParsePrefix(cidr)).String(); got != want {
			t.Errorf("firstServiceIP(%s) = %s, want %s", cidr, got, want)
		}
	}
}

func BenchmarkNewMeshCA(b *testing.B) {
	dir := b.TempDir()
	for b.Loop() {
		if _, err := NewMeshCA(dir); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkIssueIntermediate(b *testing.B) {
	dir := b.TempDir()
	ca, err := NewMeshCA(dir)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := ca.issueIntermediate("east", dir); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkNewKubePKI(b *testing.B) {
	dir := b.TempDir()
	for b.Loop() {
		if _, err := newKubePKI(dir, "east", netip.MustParseAddr("10.96.0.1")); err != nil {
			b.Fatal(err)
		}
	}
}
