package fault_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/meshdrill/drill/pkg/event"
	"github.com/meshdrill/drill/pkg/fault"
)

func testDeletePods(t *testing.T, c *cluster) {
	tests := []struct {
		name    string
		opts    []fault.DeleteOption
		pods    int32
		deleted int
	}{
		{"all", nil, 3, 3},
		{"count", []fault.DeleteOption{fault.Count(1)}, 3, 1},
		{"percent rounds up", []fault.DeleteOption{fault.Percent(50), fault.GracePeriod(0)}, 3, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ns := c.namespace(t)
			c.deploy(t, ns, "reviews", "v1", tt.pods)
			before := c.waitPods(t, ns, "reviews-v1", int(tt.pods))

			bus := event.NewBus(event.WithLogger(quiet()))
			sub := bus.Subscribe("test")
			set := fault.NewSet(bus, fault.NewGuard(), fault.WithLogger(quiet()))
			f, err := fault.NewDeletePods(c.target(t), fault.ByApp(ns, "reviews"), tt.opts...)
			if err != nil {
				t.Fatal(err)
			}
			if err := set.Apply(context.Background(), "kill", f); err != nil {
				t.Fatal(err)
			}
			deleted := f.Record().Pods
			if len(deleted) != tt.deleted {
				t.Fatalf("deleted %v, want %d pods", deleted, tt.deleted)
			}
			// Pods are taken in name order.
			for i, name := range deleted {
				if before[i].Name != name {
					t.Errorf("deleted %v, want the first %d of %v by name", deleted, tt.deleted, names(before))
					break
				}
			}
			// Unscheduled pods go at once; the ReplicaSet makes new ones.
			for _, p := range before[:tt.deleted] {
				waitGone(t, c, ns, p)
			}
			after := c.waitPods(t, ns, "reviews-v1", int(tt.pods))
			for _, p := range after {
				if slices.Contains(deleted, p.Name) {
					t.Errorf("pod %s still there", p.Name)
				}
			}
			if err := set.RevertAll(context.Background()); err != nil {
				t.Fatal(err)
			}
			evs := events(t, bus, sub)
			if got := typesOf(evs); got != "fault.applied,fault.reverted" {
				t.Fatalf("events %s", got)
			}
			applied, reverted := faultOf(t, evs[0]), faultOf(t, evs[1])
			if applied.Kind != "delete-pods" || !slices.Equal(applied.Pods, deleted) || applied.Restore != "" {
				t.Errorf("applied event %+v", applied)
			}
			if reverted.Note == "" || reverted.Error != "" {
				t.Errorf("reverted event %+v: want a note saying nothing was to be done", reverted)
			}
		})
	}

	t.Run("no pods", func(t *testing.T) {
		ns := c.namespace(t)
		c.deploy(t, ns, "reviews", "v1", 0)
		f, err := fault.NewDeletePods(c.target(t), fault.ByApp(ns, "reviews"))
		if err != nil {
			t.Fatal(err)
		}
		if err := f.Apply(context.Background()); err == nil {
			t.Error("Apply on a workload without pods succeeded; a fault that does nothing must say so")
		}
	})
}

func names(pods []corev1.Pod) []string {
	var out []string
	for _, p := range pods {
		out = append(out, p.Name)
	}
	return out
}

// waitGone waits until the pod (this very one, by UID) is gone.
func waitGone(t *testing.T, c *cluster, ns string, p corev1.Pod) {
	t.Helper()
	err := wait.PollUntilContextTimeout(context.Background(), 50*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		got, err := c.cs.CoreV1().Pods(ns).Get(ctx, p.Name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return true, nil
		}
		if err != nil {
			return false, err
		}
		return got.UID != p.UID, nil
	})
	if err != nil {
		t.Fatalf("pod %s/%s not deleted: %v", ns, p.Name, err)
	}
}

// A cluster drill did not create and the user did not allow: the fault is
// refused and nothing changes.
func testGuardRefuses(t *testing.T, c *cluster) {
	ns := c.namespace(t)
	c.deploy(t, ns, "reviews", "v1", 2)
	before := names(c.waitPods(t, ns, "reviews-v1", 2))
	target := c.target(t)
	target.Owned = false
	set := fault.NewSet(discard{}, fault.NewGuard("some-other-context"), fault.WithLogger(quiet()))
	for _, mk := range []func() (fault.Fault, error){
		func() (fault.Fault, error) { return fault.NewScale(target, fault.ByApp(ns, "reviews"), 0) },
		func() (fault.Fault, error) { return fault.NewDeletePods(target, fault.ByApp(ns, "reviews")) },
	} {
		f, err := mk()
		if err != nil {
			t.Fatal(err)
		}
		if err := set.Apply(context.Background(), "down", f); !errors.Is(err, fault.ErrNotAllowed) {
			t.Fatalf("Apply = %v, want ErrNotAllowed", err)
		}
	}
	if got := c.replicas(t, ns, "reviews-v1"); got != 2 {
		t.Errorf("replicas %d, want 2", got)
	}
	// Deleted pods would have been replaced by pods of other names at once.
	if after := names(c.waitPods(t, ns, "reviews-v1", 2)); !slices.Equal(before, after) {
		t.Errorf("pods %v became %v: the refused fault changed something", before, after)
	}
	// Allowing the context by name lets the fault run.
	allowed := fault.NewSet(discard{}, fault.NewGuard(c.cp.Name()), fault.WithLogger(quiet()))
	f, _ := fault.NewScale(target, fault.ByApp(ns, "reviews"), 1)
	if err := allowed.Apply(context.Background(), "down", f); err != nil {
		t.Fatalf("Apply with the context allowed: %v", err)
	}
	if err := allowed.RevertAll(context.Background()); err != nil {
		t.Fatal(err)
	}
}
