package translate

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"testing"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	networkingv1 "istio.io/client-go/pkg/apis/networking/v1"
	networkingv1alpha3 "istio.io/client-go/pkg/apis/networking/v1alpha3"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
)

// goldenObjects translates every golden case that translates, for tests that look
// at all objects.
func goldenObjects(t *testing.T) map[string][]Object {
	t.Helper()
	out := map[string][]Object{}
	for _, tc := range goldenCases {
		res, err := Translate(Input{Scenario: loadScenario(t, tc.path()), Remotes: tc.remotes}, tc.opts...)
		if err != nil {
			continue
		}
		for _, c := range res.Clusters {
			out[tc.name+"/"+c.Cluster] = c.Objects()
		}
	}
	return out
}

// TestSpecRoundTrip encodes every spec with protojson and decodes it into a fresh
// message of its type with unknown fields rejected: what drill produces is made
// only of fields Istio's API defines, and survives the trip whole.
func TestSpecRoundTrip(t *testing.T) {
	for name, objs := range goldenObjects(t) {
		for _, o := range objs {
			spec := Spec(o)
			b, err := protojson.Marshal(spec)
			if err != nil {
				t.Fatalf("%s: %s: encode: %v", name, describe(o), err)
			}
			back := spec.ProtoReflect().New().Interface()
			if err := (protojson.UnmarshalOptions{DiscardUnknown: false}).Unmarshal(b, back); err != nil {
				t.Errorf("%s: %s: decode strictly: %v", name, describe(o), err)
				continue
			}
			if !proto.Equal(spec, back) {
				t.Errorf("%s: %s: changed in the round trip:\n%s\n%s", name, describe(o), b, protojson.Format(back))
			}
		}
	}
}

// TestYAMLRoundTrip reads the rendered YAML back, both as protobuf specs (strict)
// and as istio.io/client-go objects (the way a typed client decodes them), and
// finds the objects that were rendered.
func TestYAMLRoundTrip(t *testing.T) {
	for name, objs := range goldenObjects(t) {
		y, err := YAML(objs)
		if err != nil {
			t.Fatal(err)
		}
		dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(y), 4096)
		i := 0
		for {
			var raw json.RawMessage
			if err := dec.Decode(&raw); err != nil {
				if errors.Is(err, io.EOF) {
					break
				}
				t.Fatalf("%s: document %d: %v", name, i+1, err)
			}
			if i >= len(objs) {
				t.Fatalf("%s: more documents than objects", name)
			}
			o := objs[i]
			i++

			var doc struct {
				APIVersion string          `json:"apiVersion"`
				Kind       string          `json:"kind"`
				Spec       json.RawMessage `json:"spec"`
			}
			if err := json.Unmarshal(raw, &doc); err != nil {
				t.Fatal(err)
			}
			gvk := o.GetObjectKind().GroupVersionKind()
			if doc.APIVersion != gvk.GroupVersion().String() || doc.Kind != gvk.Kind {
				t.Errorf("%s: document %d is %s %s, want %s", name, i, doc.APIVersion, doc.Kind, gvk)
			}
			back := Spec(o).ProtoReflect().New().Interface()
			if err := (protojson.UnmarshalOptions{}).Unmarshal(doc.Spec, back); err != nil {
				t.Errorf("%s: %s: spec from YAML: %v", name, describe(o), err)
			} else if !proto.Equal(Spec(o), back) {
				t.Errorf("%s: %s: spec from YAML differs from the object", name, describe(o))
			}

			typed, err := decodeTyped(gvk.Kind, raw)
			if err != nil {
				t.Errorf("%s: %s: as a client-go object: %v", name, describe(o), err)
				continue
			}
			if typed.GetName() != o.GetName() || typed.GetNamespace() != o.GetNamespace() ||
				typed.GetLabels()[LabelScenario] != o.GetLabels()[LabelScenario] ||
				typed.GetAnnotations()[AnnotationPolicies] != o.GetAnnotations()[AnnotationPolicies] {
				t.Errorf("%s: %s: metadata changed in YAML", name, describe(o))
			}
			if !proto.Equal(Spec(typed), Spec(o)) {
				t.Errorf("%s: %s: client-go decoding of the YAML differs", name, describe(o))
			}
		}
		if i != len(objs) {
			t.Errorf("%s: %d documents for %d objects", name, i, len(objs))
		}
	}
}

func decodeTyped(kind string, raw []byte) (Object, error) {
	var o Object
	switch kind {
	case "ServiceEntry":
		o = &networkingv1.ServiceEntry{}
	case "DestinationRule":
		o = &networkingv1.DestinationRule{}
	case "VirtualService":
		o = &networkingv1.VirtualService{}
	case "EnvoyFilter":
		o = &networkingv1alpha3.EnvoyFilter{}
	default:
		return nil, errors.New("unexpected kind " + kind)
	}
	return o, json.Unmarshal(raw, o)
}
