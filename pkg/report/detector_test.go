package report

import (
	"testing"
	"time"

	"github.com/meshdrill/drill/internal/failover"
	"github.com/meshdrill/drill/pkg/event"
)

// The detector, run over the seed's story, finds the failover and failback the
// story was written with.
func TestDetectorSeedStory(t *testing.T) {
	st := seedStory(t)
	st.live = false
	d, err := failover.NewDetector(failover.Watch{Service: "reviews", From: "cluster1", To: "cluster2",
		Hosts: []string{"reviews-failover.default.global"}, FailoverAfter: "reviews-down", FailbackAfter: "reviews-back"})
	if err != nil {
		t.Fatal(err)
	}
	var got []event.Failover
	for _, e := range st.build() {
		for _, out := range d.Observe(e) {
			var f event.Failover
			if err := out.Decode(&f); err != nil {
				t.Fatal(err)
			}
			got = append(got, f)
		}
	}
	if len(got) != 2 || got[0].Took != 2400*time.Millisecond || got[1].Took != 7400*time.Millisecond || got[0].After != "reviews-down" || got[1].After != "reviews-back" {
		t.Fatalf("got %+v, want failover 2.4 s after reviews-down and failback 7.4 s after reviews-back", got)
	}
}
