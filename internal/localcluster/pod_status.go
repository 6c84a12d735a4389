package localcluster

import (
	"context"
	"errors"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// SidecarCondition is the pod condition in which the node reports the pod's
// emulated sidecar, for pods Istio would inject: True while it runs; False
// with reason NoSidecarFactory when the node runs the pod without one, or
// Starting, StartFailed.
const SidecarCondition corev1.PodConditionType = "drill.meshdrill.io/Sidecar"

// errPodGone: the pod the worker runs is no longer in the API.
var errPodGone = errors.New("pod gone")

// push writes the pod's status as the worker knows it, if it changed.
func (w *podWorker) push(ctx context.Context) error {
	pods := w.n.kube.CoreV1().Pods(w.pod.Namespace)
	// Build on the newest pod the worker knows: what its last write
	// returned, ahead of the informer's cache, which may not have seen that
	// write yet (a status compared with a stale copy could wrongly look
	// unchanged). Anyone else's write since shows as a conflict.
	cur, err := w.last, error(nil)
	if cur == nil {
		cur, err = w.n.pods.Pods(w.pod.Namespace).Get(w.pod.Name)
	}
	for attempt := 0; ; attempt++ {
		if apierrors.IsNotFound(err) || (err == nil && cur.UID != w.uid) {
			return errPodGone
		}
		if err != nil {
			return fmt.Errorf("pod %s: %w", w.key, err)
		}
		st := w.status(cur.Status)
		if equality.Semantic.DeepEqual(st, cur.Status) {
			return nil
		}
		p := cur.DeepCopy()
		p.Status = st
		written, err := pods.UpdateStatus(ctx, p, metav1.UpdateOptions{FieldManager: fieldManager})
		if err == nil {
			w.last = written
			return nil
		}
		if !apierrors.IsConflict(err) || attempt >= 5 {
			if apierrors.IsNotFound(err) {
				return errPodGone
			}
			return fmt.Errorf("pod %s: update status: %w", w.key, err)
		}
		// Someone else wrote the pod (a deletion, a condition): read it.
		cur, err = pods.Get(ctx, w.pod.Name, metav1.GetOptions{})
		if err == nil {
			w.last = cur
		}
	}
}

// status is the pod's status as the kubelet would report it now, built on
// prev: conditions the node does not own (PodScheduled, DisruptionTarget, …)
// and the API server's qosClass are kept, and a condition keeps its
// transition time while its status holds.
func (w *podWorker) status(prev corev1.PodStatus) corev1.PodStatus {
	st := corev1.PodStatus{
		QOSClass:  prev.QOSClass,
		StartTime: prev.StartTime,
		Phase:     w.phase(),
	}
	if st.StartTime == nil {
		t := metav1.NewTime(w.started)
		st.StartTime = &t
	}
	if w.n.ip.IsValid() {
		st.HostIP = w.n.ip.String()
		st.HostIPs = []corev1.HostIP{{IP: st.HostIP}}
	}
	if w.ip.IsValid() {
		st.PodIP = w.ip.String()
		st.PodIPs = []corev1.PodIP{{IP: st.PodIP}}
	}

	allReady := len(w.containers) > 0
	var notReady []string
	for _, cs := range w.containers {
		s := corev1.ContainerStatus{
			Name: cs.spec.Name, Image: cs.spec.Image, ImageID: cs.spec.Image,
			ContainerID: cs.id, State: cs.state, RestartCount: cs.restarts,
			Ready: cs.ready && !w.finished,
		}
		started := cs.state.Running != nil
		s.Started = &started
		if cs.last != nil {
			s.LastTerminationState = corev1.ContainerState{Terminated: cs.last}
		}
		if cs.state.Terminated != nil {
			s.ContainerID = cs.state.Terminated.ContainerID
		}
		if !s.Ready {
			allReady = false
			notReady = append(notReady, cs.spec.Name)
		}
		st.ContainerStatuses = append(st.ContainerStatuses, s)
	}

	now := metav1.Now()
	cond := func(t corev1.PodConditionType, ok bool, reason, msg string) corev1.PodCondition {
		s := corev1.ConditionFalse
		if ok {
			s = corev1.ConditionTrue
			reason, msg = "", ""
		}
		c := corev1.PodCondition{Type: t, Status: s, Reason: reason, Message: msg, LastTransitionTime: now}
		for _, p := range prev.Conditions {
			if p.Type == t && p.Status == s {
				c.LastTransitionTime = p.LastTransitionTime
			}
		}
		return c
	}
	containersMsg := fmt.Sprintf("containers with unready status: %v", notReady)
	sidecarOK := !w.injected || w.n.cfg.sidecars == nil || w.sidecarWhy.ready
	podReady := allReady && sidecarOK && !w.terminating
	readyReason, readyMsg := "ContainersNotReady", containersMsg
	switch {
	case w.terminating:
		readyReason, readyMsg = "PodTerminating", "the pod is being deleted: not ready, so that its endpoints drop before its containers stop"
	case allReady && !sidecarOK:
		readyReason, readyMsg = "SidecarNotReady", w.sidecarWhy.message
	}
	own := []corev1.PodCondition{
		cond(corev1.PodReadyToStartContainers, w.ip.IsValid() && !w.finished, "", "the pod has no address: "+w.allocErr),
		cond(corev1.PodInitialized, true, "", ""),
		cond(corev1.ContainersReady, allReady && !w.terminating, "ContainersNotReady", containersMsg),
		cond(corev1.PodReady, podReady, readyReason, readyMsg),
	}
	if w.injected {
		own = append(own, cond(SidecarCondition, w.sidecarWhy.ready && !w.finished, w.sidecarWhy.reason, w.sidecarWhy.message))
	}
	for _, p := range prev.Conditions {
		mine := false
		for _, o := range own {
			mine = mine || o.Type == p.Type
		}
		if !mine {
			st.Conditions = append(st.Conditions, p)
		}
	}
	st.Conditions = append(st.Conditions, own...)
	return st
}

// phase is the pod's phase: Pending until its containers have all started,
// Running after; once stopped for good, Succeeded when every container
// exited 0, else Failed (the kubelet moves deleted pods to a terminal phase
// before removing them).
func (w *podWorker) phase() corev1.PodPhase {
	if w.finished {
		for _, cs := range w.containers {
			if t := cs.state.Terminated; t == nil || t.ExitCode != 0 {
				return corev1.PodFailed
			}
		}
		return corev1.PodSucceeded
	}
	for _, cs := range w.containers {
		if !cs.begun {
			return corev1.PodPending
		}
	}
	if len(w.containers) == 0 {
		return corev1.PodPending
	}
	return corev1.PodRunning
}
