package scenario

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
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
		if err := sch.Validate(inst); err != nil {
			t.Fatalf("drill accepts it, the schema does not:\n%s\n%v", data, err)
		}
	})
}
