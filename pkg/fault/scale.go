package fault

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"

	"github.com/meshdrill/drill/pkg/event"
)

// KindScale is the Kind of a Scale fault.
const KindScale = "scale"

// Scale sets the replicas of the selected Deployments through their scale
// subresource — what `kubectl scale` and autoscalers do — and on Revert puts
// back each Deployment's own original count.
type Scale struct {
	target   Target
	sel      Selector
	replicas int32
	wait     time.Duration
	poll     time.Duration

	mu       sync.Mutex
	applied  bool
	reverted bool
	changed  []scaled // in the order they were changed
	planned  []scaled // what Undo read, which Apply then acts on
}

// scaled is one Deployment a Scale touched. It is recorded before the update
// is sent, so that an update whose answer was lost is reverted too.
type scaled struct {
	name     string
	from     int32
	restored bool
}

// ScaleOption configures a Scale.
type ScaleOption func(*Scale)

// WaitScaled makes Apply and Revert wait, up to timeout, until the Deployment
// controller has acted on the change: the Deployment's status counts the new
// number of (non-terminating) pods. Without it they return once the API server
// accepted the new replicas.
func WaitScaled(timeout time.Duration) ScaleOption {
	return func(s *Scale) { s.wait = timeout }
}

// WithPollInterval sets how often WaitScaled reads the Deployments (default
// 250 ms).
func WithPollInterval(d time.Duration) ScaleOption {
	return func(s *Scale) { s.poll = d }
}

// NewScale returns a fault that scales the Deployments sel selects in t to
// replicas.
func NewScale(t Target, sel Selector, replicas int32, opts ...ScaleOption) (*Scale, error) {
	if t.Client == nil {
		return nil, fmt.Errorf("scale %s: cluster %s has no client", sel, t.Name)
	}
	if err := sel.validate(); err != nil {
		return nil, fmt.Errorf("scale in cluster %s: %w", t.Name, err)
	}
	if replicas < 0 {
		return nil, fmt.Errorf("scale %s in cluster %s: replicas must not be negative, got %d", sel, t.Name, replicas)
	}
	s := &Scale{target: t, sel: sel, replicas: replicas, poll: 250 * time.Millisecond}
	for _, o := range opts {
		o(s)
	}
	return s, nil
}

// Kind is KindScale.
func (s *Scale) Kind() string { return KindScale }

// Target is the cluster the Deployments are in.
func (s *Scale) Target() Target { return s.target }

// Undo reads the selected Deployments and their replicas: the record of how
// to scale them back, and the originals Apply then restores on Revert.
func (s *Scale) Undo(ctx context.Context) (event.Undo, error) {
	deps, err := s.sel.deployments(ctx, s.target)
	if err != nil {
		return event.Undo{}, fmt.Errorf("scale: %w", err)
	}
	api := s.target.Client.AppsV1().Deployments(s.sel.Namespace)
	u := event.Undo{Namespace: s.sel.Namespace}
	var plan []scaled
	for _, d := range deps {
		sc, err := api.GetScale(ctx, d.Name, metav1.GetOptions{})
		if err != nil {
			return event.Undo{}, fmt.Errorf("read the replicas of deployment %s/%s in cluster %s: %w", s.sel.Namespace, d.Name, s.target.Name, err)
		}
		plan = append(plan, scaled{name: d.Name, from: sc.Spec.Replicas})
		u.Replicas = append(u.Replicas, event.DeploymentReplicas{Name: d.Name, From: sc.Spec.Replicas, To: s.replicas})
	}
	s.mu.Lock()
	s.planned = plan
	s.mu.Unlock()
	return u, nil
}

