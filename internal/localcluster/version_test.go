package localcluster

import (
	"strings"
	"testing"
)

func TestParseIstiodVersion(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		// pilot-discovery as hack/build-tools.sh builds it.
		{"v0.0.0-20260827124520-eed52ebb66ad-eed52ebb66ad-Clean", "v0.0.0-20260827124520-eed52ebb66ad"},
		{"1.31-dev.eed52ebb66ad-eed52ebb66ad-Clean", "1.31-dev.eed52ebb66ad"},
		{"1.31.1-0123456789abcdef0123456789abcdef01234567-Clean\n", "1.31.1"},
		{"1.30.0-unknown-Modified", "1.30.0"},
	} {
		got, err := ParseIstiodVersion(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("ParseIstiodVersion(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{"", "unknown-unknown-unknown", "404 page not found", "1.31.1", "1.31.1-eed52ebb66ad-Clean-extra"} {
		if v, err := ParseIstiodVersion(bad); err == nil {
			t.Errorf("ParseIstiodVersion(%q) = %q, want an error", bad, v)
		}
	}
}

func FuzzParseIstiodVersion(f *testing.F) {
	f.Add("1.31-dev.eed52ebb66ad-eed52ebb66ad-Clean")
	f.Add("unknown-unknown-unknown")
	f.Fuzz(func(t *testing.T, s string) {
		v, err := ParseIstiodVersion(s)
		if err == nil && (v == "" || !strings.HasPrefix(strings.TrimSpace(s), v)) {
			t.Fatalf("%q: version %q is not a prefix of the answer", s, v)
		}
	})
}
