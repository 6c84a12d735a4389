//go:build tools

// Package tools pins the commands of the kind node's images that kubeadm asks
// for and Kubernetes itself does not build: etcd and CoreDNS, at the versions
// kubeadm of tools/kube's Kubernetes names (its DefaultEtcdVersion and
// CoreDNSVersion). hack/kind-images.sh builds them by package path from here;
// their dependencies never enter drill's own module graph.
package tools

import (
	_ "github.com/coredns/coredns"
	_ "go.etcd.io/etcd/server/v3"
)
