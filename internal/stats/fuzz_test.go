package stats

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzParse feeds Parse arbitrary pages: it must return a usable Snapshot or an
// error, never panic, and never hand back a histogram whose parts disagree.
//
//	go test -run '^$' -fuzz FuzzParse -fuzztime 30s -fuzzminimizetime 2s ./pkg/stats
//
// A page with broken lines costs a re-parse per line (parseTolerant), which makes
// the default minimization of an interesting input (60 s) dominate a short run.
func FuzzParse(f *testing.F) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.*"))
	if err != nil {
		f.Fatal(err)
	}
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		if len(b) > 1024 {
			b = b[:1024] // cut mid-page: a short seed mutates faster
		}
		f.Add(b)
	}
	f.Add([]byte("# TYPE envoy_cluster_upstream_rq_time histogram\nenvoy_cluster_upstream_rq_time_bucket{cluster_name=\"a\",le=\"1\"} 2\nenvoy_cluster_upstream_rq_time_bucket{cluster_name=\"a\",le=\"0.5\"} 1\n"))
	f.Add([]byte("# TYPE envoy_cluster_x_global_upstream_rq counter\nenvoy_cluster_x_global_upstream_rq{cluster_name=\"outbound|1||a\",response_code=\"503\"} 1e300\n"))
	f.Add([]byte(`{"stats":[{"name":"cluster.a;.upstream_rq_503","value":-1},{"histograms":[{"name":"cluster.a;.upstream_rq_time","buckets":[{"upper_bound":2,"cumulative":1},{"upper_bound":1,"cumulative":3}]}]}]}`))

	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := Parse(data)
		if err != nil {
			if s != nil {
				t.Fatal("a Snapshot with an error")
			}
			return
		}
		if s.Clusters == nil || s.Requests == nil {
			t.Fatal("nil maps in a Snapshot")
		}
		for name, c := range s.Clusters {
			if c == nil {
				t.Fatalf("cluster %q has nil stats", name)
			}
			if h := c.RqTime; h != nil {
				if len(h.Bounds) != len(h.Counts) {
					t.Fatalf("cluster %q: %d bounds, %d counts", name, len(h.Bounds), len(h.Counts))
				}
				for i := 1; i < len(h.Bounds); i++ {
					if !(h.Bounds[i] > h.Bounds[i-1]) {
						t.Fatalf("cluster %q: bounds out of order: %v", name, h.Bounds)
					}
				}
				h.Quantile(0.99)
			}
		}
		if len(s.Warnings) > maxWarnings+1 {
			t.Fatalf("%d warnings", len(s.Warnings))
		}
		// Against an empty page every delta is the page's own count, never below zero.
		for name, cd := range Diff(newSnapshot(FormatPrometheus), s).Clusters {
			if cd.Requests < 0 || cd.Upstream5xx < 0 || cd.ConnectFail < 0 || cd.MembershipTotal < 0 || cd.EjectionsActive < 0 {
				t.Fatalf("cluster %q: negative delta %+v", name, cd)
			}
			for code, n := range cd.Codes {
				if n <= 0 {
					t.Fatalf("cluster %q: code %s delta %d", name, code, n)
				}
			}
		}
		// Diffing a page against itself finds nothing, whatever the page.
		d := Diff(s, s)
		if d.HasReset() {
			t.Fatal("a page differs from itself by a reset")
		}
		for name, cd := range d.Clusters {
			if cd.Requests != 0 || cd.Upstream5xx != 0 || len(cd.Codes) != 0 {
				t.Fatalf("cluster %q moved against itself: %+v", name, cd)
			}
		}
	})
}
