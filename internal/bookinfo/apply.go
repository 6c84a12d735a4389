package bookinfo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"time"

	networkingv1 "istio.io/client-go/pkg/apis/networking/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
)

// FieldManager is the server-side apply field manager of everything drill applies.
const FieldManager = "drill"

// DefaultTimeout bounds how long Apply waits for the Deployments to be
// available: a cold start of the real images on kind takes most of it.
const DefaultTimeout = 3 * time.Minute

// ApplyOption tunes Apply.
type ApplyOption func(*applyConfig)

type applyConfig struct {
	timeout time.Duration
	wait    bool
	log     *slog.Logger
}

// WithTimeout bounds the wait for the Deployments (default DefaultTimeout).
func WithTimeout(d time.Duration) ApplyOption { return func(c *applyConfig) { c.timeout = d } }

// WithoutWait returns as soon as every object is applied.
func WithoutWait() ApplyOption { return func(c *applyConfig) { c.wait = false } }

// WithLogger reports progress to l (default: discarded).
func WithLogger(l *slog.Logger) ApplyOption { return func(c *applyConfig) { c.log = l } }

// Apply applies every object of s server-side (field manager "drill", forcing
// ownership of the fields it sets, so a re-run converges whoever touched them),
// then waits until every Deployment is available. Applying the same Set twice
// changes nothing. cluster names the cluster in messages.
func Apply(ctx context.Context, cluster string, kube kubernetes.Interface, dyn dynamic.Interface, s *Set, opts ...ApplyOption) error {
	cfg := applyConfig{timeout: DefaultTimeout, wait: true, log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	for _, o := range opts {
		o(&cfg)
	}
	objs := s.Objects()
	if len(objs) == 0 {
		return nil
	}
	for _, obj := range objs {
		if err := applyObject(ctx, dyn, obj); err != nil {
			return fmt.Errorf("cluster %s: apply bookinfo %s: %w", cluster, describe(obj), err)
		}
	}
	cfg.log.Info("bookinfo applied", "cluster", cluster, "namespace", s.namespace(), "objects", len(objs))
	if !cfg.wait || len(s.Deployments) == 0 {
		return nil
	}
	start := time.Now()
	if err := WaitAvailable(ctx, kube, s.namespace(), s.DeploymentNames(), cfg.timeout); err != nil {
		return fmt.Errorf("cluster %s: %w", cluster, err)
	}
	// Available Deployments are not yet reachable ones: the EndpointSlice
	// controller publishes their pods a moment later, and a drill whose load
	// starts before then sees failures that are not the mesh's.
	if err := WaitServing(ctx, kube, s.namespace(), s.ServingEndpoints(), cfg.timeout-time.Since(start)); err != nil {
		return fmt.Errorf("cluster %s: %w", cluster, err)
	}
	cfg.log.Info("bookinfo available", "cluster", cluster, "namespace", s.namespace(), "took", time.Since(start).Round(time.Millisecond))
	return nil
}

func (s *Set) namespace() string {
	if s.Namespace != nil {
		return s.Namespace.Name
	}
	for _, o := range s.Objects() {
		if ns := o.GetNamespace(); ns != "" {
			return ns
		}
	}
	return ""
}

// Resource is the API resource of one of a Set's objects.
func Resource(obj Object) (schema.GroupVersionResource, error) {
	switch obj.(type) {
	case *corev1.Namespace:
		return corev1.SchemeGroupVersion.WithResource("namespaces"), nil
	case *corev1.ServiceAccount:
		return corev1.SchemeGroupVersion.WithResource("serviceaccounts"), nil
	case *corev1.Service:
		return corev1.SchemeGroupVersion.WithResource("services"), nil
	case *appsv1.Deployment:
		return appsv1.SchemeGroupVersion.WithResource("deployments"), nil
	case *networkingv1.Gateway:
		return networkingv1.SchemeGroupVersion.WithResource("gateways"), nil
	case *networkingv1.VirtualService:
		return networkingv1.SchemeGroupVersion.WithResource("virtualservices"), nil
	}
	return schema.GroupVersionResource{}, fmt.Errorf("%T is not a Bookinfo object", obj)
}

func applyObject(ctx context.Context, dyn dynamic.Interface, obj Object) error {
	gvr, err := Resource(obj)
	if err != nil {
		return err
	}
	u, err := ToUnstructured(obj)
	if err != nil {
		return err
	}
	var ri dynamic.ResourceInterface = dyn.Resource(gvr)
	if ns := obj.GetNamespace(); ns != "" {
		ri = dyn.Resource(gvr).Namespace(ns)
	}
	_, err = ri.Apply(ctx, obj.GetName(), u, metav1.ApplyOptions{FieldManager: FieldManager, Force: true})
	if err != nil && strings.Contains(err.Error(), "the server could not find the requested resource") && gvr.Group != "" {
		return fmt.Errorf("%w; the cluster has no %s API: install Istio (its CRDs) before Bookinfo's ingress objects", err, gvr.GroupResource())
	}
	return err
}

// ToUnstructured renders obj as the map a server-side apply takes: the JSON
// form of the typed object (Istio specs in their protojson form, through their
// MarshalJSON) without status and without the empty creationTimestamps that
// typed objects carry, which would otherwise be applied as fields drill owns.
func ToUnstructured(obj Object) (*unstructured.Unstructured, error) {
	b, err := json.Marshal(obj)
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", describe(obj), err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("decode %s: %w", describe(obj), err)
	}
	delete(m, "status")
	dropNullTimestamps(m)
	return &unstructured.Unstructured{Object: m}, nil
}

