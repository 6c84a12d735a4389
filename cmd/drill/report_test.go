package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/meshdrill/drill/pkg/report"
)

// seedLog is the seed drill's recorded events, a pass.
const seedLog = "../../pkg/report/testdata/seed/events.jsonl"

// runReportCLI runs drill report in-process and returns its exit code.
func runReportCLI(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	return runCLI(t, append([]string{"report"}, args...)...)
}

// runDir makes a report directory holding the seed log changed by edit.
func runDir(t *testing.T, edit func([]byte) []byte) string {
	t.Helper()
	data, err := os.ReadFile(seedLog)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "events.jsonl"), edit(data), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestReportVerb(t *testing.T) {
	same := func(b []byte) []byte { return b }
	for _, tc := range []struct {
		name   string
		edit   func([]byte) []byte
		code   int
		stdout string
		stderr string
	}{
		{"pass", same, exitPass, "## ✔ PASS: drill reviews-failover", "wrote report.json"},
		{"an expectation fails", func(b []byte) []byte {
			// The scenario kept in run.started, with a tighter limit on 503s.
			return bytes.Replace(b, []byte(`max: 20}`), []byte(`max: 3}`), 1)
		}, report.ExitFail, "✘ **FAIL** | few-503s", "failed: 1 of 7 expectations failed: few-503s"},
		{"killed: no run.finished", func(b []byte) []byte {
			lines := bytes.SplitAfter(b, []byte("\n"))
			return bytes.Join(lines[:len(lines)/2], nil)
		}, exitError, "✘ ERROR", "the run did not finish"},
		{"cut mid-line", func(b []byte) []byte { return b[:len(b)/2] }, exitError, "✘ ERROR", "reporting on the"},
		{"not a log", func([]byte) []byte { return []byte("hello\n") }, exitError, "", "not an event"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := runDir(t, tc.edit)
			code, out, errOut := runReportCLI(t, dir)
			if code != tc.code {
				t.Errorf("exit code %d, want %d\nstderr: %s", code, tc.code, errOut)
			}
			if !strings.Contains(out, tc.stdout) {
				t.Errorf("stdout lacks %q:\n%s", tc.stdout, out)
			}
			if !strings.Contains(errOut, tc.stderr) {
				t.Errorf("stderr lacks %q:\n%s", tc.stderr, errOut)
			}
			if tc.stdout == "" {
				return
			}
			for _, f := range []string{"report.json", "junit.xml", "summary.md", "report.html"} {
				if fi, err := os.Stat(filepath.Join(dir, f)); err != nil || fi.Size() == 0 {
					t.Errorf("%s not written: %v", f, err)
				}
			}
			if data, err := os.ReadFile(filepath.Join(dir, "report.json")); err == nil {
				checkReportSchema(t, data)
			}
		})
	}
}

func TestReportVerbOut(t *testing.T) {
	dir := runDir(t, func(b []byte) []byte { return b })
	out := filepath.Join(t.TempDir(), "again")
	code, stdout, errOut := runReportCLI(t, dir, "--out-dir", out, "--quiet")
	if code != exitPass || stdout != "" {
		t.Fatalf("exit %d, stdout %q, stderr %s", code, stdout, errOut)
	}
	summary, err := os.ReadFile(filepath.Join(out, "summary.md"))
	if err != nil || !strings.Contains(string(summary), "PASS") {
		t.Fatalf("summary.md in --out-dir: %v %q", err, summary)
	}
	if _, err := os.Stat(filepath.Join(dir, "report.json")); !os.IsNotExist(err) {
		t.Errorf("report.json written into DIR despite --out-dir: %v", err)
	}
}

func TestReportVerbMissingDir(t *testing.T) {
	code, _, errOut := runReportCLI(t, filepath.Join(t.TempDir(), "nope"))
	if code != exitError || !strings.Contains(errOut, "events.jsonl") {
		t.Fatalf("exit %d, stderr %q; want 2 and a message naming events.jsonl", code, errOut)
	}
}
