package existing

import (
	"strings"
	"testing"
)

// FuzzParseContexts: the --context flag is typed by people; whatever they
// type, the result maps valid cluster names to non-empty contexts or is an
// error.
func FuzzParseContexts(f *testing.F) {
	f.Add("cluster1=kind-a,cluster2=gke_proj_eu_b")
	f.Add(" cluster1 = arn:aws:eks:eu-west-1:123:cluster/b ,")
	f.Add("cluster1")
	f.Add("=x,a=b=c")
	f.Fuzz(func(t *testing.T, s string) {
		m, err := ParseContexts(s)
		if err != nil {
			return
		}
		for k, v := range m {
			if k == "" || v == "" || strings.ContainsAny(k, "=, ") || strings.TrimSpace(v) != v {
				t.Fatalf("ParseContexts(%q) gave %q=%q", s, k, v)
			}
		}
	})
}
