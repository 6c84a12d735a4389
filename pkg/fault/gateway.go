package fault

import (
	"context"
	"fmt"

	"github.com/meshdrill/drill/pkg/event"
)

// KindGatewayLoss is the Kind of a GatewayLoss.
const KindGatewayLoss = "gateway-loss"

// Gateway roles, by the istio label of their pods and Deployments in an
// Istio installation (gen-eastwest-gateway.sh, the ingress gateway chart).
const (
	GatewayEastWest = "eastwest"
	GatewayIngress  = "ingress"
)

// GatewayHost is a cluster whose gateways are not Deployments — the local
// provider runs them in its own process — and that stops and restarts them
// itself.
type GatewayHost interface {
	// SetGateway stops (serving false) or restarts the gateway of the role
	// ("eastwest", "ingress").
	SetGateway(ctx context.Context, role string, serving bool) error
}

// NewGatewayLoss takes a cluster's east-west (or ingress) gateway away while
// everything behind it stays up: other clusters' Envoys still have it in
// EDS and their connections to it fail, so only outlier detection can move
// their traffic elsewhere. The gateway's Deployments carry
// istio=<role>gateway in istio-system; a GatewayHost stops and restarts it.
func NewGatewayLoss(t Target, role string) (*Outage, error) {
	if role != GatewayEastWest && role != GatewayIngress {
		return nil, fmt.Errorf("gateway loss in cluster %s: gateway %q is neither %q nor %q", t.Name, role, GatewayEastWest, GatewayIngress)
	}
	var host func(context.Context, bool) error
	if t.Gateways != nil {
		host = func(ctx context.Context, up bool) error { return t.Gateways.SetGateway(ctx, role, up) }
	}
	return newOutage(t, KindGatewayLoss, "the "+role+" gateway", role+" gateway",
		Selector{Namespace: "istio-system", Labels: "istio=" + role + "gateway"}, host,
		event.Fault{Kind: KindGatewayLoss, Cluster: t.Name, Namespace: "istio-system", Workload: "istio-" + role + "gateway", Note: role + " gateway, stopped in process"})
}