// Apply reads each selected Deployment's replicas, remembers them and sets
// them to the fault's count. It fails if no Deployment matches. After Undo it
// acts on the Deployments Undo read and takes Undo's readings for the
// originals, so that the undo record and the revert agree.
func (s *Scale) Apply(ctx context.Context) error {
	s.mu.Lock()
	if s.applied {
		s.mu.Unlock()
		return fmt.Errorf("%s: already applied", s.Describe())
	}
	s.applied = true
	planned := s.planned
	s.mu.Unlock()

	var names []string
	original := map[string]int32{}
	if planned != nil {
		for _, p := range planned {
			names = append(names, p.name)
			original[p.name] = p.from
		}
	} else {
		deps, err := s.sel.deployments(ctx, s.target)
		if err != nil {
			return fmt.Errorf("scale: %w", err)
		}
		for _, d := range deps {
			names = append(names, d.Name)
		}
	}
	api := s.target.Client.AppsV1().Deployments(s.sel.Namespace)
	for _, name := range names {
		idx := -1
		err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
			sc, err := api.GetScale(ctx, name, metav1.GetOptions{})
			if err != nil {
				return err
			}
			if idx < 0 {
				// The first reading is the original (or Undo's, when it read
				// first); a retry after a conflict must not take our own count
				// for it.
				from, ok := original[name]
				if !ok {
					from = sc.Spec.Replicas
				}
				s.mu.Lock()
				s.changed = append(s.changed, scaled{name: name, from: from})
				idx = len(s.changed) - 1
				s.mu.Unlock()
			}
			sc.Spec.Replicas = s.replicas
			_, err = api.UpdateScale(ctx, name, sc, metav1.UpdateOptions{})
			return err
		})
		if err != nil {
			return fmt.Errorf("scale deployment %s/%s in cluster %s to %d: %w", s.sel.Namespace, name, s.target.Name, s.replicas, err)
		}
	}
	if s.wait > 0 {
		for _, name := range names {
			if err := waitScaled(ctx, s.target, s.sel.Namespace, name, s.replicas, s.wait, s.poll); err != nil {
				return err
			}
		}
	}
	return nil
}

// Revert sets every Deployment Apply touched back to its original replicas,
// even one whose replicas were changed since by someone else. It carries on
// past a Deployment that fails and returns every failure.
func (s *Scale) Revert(ctx context.Context) error {
	s.mu.Lock()
	todo := make([]int, 0, len(s.changed))
	for i, c := range s.changed {
		if !c.restored {
			todo = append(todo, i)
		}
	}
	s.mu.Unlock()

	api := s.target.Client.AppsV1().Deployments(s.sel.Namespace)
	var errs []error
	var done []int
	for _, i := range todo {
		s.mu.Lock()
		c := s.changed[i]
		s.mu.Unlock()
		err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
			sc, err := api.GetScale(ctx, c.name, metav1.GetOptions{})
			if err != nil {
				return err
			}
			if sc.Spec.Replicas == c.from {
				return nil
			}
			sc.Spec.Replicas = c.from
			_, err = api.UpdateScale(ctx, c.name, sc, metav1.UpdateOptions{})
			return err
		})
		if err != nil {
			errs = append(errs, fmt.Errorf("restore deployment %s/%s in cluster %s to %d replicas: %w",
				s.sel.Namespace, c.name, s.target.Name, c.from, err))
			continue
		}
		s.mu.Lock()
		s.changed[i].restored = true
		s.mu.Unlock()
		done = append(done, i)
	}
	if s.wait > 0 {
		for _, i := range done {
			s.mu.Lock()
			c := s.changed[i]
			s.mu.Unlock()
			if err := waitScaled(ctx, s.target, s.sel.Namespace, c.name, c.from, s.wait, s.poll); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	s.mu.Lock()
	s.reverted = true
	s.mu.Unlock()
	return nil
}

// Describe says what the fault does.
func (s *Scale) Describe() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	what := s.sel.String()
	if len(s.changed) > 0 && s.sel.Deployment == "" {
		names := make([]string, len(s.changed))
		for i, c := range s.changed {
			names[i] = c.name
		}
		what += " (" + strings.Join(names, ", ") + ")"
	}
	return fmt.Sprintf("scale %s in namespace %s of cluster %s to %d replicas", what, s.sel.Namespace, s.target.Name, s.replicas)
}

// RestoreCommand is one `kubectl scale` per Deployment not yet restored, with
// its original replicas, joined with &&.
func (s *Scale) RestoreCommand() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var cmds []string
	for _, c := range s.changed {
		if c.restored {
			continue
		}
		cmds = append(cmds, fmt.Sprintf("%s scale deployment/%s --replicas=%d", s.target.kubectl(s.sel.Namespace), c.name, c.from))
	}
	return strings.Join(cmds, " && ")
}

// Record is the change Apply made (From the original sum, To the new sum,
// each Deployment in Deployments) or, once reverted, the change back.
func (s *Scale) Record() event.Fault {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := event.Fault{Kind: KindScale, Cluster: s.target.Name, Namespace: s.sel.Namespace, Workload: s.sel.Workload()}
	var from, to int32
	for _, c := range s.changed {
		d := event.DeploymentReplicas{Name: c.name, From: c.from, To: s.replicas}
		if s.reverted {
			d.From, d.To = d.To, d.From
		}
		from += d.From
		to += d.To
		r.Deployments = append(r.Deployments, d)
	}
	if len(s.changed) > 0 {
		r.From, r.To = &from, &to
	}
	return r
}
