package localcluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/dynamic"
)

var crdGVR = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}

// fieldManager names drill as the owner of what it applies server-side.
const fieldManager = "drill"

// readCRDs parses a multi-document YAML manifest of CustomResourceDefinitions.
func readCRDs(path string) ([]*unstructured.Unstructured, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read Istio CRDs: %w; run `make tools` (or hack/build-tools.sh) to copy them", err)
	}
	return parseCRDs(b)
}

func parseCRDs(b []byte) ([]*unstructured.Unstructured, error) {
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(b), 4096)
	var out []*unstructured.Unstructured
	for i := 0; ; i++ {
		var obj map[string]any
		if err := dec.Decode(&obj); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			return nil, fmt.Errorf("document %d: %w", i+1, err)
		}
		if len(obj) == 0 {
			continue // an empty document between two "---"
		}
		u := &unstructured.Unstructured{Object: obj}
		if u.GetKind() != "CustomResourceDefinition" {
			return nil, fmt.Errorf("document %d: kind %q, want CustomResourceDefinition", i+1, u.GetKind())
		}
		if u.GetName() == "" {
			return nil, fmt.Errorf("document %d: CustomResourceDefinition without a name", i+1)
		}
		out = append(out, u)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no CustomResourceDefinition found")
	}
	return out, nil
}

// installCRDs applies crds server-side and waits until the API server serves
// every one of them (condition Established).
func installCRDs(ctx context.Context, dyn dynamic.Interface, crds []*unstructured.Unstructured, timeout time.Duration) error {
	res := dyn.Resource(crdGVR)
	for _, crd := range crds {
		if _, err := res.Apply(ctx, crd.GetName(), crd, metav1.ApplyOptions{FieldManager: fieldManager, Force: true}); err != nil {
			return fmt.Errorf("apply CRD %s: %w", crd.GetName(), err)
		}
	}
	var pending string
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		for _, crd := range crds {
			got, err := res.Get(ctx, crd.GetName(), metav1.GetOptions{})
			if err != nil {
				return false, nil //nolint:nilerr // retried until the deadline, reported then
			}
			if !crdEstablished(got) {
				pending = crd.GetName()
				return false, nil
			}
		}
		return true, nil
	})
	if err != nil {
		return fmt.Errorf("CRD %s not Established within %s: %w", pending, timeout, err)
	}
	return nil
}

func crdEstablished(u *unstructured.Unstructured) bool {
	conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
	for _, c := range conds {
		m, ok := c.(map[string]any)
		if ok && m["type"] == "Established" && m["status"] == "True" {
			return true
		}
	}
	return false
}
