package fault

import (
	"context"
	"fmt"
	"sync"

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

// GatewayLoss takes a cluster's east-west (or ingress) gateway away while
// everything behind it stays up: other clusters' Envoys still have it in
// EDS and their connections to it fail, so only outlier detection can move
// their traffic elsewhere. On clusters where the gateway is a Deployment in
// istio-system (kind, existing clusters), it is scaled to zero and back to
// its own replicas; a GatewayHost stops and restarts it.
type GatewayLoss struct {
	target Target
	role   string
	scale  *Scale // nil on a GatewayHost

	mu       sync.Mutex
	applied  bool
	reverted bool
}

// NewGatewayLoss returns the fault for the gateway of role in t.
func NewGatewayLoss(t Target, role string) (*GatewayLoss, error) {
	if role != GatewayEastWest && role != GatewayIngress {
		return nil, fmt.Errorf("gateway loss in cluster %s: gateway %q is neither %q nor %q", t.Name, role, GatewayEastWest, GatewayIngress)
	}
	g := &GatewayLoss{target: t, role: role}
	if t.Gateways == nil {
		s, err := NewScale(t, Selector{Namespace: "istio-system", Labels: "istio=" + role + "gateway"}, 0)
		if err != nil {
			return nil, err
		}
		g.scale = s
	}
	return g, nil
}

// Kind is KindGatewayLoss.
func (g *GatewayLoss) Kind() string { return KindGatewayLoss }

// Target is the cluster the fault acts on.
func (g *GatewayLoss) Target() Target { return g.target }

// Apply takes the gateway away.
func (g *GatewayLoss) Apply(ctx context.Context) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.applied {
		return fmt.Errorf("%s: already applied", g.describe())
	}
	g.applied = true
	if g.scale != nil {
		return g.scale.Apply(ctx)
	}
	if err := g.target.Gateways.SetGateway(ctx, g.role, false); err != nil {
		return fmt.Errorf("%s: %w", g.describe(), err)
	}
	return nil
}

// Revert brings the gateway back.
func (g *GatewayLoss) Revert(ctx context.Context) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.applied || g.reverted {
		return nil
	}
	if g.scale != nil {
		if err := g.scale.Revert(ctx); err != nil {
			return err
		}
	} else if err := g.target.Gateways.SetGateway(ctx, g.role, true); err != nil {
		return fmt.Errorf("revert %s: %w", g.describe(), err)
	}
	g.reverted = true
	return nil
}

// Describe says what the fault does.
func (g *GatewayLoss) Describe() string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.describe()
}

func (g *GatewayLoss) describe() string {
	how := "stop it"
	if g.scale != nil {
		how = "scale its Deployments (istio=" + g.role + "gateway in istio-system) to 0"
	}
	return fmt.Sprintf("take the %s gateway of cluster %s away: %s", g.role, g.target.Name, how)
}

// RestoreCommand scales the gateway back by hand; empty on a GatewayHost,
// whose gateways end with the run.
func (g *GatewayLoss) RestoreCommand() string {
	if g.scale == nil {
		return ""
	}
	return g.scale.RestoreCommand()
}

// Record is the fault as an event payload.
func (g *GatewayLoss) Record() event.Fault {
	if g.scale != nil {
		r := g.scale.Record()
		r.Kind = KindGatewayLoss
		r.Note = g.role + " gateway"
		return r
	}
	return event.Fault{Kind: KindGatewayLoss, Cluster: g.target.Name, Namespace: "istio-system", Workload: "istio-" + g.role + "gateway", Note: g.role + " gateway, stopped in process"}
}
