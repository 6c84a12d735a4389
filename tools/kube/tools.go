//go:build tools

// Package tools pins the Kubernetes control-plane commands drill's local provider
// runs. It is its own module so k8s.io/kubernetes never enters drill's module
// graph; hack/build-tools.sh builds the commands by package path from here.
package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
)
