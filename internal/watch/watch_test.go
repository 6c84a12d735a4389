package watch

import (
	"reflect"
	"sync"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/meshdrill/drill/pkg/event"
)

// published records what a Watcher's handlers publish. The handlers are
// exercised directly here for the narrow cases (no-op updates, tombstones,
// transitions); internal/watch's informers run against a real API server in
// cluster_test.go.
type published struct {
	mu  sync.Mutex
	evs []event.Event
}

func (p *published) Publish(e event.Event) {
	p.mu.Lock()
	p.evs = append(p.evs, e)
	p.mu.Unlock()
}

func (p *published) take() []event.Event {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := p.evs
	p.evs = nil
	return out
}

func ptr[T any](v T) *T { return &v }

func dep(name string, desired *int32, ready, available int32) *appsv1.Deployment {
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name},
		Spec:       appsv1.DeploymentSpec{Replicas: desired},
		Status:     appsv1.DeploymentStatus{ReadyReplicas: ready, AvailableReplicas: available},
	}
}

func TestDeploymentEvents(t *testing.T) {
	pub := &published{}
	w := New("c1", nil, pub)
	steps := []struct {
		name   string
		do     func()
		expect []event.Workload
	}{
		{"first sight", func() { w.onDeployment(dep("reviews-v1", ptr[int32](2), 2, 2)) },
			[]event.Workload{{Namespace: "default", Name: "reviews-v1", Desired: 2, Ready: 2, Available: 2}}},
		{"resync", func() { w.onDeployment(dep("reviews-v1", ptr[int32](2), 2, 2)) }, nil},
		{"scaled to zero", func() { w.onDeployment(dep("reviews-v1", ptr[int32](0), 2, 2)) },
			[]event.Workload{{Namespace: "default", Name: "reviews-v1", Desired: 0, Ready: 2, Available: 2}}},
		{"pods gone", func() { w.onDeployment(dep("reviews-v1", ptr[int32](0), 0, 0)) },
			[]event.Workload{{Namespace: "default", Name: "reviews-v1"}}},
		{"deleted when already at zero", func() {
			w.onDeploymentDeleted(cache.DeletedFinalStateUnknown{Key: "default/reviews-v1", Obj: dep("reviews-v1", ptr[int32](0), 0, 0)})
		}, nil},
		{"unset replicas default to 1", func() { w.onDeployment(dep("ratings-v1", nil, 0, 0)) },
			[]event.Workload{{Namespace: "default", Name: "ratings-v1", Desired: 1}}},
		{"deleted", func() { w.onDeploymentDeleted(dep("ratings-v1", nil, 0, 0)) },
			[]event.Workload{{Namespace: "default", Name: "ratings-v1"}}},
	}
	for _, s := range steps {
		s.do()
		var got []event.Workload
		for _, e := range pub.take() {
			if e.Type != event.ReplicasChanged || e.Cluster != "c1" || e.Source != Source {
				t.Errorf("%s: event %s cluster %q source %q", s.name, e.Type, e.Cluster, e.Source)
			}
			var wl event.Workload
			if err := e.Decode(&wl); err != nil {
				t.Fatal(err)
			}
			got = append(got, wl)
		}
		if !reflect.DeepEqual(got, s.expect) {
			t.Errorf("%s: published %+v, want %+v", s.name, got, s.expect)
		}
	}
}

func pod(name string, ready, terminating bool) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name, Labels: map[string]string{"app": "reviews", "version": "v1"}},
		Status:     corev1.PodStatus{PodIP: "10.1.0.5"},
	}
	st := corev1.ConditionFalse
	if ready {
		st = corev1.ConditionTrue
	}
	p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionTrue}, {Type: corev1.PodReady, Status: st}}
	if terminating {
		now := metav1.Now()
		p.DeletionTimestamp = &now
	}
	return p
}

func TestPodEvents(t *testing.T) {
	pub := &published{}
	w := New("c1", nil, pub)
	steps := []struct {
		name   string
		do     func()
		expect []event.Type
	}{
		{"pending", func() { w.onPod(pod("a", false, false)) }, nil},
		{"ready", func() { w.onPod(pod("a", true, false)) }, []event.Type{event.PodReady}},
		{"still ready (resync)", func() { w.onPod(pod("a", true, false)) }, nil},
		{"not ready", func() { w.onPod(pod("a", false, false)) }, nil},
		{"ready again", func() { w.onPod(pod("a", true, false)) }, []event.Type{event.PodReady}},
		{"terminating", func() { w.onPod(pod("a", true, true)) }, []event.Type{event.PodTerminating}},
		{"terminating, not ready", func() { w.onPod(pod("a", false, true)) }, nil},
		{"deleted", func() { w.onPodDeleted(pod("a", false, true)) }, []event.Type{event.PodDeleted}},
		{"first seen terminating", func() { w.onPod(pod("b", true, true)) }, []event.Type{event.PodTerminating}},
		{"deletion missed by the watch", func() {
			w.onPodDeleted(cache.DeletedFinalStateUnknown{Key: "default/b", Obj: pod("b", true, true)})
		}, []event.Type{event.PodDeleted}},
		{"first seen ready", func() { w.onPod(pod("c", true, false)) }, []event.Type{event.PodReady}},
	}
	for _, s := range steps {
		s.do()
		var got []event.Type
		for _, e := range pub.take() {
			got = append(got, e.Type)
			var p event.Pod
			if err := e.Decode(&p); err != nil {
				t.Fatal(err)
			}
			if p.App != "reviews" || p.Version != "v1" || p.IP != "10.1.0.5" || p.Namespace != "default" {
				t.Errorf("%s: payload %+v", s.name, p)
			}
		}
		if !reflect.DeepEqual(got, s.expect) {
			t.Errorf("%s: published %v, want %v", s.name, got, s.expect)
		}
	}
	if len(w.pods) != 1 {
		t.Errorf("state kept for %d pods, want 1 (deleted pods are forgotten)", len(w.pods))
	}
}

