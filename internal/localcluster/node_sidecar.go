package localcluster

import (
	"context"
	"net/http"
	"net/netip"

	corev1 "k8s.io/api/core/v1"
)

// SidecarFactory starts the emulated Istio sidecar of a pod. The node calls it
// for every pod Istio would inject (see Injected), before the pod's
// containers start, as Istio's native sidecar starts ahead of the application
// (holdApplicationUntilProxyStarts). Without a factory such pods run their
// containers alone and their status says the sidecar is absent.
type SidecarFactory interface {
	// StartSidecar returns once the sidecar is ready to carry traffic, or
	// fails; the node retries a failed start with its restart back-off.
	StartSidecar(ctx context.Context, pod SidecarPod) (Sidecar, error)
}

// SidecarPod is what a sidecar is told about its pod.
type SidecarPod struct {
	Cluster string
	// Pod is the pod as bound to the node; read only.
	Pod *corev1.Pod
	// PodIP is the pod's reported address (10.x): the sidecar's identity
	// toward istiod (its node id is sidecar~<PodIP>~<pod>.<ns>~<ns>.svc.cluster.local).
	PodIP netip.Addr
	// Addr is the pod's loopback twin (127.x): the sidecar listens there, on
	// the ports the application declares (inbound) and on its own (15000
	// admin, 15021 health, 15090 Prometheus).
	Addr netip.Addr
	// AppPorts maps each TCP port the application's containers declare to
	// where the application actually listens (a free port on Addr): inbound
	// traffic for port p goes to AppPorts[p].
	AppPorts map[int32]netip.AddrPort
	// Direct is the node's kube-proxy-like transport from the pod's address:
	// the path of traffic the sidecar passes through untouched.
	Direct http.RoundTripper
}

// Sidecar is a running emulated sidecar.
type Sidecar interface {
	// Outbound is the transport the application's calls go through, in
	// place of iptables redirecting them to Envoy's outbound listener.
	Outbound() http.RoundTripper
	// Stop drains and stops the sidecar. The node calls it after the
	// application's containers have exited; ctx ends at the pod's grace
	// deadline.
	Stop(ctx context.Context) error
}

// Istio's injection controls (istio.io docs: setup/additional-setup/sidecar-injection,
// "Controlling the injection policy").
const (
	// InjectLabel on a pod (or, deprecated, the annotation of the same name)
	// turns injection on or off for that pod.
	InjectLabel = "sidecar.istio.io/inject"
	// NamespaceInjectionLabel on a namespace enables or disables injection
	// for its pods.
	NamespaceInjectionLabel = "istio-injection"
	// RevisionLabel on a namespace selects an istiod revision to inject.
	RevisionLabel = "istio.io/rev"
)

// Injected reports whether Istio's default injector would give pod a sidecar,
// given the labels of its namespace: never for host-network pods or when the
// pod (label, then annotation) or namespace says disabled; always when the
// namespace says enabled or names a revision; otherwise only when the pod
// asks for it.
func Injected(pod *corev1.Pod, namespaceLabels map[string]string) bool {
	if pod.Spec.HostNetwork {
		return false
	}
	podSays, podSet := pod.Labels[InjectLabel]
	if !podSet {
		podSays, podSet = pod.Annotations[InjectLabel]
	}
	if podSet && podSays == "false" {
		return false
	}
	switch {
	case namespaceLabels[NamespaceInjectionLabel] == "disabled":
		return false
	case namespaceLabels[NamespaceInjectionLabel] == "enabled":
		return true
	case namespaceLabels[RevisionLabel] != "":
		return true
	}
	return podSet && podSays == "true"
}
