// Package kind is the "kind" provider of drill: the real thing, for laptops
// with Docker and for the nightly job. Each scenario cluster becomes a kind
// cluster (sigs.k8s.io/kind's library, the node image pinned by digest),
// created in parallel with pod and service ranges of its own on the shared
// kind network; MetalLB gives its gateways LoadBalancer addresses from a block
// of that network; Istio, at a pinned version installed with a pinned and
// checksummed istioctl, runs multi-primary on a network per cluster with an
// east-west gateway, the mesh CA's intermediate (package pki) as its cacerts,
// and remote secrets for every other cluster; Bookinfo runs from its public
// images with the very manifests the local provider applies (package
// bookinfo).
//
// Every step is logged with its cluster, so a failed nightly run says which
// cluster stopped where. Before anything is created, Preflight checks Docker,
// the engine's resources and the downloads, and returns a *preflight.Error
// (exit code 2) listing each problem with what to do.
//
// The engine reaches the clusters through existing.Access: the ingress
// gateway's MetalLB address (Linux) or a host port kind maps to its NodePort
// (Docker Desktop), and client-go port-forwards to pods' Envoy admin ports.
package kind
