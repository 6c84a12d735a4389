// Package localcluster runs real Kubernetes and Istio control planes as local
// processes, with an emulated node: the runtime behind drill's "local" provider
// (pkg/cluster/local).
//
// Each cluster is etcd, kube-apiserver, kube-controller-manager and istiod
// (pilot-discovery), started from binaries that hack/build-tools.sh builds
// from their Go modules into bin/ (etcd comes from Debian's etcd-server
// package). Everything a cluster owns — data directories, certificates,
// kubeconfig, logs — lives under one run directory, and every process listens
// on its own free port on 127.0.0.1, so several clusters run side by side.
//
// StartControlPlane starts one cluster; StartClusters starts several in
// parallel under one mesh root CA and wires them for Istio multicluster
// (remote secrets), so each istiod discovers the others' endpoints. Both stop
// whatever they had started when any step fails, and children are started so
// that the kernel kills them if drill dies, so no process outlives a run.
//
// What has no Go source to build — the kubelet's container runtime and Envoy —
// is emulated elsewhere in this package (the node agent and the sidecar); this
// part is only the control plane, and it is the real one.
package localcluster
