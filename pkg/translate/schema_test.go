package translate

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
)

// Istio's CustomResourceDefinitions, as the istio.io/api module drill builds
// against ships them: the OpenAPI v3 schemas an API server validates Istio objects
// with.
func istioCRDFile(t testing.TB) string {
	t.Helper()
	cmd := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "istio.io/api")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("find the istio.io/api module (go list -m istio.io/api): %v", err)
	}
	path := filepath.Join(strings.TrimSpace(string(out)), "kubernetes", "customresourcedefinitions.gen.yaml")
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("Istio's CRDs: %v", err)
	}
	return path
}

var (
	crdOnce    sync.Once
	crdSchemas map[schema.GroupVersionKind]*jsonschema.Schema
	crdErr     error
)

// specSchemas compiles, per group/version/kind, the schema of spec from Istio's
// CRDs, made strict the way `kubectl apply --validate=strict` (the default) is:
// a field the schema does not declare is an error, not silently pruned.
func specSchemas(t testing.TB) map[schema.GroupVersionKind]*jsonschema.Schema {
	t.Helper()
	crdOnce.Do(func() { crdSchemas, crdErr = loadSpecSchemas(istioCRDFile(t)) })
	if crdErr != nil {
		t.Fatal(crdErr)
	}
	return crdSchemas
}

func loadSpecSchemas(path string) (map[schema.GroupVersionKind]*jsonschema.Schema, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	out := map[schema.GroupVersionKind]*jsonschema.Schema{}
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(b), 4096)
	c := jsonschema.NewCompiler()
	for {
		var crd struct {
			Kind string `json:"kind"`
			Spec struct {
				Group string `json:"group"`
				Names struct {
					Kind string `json:"kind"`
				} `json:"names"`
				Versions []struct {
					Name   string `json:"name"`
					Schema struct {
						OpenAPIV3Schema map[string]any `json:"openAPIV3Schema"`
					} `json:"schema"`
				} `json:"versions"`
			} `json:"spec"`
		}
		if err := dec.Decode(&crd); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			return nil, err
		}
		if crd.Kind != "CustomResourceDefinition" {
			continue
		}
		for _, v := range crd.Spec.Versions {
			spec, ok := v.Schema.OpenAPIV3Schema["properties"].(map[string]any)["spec"].(map[string]any)
			if !ok {
				continue
			}
			strict(spec)
			raw, err := json.Marshal(spec)
			if err != nil {
				return nil, err
			}
			doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
			if err != nil {
				return nil, err
			}
			gvk := schema.GroupVersionKind{Group: crd.Spec.Group, Version: v.Name, Kind: crd.Spec.Names.Kind}
			url := "mem:///" + gvk.Group + "/" + gvk.Version + "/" + gvk.Kind + ".json"
			if err := c.AddResource(url, doc); err != nil {
				return nil, err
			}
			sch, err := c.Compile(url)
			if err != nil {
				return nil, err
			}
			out[gvk] = sch
		}
	}
	return out, nil
}

// strict closes every object schema that lists its properties and does not keep
// unknown fields, as the API server's strict field validation does.
func strict(s map[string]any) {
	if _, ok := s["properties"]; ok {
		if _, set := s["additionalProperties"]; !set && s["x-kubernetes-preserve-unknown-fields"] != true {
			s["additionalProperties"] = false
		}
	}
	for _, key := range []string{"properties", "patternProperties"} {
		if props, ok := s[key].(map[string]any); ok {
			for _, p := range props {
				if m, ok := p.(map[string]any); ok {
					strict(m)
				}
			}
		}
	}
	for _, key := range []string{"items", "additionalProperties", "not"} {
		if m, ok := s[key].(map[string]any); ok {
			strict(m)
		}
	}
	for _, key := range []string{"oneOf", "anyOf", "allOf"} {
		if list, ok := s[key].([]any); ok {
			for _, e := range list {
				if m, ok := e.(map[string]any); ok {
					strict(m)
				}
			}
		}
	}
}

