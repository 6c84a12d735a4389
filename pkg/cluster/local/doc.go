// Package local is drill's default provider, "local": every cluster of a scenario
// is a real Kubernetes control plane and a real istiod run as local processes
// (internal/localcluster), with an emulated node running Bookinfo's workloads behind
// Envoy-compatible sidecars (internal/envoyemu) that istiod configures over xDS, and
// emulated ingress and east-west gateways. It needs no Docker and no network; its
// clusters present the same cluster.Cluster as kind's, and reports say that the data
// plane was emulated.
package local
