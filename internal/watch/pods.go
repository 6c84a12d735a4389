package watch

import (
	corev1 "k8s.io/api/core/v1"

	"github.com/meshdrill/drill/pkg/event"
)

// podState is what was last seen of a pod.
type podState struct {
	ready       bool
	terminating bool
}

func podOf(p *corev1.Pod) event.Pod {
	return event.Pod{
		Namespace: p.Namespace,
		Name:      p.Name,
		App:       p.Labels["app"],
		Version:   p.Labels["version"],
		IP:        p.Status.PodIP,
	}
}

func stateOf(p *corev1.Pod) podState {
	s := podState{terminating: p.DeletionTimestamp != nil}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			s.ready = c.Status == corev1.ConditionTrue
		}
	}
	return s
}

// onPod publishes PodTerminating when a pod's deletion starts and PodReady when
// a pod that is not terminating turns ready; other changes publish nothing.
func (w *Watcher) onPod(obj any) {
	p, ok := obj.(*corev1.Pod)
	if !ok {
		return
	}
	now := stateOf(p)
	key := p.Namespace + "/" + p.Name
	w.mu.Lock()
	defer w.mu.Unlock()
	last := w.pods[key]
	w.pods[key] = now
	if now.terminating && !last.terminating {
		w.publish(event.PodTerminating, podOf(p))
	}
	if now.ready && !last.ready && !now.terminating {
		w.publish(event.PodReady, podOf(p))
	}
}

// onPodDeleted publishes PodDeleted: the pod is gone from the API server.
func (w *Watcher) onPodDeleted(obj any) {
	p, ok := unwrap(obj).(*corev1.Pod)
	if !ok {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.pods, p.Namespace+"/"+p.Name)
	w.publish(event.PodDeleted, podOf(p))
}
