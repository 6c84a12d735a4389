package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"sigs.k8s.io/yaml"

	"github.com/meshdrill/drill/pkg/report"
)

// runCLIIn runs drill in-process with stdin and returns its exit code and output.
func runCLIIn(t *testing.T, stdin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	cmd := newRootCmd()
	var out, errOut bytes.Buffer
	cmd.SetIn(strings.NewReader(stdin))
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	cmd.SetArgs(args)
	err := cmd.Execute()
	if err != nil {
		errOut.WriteString(err.Error())
	}
	return translateExitCode(err), out.String(), errOut.String()
}

// TestOutputFormats: every command that prints data prints it as JSON or YAML
// with -o, the same data in both.
func TestOutputFormats(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	seed, err := os.ReadFile(translateSeed)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bad, bytes.Replace(seed, []byte("consecutiveErrors: 1"), []byte("consecutiveErrors: 0"), 1), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		args  []string
		code  int
		check func(t *testing.T, v any)
	}{
		{"validate", []string{"validate", translateSeed, bad}, exitError, func(t *testing.T, v any) {
			rs := v.([]any)
			if len(rs) != 2 {
				t.Fatalf("want 2 results, got %v", v)
			}
			ok, notOK := rs[0].(map[string]any), rs[1].(map[string]any)
			if ok["valid"] != true || ok["name"] != "reviews-failover" || ok["steps"] != 2.0 {
				t.Errorf("valid file: %v", ok)
			}
			errs, _ := notOK["errors"].([]any)
			if notOK["valid"] != false || len(errs) != 1 {
				t.Fatalf("invalid file: %v", notOK)
			}
			e := errs[0].(map[string]any)
			if e["field"] != "spec.mesh.trafficPolicies[0].outlierDetection.consecutiveErrors" || e["line"] != 23.0 || e["column"] == nil {
				t.Errorf("error: %v", e)
			}
		}},
		{"version", []string{"version"}, exitPass, func(t *testing.T, v any) {
			if m := v.(map[string]any); m["drillVersion"] != drillVersion() || m["goVersion"] == "" {
				t.Errorf("version: %v", m)
			}
		}},
		{"schema", []string{"schema"}, exitPass, func(t *testing.T, v any) {
			if m := v.(map[string]any); m["$id"] == nil || m["title"] != "drill scenario" {
				t.Errorf("schema: %v", m["$id"])
			}
		}},
		// translate -o yaml is its kubectl-ready stream (TestTranslateStdout).
		{"translate", []string{"translate", translateSeed, "--remote", "cluster2=172.18.0.12"}, exitPass, func(t *testing.T, v any) {
			cs := v.(map[string]any)["clusters"].([]any)
			if len(cs) != 2 || cs[0].(map[string]any)["name"] != "cluster1" {
				t.Fatalf("clusters: %v", cs)
			}
			kinds := map[any]bool{}
			for _, o := range cs[0].(map[string]any)["objects"].([]any) {
				kinds[o.(map[string]any)["kind"]] = true
			}
			if !kinds["ServiceEntry"] || !kinds["EnvoyFilter"] || !kinds["VirtualService"] || !kinds["DestinationRule"] {
				t.Errorf("cluster1's kinds: %v", kinds)
			}
		}},
	} {
		var fromJSON any
		formats := []string{"json", "yaml"}
		if tc.name == "translate" {
			formats = formats[:1]
		}
		for _, format := range formats {
			t.Run(tc.name+"/"+format, func(t *testing.T) {
				code, out, errOut := runCLIIn(t, "", append(tc.args, "-o", format)...)
				if code != tc.code {
					t.Fatalf("exit %d, want %d: %s", code, tc.code, errOut)
				}
				var v any
				if format == "json" {
					err = json.Unmarshal([]byte(out), &v)
					fromJSON = v
				} else {
					err = yaml.Unmarshal([]byte(out), &v)
				}
				if err != nil {
					t.Fatalf("not %s: %v\n%s", format, err, out)
				}
				tc.check(t, v)
				if format == "yaml" && fromJSON != nil {
					a, _ := json.Marshal(fromJSON)
					b, _ := json.Marshal(v)
					if !bytes.Equal(a, b) {
						t.Errorf("-o yaml and -o json differ:\n%s\n%s", a, b)
					}
				}
			})
		}
	}
}

// TestOutputFlagMisuse: -o names a format; a directory given to it (the old
// meaning of -o for report and translate) is refused with the flag to use.
func TestOutputFlagMisuse(t *testing.T) {
	dir := runDir(t, func(b []byte) []byte { return b })
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"report", dir, "-o", filepath.Join(t.TempDir(), "x")}, "a directory is --out-dir"},
		{[]string{"translate", translateSeed, "-o", "out/"}, "a directory is --out-dir"},
		{[]string{"validate", translateSeed, "-o", "xml"}, `--output "xml": use json or yaml`},
	} {
		code, _, errOut := runCLIIn(t, "", tc.args...)
		if code != exitError || !strings.Contains(errOut, tc.want) {
			t.Errorf("drill %v: exit %d, stderr %q; want 2 and %q", tc.args, code, errOut, tc.want)
		}
	}
	if _, err := os.Stat("out"); !os.IsNotExist(err) {
		t.Error("translate -o out/ created a directory")
	}
}

