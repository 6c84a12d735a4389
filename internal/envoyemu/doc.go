// Package envoyemu is drill's emulated Envoy: the sidecar and gateway proxy of the
// local provider, which has no Envoy binary to run.
//
// A Proxy takes its whole configuration from the cluster's real istiod over
// ADS, as Envoy does (xds.go): listeners, routes, clusters and endpoints in
// Envoy's v3 API, applied as they arrive, ACKed when used and NACKed with a
// reason when not. It routes HTTP by those routes (route.go, router.go),
// balances over EDS endpoints by priority and locality with Envoy's
// overprovisioning factor and panic threshold (lb.go), ejects outliers as
// Envoy's outlier detector does (outlier.go), fails over through aggregate
// clusters (aggregate.go), and reports what it did in Envoy's own stat names,
// tagged as an Istio sidecar tags them (stats.go, istiostats.go), on an admin
// endpoint at port 15000 (admin.go).
//
// Traffic between proxies is Istio mutual TLS (tlsctx.go, secrets.go,
// demux.go): certificates by SDS name from pilot-agent's socket inside a
// pod (SDSSource) or from istiod's CA on the local provider (CASource),
// TLS origination per transport socket match with the cluster's SNI, ALPN
// and SPIFFE identities, termination by the inbound listener's filter
// chains, SNI passthrough on east-west gateways.
//
// On the local provider the emulation has two limits a reader of a drill
// report should know: traffic reaches the sidecar as an HTTP proxy rather
// than through iptables; and a pod's address in the Kubernetes API,
// 10.A.B.C, is served on its loopback twin 127.A.B.C, which is where the
// proxy dials every endpoint istiod names. Inside a pod (NewFromBootstrap,
// and cmd/envoy, the `envoy` pilot-agent starts in the offline proxy image)
// the proxy takes what Envoy's bootstrap gives it, takes the traffic
// istio-init's iptables rules capture (bootstrap.go, capture.go) and dials
// addresses as they are. docs/proxy.md explains each choice.
//
// New builds the sidecar of one pod from its Identity; NewGateway a
// router-mode proxy (istio-ingressgateway, or an east-west gateway routing
// by SNI as Istio's AUTO_PASSTHROUGH does). Package proxy/localsidecar plugs
// sidecars into the local provider's node agent.
package envoyemu
