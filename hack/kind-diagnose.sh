#!/usr/bin/env bash
# kind-diagnose.sh: what a failed drill on kind clusters kept with --keep looks
# like from inside: per cluster, the pods of Bookinfo and Istio, the endpoints
# behind reviews, the remote secrets, which clusters istiod has synced
# (/debug/clusterz), and istiod's last warnings. Reads each cluster through its
# node container's own kubectl, so it needs nothing but docker.
#
#   hack/kind-diagnose.sh [PREFIX]   (default drill-: the kind provider's names)
set -uo pipefail
prefix="${1:-drill-}"
mapfile -t nodes < <(docker ps --format '{{.Names}}' | grep "^${prefix}.*-control-plane$" | sort)
if ((${#nodes[@]} == 0)); then
	echo "kind-diagnose: no running kind node named ${prefix}*-control-plane"
	exit 0
fi
for node in "${nodes[@]}"; do
	k() { docker exec "$node" kubectl --kubeconfig /etc/kubernetes/admin.conf "$@" 2>&1; }
	echo "=== ${node%-control-plane}"
	echo "--- pods"
	k get pods -A -o wide | grep -v -E ' kube-system |local-path-storage'
	echo "--- services with external addresses"
	k get svc -A | grep -E 'LoadBalancer|NAME'
	echo "--- endpoints of reviews"
	k get endpointslices -n default -l kubernetes.io/service-name=reviews -o wide
	echo "--- remote secrets"
	k get secrets -n istio-system -l istio/multiCluster=true
	echo "--- istiod's clusters (/debug/clusterz)"
	k exec -n istio-system deploy/istiod -- pilot-discovery request GET /debug/clusterz | grep -v GOMEMLIMIT | head -40
	echo "--- istiod's last warnings and errors"
	k logs -n istio-system deploy/istiod --tail=2000 | grep -E '\b(warn|error)\b' | tail -25
	echo "--- productpage's proxy: reviews clusters"
	k exec -n default deploy/productpage-v1 -c istio-proxy -- pilot-agent request GET 'clusters' | grep -E '(reviews|failover).*::(health_flags|priority|weight|rq_total|rq_error)::' | head -60
done
