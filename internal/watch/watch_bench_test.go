package watch

import (
	"fmt"
	"testing"

	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/meshdrill/drill/pkg/event"
)

type nopPublisher struct{}

func (nopPublisher) Publish(event.Event) {}

// BenchmarkSliceChange measures one EndpointSlice notification for a service
// of `endpoints` endpoints spread over slices of 100 (the EndpointSlice
// controller's default maxEndpointsPerSlice), one endpoint flipping readiness
// each time so that every notification publishes.
func BenchmarkSliceChange(b *testing.B) {
	for _, n := range []int{10, 100, 1000} {
		b.Run(fmt.Sprintf("endpoints=%d", n), func(b *testing.B) {
			w := New("c1", nil, nopPublisher{})
			idx := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{serviceIndex: sliceService})
			var first *discoveryv1.EndpointSlice
			for s := 0; s*100 < n; s++ {
				var eps []discoveryv1.Endpoint
				for i := s * 100; i < min(n, (s+1)*100); i++ {
					eps = append(eps, ep(ptr(true), fmt.Sprintf("10.1.%d.%d", i/250, i%250+1)))
				}
				sl := slice(fmt.Sprintf("reviews-%d", s), "reviews", eps...)
				if first == nil {
					first = sl
				}
				if err := idx.Add(sl); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				v := i%2 == 0
				first.Endpoints[0].Conditions.Ready = &v
				w.onSlice(idx, first)
			}
		})
	}
}

// BenchmarkPodUpdate measures a pod notification that changes nothing drill
// reports (a status update of an already ready pod): the common case.
func BenchmarkPodUpdate(b *testing.B) {
	w := New("c1", nil, nopPublisher{})
	p := pod("reviews-v1-abc", true, false)
	w.onPod(p)
	b.ReportAllocs()
	for b.Loop() {
		w.onPod(p)
	}
}
