package drill

import (
	"context"
	"fmt"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/meshdrill/drill/pkg/fault"
	"github.com/meshdrill/drill/pkg/scenario"
)

// actor performs the steps' actions for the timeline.
type actor struct{ r *run }

func (a *actor) target(name string) (fault.Target, error) {
	c, ok := a.r.clusters[name]
	if !ok {
		return fault.Target{}, fmt.Errorf("cluster %q is not up", name)
	}
	t := fault.Target{Name: c.Name, Context: c.Context, Kubeconfig: c.Kubeconfig, Owned: c.Owned, Client: c.Kube, Dynamic: c.Dynamic}
	if gh, ok := c.Access.(fault.GatewayHost); ok {
		t.Gateways = gh
	}
	if ch, ok := c.Access.(fault.ControlPlaneHost); ok {
		t.ControlPlane = ch
	}
	if nw, ok := c.Access.(fault.Network); ok {
		t.Network = nw
	}
	return t, nil
}

// peers are the targets on the other side of a partition (none for other
// faults).
func (a *actor) peers(f scenario.Fault) ([]fault.Target, error) {
	var peers []fault.Target
	for _, name := range fault.ScenarioPeers(f, clusterNames(a.r.s)) {
		p, err := a.target(name)
		if err != nil {
			return nil, err
		}
		peers = append(peers, p)
	}
	return peers, nil
}

func (a *actor) Fault(ctx context.Context, st *scenario.Step) error {
	if err := a.r.steadyGate(ctx); err != nil {
		return err
	}
	t, err := a.target(fault.ScenarioCluster(*st.Fault))
	if err != nil {
		return err
	}
	peers, err := a.peers(*st.Fault)
	if err != nil {
		return err
	}
	f, err := fault.FromScenario(*st.Fault, a.r.s.Spec.Namespace, t, peers...)
	if err != nil {
		return err
	}
	return a.r.faults.Apply(ctx, st.Name, f, fault.Keep(st.Keep))
}

func (a *actor) Revert(ctx context.Context, st *scenario.Step) error {
	return a.r.faults.Revert(ctx, st.Revert)
}

func (a *actor) Apply(ctx context.Context, st *scenario.Step) error {
	return a.r.applyPolicy(ctx, st.Apply.Mesh, st.Name)
}

func (a *actor) Wait(ctx context.Context, st *scenario.Step) error {
	w := st.Wait
	if w.Ready == nil {
		t := time.NewTimer(w.For.D())
		defer t.Stop()
		select {
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-t.C:
			return nil
		}
	}
	ref := w.Ready
	c, ok := a.r.clusters[ref.Cluster]
	if !ok {
		return fmt.Errorf("cluster %q is not up", ref.Cluster)
	}
	sel := ref.Selector
	switch {
	case ref.Workload != "":
		sel = "app=" + ref.Workload
	case ref.Deployment != "":
		sel = ""
	}
	ctx, cancel := context.WithTimeout(ctx, w.Timeout.D())
	defer cancel()
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	last := "no Deployment found"
	for {
		var deps []appsv1.Deployment
		if ref.Deployment != "" {
			d, err := c.Kube.AppsV1().Deployments(ref.Namespace).Get(ctx, ref.Deployment, metav1.GetOptions{})
			if err == nil {
				deps = []appsv1.Deployment{*d}
			} else {
				last = err.Error()
			}
		} else {
			list, err := c.Kube.AppsV1().Deployments(ref.Namespace).List(ctx, metav1.ListOptions{LabelSelector: sel})
			if err == nil {
				deps = list.Items
			} else {
				last = err.Error()
			}
		}
		if len(deps) > 0 {
			ready := true
			for _, d := range deps {
				want := int32(1)
				if d.Spec.Replicas != nil {
					want = *d.Spec.Replicas
				}
				if d.Status.ObservedGeneration < d.Generation || d.Status.ReadyReplicas < want || d.Status.UpdatedReplicas < want {
					ready = false
					last = fmt.Sprintf("%s has %d of %d replicas ready", d.Name, d.Status.ReadyReplicas, want)
					break
				}
			}
			if ready {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			if ctx.Err() == context.DeadlineExceeded {
				return fmt.Errorf("%s in %s not ready within %s: %s", describeRef(ref), ref.Cluster, w.Timeout, last)
			}
			return context.Cause(ctx)
		case <-tick.C:
		}
	}
}

func describeRef(r *scenario.WorkloadRef) string {
	switch {
	case r.Workload != "":
		return "workload " + r.Workload
	case r.Deployment != "":
		return "deployment " + r.Deployment
	}
	return "selector " + r.Selector
}
