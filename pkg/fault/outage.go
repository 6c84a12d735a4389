package fault

import (
	"context"
	"fmt"
	"sync"

	"github.com/meshdrill/drill/pkg/event"
)

// Outage takes one of Istio's own components of a cluster away — a gateway
// (GatewayLoss) or istiod (ControlPlaneLoss) — and brings it back. Where the
// component is a Deployment in istio-system (kind, existing clusters) it is
// scaled to zero and back to its own replicas, with Scale's bookkeeping;
// where the cluster runs it in drill's own process (the local provider) the
// cluster's host hook stops and restarts it.
type Outage struct {
	target Target
	kind   string
	what   string                                   // "the eastwest gateway", "istiod"
	scale  *Scale                                   // nil when host is set
	host   func(ctx context.Context, up bool) error // the cluster's own stop/restart
	record event.Fault                              // the payload when host is set
	note   string                                   // the note of the record when the Deployments were scaled

	mu       sync.Mutex
	applied  bool
	reverted bool
}

// newOutage scales the Deployments sel selects, unless host is non-nil.
func newOutage(t Target, kind, what, note string, sel Selector, host func(context.Context, bool) error, record event.Fault) (*Outage, error) {
	o := &Outage{target: t, kind: kind, what: what, note: note, host: host, record: record}
	if host == nil {
		s, err := NewScale(t, sel, 0)
		if err != nil {
			return nil, err
		}
		o.scale = s
	}
	return o, nil
}

// Kind is KindGatewayLoss or KindControlPlaneLoss.
func (o *Outage) Kind() string { return o.kind }

// Target is the cluster the fault acts on.
func (o *Outage) Target() Target { return o.target }

// Apply takes the component away.
func (o *Outage) Apply(ctx context.Context) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.applied {
		return fmt.Errorf("%s: already applied", o.describe())
	}
	o.applied = true
	if o.scale != nil {
		return o.scale.Apply(ctx)
	}
	if err := o.host(ctx, false); err != nil {
		return fmt.Errorf("%s: %w", o.describe(), err)
	}
	return nil
}

// Undo is the record of how to bring the component back: its Deployments'
// replicas, or — when the cluster runs it in drill's own process — that a
// later process cannot, as it ended with the drill.
func (o *Outage) Undo(ctx context.Context) (event.Undo, error) {
	if o.scale != nil {
		return o.scale.Undo(ctx)
	}
	return event.Undo{Cannot: o.what + " of cluster " + o.target.Name + " ran inside the drill's own process, and ended with it"}, nil
}

// Revert brings the component back.
func (o *Outage) Revert(ctx context.Context) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if !o.applied || o.reverted {
		return nil
	}
	if o.scale != nil {
		if err := o.scale.Revert(ctx); err != nil {
			return err
		}
	} else if err := o.host(ctx, true); err != nil {
		return fmt.Errorf("revert %s: %w", o.describe(), err)
	}
	o.reverted = true
	return nil
}

// Describe says what the fault does.
func (o *Outage) Describe() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.describe()
}

func (o *Outage) describe() string {
	how := "stop it in process"
	if o.scale != nil {
		how = fmt.Sprintf("scale its Deployments (%s in %s) to 0", o.scale.sel, o.scale.sel.Namespace)
	}
	return fmt.Sprintf("take %s of cluster %s away: %s", o.what, o.target.Name, how)
}

// RestoreCommand scales the Deployments back by hand; empty when the
// cluster runs the component itself (it ends with the run).
func (o *Outage) RestoreCommand() string {
	if o.scale == nil {
		return ""
	}
	return o.scale.RestoreCommand()
}

// Record is the fault as an event payload.
func (o *Outage) Record() event.Fault {
	if o.scale != nil {
		r := o.scale.Record()
		r.Kind = o.kind
		r.Note = o.note
		return r
	}
	return o.record
}
