//go:build tools

// Package tools pins the Kubernetes commands drill builds: the control plane its
// local provider runs (hack/build-tools.sh), and the node's and kubeadm's
// commands of the kind node image built without a registry
// (hack/kind-images.sh). It is its own module so k8s.io/kubernetes never enters
// drill's module graph; the scripts build the commands by package path from here.
package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-proxy"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubeadm"
	_ "k8s.io/kubernetes/cmd/kubectl"
	_ "k8s.io/kubernetes/cmd/kubelet"
)
