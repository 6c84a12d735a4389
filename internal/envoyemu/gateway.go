package envoyemu

import (
	"context"
	"fmt"
	"maps"
	"net/netip"
	"strings"

	networking "istio.io/api/networking/v1alpha3"
	networkingv1 "istio.io/client-go/pkg/apis/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Gateway roles, by the istio label their pods carry in an Istio
// installation (manifests/charts/gateways, samples/multicluster).
const (
	// IngressGatewayLabel is istio-ingressgateway's istio label, which
	// Bookinfo's Gateway selects.
	IngressGatewayLabel = "ingressgateway"
	// EastWestGatewayLabel is the east-west gateway's istio label, which the
	// cross-network Gateway selects.
	EastWestGatewayLabel = "eastwestgateway"
	// EastWestPort is where an east-west gateway takes mTLS traffic from
	// other clusters, routed by SNI (AUTO_PASSTHROUGH).
	EastWestPort = 15443
	// CrossNetworkGatewayName is the Gateway object Istio's
	// samples/multicluster/expose-services.yaml applies.
	CrossNetworkGatewayName = "cross-network-gateway"
)

// GatewayIdentity is the identity of a gateway proxy of cluster named name
// (istio-ingressgateway, istio-eastwestgateway) with the istio label role,
// at addr, in Istio's system namespace. A gateway the local provider runs
// has no pod; istiod then reads its labels from the node metadata.
func GatewayIdentity(cluster, name, role string, addr netip.Addr) Identity {
	return Identity{
		Kind:           Router,
		Pod:            name + "-" + cluster,
		Namespace:      "istio-system",
		IP:             addr,
		Labels:         map[string]string{"istio": role, "app": name},
		WorkloadName:   name,
		ServiceAccount: name + "-service-account",
		Cluster:        cluster,
	}
}

// NewGateway is New for a gateway: id.Kind must be Router. Its listeners
// are those istiod sends for the Gateway objects that select its labels,
// each bound on the gateway's address.
func NewGateway(id Identity, xdsAddr string, opts ...Option) (*Proxy, error) {
	if id.Kind != Router {
		return nil, fmt.Errorf("gateway %s/%s: identity kind is %q; a gateway is a %q", id.Namespace, id.Pod, id.Kind, Router)
	}
	return New(id, xdsAddr, opts...)
}

// CrossNetworkGateway is the Gateway that makes an east-west gateway accept
// other clusters' mTLS traffic for every service, routed by SNI, as Istio's
// samples/multicluster/expose-services.yaml does: port 15443, TLS mode
// AUTO_PASSTHROUGH, hosts *.local. Apply it in each cluster whose services
// other clusters reach through its gateway (the aggregate strategy).
func CrossNetworkGateway() *networkingv1.Gateway {
	gw := &networkingv1.Gateway{
		TypeMeta:   metav1.TypeMeta{APIVersion: "networking.istio.io/v1", Kind: "Gateway"},
		ObjectMeta: metav1.ObjectMeta{Name: CrossNetworkGatewayName, Namespace: "istio-system"},
	}
	gw.Spec.Selector = map[string]string{"istio": EastWestGatewayLabel}
	gw.Spec.Servers = []*networking.Server{{
		Port:  &networking.Port{Number: EastWestPort, Name: "tls", Protocol: "TLS"},
		Tls:   &networking.ServerTLSSettings{Mode: networking.ServerTLSSettings_AUTO_PASSTHROUGH},
		Hosts: []string{"*.local"},
	}}
	return gw
}

// SetServing stops (false) or resumes (true) a gateway's traffic
// listeners, as its pods going away and coming back would: while stopped,
// connections to its address are refused and its listeners are not bound
// again when LDS changes; its admin endpoint stays for the stats. It is a
// no-op for a sidecar.
func (p *Proxy) SetServing(ctx context.Context, on bool) error {
	if p.id.Kind != Router {
		return fmt.Errorf("proxy %s is not a gateway", p.id.NodeID())
	}
	p.mu.Lock()
	p.paused = !on
	var names []string
	for name := range p.servers {
		if strings.HasPrefix(name, "lds_") {
			names = append(names, name)
		}
	}
	p.mu.Unlock()
	if !on {
		for _, n := range names {
			p.unlisten(n)
		}
		p.closeTracked()
		p.log.Info("gateway stopped serving")
		return ctx.Err()
	}
	p.cfg.mu.Lock()
	lds := maps.Clone(p.cfg.listeners)
	p.cfg.mu.Unlock()
	if err := p.bindGatewayListeners(nil, lds); err != nil {
		return fmt.Errorf("gateway %s: resume: %w", p.id.NodeID(), err)
	}
	p.log.Info("gateway serving again")
	return nil
}
