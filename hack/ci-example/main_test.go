package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestExample runs the CI example as `go run ./hack/ci-example` does: the
// caller of docs/ci.md, actionlint-clean, calling the reusable workflow whose
// scripts install drill with go install, validate, report and summarize.
func TestExample(t *testing.T) {
	if testing.Short() {
		t.Skip("installs drill with go install and runs the workflow's scripts (about a minute)")
	}
	for _, tool := range []string{"bash", "git", "go"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not on PATH", tool)
		}
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	var log bytes.Buffer
	if err := Run(root, &log, Options{}); err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	for _, want := range []string{
		"ok: pull_request:", "ok: schedule:",
		"restored reports/history.db from key drill-history-kind-earlier",
		"saved reports/history.db under key drill-history-kind-4242-1",
	} {
		if !strings.Contains(log.String(), want) {
			t.Errorf("the log lacks %q:\n%s", want, log.String())
		}
	}
}

// TestDocShowsExample: docs/ci.md shows the example as it is tested, line for line.
func TestDocShowsExample(t *testing.T) {
	example, err := os.ReadFile("../../" + exampleFile)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := os.ReadFile("../../docs/ci.md")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(doc), "```yaml\n"+string(example)+"```\n") {
		t.Errorf("docs/ci.md does not show %s as it is; paste it in a ```yaml block", exampleFile)
	}
}

// TestExpressions: the expressions the harness evaluates, and the ones it
// refuses rather than guess.
func TestExpressions(t *testing.T) {
	c := &exprContext{
		github: map[string]string{"event_name": "pull_request"},
		inputs: map[string]string{"provider": "kind", "validate-only": "false"},
		steps:  map[string]map[string]string{"run": {"exit-code": "1"}},
	}
	for _, tc := range []struct {
		in, want string
	}{
		{"${{ inputs.provider }}", "kind"},
		{"x-${{ inputs.provider }}-${{ steps.run.outputs.exit-code }}", "x-kind-1"},
		{"${{ github.event_name == 'pull_request' }}", "true"},
		{"${{ github.event_name != 'pull_request' }}", "false"},
	} {
		if got, err := c.eval(tc.in); err != nil || got != tc.want {
			t.Errorf("eval(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
	for _, tc := range []struct {
		in   string
		want bool
	}{
		{"always()", true},
		{"always() && !inputs.validate-only", true},
		{"inputs.provider == 'kind' && inputs.validate-only", false},
		{"${{ inputs.provider == 'local' }}", false},
	} {
		if got, err := c.cond(tc.in); err != nil || got != tc.want {
			t.Errorf("cond(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{"${{ github.sha }}", "${{ format('{0}', inputs.provider) }}", "${{ inputs.provider == kind }}"} {
		if _, err := c.eval(bad); err == nil {
			t.Errorf("eval(%q) did not refuse", bad)
		}
	}
}

// FuzzExpressions: any expression text is evaluated or refused, never a panic.
func FuzzExpressions(f *testing.F) {
	for _, s := range []string{"${{ inputs.provider }}", "always() && !inputs.validate-only", "${{ github.event_name == 'pull_request' }}", "${{", "!!!", "a == '", "steps.run.outputs"} {
		f.Add(s)
	}
	c := &exprContext{github: map[string]string{"event_name": "push"}, inputs: map[string]string{"provider": "kind"}, steps: map[string]map[string]string{}}
	f.Fuzz(func(t *testing.T, s string) {
		_, _ = c.eval(s)
		_, _ = c.cond(s)
	})
}
