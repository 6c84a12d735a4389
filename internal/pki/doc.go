// Package pki is the certificate authority of a drill's mesh: one root CA that
// every cluster trusts and, for each cluster, an intermediate CA that the
// cluster's istiod signs workload certificates with, laid out as Istio's
// "cacerts" secret (istio.io docs: tasks/security/cert-management/plugin-ca-cert;
// the subjects and constraints follow Istio's tools/certs Makefiles).
//
// Because every intermediate chains to the same root, a sidecar in one cluster
// accepts the mTLS certificate of a workload or east-west gateway in another:
// the precondition of Istio's multi-primary, multi-network setup that the kind
// provider builds. The root can be saved to and loaded from a directory, so that
// clusters kept from an earlier run (kind --keep, then --reuse) keep trusting
// the clusters created next to them.
//
// Every provider uses it: kind and existing clusters get the cacerts secret, the
// local provider (internal/localcluster) writes the same files for its istiod
// processes and signs its control planes' own certificates with Sign.
package pki
