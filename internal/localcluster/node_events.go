package localcluster

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/tools/record"
)

// The node records the Events kube-scheduler and the kubelet would, so that
// `kubectl describe pod` tells the same story on a local cluster: Scheduled,
// FailedScheduling, Started, BackOff, Failed (an image the node cannot run),
// Killing.
func (n *Node) startEvents() {
	n.events = record.NewBroadcaster(record.WithContext(n.ctx))
	n.events.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: n.kube.CoreV1().Events("")})
	n.kubelet = n.events.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "kubelet", Host: n.name})
	n.scheduler = n.events.NewRecorder(scheme.Scheme, corev1.EventSource{Component: defaultScheduler})
}
