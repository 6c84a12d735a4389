package drill

import (
	"context"
	"errors"
	"fmt"

	"github.com/meshdrill/drill/pkg/event"
	"github.com/meshdrill/drill/pkg/scenario"
	"github.com/meshdrill/drill/pkg/translate"
)

// applyPolicy translates a mesh policy and applies it to every cluster, removing
// the scenario's objects the new policy no longer has. step names the apply step
// that changes the policy mid-drill ("" for the initial policy).
func (r *run) applyPolicy(ctx context.Context, mesh *scenario.Mesh, step string) error {
	s := *r.s
	s.Spec.Mesh = *mesh
	in := translate.Input{Scenario: &s, Remotes: r.remotes(ctx)}
	var opts []translate.Option
	if step != "" {
		opts = append(opts, translate.WithStep(step))
	}
	res, err := translate.Translate(in, opts...)
	if err != nil {
		return fmt.Errorf("translate the mesh policy: %w", err)
	}
	for _, w := range res.Warnings {
		r.bus.Publish(event.New(event.Log, "", "translate", event.LogLine{Level: "warn", Message: w.Error()}))
	}
	r.policyMu.Lock()
	defer r.policyMu.Unlock()
	for _, co := range res.Clusters {
		c, ok := r.clusters[co.Cluster]
		if !ok {
			return fmt.Errorf("translate produced objects for cluster %q, which the provider did not bring up", co.Cluster)
		}
		applied, err := applyObjects(ctx, c.Dynamic, c.Name, co.Objects())
		if err != nil {
			return err
		}
		if err := pruneObjects(ctx, c.Dynamic, c.Name, r.s.Metadata.Name, applied); err != nil {
			return err
		}
		r.applied[c.Name] = applied
		r.bus.Publish(event.New(event.Log, c.Name, "engine", event.LogLine{Level: "info", Message: fmt.Sprintf("applied %d Istio objects", len(applied))}))
		r.bus.Publish(event.New(event.PolicyApplied, c.Name, "engine", appliedPolicy(step, co.Objects())))
	}
	return nil
}

// appliedPolicy is the record of the objects applied to one cluster: their
// names, and their YAML as drill translate prints it (so the report shows what
// the clusters held, east-west addresses included).
func appliedPolicy(step string, objs []translate.Object) event.Policy {
	p := event.Policy{Step: step, Objects: make([]event.PolicyObject, 0, len(objs))}
	for _, o := range objs {
		p.Objects = append(p.Objects, event.PolicyObject{
			Kind: o.GetObjectKind().GroupVersionKind().Kind, Namespace: o.GetNamespace(), Name: o.GetName(),
		})
	}
	if y, err := translate.YAML(objs); err == nil {
		p.YAML = string(y)
	}
	return p
}

// eastWestAccess is implemented by the Access of clusters whose east-west gateway
// drill can find (kind and existing clusters: its LoadBalancer address).
type eastWestAccess interface {
	EastWest(ctx context.Context) (translate.Endpoint, error)
}

// remotes is where each cluster's services are reachable from the other clusters:
// from the provider when it knows (local), else from each cluster's east-west
// gateway. A cluster with neither gets the translator's documented placeholder and a
// warning in the log.
func (r *run) remotes(ctx context.Context) map[string]translate.Endpoint {
	if rp, ok := r.cfg.provider.(RemoteProvider); ok {
		return rp.Remotes()
	}
	out := map[string]translate.Endpoint{}
	for name, c := range r.clusters {
		ew, ok := c.Access.(eastWestAccess)
		if !ok {
			continue
		}
		ep, err := ew.EastWest(ctx)
		if err != nil {
			r.bus.Publish(event.New(event.Log, name, "engine", event.LogLine{Level: "warn",
				Message: fmt.Sprintf("no east-west gateway address for cluster %s: %v; other clusters reach it only if DNS resolves its .global names", name, err)}))
			continue
		}
		out[name] = ep
	}
	return out
}

// removePolicy deletes every object drill applied for the scenario.
func (r *run) removePolicy(ctx context.Context) {
	r.policyMu.Lock()
	defer r.policyMu.Unlock()
	var errs []error
	for name := range r.applied {
		c := r.clusters[name]
		if err := pruneObjects(ctx, c.Dynamic, c.Name, r.s.Metadata.Name, nil); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		r.log.Warn("could not remove the failover policy", "err", err, "selector", translate.Selector(r.s.Metadata.Name))
	}
}