// validateAgainstCRD checks an object as the API server would: spec against the
// CRD's schema of its version, metadata against Kubernetes' rules for names,
// labels and annotations.
func validateAgainstCRD(t testing.TB, obj map[string]any) error {
	t.Helper()
	var errs []error
	apiVersion, _ := obj["apiVersion"].(string)
	kind, _ := obj["kind"].(string)
	gv, err := schema.ParseGroupVersion(apiVersion)
	if err != nil {
		return err
	}
	sch := specSchemas(t)[gv.WithKind(kind)]
	if sch == nil {
		return errors.New("Istio's CRDs serve no " + kind + " in " + apiVersion)
	}
	raw, err := json.Marshal(obj["spec"])
	if err != nil {
		return err
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		return err
	}
	if err := sch.Validate(inst); err != nil {
		errs = append(errs, err)
	}
	meta, _ := obj["metadata"].(map[string]any)
	name, _ := meta["name"].(string)
	for _, msg := range validation.IsDNS1123Subdomain(name) {
		errs = append(errs, errors.New("metadata.name "+name+": "+msg))
	}
	ns, _ := meta["namespace"].(string)
	for _, msg := range validation.IsDNS1123Label(ns) {
		errs = append(errs, errors.New("metadata.namespace "+ns+": "+msg))
	}
	labels, _ := meta["labels"].(map[string]any)
	for k, v := range labels {
		for _, msg := range validation.IsQualifiedName(k) {
			errs = append(errs, errors.New("label "+k+": "+msg))
		}
		for _, msg := range validation.IsValidLabelValue(v.(string)) {
			errs = append(errs, errors.New("label "+k+" value: "+msg))
		}
	}
	annotations, _ := meta["annotations"].(map[string]any)
	for k := range annotations {
		for _, msg := range validation.IsQualifiedName(k) {
			errs = append(errs, errors.New("annotation "+k+": "+msg))
		}
	}
	return errors.Join(errs...)
}

// TestObjectsMatchIstioCRDs validates every object of every golden case against
// the schemas of Istio's CRDs.
func TestObjectsMatchIstioCRDs(t *testing.T) {
	n := 0
	for _, tc := range goldenCases {
		res, err := Translate(Input{Scenario: loadScenario(t, tc.path()), Remotes: tc.remotes}, tc.opts...)
		if err != nil {
			continue // error cases have no objects
		}
		for _, c := range res.Clusters {
			for _, o := range c.Objects() {
				m, err := Map(o)
				if err != nil {
					t.Fatal(err)
				}
				if err := validateAgainstCRD(t, m); err != nil {
					t.Errorf("%s: cluster %s: %s: %v", tc.name, c.Cluster, describe(o), err)
				}
				n++
			}
		}
	}
	if n < 50 {
		t.Fatalf("validated only %d objects; the golden cases should produce more", n)
	}
}

// TestCRDValidationRejects proves the validation above can fail: objects with an
// unknown field, a wrong type or a value outside an enum are refused.
func TestCRDValidationRejects(t *testing.T) {
	res, err := Translate(Input{Scenario: loadScenario(t, "testdata/seed.yaml"), Remotes: kindRemotes("cluster1", "cluster2")})
	if err != nil {
		t.Fatal(err)
	}
	byKind := map[string]map[string]any{}
	for _, o := range res.Cluster("cluster1").Objects() {
		m, err := Map(o)
		if err != nil {
			t.Fatal(err)
		}
		byKind[m["kind"].(string)] = m
	}
	spec := func(obj map[string]any) map[string]any { return obj["spec"].(map[string]any) }
	tests := []struct {
		name   string
		kind   string
		mutate func(obj map[string]any)
		want   string // in the validation error
	}{
		{"unknown spec field", "DestinationRule", func(o map[string]any) { spec(o)["outlierDetecton"] = map[string]any{} }, "outlierDetecton"},
		{"unknown nested field", "DestinationRule", func(o map[string]any) {
			spec(o)["trafficPolicy"].(map[string]any)["outlierDetection"].(map[string]any)["consecutiveErrorz"] = 1
		}, "consecutiveErrorz"},
		{"patch operation outside the enum", "EnvoyFilter", func(o map[string]any) {
			spec(o)["configPatches"].([]any)[1].(map[string]any)["patch"].(map[string]any)["operation"] = "REPLACEX"
		}, "/configPatches/1/patch/operation"},
		{"wrong type", "ServiceEntry", func(o map[string]any) { spec(o)["hosts"] = "reviews-failover.default.global" }, "hosts"},
		{"resolution outside the enum", "ServiceEntry", func(o map[string]any) { spec(o)["resolution"] = "STATICALLY" }, "/resolution"},
		{"invalid object name", "VirtualService", func(o map[string]any) { o["metadata"].(map[string]any)["name"] = "Drill_Reviews" }, "Drill_Reviews"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			valid := byKind[tc.kind]
			if valid == nil {
				t.Fatalf("the seed produced no %s", tc.kind)
			}
			if err := validateAgainstCRD(t, valid); err != nil {
				t.Fatalf("valid %s rejected: %v", tc.kind, err)
			}
			raw, err := json.Marshal(valid)
			if err != nil {
				t.Fatal(err)
			}
			var broken map[string]any
			if err := json.Unmarshal(raw, &broken); err != nil {
				t.Fatal(err)
			}
			tc.mutate(broken)
			err = validateAgainstCRD(t, broken)
			if err == nil {
				t.Fatalf("broken %s passed validation", tc.kind)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error does not name %q: %v", tc.want, err)
			}
		})
	}
}
