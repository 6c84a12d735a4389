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
	in := translate.Input{Scenario: &s}
	if rp, ok := r.cfg.provider.(RemoteProvider); ok {
		in.Remotes = rp.Remotes()
	}
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
	}
	return nil
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
