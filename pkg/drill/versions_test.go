package drill

import "testing"

func TestImageTag(t *testing.T) {
	for _, tc := range []struct{ image, want string }{
		{"docker.io/istio/pilot:1.31.1", "1.31.1"},
		{"drill.local/istio/pilot:1.31-dev.eed52ebb66ad", "1.31-dev.eed52ebb66ad"},
		{"registry.local:5000/istio/pilot:1.31.1@sha256:abcd", "1.31.1"},
		{"registry.local:5000/istio/pilot", ""},
		{"istio/pilot@sha256:abcd", ""},
		{"pilot", ""},
	} {
		if got := imageTag(tc.image); got != tc.want {
			t.Errorf("imageTag(%q) = %q, want %q", tc.image, got, tc.want)
		}
	}
}
