package bookinfo

import (
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
)

// TestDiagnose: a pod stuck on its image says so with the kubelet's warning
// event, newest first; a pod whose proxy is not ready gets its container's
// last log lines. (client-go's fake clientset answers every log request
// with "fake logs"; the real kubelet's answer is covered by the kind
// provider's end-to-end test.)
func TestDiagnose(t *testing.T) {
	now := time.Now()
	pull := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "reviews-v1-abc", Namespace: "default"},
		Spec:       corev1.PodSpec{NodeName: "node"},
		Status: corev1.PodStatus{Phase: corev1.PodPending, ContainerStatuses: []corev1.ContainerStatus{{
			Name: "reviews", State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ErrImagePull", Message: "pull access denied"}},
		}}},
	}
	proxy := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "ratings-v1-def", Namespace: "default"},
		Spec:       corev1.PodSpec{NodeName: "node"},
		Status: corev1.PodStatus{Phase: corev1.PodRunning, ContainerStatuses: []corev1.ContainerStatus{
			{Name: "ratings", Ready: true, State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}},
			{Name: "istio-proxy", State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}},
		}},
	}
	ev := func(name, pod, reason, msg string, at time.Time) *corev1.Event {
		return &corev1.Event{
			ObjectMeta:     metav1.ObjectMeta{Name: name, Namespace: "default"},
			InvolvedObject: corev1.ObjectReference{Kind: "Pod", Name: pod, Namespace: "default"},
			Type:           corev1.EventTypeWarning, Reason: reason, Message: msg, LastTimestamp: metav1.NewTime(at),
		}
	}
	kube := fake.NewClientset(pull, proxy,
		ev("e1", pull.Name, "Failed", "Failed to pull image \"x\": not found", now.Add(-time.Minute)),
		ev("e2", pull.Name, "BackOff", "Back-off pulling image \"x\"", now),
		ev("e3", proxy.Name, "Unhealthy", "Readiness probe failed: HTTP probe failed with statuscode: 503", now))

	got := Diagnose(t.Context(), kube, pull)
	for _, want := range []string{"container reviews waiting: ErrImagePull: pull access denied", "event BackOff: Back-off pulling image", "event Failed"} {
		if !strings.Contains(got, want) {
			t.Errorf("diagnosis %q lacks %q", got, want)
		}
	}
	if strings.Index(got, "event BackOff") > strings.Index(got, "event Failed") {
		t.Errorf("diagnosis %q: the newest event must come first", got)
	}
	if strings.Contains(got, "logged") {
		t.Errorf("diagnosis %q quotes logs of a container that never started", got)
	}
	got = Diagnose(t.Context(), kube, proxy)
	for _, want := range []string{"event Unhealthy: Readiness probe failed", "container istio-proxy logged: fake logs"} {
		if !strings.Contains(got, want) {
			t.Errorf("diagnosis %q lacks %q", got, want)
		}
	}
	if strings.Contains(got, "container ratings") {
		t.Errorf("diagnosis %q quotes a ready container", got)
	}
}

func TestLastMatching(t *testing.T) {
	lines := []string{
		"2026-12-05T18:18:08Z warn Envoy proxy is NOT ready: config not received from XDS server (is Istiod running?)",
		"2026-12-05T18:18:09Z info xdsproxy connected",
		"2026-12-05T18:18:10Z warn Envoy proxy is NOT ready: server is not live, current state is: PRE_INITIALIZING",
	}
	if got := lastMatching(lines, "NOT ready"); !strings.Contains(got, "PRE_INITIALIZING") {
		t.Errorf("lastMatching = %q, want the latest reason", got)
	}
	if got := lastMatching(lines[1:2], "NOT ready"); got != "" {
		t.Errorf("lastMatching without a match = %q", got)
	}
}
