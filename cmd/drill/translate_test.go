package main

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// runTranslateCLI runs the CLI in-process with its output captured.
func runTranslateCLI(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	cmd := newRootCmd()
	var out, errOut bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	cmd.SetArgs(args)
	err = cmd.Execute()
	return out.String(), errOut.String(), err
}

func translateExitCode(err error) int {
	if err == nil {
		return exitPass
	}
	var ec *exitCodeError
	if errors.As(err, &ec) {
		return ec.code
	}
	return exitError
}

const translateSeed = "../../scenarios/reviews-failover.yaml"

func TestTranslateStdout(t *testing.T) {
	out, errOut, err := runTranslateCLI(t, "translate", translateSeed, "--remote", "cluster2=172.18.0.12:15443")
	if err != nil {
		t.Fatalf("translate: %v\n%s", err, errOut)
	}
	if errOut != "" {
		t.Errorf("stderr with every address known: %q", errOut)
	}
	c1 := strings.Index(out, "# cluster: cluster1\n")
	c2 := strings.Index(out, "# cluster: cluster2\n")
	if c1 != 0 || c2 < c1 {
		t.Fatalf("want cluster1 then cluster2 under '# cluster:' headers:\n%s", out)
	}
	part1 := out[c1:c2]
	for _, kind := range []string{"ServiceEntry", "DestinationRule", "EnvoyFilter", "VirtualService"} {
		if !strings.Contains(part1, "kind: "+kind+"\n") {
			t.Errorf("cluster1 has no %s", kind)
		}
	}
	if !strings.Contains(part1, "address: 172.18.0.12\n") || !strings.Contains(part1, "http-9080: 15443\n") {
		t.Error("cluster1 does not reach cluster2 at the --remote address")
	}
}

func TestTranslateOfflineWarns(t *testing.T) {
	out, errOut, err := runTranslateCLI(t, "translate", translateSeed)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(errOut, "warning: ") || !strings.Contains(errOut, "--remote cluster2=") {
		t.Errorf("no warning about cluster2's unknown address: %q", errOut)
	}
	if !strings.Contains(out, "drill.meshdrill.io/remote-address:") {
		t.Error("the placeholder ServiceEntry does not say it is one")
	}
}

func TestTranslateOutputDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "out")
	_, errOut, err := runTranslateCLI(t, "translate", translateSeed, "--out-dir", dir, "--remote", "cluster2=172.18.0.12")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []string{"cluster1", "cluster2"} {
		b, err := os.ReadFile(filepath.Join(dir, c+".yaml"))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(string(b), "# cluster: "+c+"\n---\n") {
			t.Errorf("%s.yaml starts %q", c, string(b[:min(len(b), 40)]))
		}
		if !strings.Contains(errOut, filepath.Join(dir, c+".yaml")+": ") {
			t.Errorf("stderr does not list %s.yaml: %q", c, errOut)
		}
	}
	stdout, _, err := runTranslateCLI(t, "translate", translateSeed, "--remote", "cluster2=172.18.0.12")
	if err != nil {
		t.Fatal(err)
	}
	b1, _ := os.ReadFile(filepath.Join(dir, "cluster1.yaml"))
	b2, _ := os.ReadFile(filepath.Join(dir, "cluster2.yaml"))
	if string(b1)+string(b2) != stdout {
		t.Error("the files differ from what stdout shows")
	}
}

func TestTranslateBadInput(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	scenarioWithBadBacking, err := os.ReadFile(translateSeed)
	if err != nil {
		t.Fatal(err)
	}
	// cluster2 no longer runs reviews, yet backs the failover service.
	broken := strings.Replace(string(scenarioWithBadBacking), "bookinfo: {reviews: [v3]}", "bookinfo: {reviews: []}", 1)
	if broken == string(scenarioWithBadBacking) {
		t.Fatal("the seed scenario changed; update this test")
	}
	if err := os.WriteFile(bad, []byte(broken), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		want string // on stderr or in the error
	}{
		{"missing file", []string{"translate", "no-such-file.yaml"}, "no-such-file.yaml"},
		{"invalid policy", []string{"translate", bad}, bad + ":34:41: spec.mesh.failoverServices[0].backingServices[1].cluster: reviews does not run in cluster2"},
		{"malformed --remote", []string{"translate", translateSeed, "--remote", "cluster2"}, "CLUSTER=ADDRESS"},
		{"unknown --remote cluster", []string{"translate", translateSeed, "--remote", "cluster9=1.2.3.4"}, `"cluster9"`},
		{"--remote twice", []string{"translate", translateSeed, "--remote", "cluster2=1.2.3.4", "--remote", "cluster2=1.2.3.5"}, "given twice"},
		{"unknown step", []string{"translate", translateSeed, "--step", "nope"}, `no step "nope"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, errOut, err := runTranslateCLI(t, tc.args...)
			if code := translateExitCode(err); code != exitError {
				t.Fatalf("exit code %d, want %d (err %v)", code, exitError, err)
			}
			if out != "" {
				t.Errorf("stdout on failure: %q", out)
			}
			if !strings.Contains(errOut+err.Error(), tc.want) {
				t.Errorf("want %q in the messages, got stderr %q, error %v", tc.want, errOut, err)
			}
		})
	}
}
