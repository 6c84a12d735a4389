package fault

import (
	"context"

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

// NewControlPlaneLoss takes a cluster's istiod away while everything else
// runs: the Envoys keep the configuration they have and get no update —
// endpoints that go away stay in their EDS — so failover then rests on
// outlier detection alone. istiod's Deployment is app=istiod in
// istio-system; a ControlPlaneHost freezes and thaws it.
func NewControlPlaneLoss(t Target) (*Outage, error) {
	var host func(context.Context, bool) error
	if t.ControlPlane != nil {
		host = t.ControlPlane.SetControlPlane
	}
	return newOutage(t, KindControlPlaneLoss, "istiod", "", Selector{Namespace: "istio-system", App: "istiod"}, host,
		event.Fault{Kind: KindControlPlaneLoss, Cluster: t.Name, Namespace: "istio-system", Workload: "istiod", Note: "istiod, frozen in process"})
}
