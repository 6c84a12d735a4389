package localcluster_test

import (
	"context"
	"testing"
	"time"

	"github.com/meshdrill/drill/internal/localcluster"
)

// BenchmarkStartControlPlane measures a start to ready and a stop, with and
// without istiod. Each iteration takes seconds: run it with -benchtime=1x or
// a small count. The stop is timed too: it is part of every test's cost.
func BenchmarkStartControlPlane(b *testing.B) {
	for _, bc := range []struct {
		name string
		opts []localcluster.Option
	}{
		{"kubernetes", []localcluster.Option{localcluster.WithoutIstiod()}},
		{"istiod", nil},
	} {
		b.Run(bc.name, func(b *testing.B) {
			if _, err := localcluster.FindBinaries("", bc.opts == nil); err != nil {
				b.Fatal(err)
			}
			var start, stop time.Duration
			n := 0
			for b.Loop() {
				opts := append([]localcluster.Option{localcluster.WithRunDir(b.TempDir())}, bc.opts...)
				t0 := time.Now()
				cp, err := localcluster.StartControlPlane(context.Background(), "bench", opts...)
				if err != nil {
					b.Fatal(err)
				}
				t1 := time.Now()
				if err := cp.Stop(context.Background()); err != nil {
					b.Fatal(err)
				}
				start += t1.Sub(t0)
				stop += time.Since(t1)
				n++
			}
			b.ReportMetric(start.Seconds()/float64(n), "start-s/op")
			b.ReportMetric(stop.Seconds()/float64(n), "stop-s/op")
		})
	}
}
