package drill

import (
	"context"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"

	"github.com/meshdrill/drill/pkg/translate"
)

// FieldManager is the server-side apply field manager of everything drill applies.
const FieldManager = "drill"

// applyObjects server-side applies the translated objects of one cluster, in the
// order given, and returns the keys of what it applied.
func applyObjects(ctx context.Context, dyn dynamic.Interface, clusterName string, objs []translate.Object) (map[string]bool, error) {
	applied := map[string]bool{}
	for _, o := range objs {
		u, err := translate.ToUnstructured(o)
		if err != nil {
			return applied, fmt.Errorf("cluster %s: encode %s: %w", clusterName, o.GetName(), err)
		}
		gvr := translate.Resource(o)
		_, err = dyn.Resource(gvr).Namespace(u.GetNamespace()).Apply(ctx, u.GetName(), u, metav1.ApplyOptions{FieldManager: FieldManager, Force: true})
		if err != nil {
			return applied, fmt.Errorf("cluster %s: apply %s %s/%s: %w", clusterName, u.GetKind(), u.GetNamespace(), u.GetName(), err)
		}
		applied[objectKey(gvr, u.GetNamespace(), u.GetName())] = true
	}
	return applied, nil
}

// pruneObjects deletes the scenario's objects in a cluster that are not in keep (nil
// keep deletes them all): what a policy change or teardown leaves behind.
func pruneObjects(ctx context.Context, dyn dynamic.Interface, clusterName, scenarioName string, keep map[string]bool) error {
	sel := translate.Selector(scenarioName)
	for _, gvr := range translate.Resources() {
		list, err := dyn.Resource(gvr).Namespace(metav1.NamespaceAll).List(ctx, metav1.ListOptions{LabelSelector: sel})
		if err != nil {
			if apierrors.IsNotFound(err) {
				continue // the CRD is not installed: nothing of ours can exist
			}
			return fmt.Errorf("cluster %s: list %s: %w", clusterName, gvr.Resource, err)
		}
		for _, item := range list.Items {
			if keep[objectKey(gvr, item.GetNamespace(), item.GetName())] {
				continue
			}
			err := dyn.Resource(gvr).Namespace(item.GetNamespace()).Delete(ctx, item.GetName(), metav1.DeleteOptions{})
			if err != nil && !apierrors.IsNotFound(err) {
				return fmt.Errorf("cluster %s: delete %s %s/%s: %w", clusterName, gvr.Resource, item.GetNamespace(), item.GetName(), err)
			}
		}
	}
	return nil
}

func objectKey(gvr schema.GroupVersionResource, ns, name string) string {
	return gvr.Resource + "/" + ns + "/" + name
}
