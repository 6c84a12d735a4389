package fault

import (
	"context"
	"errors"
	"fmt"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
)

// waitScaled waits until the Deployment controller has seen the Deployment's
// current spec and counts want non-terminating pods for it. Readiness is not
// awaited: whether pods become ready is what a drill observes, not a
// precondition of the fault.
func waitScaled(ctx context.Context, t Target, ns, name string, want int32, timeout, poll time.Duration) error {
	api := t.Client.AppsV1().Deployments(ns)
	var last string
	err := wait.PollUntilContextTimeout(ctx, poll, timeout, true, func(ctx context.Context) (bool, error) {
		d, err := api.Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			// A transient API error is worth another look before the deadline.
			last = err.Error()
			return false, nil
		}
		spec := int32(1)
		if d.Spec.Replicas != nil {
			spec = *d.Spec.Replicas
		}
		last = fmt.Sprintf("spec.replicas=%d status.replicas=%d observedGeneration=%d generation=%d",
			spec, d.Status.Replicas, d.Status.ObservedGeneration, d.Generation)
		return spec == want && d.Status.ObservedGeneration >= d.Generation && d.Status.Replicas == want, nil
	})
	if err == nil {
		return nil
	}
	if errors.Is(ctx.Err(), context.Canceled) {
		return fmt.Errorf("wait for deployment %s/%s in cluster %s to reach %d replicas: %w", ns, name, t.Name, want, ctx.Err())
	}
	return fmt.Errorf("deployment %s/%s in cluster %s did not reach %d replicas within %s (last seen: %s); look at `%s describe deployment/%s`",
		ns, name, t.Name, want, timeout, last, t.kubectl(ns), name)
}