func dropNullTimestamps(v any) {
	switch v := v.(type) {
	case map[string]any:
		for k, c := range v {
			if k == "creationTimestamp" && c == nil {
				delete(v, k)
				continue
			}
			dropNullTimestamps(c)
		}
	case []any:
		for _, c := range v {
			dropNullTimestamps(c)
		}
	}
}

func describe(obj Object) string {
	kind := obj.GetObjectKind().GroupVersionKind().Kind
	if kind == "" {
		kind = fmt.Sprintf("%T", obj)
	}
	if ns := obj.GetNamespace(); ns != "" {
		return kind + " " + ns + "/" + obj.GetName()
	}
	return kind + " " + obj.GetName()
}

// ErrNotAvailable is wrapped by WaitAvailable's error when the deadline passed
// with Deployments still unavailable.
var ErrNotAvailable = errors.New("bookinfo not available")

// WaitAvailable waits until every named Deployment in namespace has all its
// replicas updated and available, or timeout passes. The error then names each
// Deployment that is not, with what its pods are waiting on (ErrImagePull,
// Pending, CrashLoopBackOff, …) and the command to look further.
func WaitAvailable(ctx context.Context, kube kubernetes.Interface, namespace string, deployments []string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	var lastErr error
	var pending []string
	for {
		list, err := kube.AppsV1().Deployments(namespace).List(ctx, metav1.ListOptions{})
		if err == nil {
			pending = notAvailable(list.Items, deployments)
			if len(pending) == 0 {
				return nil
			}
		} else if ctx.Err() == nil {
			lastErr = err
		}
		select {
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.Canceled) {
				// Stopped from outside (Ctrl-C, another cluster failed): not a
				// timeout, and nothing to explain.
				return fmt.Errorf("waiting for Bookinfo in namespace %s: %w", namespace, ctx.Err())
			}
			if len(pending) == 0 && lastErr != nil {
				return fmt.Errorf("%w in namespace %s after %s: listing Deployments: %v", ErrNotAvailable, namespace, timeout, lastErr)
			}
			return explainNotAvailable(context.WithoutCancel(ctx), kube, namespace, pending, timeout)
		case <-tick.C:
		}
	}
}

// notAvailable returns the wanted Deployments that are missing or not yet
// available, in the order wanted.
func notAvailable(items []appsv1.Deployment, wanted []string) []string {
	byName := map[string]*appsv1.Deployment{}
	for i := range items {
		byName[items[i].Name] = &items[i]
	}
	var out []string
	for _, name := range wanted {
		d := byName[name]
		if d == nil || !deploymentAvailable(d) {
			out = append(out, name)
		}
	}
	return out
}

func deploymentAvailable(d *appsv1.Deployment) bool {
	want := int32(1)
	if d.Spec.Replicas != nil {
		want = *d.Spec.Replicas
	}
	st := d.Status
	return st.ObservedGeneration >= d.Generation && st.UpdatedReplicas >= want && st.AvailableReplicas >= want
}

func explainNotAvailable(ctx context.Context, kube kubernetes.Interface, namespace string, names []string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var lines []string
	for _, name := range names {
		d, err := kube.AppsV1().Deployments(namespace).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			lines = append(lines, fmt.Sprintf("%s: %v", name, err))
			continue
		}
		want := int32(1)
		if d.Spec.Replicas != nil {
			want = *d.Spec.Replicas
		}
		line := fmt.Sprintf("%s: %d of %d replicas available", name, d.Status.AvailableReplicas, want)
		if pods := podTrouble(ctx, kube, d); len(pods) > 0 {
			line += " (" + strings.Join(pods, "; ") + ")"
		}
		lines = append(lines, line)
	}
	return fmt.Errorf("%w in namespace %s after %s: %s; see `kubectl -n %s describe pods -l app` for events",
		ErrNotAvailable, namespace, timeout, strings.Join(lines, ", "), namespace)
}

