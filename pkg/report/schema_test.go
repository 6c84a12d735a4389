package report

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

var reportSchemaOnce = sync.OnceValues(func() (*jsonschema.Schema, error) {
	b, err := JSONSchema()
	if err != nil {
		return nil, err
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	if err := c.AddResource(SchemaID, doc); err != nil {
		return nil, err
	}
	return c.Compile(SchemaID)
})

// checkReportJSON fails the test when data, a report.json, does not validate
// against JSONSchema. Every report.json a test of this package writes goes
// through it.
func checkReportJSON(t testing.TB, name string, data []byte) {
	t.Helper()
	sch, err := reportSchemaOnce()
	if err != nil {
		t.Fatalf("report.json's schema does not compile: %v", err)
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("%s: not JSON: %v", name, err)
	}
	if err := sch.Validate(inst); err != nil {
		t.Fatalf("%s does not validate against report.json's schema: %v", name, err)
	}
}

// TestReportSchemaRejects: the schema is not vacuous: a wrong verdict, a
// missing field, an unknown one and a malformed time fail it.
func TestReportSchemaRejects(t *testing.T) {
	good, err := os.ReadFile(filepath.Join("testdata", "seed", JSONFile))
	if err != nil {
		t.Fatal(err)
	}
	checkReportJSON(t, "seed", good)
	sch, _ := reportSchemaOnce()
	for _, tc := range []struct{ name, old, new string }{
		{"verdict", `"verdict": "pass"`, `"verdict": "passed"`},
		{"schema", `"schema": "drill.report/v1"`, `"schema": "drill.report/v0"`},
		{"missing scenario", `"scenario": "reviews-failover",`, ``},
		{"unknown field", `"verdict": "pass"`, `"verdict": "pass", "verdicts": 1`},
		{"time", `"started": "2026-`, `"started": "yesterday 2026-`},
		{"status", `"status": "pass"`, `"status": "ok"`},
		{"requests as text", `"requests": `, `"requests": "many", "x": `},
	} {
		bad := strings.Replace(string(good), tc.old, tc.new, 1)
		if bad == string(good) {
			t.Fatalf("%s: %q is not in the seed's report.json", tc.name, tc.old)
		}
		inst, err := jsonschema.UnmarshalJSON(strings.NewReader(bad))
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if sch.Validate(inst) == nil {
			t.Errorf("%s: the schema accepts %q", tc.name, tc.new)
		}
	}
}
