package kind

import (
	"context"
	"errors"
	"fmt"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	apiwait "k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/e2e-framework/klient/k8s"
	"sigs.k8s.io/e2e-framework/klient/wait"
	"sigs.k8s.io/e2e-framework/klient/wait/conditions"

	"github.com/meshdrill/drill/internal/bookinfo"
	"github.com/meshdrill/drill/pkg/cluster/existing"
)

var ipAddressPools = schema.GroupVersionResource{Group: "metallb.io", Version: "v1beta1", Resource: "ipaddresspools"}

// pollInterval is how often drill looks at what it waits for: often enough
// that a ready cluster is not kept waiting, rarely enough to be invisible to
// the API server.
const pollInterval = 2 * time.Second

// poll waits for cond within timeout, logging what it waits for, and returns
// a timeout error naming it. An error from cond ends the wait at once.
func (c *clusterRun) poll(ctx context.Context, what string, timeout time.Duration, cond apiwait.ConditionWithContextFunc) error {
	c.log.Info("waiting for "+what, "timeout", timeout)
	start := time.Now()
	err := wait.For(cond, wait.WithContext(ctx), wait.WithTimeout(timeout), wait.WithInterval(pollInterval), wait.WithImmediate())
	if err == nil {
		c.log.Info("ready: "+what, "took", time.Since(start).Round(100*time.Millisecond))
		return nil
	}
	if ctx.Err() != nil {
		return fmt.Errorf("cluster %s: waiting for %s: %w", c.name, what, ctx.Err())
	}
	// Past the deadline the condition's own API call can fail first — client-go's
	// rate limiter says its Wait "would exceed context deadline" — which is still
	// the wait running out of time, not a different failure.
	if errors.Is(err, context.DeadlineExceeded) || apiwait.Interrupted(err) || time.Since(start) >= timeout {
		return fmt.Errorf("cluster %s: %s not ready within %s", c.name, what, timeout)
	}
	return fmt.Errorf("cluster %s: waiting for %s: %w", c.name, what, err)
}

// waitDeployment waits until the Deployment is Available, and on timeout says
// which of its pods are not ready and why.
func (c *clusterRun) waitDeployment(ctx context.Context, ns, name string, timeout time.Duration) error {
	cond := conditions.New(c.res)
	d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}}
	err := c.poll(ctx, "deployment "+ns+"/"+name, timeout, ignoreNotFound(cond.DeploymentConditionMatch(d, appsv1.DeploymentAvailable, corev1.ConditionTrue)))
	if err != nil {
		return fmt.Errorf("%w%s", err, c.podTrouble(ctx, ns, name))
	}
	return nil
}

// waitDaemonSet waits until every pod of the DaemonSet is ready.
func (c *clusterRun) waitDaemonSet(ctx context.Context, ns, name string, timeout time.Duration) error {
	cond := conditions.New(c.res)
	ds := &appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}}
	ready := cond.DaemonSetReady(ds)
	err := c.poll(ctx, "daemonset "+ns+"/"+name, timeout, ignoreNotFound(func(ctx context.Context) (bool, error) {
		ok, err := ready(ctx)
		// A DaemonSet the controller has not looked at yet wants zero pods
		// and so looks ready.
		return ok && ds.Status.DesiredNumberScheduled > 0, err
	}))
	if err != nil {
		return fmt.Errorf("%w%s", err, c.podTrouble(ctx, ns, name))
	}
	return nil
}

// waitLoadBalancer waits until the Service has a LoadBalancer address and
// returns it.
func (c *clusterRun) waitLoadBalancer(ctx context.Context, ns, name string, timeout time.Duration) (string, error) {
	cond := conditions.New(c.res)
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}}
	err := c.poll(ctx, "a LoadBalancer address for service "+ns+"/"+name, timeout, ignoreNotFound(cond.ResourceMatch(svc, func(o k8s.Object) bool {
		return existing.LoadBalancerAddress(o.(*corev1.Service)) != ""
	})))
	if err != nil {
		return "", fmt.Errorf("%w: MetalLB assigned no address; see `kubectl --kubeconfig %s -n %s logs deploy/%s`", err, c.kubeconfig, MetalLBNamespace, metallbController)
	}
	return existing.LoadBalancerAddress(svc), nil
}

// ignoreNotFound keeps waiting while the object does not exist yet (istioctl
// and the MetalLB manifest create them as they go).
func ignoreNotFound(f apiwait.ConditionWithContextFunc) apiwait.ConditionWithContextFunc {
	return func(ctx context.Context) (bool, error) {
		ok, err := f(ctx)
		if err != nil && isNotFound(err) {
			return false, nil
		}
		return ok, err
	}
}

// podTrouble describes the pods of a workload that are not ready, for a
// timeout message: the pod's state and warning events (an image that cannot
// be pulled is the usual cause on a laptop), what its containers last
// logged, and for a proxy pilot-agent's readiness reason.
func (c *clusterRun) podTrouble(ctx context.Context, ns, app string) string {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 20*time.Second)
	defer cancel()
	pods, err := c.kube.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return ""
	}
	var out string
	for _, p := range pods.Items {
		if !hasPrefixWord(p.Name, app) || bookinfo.PodReady(&p) {
			continue
		}
		out += fmt.Sprintf("; pod %s: %s", p.Name, bookinfo.Diagnose(ctx, c.kube, &p))
	}
	return out
}

func hasPrefixWord(name, prefix string) bool {
	return len(name) > len(prefix) && name[:len(prefix)] == prefix && name[len(prefix)] == '-'
}
