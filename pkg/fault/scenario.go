package fault

import (
	"errors"
	"fmt"

	"github.com/meshdrill/drill/pkg/scenario"
)

// FromScenario builds the fault a scenario step describes, acting on target
// (the cluster named by ScenarioCluster(f), resolved by the engine). ns is the
// namespace used when the step names none (the scenario's spec.namespace).
func FromScenario(f scenario.Fault, ns string, target Target) (Fault, error) {
	n := 0
	for _, set := range []bool{f.Scale != nil, f.DeletePods != nil, f.HTTPFault != nil, f.GatewayLoss != nil, f.ControlPlaneLoss != nil} {
		if set {
			n++
		}
	}
	switch {
	case n > 1:
		return nil, errors.New("a fault sets exactly one of scale, deletePods, httpFault, gatewayLoss and controlPlaneLoss")
	case f.ControlPlaneLoss != nil:
		return NewControlPlaneLoss(target)
	case f.GatewayLoss != nil:
		role := f.GatewayLoss.Gateway
		if role == "" {
			role = GatewayEastWest
		}
		return NewGatewayLoss(target, role)
	case f.HTTPFault != nil:
		h := f.HTTPFault
		var spec HTTPFaultSpec
		if a := h.Abort; a != nil {
			spec.AbortStatus, spec.AbortPercent = a.Status, 100
			if a.Percent != nil {
				spec.AbortPercent = *a.Percent
			}
		}
		if d := h.Delay; d != nil {
			spec.DelayPercent = 100
			if d.Fixed != nil {
				spec.Delay = d.Fixed.D()
			}
			if d.Percent != nil {
				spec.DelayPercent = *d.Percent
			}
		}
		return NewHTTPFault(target, selectorOf(h.WorkloadRef, ns), spec)
	case f.Scale != nil:
		s := f.Scale
		if s.Replicas == nil {
			return nil, fmt.Errorf("scale %s: replicas is not set", selectorOf(s.WorkloadRef, ns))
		}
		return NewScale(target, selectorOf(s.WorkloadRef, ns), int32(*s.Replicas))
	case f.DeletePods != nil:
		d := f.DeletePods
		var opts []DeleteOption
		if d.Count != nil {
			opts = append(opts, Count(*d.Count))
		}
		if d.Percent != nil {
			opts = append(opts, Percent(*d.Percent))
		}
		if d.GracePeriod != nil {
			opts = append(opts, GracePeriod(d.GracePeriod.D()))
		}
		return NewDeletePods(target, selectorOf(d.WorkloadRef, ns), opts...)
	}
	return nil, errors.New("the fault sets no kind: give scale, deletePods, httpFault, gatewayLoss or controlPlaneLoss")
}

// ScenarioCluster is the name of the cluster a scenario fault acts on.
func ScenarioCluster(f scenario.Fault) string {
	switch {
	case f.Scale != nil:
		return f.Scale.Cluster
	case f.DeletePods != nil:
		return f.DeletePods.Cluster
	case f.HTTPFault != nil:
		return f.HTTPFault.Cluster
	case f.GatewayLoss != nil:
		return f.GatewayLoss.Cluster
	case f.ControlPlaneLoss != nil:
		return f.ControlPlaneLoss.Cluster
	}
	return ""
}

func selectorOf(r scenario.WorkloadRef, ns string) Selector {
	if r.Namespace != "" {
		ns = r.Namespace
	}
	return Selector{Namespace: ns, App: r.Workload, Deployment: r.Deployment, Labels: r.Selector}
}
