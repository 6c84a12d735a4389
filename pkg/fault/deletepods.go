package fault

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/meshdrill/drill/pkg/event"
)

// KindDeletePods is the Kind of a DeletePods fault.
const KindDeletePods = "delete-pods"

// revertNote is what a delete-pods revert says it did.
const revertNote = "nothing to revert: the workload's ReplicaSets recreate deleted pods by themselves"

// DeletePods deletes pods of the selected Deployments: all of them, a count or
// a percentage. Its Revert changes nothing, because the Deployments'
// ReplicaSets recreate the pods; it records that it did nothing.
type DeletePods struct {
	target  Target
	sel     Selector
	count   *int
	percent *int
	grace   *time.Duration

	mu       sync.Mutex
	applied  bool
	reverted bool
	deleted  []string
}

// DeleteOption configures a DeletePods.
type DeleteOption func(*DeletePods)

// Count deletes n pods (or every pod, when there are fewer).
func Count(n int) DeleteOption { return func(d *DeletePods) { d.count = &n } }

// Percent deletes p percent of the pods, rounded up so that a fault on a
// small workload still deletes at least one.
func Percent(p int) DeleteOption { return func(d *DeletePods) { d.percent = &p } }

// GracePeriod deletes the pods with this grace period (whole seconds, rounded
// up) instead of each pod's own terminationGracePeriodSeconds; 0 deletes them
// at once.
func GracePeriod(g time.Duration) DeleteOption { return func(d *DeletePods) { d.grace = &g } }

// NewDeletePods returns a fault that deletes pods of the Deployments sel
// selects in t: all of them unless Count or Percent says otherwise. Pods are
// taken in name order, so a drill deletes the same pods when run again on the
// same cluster state.
func NewDeletePods(t Target, sel Selector, opts ...DeleteOption) (*DeletePods, error) {
	if t.Client == nil {
		return nil, fmt.Errorf("delete pods of %s: cluster %s has no client", sel, t.Name)
	}
	if err := sel.validate(); err != nil {
		return nil, fmt.Errorf("delete pods in cluster %s: %w", t.Name, err)
	}
	d := &DeletePods{target: t, sel: sel}
	for _, o := range opts {
		o(d)
	}
	switch {
	case d.count != nil && d.percent != nil:
		return nil, fmt.Errorf("delete pods of %s in cluster %s: give a count or a percentage, not both", sel, t.Name)
	case d.count != nil && *d.count < 1:
		return nil, fmt.Errorf("delete pods of %s in cluster %s: count must be at least 1, got %d", sel, t.Name, *d.count)
	case d.percent != nil && (*d.percent < 1 || *d.percent > 100):
		return nil, fmt.Errorf("delete pods of %s in cluster %s: percent must be 1-100, got %d", sel, t.Name, *d.percent)
	case d.grace != nil && *d.grace < 0:
		return nil, fmt.Errorf("delete pods of %s in cluster %s: grace period must not be negative, got %s", sel, t.Name, *d.grace)
	}
	return d, nil
}

// Kind is KindDeletePods.
func (d *DeletePods) Kind() string { return KindDeletePods }

// Target is the cluster the pods are in.
func (d *DeletePods) Target() Target { return d.target }

// howMany is the number of pods to delete out of n.
func (d *DeletePods) howMany(n int) int {
	switch {
	case d.count != nil:
		return min(*d.count, n)
	case d.percent != nil:
		return int(math.Ceil(float64(n) * float64(*d.percent) / 100))
	}
	return n
}

// Apply deletes the pods. Pods already terminating are not counted; a pod that
// is gone by the time it is deleted is skipped. It fails if the workload has no
// pod to delete.
func (d *DeletePods) Apply(ctx context.Context) error {
	d.mu.Lock()
	if d.applied {
		d.mu.Unlock()
		return fmt.Errorf("%s: already applied", d.Describe())
	}
	d.applied = true
	d.mu.Unlock()

	deps, err := d.sel.deployments(ctx, d.target)
	if err != nil {
		return fmt.Errorf("delete pods: %w", err)
	}
	all, err := pods(ctx, d.target, d.sel.Namespace, deps)
	if err != nil {
		return fmt.Errorf("delete pods: %w", err)
	}
	if len(all) == 0 {
		return fmt.Errorf("delete pods of %s in %s of cluster %s: the workload has no running pod; check `%s get pods`",
			d.sel, d.sel.Namespace, d.target.Name, d.target.kubectl(d.sel.Namespace))
	}
	opts := metav1.DeleteOptions{}
	if d.grace != nil {
		s := int64(math.Ceil(d.grace.Seconds()))
		opts.GracePeriodSeconds = &s
	}
	var errs []error
	for _, p := range all[:d.howMany(len(all))] {
		// Preconditions on the UID: a pod recreated under the same name (a
		// StatefulSet's) is not the pod that was chosen.
		o := opts
		uid := p.UID
		o.Preconditions = &metav1.Preconditions{UID: &uid}
		err := d.target.Client.CoreV1().Pods(d.sel.Namespace).Delete(ctx, p.Name, o)
		switch {
		case err == nil:
			d.mu.Lock()
			d.deleted = append(d.deleted, p.Name)
			d.mu.Unlock()
		case apierrors.IsNotFound(err) || apierrors.IsConflict(err):
			// Gone already: the fault wanted it gone.
		default:
			errs = append(errs, fmt.Errorf("delete pod %s/%s in cluster %s: %w", d.sel.Namespace, p.Name, d.target.Name, err))
		}
	}
	return errors.Join(errs...)
}

// Undo records that deleted pods need no undoing.
func (d *DeletePods) Undo(context.Context) (event.Undo, error) {
	return event.Undo{Namespace: d.sel.Namespace, Nothing: revertNote}, nil
}

// Revert does nothing but record that there was nothing to do.
func (d *DeletePods) Revert(context.Context) error {
	d.mu.Lock()
	d.reverted = true
	d.mu.Unlock()
	return nil
}

// Describe says what the fault does.
func (d *DeletePods) Describe() string {
	how := "all pods"
	switch {
	case d.count != nil:
		how = fmt.Sprintf("%d pods", *d.count)
	case d.percent != nil:
		how = fmt.Sprintf("%d%% of the pods", *d.percent)
	}
	s := fmt.Sprintf("delete %s of %s in namespace %s of cluster %s", how, d.sel, d.sel.Namespace, d.target.Name)
	if d.grace != nil {
		s += fmt.Sprintf(" with grace period %s", *d.grace)
	}
	return s
}

// RestoreCommand is empty: deleted pods are recreated by their controllers.
func (d *DeletePods) RestoreCommand() string { return "" }

// Record lists the deleted pods and, once reverted, says why the revert did
// nothing.
func (d *DeletePods) Record() event.Fault {
	d.mu.Lock()
	defer d.mu.Unlock()
	r := event.Fault{Kind: KindDeletePods, Cluster: d.target.Name, Namespace: d.sel.Namespace, Workload: d.sel.Workload(),
		Pods: append([]string(nil), d.deleted...)}
	if d.reverted {
		r.Note = revertNote
	}
	return r
}
