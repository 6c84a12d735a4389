// Package embedded is drill's default provider, "local": every cluster of a scenario
// is a real Kubernetes control plane and a real istiod run as local processes
// (pkg/cluster/local), with an emulated node running Bookinfo's workloads behind
// Envoy-compatible sidecars (pkg/proxy) that istiod configures over xDS, and
// emulated ingress and east-west gateways. It needs no Docker and no network; its
// clusters present the same cluster.Cluster as kind's, and reports say that the data
// plane was emulated.
package embedded
