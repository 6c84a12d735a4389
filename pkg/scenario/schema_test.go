package scenario

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"
	"go.yaml.in/yaml/v3"
)

func compileSchema(t *testing.T) *jsonschema.Schema { return compileSchemaTB(t) }

func compileSchemaTB(t testing.TB) *jsonschema.Schema {
	t.Helper()
	b, err := Schema()
	if err != nil {
		t.Fatal(err)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource("scenario.schema.json", doc); err != nil {
		t.Fatal(err)
	}
	sch, err := c.Compile("scenario.schema.json")
	if err != nil {
		t.Fatalf("the schema does not compile: %v", err)
	}
	return sch
}

// yamlToJSON converts a scenario as an editor's YAML language server would see it.
func yamlToJSON(t *testing.T, data []byte) any {
	t.Helper()
	var v any
	if err := yaml.Unmarshal(data, &v); err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	out, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestSchemaAcceptsEveryScenario(t *testing.T) {
	sch := compileSchema(t)
	files, _ := filepath.Glob("../../scenarios/*.yaml")
	conformance, _ := filepath.Glob("../../scenarios/conformance/*.yaml")
	files = append(files, conformance...)
	if len(files) == 0 {
		t.Fatal("no scenarios")
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := sch.Validate(yamlToJSON(t, data)); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
	if err := sch.Validate(yamlToJSON(t, []byte(seed))); err != nil {
		t.Errorf("seed: %v", err)
	}
}

func TestSchemaRejectsWhatTheParserRejects(t *testing.T) {
	sch := compileSchema(t)
	for _, tc := range []struct{ old, new string }{
		{"      ingress: true", "      ingres: true"},
		{"duration: 60s", "duration: 60 seconds"},
		{"rate: 50/s", "rate: fast"},
		{"kind: Scenario", "kind: Scenarios"},
		{"at: 10s", "at: 10"},
		{"replicas: 0}", "replicas: zero}"},
		{"after: down + 20s", "after: down plus 20s"},
	} {
		in := strings.Replace(seed, tc.old, tc.new, 1)
		if err := sch.Validate(yamlToJSON(t, []byte(in))); err == nil {
			t.Errorf("schema accepts %q", tc.new)
		}
		if _, err := Parse("t.yaml", []byte(in)); err == nil {
			t.Errorf("parser accepts %q", tc.new)
		}
	}
}

// FuzzSchemaAcceptsWhatDrillAccepts: the schema is never stricter than drill:
// a scenario drill accepts, whose YAML scalars are the JSON types an editor's
// language server sees, validates against the schema.
func FuzzSchemaAcceptsWhatDrillAccepts(f *testing.F) {
	files, _ := filepath.Glob("../../scenarios/*.yaml")
	conformance, _ := filepath.Glob("../../scenarios/conformance/*.yaml")
	files = append(files, conformance...)
	for _, p := range files {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte(seed))
	var sch *jsonschema.Schema
	f.Fuzz(func(t *testing.T, data []byte) {
		if _, err := Parse("fuzz.yaml", data); err != nil {
			return
		}
		var v any
		if yaml.Unmarshal(data, &v) != nil {
			return
		}
		b, err := json.Marshal(v)
		if err != nil {
			return // YAML without a JSON form (a map with non-string keys)
		}
		inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
		if err != nil {
			return
		}
		if sch == nil {
			sch = compileSchemaTB(t)
		}
		err = sch.Validate(inst)
		var verr *jsonschema.ValidationError
		if errors.As(err, &verr) && typeCoerced(verr) {
			// drill reads a YAML scalar as its field's type (name: 123 is the
			// name "123"); the schema types it as YAML does (docs/schema.md).
			return
		}
		if err != nil {
			t.Fatalf("drill accepts it, the schema does not:\n%s\n%v", data, err)
		}
	})
}

// typeCoerced reports whether a type mismatch is among the causes of err.
func typeCoerced(err *jsonschema.ValidationError) bool {
	if _, ok := err.ErrorKind.(*kind.Type); ok {
		return true
	}
	for _, c := range err.Causes {
		if typeCoerced(c) {
			return true
		}
	}
	return false
}

// TestSchemaTypesScalarsAsYAMLDoes: the one way the schema is stricter than
// drill, as documented: a YAML scalar of another type than its field's.
func TestSchemaTypesScalarsAsYAMLDoes(t *testing.T) {
	sch := compileSchema(t)
	in := strings.Replace(seed, "replicas: 0}", `replicas: "0"}`, 1)
	if in == seed {
		t.Fatal("the seed changed; update this test")
	}
	if _, err := Parse("t.yaml", []byte(in)); err != nil {
		t.Fatalf("drill no longer reads a quoted number as a number: %v (update docs/schema.md)", err)
	}
	err := sch.Validate(yamlToJSON(t, []byte(in)))
	var verr *jsonschema.ValidationError
	if !errors.As(err, &verr) || !typeCoerced(verr) {
		t.Fatalf("want a type mismatch from the schema, got %v", err)
	}
}
