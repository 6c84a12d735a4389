package report

import (
	"bytes"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// seedMetrics is metrics.prom of the recorded seed run.
func seedMetrics(t *testing.T) []byte {
	t.Helper()
	rep := seedReport(t)
	var b bytes.Buffer
	if err := rep.WriteMetrics(&b); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestMetricsParse(t *testing.T) {
	data := seedMetrics(t)
	p := expfmt.NewTextParser(model.UTF8Validation)
	families, err := p.TextToMetricFamilies(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("metrics.prom does not parse: %v\n%s", err, data)
	}
	value := func(name string, labels map[string]string) (float64, bool) {
		for _, m := range families[name].GetMetric() {
			if matches(m, labels) {
				return m.GetGauge().GetValue(), true
			}
		}
		return 0, false
	}
	run := map[string]string{"scenario": "reviews-failover", "provider": "local", "run": "reviews-failover-20261124-210000"}
	with := func(kv ...string) map[string]string {
		out := map[string]string{}
		for k, v := range run {
			out[k] = v
		}
		for i := 0; i+1 < len(kv); i += 2 {
			out[kv[i]] = kv[i+1]
		}
		return out
	}
	for _, c := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"drill_verdict", with("verdict", "pass"), 1},
		{"drill_verdict", with("verdict", "fail"), 0},
		{"drill_exit_code", run, 0},
		{"drill_expectation_passed", with("expectation", "failover-fast", "kind", "failover", "status", "pass"), 1},
		{"drill_expectation_observed_seconds", with("expectation", "failover-fast", "kind", "failover", "measure", "failover time"), 2.4},
		{"drill_expectation_observed_requests", with("expectation", "few-503s", "kind", "upstream5xx", "measure", "upstream 5xx"), 7},
		{"drill_load_latency_seconds", with("percentile", "p99"), 0},
	} {
		got, ok := value(c.name, c.labels)
		switch {
		case !ok:
			t.Errorf("no %s%v in:\n%s", c.name, c.labels, data)
		case c.name == "drill_load_latency_seconds" && got <= 0:
			t.Errorf("%s%v = %v, want a latency", c.name, c.labels, got)
		case c.name != "drill_load_latency_seconds" && got != c.want:
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	for _, name := range []string{"drill_failover_seconds", "drill_recovery_seconds", "drill_load_requests", "drill_run_duration_seconds", "drill_run_start_timestamp_seconds"} {
		if len(families[name].GetMetric()) == 0 {
			t.Errorf("metrics.prom has no %s", name)
		}
	}
}

func seedReport(t *testing.T) *Report {
	t.Helper()
	log, err := os.ReadFile("testdata/seed/events.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	rep, err := Build(readLog(t, log))
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

func buildStory(t *testing.T, s *story) *Report {
	t.Helper()
	rep, err := Build(s.build())
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

func matches(m *dto.Metric, labels map[string]string) bool {
	n := 0
	for _, l := range m.GetLabel() {
		if v, ok := labels[l.GetName()]; ok {
			if v != l.GetValue() {
				return false
			}
			n++
		}
	}
	return n == len(labels) && len(m.GetLabel()) == len(labels)
}

// TestMetricsPromtool runs promtool check metrics (Debian's prometheus
// package) on metrics.prom: no lint finding.
func TestMetricsPromtool(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Skip("promtool is not installed (apt-get install prometheus); .ci/run installs it")
	}
	never, killed := seedStory(t), seedStory(t)
	never.never, never.finish = true, "fail"
	killed.finish, killed.stopAt = "", 60*time.Second
	for f, rep := range map[string]*Report{"seed": seedReport(t), "never": buildStory(t, never), "killed": buildStory(t, killed)} {
		var b bytes.Buffer
		if err := rep.WriteMetrics(&b); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(promtool, "check", "metrics")
		cmd.Stdin = &b
		out, err := cmd.CombinedOutput()
		if err != nil || strings.TrimSpace(string(out)) != "" {
			t.Errorf("promtool check metrics on the metrics of %s: %v\n%s", f, err, out)
		}
	}
}
