package fault

import (
	"context"
	"errors"
	"fmt"
	"sort"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// Selector chooses the Deployments of a fault in one namespace: by app label
// (every Deployment labelled app=<App>, the way Bookinfo labels reviews-v1,
// reviews-v2 and reviews-v3 app=reviews), by Deployment name, or by a label
// selector. Exactly one of App, Deployment and Labels is set.
type Selector struct {
	Namespace  string
	App        string
	Deployment string
	Labels     string
}

// ByApp selects every Deployment labelled app=<app> in ns.
func ByApp(ns, app string) Selector { return Selector{Namespace: ns, App: app} }

// ByName selects the Deployment named name in ns.
func ByName(ns, name string) Selector { return Selector{Namespace: ns, Deployment: name} }

// ByLabels selects the Deployments in ns matching a label selector such as
// "app=reviews,version in (v1,v2)".
func ByLabels(ns, selector string) Selector { return Selector{Namespace: ns, Labels: selector} }

// String says what the selector selects: "app=reviews",
// "deployment/reviews-v1", "selector app=reviews,version=v2".
func (s Selector) String() string {
	switch {
	case s.App != "":
		return "app=" + s.App
	case s.Deployment != "":
		return "deployment/" + s.Deployment
	default:
		return "selector " + s.Labels
	}
}

// Workload is the name event.Fault.Workload carries: the app, the Deployment
// name or the selector as written.
func (s Selector) Workload() string {
	switch {
	case s.App != "":
		return s.App
	case s.Deployment != "":
		return s.Deployment
	default:
		return s.Labels
	}
}

func (s Selector) validate() error {
	n := 0
	for _, v := range []string{s.App, s.Deployment, s.Labels} {
		if v != "" {
			n++
		}
	}
	if n != 1 {
		return errors.New("select the Deployments with exactly one of an app label, a Deployment name or a label selector")
	}
	if s.Namespace == "" {
		return errors.New("the namespace of the Deployments is not set")
	}
	if s.Labels != "" {
		if _, err := labels.Parse(s.Labels); err != nil {
			return fmt.Errorf("label selector %q: %w", s.Labels, err)
		}
	}
	return nil
}

// deployments lists the selected Deployments, sorted by name. Selecting none is
// an error: a fault that silently touches nothing would make a drill pass for
// the wrong reason.
func (s Selector) deployments(ctx context.Context, t Target) ([]appsv1.Deployment, error) {
	if err := s.validate(); err != nil {
		return nil, err
	}
	api := t.Client.AppsV1().Deployments(s.Namespace)
	if s.Deployment != "" {
		d, err := api.Get(ctx, s.Deployment, metav1.GetOptions{})
		if err != nil {
			return nil, fmt.Errorf("get deployment %s/%s in cluster %s: %w; check the name with `%s get deployments`",
				s.Namespace, s.Deployment, t.Name, err, t.kubectl(s.Namespace))
		}
		return []appsv1.Deployment{*d}, nil
	}
	sel := s.Labels
	if s.App != "" {
		sel = labels.Set{"app": s.App}.String()
	}
	list, err := api.List(ctx, metav1.ListOptions{LabelSelector: sel})
	if err != nil {
		return nil, fmt.Errorf("list deployments with %s in %s of cluster %s: %w", sel, s.Namespace, t.Name, err)
	}
	if len(list.Items) == 0 {
		return nil, fmt.Errorf("no Deployment matches %s in namespace %s of cluster %s; check the workload with `%s get deployments -l %s`",
			sel, s.Namespace, t.Name, t.kubectl(s.Namespace), shellQuote(sel))
	}
	items := list.Items
	sort.Slice(items, func(i, j int) bool { return items[i].Name < items[j].Name })
	return items, nil
}

// pods lists the pods of deps that are not already terminating, sorted by
// name. A pod is a Deployment's when it matches the Deployment's own selector,
// which is how its ReplicaSets find it.
func pods(ctx context.Context, t Target, ns string, deps []appsv1.Deployment) ([]corev1.Pod, error) {
	seen := map[string]bool{}
	var out []corev1.Pod
	for _, d := range deps {
		sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
		if err != nil {
			return nil, fmt.Errorf("deployment %s/%s in cluster %s has an invalid selector: %w", ns, d.Name, t.Name, err)
		}
		list, err := t.Client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: sel.String()})
		if err != nil {
			return nil, fmt.Errorf("list pods of deployment %s/%s in cluster %s: %w", ns, d.Name, t.Name, err)
		}
		for _, p := range list.Items {
			if p.DeletionTimestamp != nil || seen[p.Name] {
				continue
			}
			seen[p.Name] = true
			out = append(out, p)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}