// podTrouble says, for each pod of d that is not ready, why not.
func podTrouble(ctx context.Context, kube kubernetes.Interface, d *appsv1.Deployment) []string {
	if d.Spec.Selector == nil {
		return nil
	}
	sel := labels.SelectorFromSet(d.Spec.Selector.MatchLabels).String()
	pods, err := kube.CoreV1().Pods(d.Namespace).List(ctx, metav1.ListOptions{LabelSelector: sel})
	if err != nil {
		return []string{"listing its pods: " + err.Error()}
	}
	if len(pods.Items) == 0 {
		return []string{"no pods: check its ReplicaSet's events"}
	}
	var out []string
	for _, p := range pods.Items {
		if PodReady(&p) {
			continue
		}
		out = append(out, "pod "+p.Name+": "+Diagnose(ctx, kube, &p))
	}
	sort.Strings(out)
	return out
}

// PodReady reports whether the pod's Ready condition holds.
func PodReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// podWhy summarises a pod's state the way `kubectl get pods` does: the
// waiting or terminated reason of a container, or the pod's phase and the
// condition holding it back.
func podWhy(p *corev1.Pod) string {
	if p.Spec.NodeName == "" {
		for _, c := range p.Status.Conditions {
			if c.Type == corev1.PodScheduled && c.Status != corev1.ConditionTrue && c.Message != "" {
				return "Pending, not scheduled: " + c.Message
			}
		}
		return "Pending, not scheduled to a node (is a scheduler, or drill's node, running?)"
	}
	for _, cs := range p.Status.ContainerStatuses {
		switch {
		case cs.State.Waiting != nil && cs.State.Waiting.Reason != "":
			s := fmt.Sprintf("container %s waiting: %s", cs.Name, cs.State.Waiting.Reason)
			if m := cs.State.Waiting.Message; m != "" {
				s += ": " + m
			}
			return s
		case cs.State.Terminated != nil:
			return fmt.Sprintf("container %s terminated: %s (exit code %d)", cs.Name, cs.State.Terminated.Reason, cs.State.Terminated.ExitCode)
		}
	}
	why := string(p.Status.Phase)
	for _, c := range p.Status.Conditions {
		if c.Status != corev1.ConditionTrue && slices.Contains([]corev1.PodConditionType{corev1.PodReady, corev1.ContainersReady}, c.Type) && c.Message != "" {
			why += ", " + c.Message
			break
		}
	}
	return why + ", not ready"
}

// ServingEndpoints is how many ready endpoints each Service of the set has
// once every Deployment is available: the replicas of the Deployments it
// selects (by the app label). Services with no Deployment here are left out.
func (s *Set) ServingEndpoints() map[string]int {
	out := map[string]int{}
	for _, d := range s.Deployments {
		n := 1
		if d.Spec.Replicas != nil {
			n = int(*d.Spec.Replicas)
		}
		out[d.Labels[LabelApp]] += n
	}
	return out
}

// WaitServing waits until each Service in want has at least that many ready
// endpoints in its EndpointSlices, or timeout passes; the error names the
// Services short of endpoints.
func WaitServing(ctx context.Context, kube kubernetes.Interface, namespace string, want map[string]int, timeout time.Duration) error {
	if timeout <= 0 {
		timeout = time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	names := make([]string, 0, len(want))
	for svc := range want {
		names = append(names, svc)
	}
	sort.Strings(names)
	var short []string
	for {
		short = short[:0]
		list, err := kube.DiscoveryV1().EndpointSlices(namespace).List(ctx, metav1.ListOptions{})
		if err == nil {
			ready := map[string]int{}
			for _, sl := range list.Items {
				svc := sl.Labels[discoveryv1.LabelServiceName]
				for _, e := range sl.Endpoints {
					if e.Conditions.Ready == nil || *e.Conditions.Ready {
						ready[svc]++
					}
				}
			}
			for _, svc := range names {
				if ready[svc] < want[svc] {
					short = append(short, fmt.Sprintf("%s has %d of %d ready endpoints", svc, ready[svc], want[svc]))
				}
			}
			if len(short) == 0 {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			if len(short) == 0 {
				short = append(short, fmt.Sprintf("listing EndpointSlices: %v", err))
			}
			return fmt.Errorf("%w in namespace %s after %s: %s; the pods are ready but not published as endpoints: is kube-controller-manager's endpointslice-controller running?",
				ErrNotAvailable, namespace, timeout, strings.Join(short, ", "))
		case <-tick.C:
		}
	}
}
