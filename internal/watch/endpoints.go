package watch

import (
	"fmt"
	"slices"
	"sort"

	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/meshdrill/drill/pkg/event"
)

// sliceService indexes an EndpointSlice by the namespace/name of the service
// it belongs to, from the kubernetes.io/service-name label the EndpointSlice
// controller sets.
func sliceService(obj any) ([]string, error) {
	s, ok := obj.(*discoveryv1.EndpointSlice)
	if !ok {
		return nil, fmt.Errorf("not an EndpointSlice: %T", obj)
	}
	svc := s.Labels[discoveryv1.LabelServiceName]
	if svc == "" {
		return nil, nil
	}
	return []string{s.Namespace + "/" + svc}, nil
}

// endpoints merges the slices of one service into its ready and not-ready
// addresses, each sorted, an address ready in any slice counting as ready. An
// endpoint with no ready condition is ready: the API says consumers should
// read an unset condition as true (discovery/v1 EndpointConditions.Ready).
func endpoints(ns, svc string, list []*discoveryv1.EndpointSlice) event.Endpoints {
	ready := map[string]bool{}
	notReady := map[string]bool{}
	for _, s := range list {
		for _, e := range s.Endpoints {
			ok := e.Conditions.Ready == nil || *e.Conditions.Ready
			for _, a := range e.Addresses {
				if ok {
					ready[a] = true
				} else {
					notReady[a] = true
				}
			}
		}
	}
	out := event.Endpoints{Namespace: ns, Service: svc, Ready: []string{}}
	for a := range ready {
		out.Ready = append(out.Ready, a)
	}
	for a := range notReady {
		if !ready[a] {
			out.NotReady = append(out.NotReady, a)
		}
	}
	sort.Strings(out.Ready)
	sort.Strings(out.NotReady)
	return out
}

// onSlice recomputes the endpoints of the slice's service from every slice of
// it in the informer's store and publishes EndpointsChanged when they differ
// from what was last published.
func (w *Watcher) onSlice(idx cache.Indexer, obj any) {
	s, ok := unwrap(obj).(*discoveryv1.EndpointSlice)
	if !ok {
		return
	}
	svc := s.Labels[discoveryv1.LabelServiceName]
	if svc == "" {
		return
	}
	key := s.Namespace + "/" + svc
	w.mu.Lock()
	defer w.mu.Unlock()
	// Read the store under the lock: two handlers racing would otherwise
	// publish in the opposite order from the store's states.
	objs, err := idx.ByIndex(serviceIndex, key)
	if err != nil {
		w.log.Warn("watch: read EndpointSlices", "cluster", w.cluster, "service", key, "error", err)
		return
	}
	all := make([]*discoveryv1.EndpointSlice, 0, len(objs))
	for _, o := range objs {
		if es, ok := o.(*discoveryv1.EndpointSlice); ok {
			all = append(all, es)
		}
	}
	now := endpoints(s.Namespace, svc, all)
	if last, seen := w.eps[key]; seen && sameEndpoints(last, now) {
		return
	}
	w.eps[key] = now
	w.publish(event.EndpointsChanged, now)
}

func sameEndpoints(a, b event.Endpoints) bool {
	return slices.Equal(a.Ready, b.Ready) && slices.Equal(a.NotReady, b.NotReady)
}
