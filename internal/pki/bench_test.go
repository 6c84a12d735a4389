package pki

import "testing"

// BenchmarkIntermediate measures issuing one cluster's intermediate CA, which
// Up does once per new cluster: dominated by generating the RSA key.
func BenchmarkIntermediate(b *testing.B) {
	for b.Loop() {
		if _, err := testCA.Intermediate("cluster1"); err != nil {
			b.Fatal(err)
		}
	}
}
