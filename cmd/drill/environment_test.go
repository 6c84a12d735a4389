package main

import (
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
)

// TestEnvironmentPage: every DRILL_… variable named in the code, the make
// targets, the hack/ scripts and the workflows is listed in docs/environment.md.
func TestEnvironmentPage(t *testing.T) {
	page, err := os.ReadFile("../../docs/environment.md")
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("git", "-C", "../..", "ls-files", "*.go", "*.sh", "Makefile", ".ci/run", ".github/*", "action.yml").Output()
	if err != nil {
		t.Skipf("git ls-files: %v", err)
	}
	re := regexp.MustCompile(`\bDRILL_[A-Z0-9_]+\b`)
	missing := map[string]string{}
	for _, f := range strings.Fields(string(out)) {
		data, err := os.ReadFile("../../" + f)
		if err != nil {
			continue // deleted in the work tree
		}
		for _, name := range re.FindAllString(string(data), -1) {
			if !strings.Contains(string(page), "`"+name+"`") {
				missing[name] = f
			}
		}
	}
	for name, f := range missing {
		t.Errorf("%s (read in %s) is not listed in docs/environment.md", name, f)
	}
}
