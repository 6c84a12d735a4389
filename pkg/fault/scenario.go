package fault

import (
	"errors"
	"fmt"

	"github.com/meshdrill/drill/pkg/scenario"
)

// FromScenario builds the fault a scenario step describes, acting on target
// (the cluster named by ScenarioCluster(f), resolved by the engine). ns is the
// namespace used when the step names none (the scenario's spec.namespace).
// peers are the clusters ScenarioPeers names, for a partition.
func FromScenario(f scenario.Fault, ns string, target Target, peers ...Target) (Fault, error) {
	n := 0
	for _, set := range []bool{f.Scale != nil, f.DeletePods != nil, f.HTTPFault != nil, f.GatewayLoss != nil, f.ControlPlaneLoss != nil, f.Partition != nil, f.ZoneLoss != nil} {
		if set {
			n++
		}
	}
	switch {
	case n > 1:
		return nil, errors.New("a fault sets exactly one of scale, deletePods, httpFault, gatewayLoss, controlPlaneLoss, partition and zoneLoss")
	case f.ZoneLoss != nil:
		z := f.ZoneLoss
		if z.Namespace != "" {
			ns = z.Namespace
		}
		return NewZoneLoss(target, ns, z.Locality)
	case f.Partition != nil:
		return NewPartition(target, peers, f.Partition.OneWay)
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
	return nil, errors.New("the fault sets no kind: give scale, deletePods, httpFault, gatewayLoss, controlPlaneLoss, partition or zoneLoss")
}

// ScenarioPeers are the clusters on the other side of a partition: those it
// names, or every cluster of all but its own. Nil for other faults.
func ScenarioPeers(f scenario.Fault, all []string) []string {
	p := f.Partition
	if p == nil {
		return nil
	}
	if len(p.Peers) > 0 {
		return p.Peers
	}
	var others []string
	for _, c := range all {
		if c != p.Cluster {
			others = append(others, c)
		}
	}
	return others
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
	case f.Partition != nil:
		return f.Partition.Cluster
	case f.ZoneLoss != nil:
		return f.ZoneLoss.Cluster
	}
	return ""
}

func selectorOf(r scenario.WorkloadRef, ns string) Selector {
	if r.Namespace != "" {
		ns = r.Namespace
	}
	return Selector{Namespace: ns, App: r.Workload, Deployment: r.Deployment, Labels: r.Selector}
}
