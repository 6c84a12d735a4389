package watch

import (
	appsv1 "k8s.io/api/apps/v1"

	"github.com/meshdrill/drill/pkg/event"
)

// workload is the part of a Deployment a drill follows.
func workload(d *appsv1.Deployment) event.Workload {
	desired := int32(1) // the API server's default for an unset spec.replicas
	if d.Spec.Replicas != nil {
		desired = *d.Spec.Replicas
	}
	return event.Workload{
		Namespace: d.Namespace,
		Name:      d.Name,
		Desired:   desired,
		Ready:     d.Status.ReadyReplicas,
		Available: d.Status.AvailableReplicas,
	}
}

// onDeployment publishes ReplicasChanged when the desired, ready or available
// replicas differ from what was last published for the Deployment.
func (w *Watcher) onDeployment(obj any) {
	d, ok := obj.(*appsv1.Deployment)
	if !ok {
		return
	}
	now := workload(d)
	key := d.Namespace + "/" + d.Name
	w.mu.Lock()
	defer w.mu.Unlock()
	if last, seen := w.deps[key]; seen && last == now {
		return
	}
	w.deps[key] = now
	w.publish(event.ReplicasChanged, now)
}

// onDeploymentDeleted publishes the Deployment's replicas as zero: it no longer
// wants or has any.
func (w *Watcher) onDeploymentDeleted(obj any) {
	d, ok := unwrap(obj).(*appsv1.Deployment)
	if !ok {
		return
	}
	key := d.Namespace + "/" + d.Name
	gone := event.Workload{Namespace: d.Namespace, Name: d.Name}
	w.mu.Lock()
	defer w.mu.Unlock()
	last, seen := w.deps[key]
	delete(w.deps, key)
	if seen && last == gone {
		return
	}
	w.publish(event.ReplicasChanged, gone)
}
