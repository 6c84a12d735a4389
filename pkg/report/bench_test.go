package report

import (
	"io"
	"testing"

	"github.com/meshdrill/drill/internal/failover"
	"github.com/meshdrill/drill/pkg/event"
)

// benchEvents is the seed drill stretched to a load of the given seconds.
func benchEvents(b *testing.B, seconds int) []event.Event {
	st := seedStory(b)
	st.seconds = seconds
	return st.build()
}

func BenchmarkBuild(b *testing.B) {
	for _, bc := range []struct {
		name    string
		seconds int
	}{{"150s", 150}, {"1h", 3600}} {
		b.Run(bc.name, func(b *testing.B) {
			evs := benchEvents(b, bc.seconds)
			b.ReportMetric(float64(len(evs)), "events")
			b.ResetTimer()
			for b.Loop() {
				if _, err := Build(evs); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkRender(b *testing.B) {
	for _, bc := range []struct {
		name    string
		seconds int
	}{{"150s", 150}, {"1h", 3600}} {
		rep, err := Build(benchEvents(b, bc.seconds))
		if err != nil {
			b.Fatal(err)
		}
		for _, r := range []struct {
			file  string
			write func(io.Writer) error
		}{{JSONFile, rep.WriteJSON}, {JUnitFile, rep.WriteJUnit}, {SummaryFile, rep.WriteSummary}, {HTMLFile, rep.WriteHTML}} {
			b.Run(bc.name+"/"+r.file, func(b *testing.B) {
				cw := &countWriter{}
				for b.Loop() {
					cw.n = 0
					if err := r.write(cw); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(cw.n), "bytes")
			})
		}
	}
}

type countWriter struct{ n int }

func (c *countWriter) Write(p []byte) (int, error) { c.n += len(p); return len(p), nil }

// BenchmarkDetectorObserve is the cost the engine pays per event when it runs the
// Detector live on the Bus.
func BenchmarkDetectorObserve(b *testing.B) {
	st := seedStory(b)
	st.live = false
	evs := st.build()
	b.ResetTimer()
	for b.Loop() {
		d, err := failover.NewDetector(failover.Watch{Service: "reviews", From: "cluster1", To: "cluster2",
			Hosts: []string{"reviews-failover.default.global"}, FailoverAfter: "reviews-down", FailbackAfter: "reviews-back"})
		if err != nil {
			b.Fatal(err)
		}
		for _, e := range evs {
			d.Observe(e)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(len(evs)), "ns/event")
}
