package localcluster

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// defaultScheduler is the scheduler name pods get when they name none.
const defaultScheduler = "default-scheduler"

// schedule is the node's scheduler: a cluster of one node, so a pending pod
// either fits here or nowhere. It fits unless its nodeSelector asks for
// labels the node lacks (node affinity is not evaluated; the node has no
// taints, so tolerations do not matter). A pod that fits is bound through
// the Binding subresource, as kube-scheduler binds; one that does not is
// marked unschedulable, as kube-scheduler reports it.
func (n *Node) schedule(pod *corev1.Pod) error {
	if pod.DeletionTimestamp != nil || pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
		return nil
	}
	if s := pod.Spec.SchedulerName; s != "" && s != defaultScheduler {
		return nil // another scheduler's pod
	}
	ctx, cancel := context.WithTimeout(n.ctx, 30*time.Second)
	defer cancel()
	nodeLabels := labels.Set(n.nodeLabels())
	if sel := labels.SelectorFromSet(pod.Spec.NodeSelector); !sel.Matches(nodeLabels) {
		msg := fmt.Sprintf("0/1 nodes are available: 1 node(s) didn't match Pod's node affinity/selector (node %s lacks %s).", n.name, sel)
		return n.markUnschedulable(ctx, pod, msg)
	}
	err := n.kube.CoreV1().Pods(pod.Namespace).Bind(ctx, &corev1.Binding{
		ObjectMeta: metav1.ObjectMeta{Name: pod.Name, Namespace: pod.Namespace, UID: pod.UID},
		Target:     corev1.ObjectReference{Kind: "Node", Name: n.name},
	}, metav1.CreateOptions{})
	if apierrors.IsConflict(err) || apierrors.IsNotFound(err) {
		return nil // bound by someone else, or gone
	}
	if err != nil {
		return fmt.Errorf("bind pod %s/%s to node %s: %w", pod.Namespace, pod.Name, n.name, err)
	}
	n.scheduler.Eventf(pod, corev1.EventTypeNormal, "Scheduled", "Successfully assigned %s/%s to %s", pod.Namespace, pod.Name, n.name)
	n.cfg.log.Debug("bound pod", "cluster", n.cluster, "pod", pod.Namespace+"/"+pod.Name, "node", n.name)
	return nil
}

func (n *Node) nodeLabels() map[string]string {
	out := map[string]string{
		"kubernetes.io/hostname": n.name,
		"kubernetes.io/os":       runtime.GOOS,
		"kubernetes.io/arch":     runtime.GOARCH,
	}
	for k, v := range n.cfg.labels {
		out[k] = v
	}
	return out
}

func (n *Node) markUnschedulable(ctx context.Context, pod *corev1.Pod, msg string) error {
	i := slices.IndexFunc(pod.Status.Conditions, func(c corev1.PodCondition) bool { return c.Type == corev1.PodScheduled })
	if i >= 0 && pod.Status.Conditions[i].Status == corev1.ConditionFalse && pod.Status.Conditions[i].Message == msg {
		return nil
	}
	p := pod.DeepCopy()
	c := corev1.PodCondition{Type: corev1.PodScheduled, Status: corev1.ConditionFalse, Reason: corev1.PodReasonUnschedulable, Message: msg, LastTransitionTime: metav1.Now()}
	if i >= 0 {
		p.Status.Conditions[i] = c
	} else {
		p.Status.Conditions = append(p.Status.Conditions, c)
	}
	_, err := n.kube.CoreV1().Pods(p.Namespace).UpdateStatus(ctx, p, metav1.UpdateOptions{FieldManager: fieldManager})
	if apierrors.IsConflict(err) || apierrors.IsNotFound(err) {
		return nil
	}
	if err == nil {
		n.scheduler.Event(pod, corev1.EventTypeWarning, "FailedScheduling", msg)
	}
	return err
}
