package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// pilotAgentArgs is the command line the real pilot-agent gave Envoy in a
// sidecar (istio pkg/envoy/proxy.go), as recorded next to the bootstraps in
// internal/envoyemu/testdata/bootstrap.
var pilotAgentArgs = []string{
	"-c", "etc/istio/proxy/envoy-rev.json", "--drain-time-s", "45", "--drain-strategy", "immediate",
	"--local-address-ip-version", "v4", "--file-flush-interval-msec", "1000", "--disable-hot-restart",
	"--allow-unknown-static-fields", "-l", "warning", "--component-log-level", "misc:error",
	"--skip-deprecated-logs", "--concurrency", "2",
}

func TestParsePilotAgentArgs(t *testing.T) {
	o, err := parse(pilotAgentArgs)
	if err != nil {
		t.Fatal(err)
	}
	if o.configPath != "etc/istio/proxy/envoy-rev.json" || o.logLevel != "warning" || o.drainTime != 45*time.Second || o.version {
		t.Errorf("parsed %+v", o)
	}
	if o, err := parse([]string{"--config-path=/b.json", "--log-level=debug"}); err != nil || o.configPath != "/b.json" || o.logLevel != "debug" {
		t.Errorf("--flag=value forms: %+v, %v", o, err)
	}
}

func TestParseRefuses(t *testing.T) {
	for args, want := range map[string]string{
		"--mode validate --bogus": "unknown flag --bogus",
		"-c":                      "flag -c needs a value",
		"--drain-time-s soon":     "is not a number of seconds",
		"stray":                   `unexpected argument "stray"`,
	} {
		_, err := parse(strings.Fields(args))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want an error containing %q", args, err, want)
		}
	}
}

// TestRun: --version says it is the emulation; a missing or bad bootstrap
// is exit code 1 with the reason, as Envoy fails on a bad configuration.
func TestRun(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run([]string{"--version"}, &out, &errb); code != exitOK || !strings.Contains(out.String(), "drill-emulated") {
		t.Errorf("--version: %d %q", code, out.String())
	}
	errb.Reset()
	if code := run([]string{"--concurrency", "2"}, &out, &errb); code != exitError || !strings.Contains(errb.String(), "no bootstrap") {
		t.Errorf("no -c: %d %q", code, errb.String())
	}
	bad := filepath.Join(t.TempDir(), "envoy-rev.json")
	if err := os.WriteFile(bad, []byte(`{"node":{}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	errb.Reset()
	if code := run([]string{"-c", bad}, &out, &errb); code != exitError || !strings.Contains(errb.String(), "node.id is empty") {
		t.Errorf("bad bootstrap: %d %q", code, errb.String())
	}
}

func FuzzParseArgs(f *testing.F) {
	f.Add(strings.Join(pilotAgentArgs, "\x00"))
	f.Add("--version")
	f.Fuzz(func(t *testing.T, s string) {
		o, err := parse(strings.Split(s, "\x00"))
		if err == nil && o.drainTime < 0 {
			t.Fatalf("negative drain time from %q", s)
		}
	})
}