// TestDeprecatedOutFlags: the former names of --out-dir still work, with a warning.
func TestDeprecatedOutFlags(t *testing.T) {
	dir := runDir(t, func(b []byte) []byte { return b })
	out := filepath.Join(t.TempDir(), "again")
	code, _, errOut := runCLIIn(t, "", "report", dir, "--out", out, "-q")
	if code != exitPass || !strings.Contains(errOut, "use --out-dir") {
		t.Fatalf("report --out: exit %d, stderr %q", code, errOut)
	}
	if _, err := os.Stat(filepath.Join(out, "report.json")); err != nil {
		t.Error(err)
	}
	tdir := filepath.Join(t.TempDir(), "objs")
	code, _, errOut = runCLIIn(t, "", "translate", translateSeed, "--output-dir", tdir, "--remote", "cluster2=1.2.3.4")
	if code != exitPass || !strings.Contains(errOut, "use --out-dir") {
		t.Fatalf("translate --output-dir: exit %d, stderr %q", code, errOut)
	}
	if _, err := os.Stat(filepath.Join(tdir, "cluster1.yaml")); err != nil {
		t.Error(err)
	}
}

// TestTranslateStdin: translate - reads the scenario from standard input, and
// locates its problems in <stdin>.
func TestTranslateStdin(t *testing.T) {
	seed, err := os.ReadFile(translateSeed)
	if err != nil {
		t.Fatal(err)
	}
	code, fromFile, _ := runCLIIn(t, "", "translate", translateSeed, "--remote", "cluster2=1.2.3.4")
	if code != exitPass {
		t.Fatal(code)
	}
	code, fromStdin, errOut := runCLIIn(t, string(seed), "translate", "-", "--remote", "cluster2=1.2.3.4")
	if code != exitPass || fromStdin != fromFile {
		t.Fatalf("exit %d, stderr %q; stdout differs from the file's: %v", code, errOut, fromStdin != fromFile)
	}
	broken := strings.Replace(string(seed), "maxEjection", "x", 1)
	broken = strings.Replace(broken, "consecutiveErrors: 1", "consecutiveErrors: 0", 1)
	code, _, errOut = runCLIIn(t, broken, "translate", "-")
	if code != exitError || !strings.Contains(errOut, "<stdin>:23:") {
		t.Fatalf("exit %d, stderr %q; want 2 and <stdin>:23:", code, errOut)
	}
}

// TestPublishedSchemas: the schemas under docs/schema/ are what drill schema
// prints (regenerate them with the commands in the message).
func TestPublishedSchemas(t *testing.T) {
	for _, tc := range []struct {
		file string
		args []string
	}{
		{"scenario.schema.json", []string{"schema"}},
		{"report.schema.json", []string{"schema", "--report"}},
	} {
		_, out, _ := runCLIIn(t, "", tc.args...)
		want, err := os.ReadFile(filepath.Join("../../docs/schema", tc.file))
		if err != nil {
			t.Fatal(err)
		}
		if out != string(want) {
			t.Errorf("docs/schema/%s is stale: go run ./cmd/drill %s > docs/schema/%s", tc.file, strings.Join(tc.args, " "), tc.file)
		}
	}
}

// TestReportOutputValidates: drill report -o json prints report.json's
// content, and the report.json it writes validates against drill schema --report.
func TestReportOutputValidates(t *testing.T) {
	dir := runDir(t, func(b []byte) []byte { return b })
	code, out, errOut := runCLIIn(t, "", "report", dir, "-o", "json")
	if code != exitPass {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	written, err := os.ReadFile(filepath.Join(dir, report.JSONFile))
	if err != nil {
		t.Fatal(err)
	}
	if out != string(written) {
		t.Error("-o json differs from the report.json written")
	}
	checkReportSchema(t, written)
}

// checkReportSchema validates a report.json against drill schema --report.
func checkReportSchema(t *testing.T, data []byte) {
	t.Helper()
	raw, err := report.JSONSchema()
	if err != nil {
		t.Fatal(err)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	if err := c.AddResource(report.SchemaID, doc); err != nil {
		t.Fatal(err)
	}
	sch, err := c.Compile(report.SchemaID)
	if err != nil {
		t.Fatal(err)
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if err := sch.Validate(inst); err != nil {
		t.Errorf("report.json does not validate against its schema: %v", err)
	}
}

// TestReportStdin: drill report - reads the log from standard input and needs
// --out-dir for the files.
func TestReportStdin(t *testing.T) {
	log, err := os.ReadFile(seedLog)
	if err != nil {
		t.Fatal(err)
	}
	code, _, errOut := runCLIIn(t, string(log), "report", "-")
	if code != exitError || !strings.Contains(errOut, "--out-dir") {
		t.Fatalf("without --out-dir: exit %d, stderr %q", code, errOut)
	}
	out := filepath.Join(t.TempDir(), "r")
	code, stdout, errOut := runCLIIn(t, string(log), "report", "-", "--out-dir", out)
	if code != exitPass || !strings.Contains(stdout, "PASS: drill reviews-failover") {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, stdout, errOut)
	}
	data, err := os.ReadFile(filepath.Join(out, report.JSONFile))
	if err != nil {
		t.Fatal(err)
	}
	checkReportSchema(t, data)
	// The run history goes beside the reports, never into the working
	// directory (it once landed in the package's own directory).
	if _, err := os.Stat(filepath.Join(filepath.Dir(out), "history.db")); err != nil {
		t.Errorf("no history beside the reports: %v", err)
	}
	if _, err := os.Stat("history.db"); err == nil {
		t.Error("drill report - wrote history.db in the working directory")
	}
}
