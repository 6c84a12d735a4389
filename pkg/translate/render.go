package translate

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	networkingv1 "istio.io/client-go/pkg/apis/networking/v1"
	networkingv1alpha3 "istio.io/client-go/pkg/apis/networking/v1alpha3"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/yaml"
)

// Spec returns the protobuf spec of an object drill produced, or nil for any other
// object.
func Spec(obj Object) proto.Message {
	switch o := obj.(type) {
	case *networkingv1.ServiceEntry:
		return &o.Spec
	case *networkingv1.DestinationRule:
		return &o.Spec
	case *networkingv1.VirtualService:
		return &o.Spec
	case *networkingv1alpha3.EnvoyFilter:
		return &o.Spec
	}
	return nil
}

// Resource is the API resource of an object drill produced, for dynamic clients.
func Resource(obj Object) schema.GroupVersionResource {
	switch obj.(type) {
	case *networkingv1.ServiceEntry:
		return serviceEntries
	case *networkingv1.DestinationRule:
		return destinationRules
	case *networkingv1.VirtualService:
		return virtualServices
	case *networkingv1alpha3.EnvoyFilter:
		return envoyFilters
	}
	return schema.GroupVersionResource{}
}

var (
	serviceEntries   = networkingv1.SchemeGroupVersion.WithResource("serviceentries")
	destinationRules = networkingv1.SchemeGroupVersion.WithResource("destinationrules")
	virtualServices  = networkingv1.SchemeGroupVersion.WithResource("virtualservices")
	envoyFilters     = networkingv1alpha3.SchemeGroupVersion.WithResource("envoyfilters")
)

// Resources are the API resources of every kind of object Translate produces, in
// apply order: where to look for a scenario's objects (Selector) to remove them.
func Resources() []schema.GroupVersionResource {
	return []schema.GroupVersionResource{serviceEntries, destinationRules, envoyFilters, virtualServices}
}

// Map renders an object as the JSON-shaped map the API server takes: apiVersion,
// kind, metadata (name, namespace, labels, annotations) and spec in Istio's JSON
// form (protojson, the form of Istio's CRDs). Status and server-set metadata are
// left out, so the map can be server-side applied as it is.
func Map(obj Object) (map[string]any, error) {
	spec := Spec(obj)
	if spec == nil {
		return nil, fmt.Errorf("translate: %T is not an object drill produces", obj)
	}
	b, err := protojson.Marshal(spec)
	if err != nil {
		return nil, fmt.Errorf("translate: encode spec of %s: %w", describe(obj), err)
	}
	var specMap map[string]any
	if err := json.Unmarshal(b, &specMap); err != nil {
		return nil, fmt.Errorf("translate: decode spec of %s: %w", describe(obj), err)
	}
	meta := map[string]any{"name": obj.GetName(), "namespace": obj.GetNamespace()}
	if l := obj.GetLabels(); len(l) > 0 {
		meta["labels"] = stringMap(l)
	}
	if a := obj.GetAnnotations(); len(a) > 0 {
		meta["annotations"] = stringMap(a)
	}
	gvk := obj.GetObjectKind().GroupVersionKind()
	return map[string]any{
		"apiVersion": gvk.GroupVersion().String(),
		"kind":       gvk.Kind,
		"metadata":   meta,
		"spec":       specMap,
	}, nil
}

func stringMap(m map[string]string) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func describe(obj Object) string {
	return fmt.Sprintf("%s %s/%s", obj.GetObjectKind().GroupVersionKind().Kind, obj.GetNamespace(), obj.GetName())
}

// ToUnstructured renders an object for a dynamic client's server-side apply.
func ToUnstructured(obj Object) (*unstructured.Unstructured, error) {
	m, err := Map(obj)
	if err != nil {
		return nil, err
	}
	return &unstructured.Unstructured{Object: m}, nil
}

// WriteYAML writes objects as one multi-document YAML stream, ready for kubectl
// apply -f: documents in the order given, keys sorted, so the same objects always
// give the same bytes.
func WriteYAML(w io.Writer, objs []Object) error {
	var buf bytes.Buffer
	for _, obj := range objs {
		m, err := Map(obj)
		if err != nil {
			return err
		}
		y, err := yaml.Marshal(m)
		if err != nil {
			return fmt.Errorf("translate: render %s: %w", describe(obj), err)
		}
		buf.WriteString("---\n")
		buf.Write(y)
	}
	_, err := w.Write(buf.Bytes())
	return err
}

// YAML is WriteYAML into a byte slice.
func YAML(objs []Object) ([]byte, error) {
	var buf bytes.Buffer
	if err := WriteYAML(&buf, objs); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
