package main

import (
	"bytes"
	"errors"
	"os"
	"strings"
	"testing"
)

// TestValidateStdin: "-" reads the scenario from standard input; its problems
// are located in <stdin>, with exit code 2.
func TestValidateStdin(t *testing.T) {
	good, err := os.ReadFile("../../scenarios/reviews-failover.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, in, out string
		code          int
	}{
		{"valid", string(good), "<stdin>: ok (reviews-failover", 0},
		{"invalid", strings.Replace(string(good), "replicas: 0", "replicas: -1", 1), "<stdin>:", exitError},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd := newRootCmd()
			var stdout, stderr bytes.Buffer
			cmd.SetIn(strings.NewReader(tc.in))
			cmd.SetOut(&stdout)
			cmd.SetErr(&stderr)
			cmd.SetArgs([]string{"validate", "-"})
			err := cmd.Execute()
			code := 0
			var ec *exitCodeError
			if errors.As(err, &ec) {
				code = ec.code
			} else if err != nil {
				t.Fatal(err)
			}
			if code != tc.code || !strings.Contains(stdout.String()+stderr.String(), tc.out) {
				t.Errorf("exit %d, out %q, err %q; want exit %d and %q", code, stdout.String(), stderr.String(), tc.code, tc.out)
			}
		})
	}
}

// TestVersionFlag: drill --version prints the same version as drill version.
func TestVersionFlag(t *testing.T) {
	for _, args := range [][]string{{"--version"}, {"version"}} {
		cmd := newRootCmd()
		var out bytes.Buffer
		cmd.SetOut(&out)
		cmd.SetArgs(args)
		if err := cmd.Execute(); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(out.String(), drillVersion()) || drillVersion() == "" {
			t.Errorf("drill %v printed %q, want the version %q", args, out.String(), drillVersion())
		}
	}
}
