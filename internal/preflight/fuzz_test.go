package preflight

import "testing"

// FuzzVersionAtLeast: Docker engines name their versions freely; the
// comparison never panics, every version is at least itself, and a version
// is never both older and newer than another.
func FuzzVersionAtLeast(f *testing.F) {
	for _, v := range []string{"27.3.1", "20.10", "v28.0.0-rc.1", "4.9.4-podman", "unknown", "", "1..2"} {
		f.Add(v, MinDockerVersion)
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		if !versionAtLeast(a, a) {
			t.Fatalf("%q is not at least itself", a)
		}
		_, aok := leadingNumbers(a)
		_, bok := leadingNumbers(b)
		if aok && bok && !versionAtLeast(a, b) && !versionAtLeast(b, a) {
			t.Fatalf("%q and %q are each older than the other", a, b)
		}
	})
}
