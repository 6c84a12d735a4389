package fault

import (
	"context"
	"fmt"
	"sync"

	"github.com/meshdrill/drill/pkg/event"
)

// KindControlPlaneLoss is the Kind of a ControlPlaneLoss.
const KindControlPlaneLoss = "control-plane-loss"

// ControlPlaneHost is a cluster whose istiod is not a Deployment — the local
// provider runs it as a process — and that stops and resumes it itself.
type ControlPlaneHost interface {
	// SetControlPlane stops (running false) or resumes the cluster's istiod.
	SetControlPlane(ctx context.Context, running bool) error
}

// ControlPlaneLoss takes a cluster's istiod away while everything else
// runs: the Envoys keep the configuration they have and get no update —
// endpoints that go away stay in their EDS — so failover then rests on
// outlier detection alone. Where istiod is a Deployment in istio-system
// (kind, existing clusters) it is scaled to zero and back; a
// ControlPlaneHost freezes and thaws it.
type ControlPlaneLoss struct {
	target Target
	scale  *Scale // nil on a ControlPlaneHost

	mu       sync.Mutex
	applied  bool
	reverted bool
}

// NewControlPlaneLoss returns the fault for t's istiod.
func NewControlPlaneLoss(t Target) (*ControlPlaneLoss, error) {
	c := &ControlPlaneLoss{target: t}
	if t.ControlPlane == nil {
		s, err := NewScale(t, Selector{Namespace: "istio-system", App: "istiod"}, 0)
		if err != nil {
			return nil, err
		}
		c.scale = s
	}
	return c, nil
}

// Kind is KindControlPlaneLoss.
func (c *ControlPlaneLoss) Kind() string { return KindControlPlaneLoss }

// Target is the cluster the fault acts on.
func (c *ControlPlaneLoss) Target() Target { return c.target }

// Apply takes istiod away.
func (c *ControlPlaneLoss) Apply(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.applied {
		return fmt.Errorf("%s: already applied", c.describe())
	}
	c.applied = true
	if c.scale != nil {
		return c.scale.Apply(ctx)
	}
	if err := c.target.ControlPlane.SetControlPlane(ctx, false); err != nil {
		return fmt.Errorf("%s: %w", c.describe(), err)
	}
	return nil
}

// Revert brings istiod back.
func (c *ControlPlaneLoss) Revert(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.applied || c.reverted {
		return nil
	}
	if c.scale != nil {
		if err := c.scale.Revert(ctx); err != nil {
			return err
		}
	} else if err := c.target.ControlPlane.SetControlPlane(ctx, true); err != nil {
		return fmt.Errorf("revert %s: %w", c.describe(), err)
	}
	c.reverted = true
	return nil
}

// Describe says what the fault does.
func (c *ControlPlaneLoss) Describe() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.describe()
}

func (c *ControlPlaneLoss) describe() string {
	how := "freeze it"
	if c.scale != nil {
		how = "scale its Deployment (app=istiod in istio-system) to 0"
	}
	return fmt.Sprintf("take istiod of cluster %s away: %s", c.target.Name, how)
}

// RestoreCommand scales istiod back by hand; empty on a ControlPlaneHost,
// whose istiod ends with the run.
func (c *ControlPlaneLoss) RestoreCommand() string {
	if c.scale == nil {
		return ""
	}
	return c.scale.RestoreCommand()
}

// Record is the fault as an event payload.
func (c *ControlPlaneLoss) Record() event.Fault {
	if c.scale != nil {
		r := c.scale.Record()
		r.Kind = KindControlPlaneLoss
		return r
	}
	return event.Fault{Kind: KindControlPlaneLoss, Cluster: c.target.Name, Namespace: "istio-system", Workload: "istiod", Note: "istiod, frozen in process"}
}
