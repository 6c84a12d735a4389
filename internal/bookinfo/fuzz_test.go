package bookinfo

import (
	"strings"
	"testing"
)

// ParseImage reads image references from any pod the emulated node is given.
func FuzzParseImage(f *testing.F) {
	for _, s := range []string{
		"docker.io/istio/examples-bookinfo-reviews-v2:1.20.3",
		"localhost:5000/examples-bookinfo-ratings-v1@sha256:0123",
		"examples-bookinfo-productpage-v1",
		"examples-bookinfo--v1", "examples-bookinfo-reviews-", "a/b/c:d@e", ":", "@", "",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, image string) {
		svc, version, ok := ParseImage(image)
		if !ok {
			if svc != "" || version != "" {
				t.Fatalf("ParseImage(%q) = %q, %q, false: want empty results", image, svc, version)
			}
			return
		}
		if !strings.Contains(image, "examples-bookinfo-"+svc+"-"+version) {
			t.Fatalf("ParseImage(%q) = %s %s, which the image does not name", image, svc, version)
		}
		if s, v, ok := ParseImage(Image(svc, version)); !ok || s != svc || v != version {
			t.Fatalf("Image(%s, %s) does not parse back", svc, version)
		}
	})
}