func slice(name, svc string, eps ...discoveryv1.Endpoint) *discoveryv1.EndpointSlice {
	return &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Namespace: "default", Name: name, Labels: map[string]string{discoveryv1.LabelServiceName: svc}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints:   eps,
	}
}

func ep(ready *bool, addrs ...string) discoveryv1.Endpoint {
	return discoveryv1.Endpoint{Addresses: addrs, Conditions: discoveryv1.EndpointConditions{Ready: ready}}
}

func TestEndpointsMerge(t *testing.T) {
	yes, no := ptr(true), ptr(false)
	tests := []struct {
		name     string
		slices   []*discoveryv1.EndpointSlice
		ready    []string
		notReady []string
	}{
		{"none", nil, []string{}, nil},
		{"one slice", []*discoveryv1.EndpointSlice{slice("a", "reviews", ep(yes, "10.1.0.2"), ep(no, "10.1.0.1"))},
			[]string{"10.1.0.2"}, []string{"10.1.0.1"}},
		{"unset condition is ready", []*discoveryv1.EndpointSlice{slice("a", "reviews", ep(nil, "10.1.0.9"))},
			[]string{"10.1.0.9"}, nil},
		{"merged and sorted across slices", []*discoveryv1.EndpointSlice{
			slice("a", "reviews", ep(yes, "10.1.0.3"), ep(no, "10.1.0.4")),
			slice("b", "reviews", ep(yes, "10.1.0.1", "10.1.0.2")),
		}, []string{"10.1.0.1", "10.1.0.2", "10.1.0.3"}, []string{"10.1.0.4"}},
		{"ready in one slice wins", []*discoveryv1.EndpointSlice{
			slice("a", "reviews", ep(no, "10.1.0.3")),
			slice("b", "reviews", ep(yes, "10.1.0.3")),
		}, []string{"10.1.0.3"}, nil},
		{"empty slice", []*discoveryv1.EndpointSlice{slice("a", "reviews")}, []string{}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := endpoints("default", "reviews", tt.slices)
			want := event.Endpoints{Namespace: "default", Service: "reviews", Ready: tt.ready, NotReady: tt.notReady}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("got %+v, want %+v", got, want)
			}
		})
	}
}

func TestSliceEventsDeduplicated(t *testing.T) {
	pub := &published{}
	w := New("c1", nil, pub)
	idx := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{serviceIndex: sliceService})
	put := func(s *discoveryv1.EndpointSlice) {
		if err := idx.Update(s); err != nil {
			t.Fatal(err)
		}
		w.onSlice(idx, s)
	}
	a := slice("reviews-a", "reviews", ep(ptr(true), "10.1.0.1"))
	put(a)
	relabelled := a.DeepCopy()
	relabelled.Annotations = map[string]string{"touched": "yes"}
	put(relabelled)
	put(slice("reviews-b", "reviews", ep(ptr(false), "10.1.0.2")))
	if err := idx.Delete(a); err != nil {
		t.Fatal(err)
	}
	w.onSlice(idx, cache.DeletedFinalStateUnknown{Key: "default/reviews-a", Obj: a})
	put(slice("orphan", ""))

	var got []event.Endpoints
	for _, e := range pub.take() {
		var p event.Endpoints
		if err := e.Decode(&p); err != nil {
			t.Fatal(err)
		}
		got = append(got, p)
	}
	want := []event.Endpoints{
		{Namespace: "default", Service: "reviews", Ready: []string{"10.1.0.1"}},
		{Namespace: "default", Service: "reviews", Ready: []string{"10.1.0.1"}, NotReady: []string{"10.1.0.2"}},
		{Namespace: "default", Service: "reviews", Ready: []string{}, NotReady: []string{"10.1.0.2"}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("published\n%+v\nwant\n%+v", got, want)
	}
}

func TestSelectorIn(t *testing.T) {
	tests := []struct {
		values []string
		want   string
	}{
		{nil, ""},
		{[]string{"reviews"}, "app in (reviews)"},
		{[]string{"reviews", "productpage", "reviews"}, "app in (productpage,reviews)"},
	}
	for _, tt := range tests {
		got, err := selectorIn("app", tt.values)
		if err != nil || got != tt.want {
			t.Errorf("selectorIn(%v) = %q, %v; want %q", tt.values, got, err, tt.want)
		}
	}
	if _, err := selectorIn("app", []string{"not a label value!"}); err == nil {
		t.Error("an invalid label value was accepted")
	}
}
