package report

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/meshdrill/drill/pkg/event"
)

// withExpect replaces the scenario's expectations.
func withExpect(t *testing.T, yaml, expect string) string {
	t.Helper()
	i := strings.Index(yaml, "  expect:\n")
	if i < 0 {
		t.Fatal("the scenario has no expect section")
	}
	return yaml[:i] + "  expect:\n" + expect
}

// resultOf finds an expectation's result by name.
func resultOf(t *testing.T, rep *Report, name string) Result {
	t.Helper()
	for _, r := range rep.Expectations {
		if r.Name == name {
			return r
		}
	}
	t.Fatalf("no expectation %q in the report (%d expectations)", name, len(rep.Expectations))
	return Result{}
}

func TestBuildVerdicts(t *testing.T) {
	type check struct {
		name     string
		status   Status
		observed *float64 // nil: not checked
		contains string   // in the message
	}
	cases := []struct {
		name    string
		story   func(*story)
		expect  string // replaces the seed's expectations when set
		mutate  func([]event.Event) []event.Event
		verdict Verdict
		reason  string // in the reason
		checks  []check
	}{
		{
			name:    "seed drill passes",
			verdict: Pass,
			checks: []check{
				{"few-503s", StatusPass, fptr(7), "7 of"},
				{"failover-fast", StatusPass, fptr(2.4), "42 of 50"},
				{"no-degraded-after-failover", StatusPass, fptr(0), "2,500 requests"},
				{"few-errors", StatusPass, fptr(1), ""},
				{"failback", StatusPass, fptr(7.4), "35 of 50"},
			},
		},
		{
			name:    "too many upstream 503s",
			expect:  "    - name: few-503s\n      upstream5xx: {from: productpage, to: reviews, cluster: cluster1, max: 3}\n",
			verdict: Fail, reason: "1 of 1 expectations failed: few-503s",
			checks: []check{{"few-503s", StatusFail, fptr(7), ""}},
		},
		{
			name:    "retried 5xx bounded apart from the final answers",
			expect:  "    - name: retried\n      upstream5xx: {from: productpage, to: reviews, cluster: cluster1, max: 10, retried: {min: 5, max: 7}}\n",
			verdict: Pass,
			checks:  []check{{"retried", StatusPass, fptr(7), "Envoy retried 7 more 5xx answers"}},
		},
		{
			name:    "too few retried 5xx",
			expect:  "    - name: retried\n      upstream5xx: {from: productpage, to: reviews, cluster: cluster1, max: 10, retried: {min: 100}}\n",
			verdict: Fail, reason: "1 of 1 expectations failed: retried",
			checks: []check{{"retried", StatusFail, fptr(7), ""}},
		},
		{
			name:    "the fault must be felt",
			expect:  "    - name: felt\n      upstream5xx: {from: productpage, to: reviews, cluster: cluster1, min: 1, window: {from: reviews-back}}\n",
			verdict: Fail,
			checks:  []check{{"felt", StatusFail, fptr(0), ""}},
		},
		{
			name:    "failover never happens",
			story:   func(s *story) { s.never = true },
			verdict: Fail,
			checks: []check{
				{"failover-fast", StatusFail, nil, "never moved to cluster2 after reviews-down"},
				{"few-503s", StatusFail, nil, ""},
				{"no-degraded-after-failover", StatusFail, fptr(2500), ""},
			},
		},
		{
			name:    "failover too slow",
			story:   func(s *story) { s.failoverAfter = 13 },
			verdict: Fail,
			checks:  []check{{"failover-fast", StatusFail, fptr(13.4), "too slow"}},
		},
		{
			name:    "degraded answers after failover",
			story:   func(s *story) { s.degradedLate = 3 },
			verdict: Fail,
			checks:  []check{{"no-degraded-after-failover", StatusFail, fptr(3), ""}},
		},
		{
			name:    "client errors",
			story:   func(s *story) { s.errors = 9 },
			verdict: Fail,
			checks:  []check{{"few-errors", StatusFail, fptr(9), ""}},
		},
		{
			name:    "latency while failed over",
			story:   func(s *story) { s.slow = 12 },
			verdict: Fail,
			checks:  []check{{"p99-while-failed-over", StatusFail, nil, "p99"}},
		},
		{
			name:    "latency while failed over on a starved machine",
			story:   func(s *story) { s.slow = 12; s.starved = 400 * time.Millisecond },
			verdict: Inconclusive, reason: "could not be judged on this machine, the others passed: p99, p99-while-failed-over",
			checks: []check{{"p99-while-failed-over", StatusInconclusive, nil, "drill's own goroutines waited 400 ms for a CPU"}},
		},
		{
			name:    "latency while failed over, the machine only a little busy",
			story:   func(s *story) { s.slow = 12; s.starved = 5 * time.Millisecond },
			verdict: Fail,
			checks:  []check{{"p99-while-failed-over", StatusFail, nil, "p99"}},
		},
		{
			name:    "a starved machine does not spoil a latency that held",
			story:   func(s *story) { s.starved = 400 * time.Millisecond },
			verdict: Pass,
			checks:  []check{{"p99-while-failed-over", StatusPass, nil, ""}},
		},
		{
			name:    "failback too slow",
			story:   func(s *story) { s.failbackAfter = 40 },
			verdict: Fail,
			checks:  []check{{"failback", StatusFail, fptr(40.4), "too slow"}},
		},
		{
			name: "failover recomputed from the samples when the engine did not record it",
			story: func(s *story) {
				s.live = false
			},
			verdict: Pass,
			checks:  []check{{"failover-fast", StatusPass, fptr(2.4), ""}, {"failback", StatusPass, fptr(7.4), ""}},
		},
		{
			name: "nothing moved: the backup already served before the step",
			expect: "    - name: already-there\n      failover: {service: reviews, from: cluster1, to: cluster2, within: 10s, after: reviews-back}\n" +
				"    - name: from-cluster2\n      failover: {service: reviews, from: cluster2, to: cluster1, within: 10s, after: reviews-back}\n",
			verdict: Error,
			checks: []check{
				{"already-there", StatusFail, nil, "nothing moved: cluster2 already answered most reviews requests before reviews-back"},
				// Nobody observed clients in cluster2.
				{"from-cluster2", StatusError, nil, "no stats samples from Envoys in cluster2"},
			},
		},
		{
			name: "windows relative to steps",
			expect: "    - name: at-fault\n      degraded: {max: 100, from: reviews-down, until: reviews-down + 2s}\n" +
				"    - name: before-fault\n      degraded: {max: 0, from: 20s, until: reviews-down}\n" +
				"    - name: after-revert\n      errors: {max: 0, from: reviews-back + 5s, until: end}\n" +
				"    - name: local-503s-at-fault\n      upstream5xx: {from: productpage, to: reviews, cluster: cluster1, max: 100, window: {from: reviews-down, until: reviews-down + 2s}}\n",
			verdict: Fail,
			checks: []check{
				{"at-fault", StatusPass, fptr(10), "[reviews-down, reviews-down + 2s) = [30 s, 32 s)"},
				{"before-fault", StatusPass, fptr(0), ""},
				{"after-revert", StatusFail, fptr(1), "[95 s, 2m30s)"},
				// The scrape interval (29.4 s, 30.4 s] has its middle before 30 s:
				// only those ending at 31.4 s and 32.4 s count.
				{"local-503s-at-fault", StatusPass, fptr(5), ""},
			},
		},
		{
			name:    "run killed: no run.finished",
			story:   func(s *story) { s.finish = "" },
			verdict: Error, reason: "the run did not finish",
		},
		{
			name:    "run aborted",
			story:   func(s *story) { s.finish, s.reason = "error", "aborted: interrupt (Ctrl-C)" },
			verdict: Error, reason: "the run ended in error: aborted: interrupt (Ctrl-C)",
		},
		{
			name: "killed before the revert",
			story: func(s *story) {
				s.finish, s.stopAt = "", 60*time.Second
			},
			verdict: Error, reason: "expectation failback could not be evaluated: step reviews-back never started",
			checks: []check{
				{"failback", StatusError, nil, "steps that started: reviews-down"},
				{"no-degraded-after-failover", StatusError, nil, "step \"reviews-back\" never started"},
				{"failover-fast", StatusPass, fptr(2.4), ""},
			},
		},
		{
			name:    "fault not reverted",
			story:   func(s *story) { s.revertFails = true },
			verdict: Error, reason: "could not be reverted: scale deployment reviews-v1 in cluster1",
		},
		{
			name: "no stats samples",
			mutate: func(evs []event.Event) []event.Event {
				return slices.DeleteFunc(evs, func(e event.Event) bool {
					return e.Type == event.StatsSample || e.Type == event.FailoverDetected || e.Type == event.FailbackDetected
				})
			},
			verdict: Error,
			checks: []check{
				{"few-503s", StatusError, nil, "no stats samples of productpage's Envoy in cluster1"},
				{"failover-fast", StatusError, nil, "no stats samples from Envoys in cluster1"},
			},
		},
		{
			name: "sidecar hides its outbound cluster stats",
			mutate: func(evs []event.Event) []event.Event {
				for i, e := range evs {
					if e.Type == event.StatsSample {
						evs[i] = event.New(e.Type, e.Cluster, e.Source, event.Sample{Workload: "productpage", Interval: time.Second,
							Clusters: map[string]event.ClusterDelta{"xds-grpc": {Requests: 1}}})
						evs[i].Seq, evs[i].Elapsed = e.Seq, e.Elapsed
					}
				}
				return evs
			},
			verdict: Error,
			checks:  []check{{"few-503s", StatusError, nil, "proxyStatsMatcher"}},
		},
		{
			name: "no load windows",
			mutate: func(evs []event.Event) []event.Event {
				return slices.DeleteFunc(evs, func(e event.Event) bool { return e.Type == event.LoadWindow || e.Type == event.LoadFinished })
			},
			verdict: Error,
			checks:  []check{{"few-errors", StatusError, nil, "no load windows"}},
		},
		{
			name:    "no expectations",
			expect:  "",
			verdict: Pass,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			st := seedStory(t)
			if tc.story != nil {
				tc.story(st)
			}
			if tc.expect != "" || tc.name == "no expectations" {
				st.yaml = withExpect(t, st.yaml, tc.expect)
				if tc.expect == "" {
					st.yaml = strings.Replace(st.yaml, "  expect:\n", "", 1)
				}
			}
			evs := st.build()
			if tc.mutate != nil {
				evs = tc.mutate(evs)
			}
			rep, err := Build(evs)
			if err != nil {
				t.Fatal(err)
			}
			if rep.Verdict != tc.verdict {
				t.Errorf("verdict %s (%s), want %s", rep.Verdict, rep.Reason, tc.verdict)
			}
			if !strings.Contains(rep.Reason, tc.reason) && !strings.Contains(strings.Join(rep.Problems, "\n"), tc.reason) {
				t.Errorf("reason %q (problems %q) does not contain %q", rep.Reason, rep.Problems, tc.reason)
			}
			starvedNote := slices.ContainsFunc(rep.Notes, func(n string) bool { return strings.Contains(n, "short of CPU") })
			if want := st.starved >= 100*time.Millisecond; starvedNote != want {
				t.Errorf("note on a starved machine: %v, want %v (%q)", starvedNote, want, rep.Notes)
			}
			if want := map[Verdict]int{Pass: 0, Fail: 1, Error: 2, Inconclusive: 3}[tc.verdict]; rep.Verdict.ExitCode() != want {
				t.Errorf("exit code %d, want %d", rep.Verdict.ExitCode(), want)
			}
			for _, c := range tc.checks {
				r := resultOf(t, rep, c.name)
				if r.Status != c.status {
					t.Errorf("%s: %s (%s), want %s", c.name, r.Status, r.Message, c.status)
				}
				if c.observed != nil {
					if len(r.Measures) == 0 || r.Measures[0].Observed == nil || *r.Measures[0].Observed != *c.observed {
						t.Errorf("%s: observed %s, want %v", c.name, r.ObservedText(), *c.observed)
					}
				}
				if !strings.Contains(r.Message, c.contains) {
					t.Errorf("%s: message %q does not contain %q", c.name, r.Message, c.contains)
				}
			}
		})
	}
}

func TestBuildNotARun(t *testing.T) {
	for _, evs := range [][]event.Event{nil, {{Seq: 1, Type: event.LoadStarted}}} {
		rep, err := Build(evs)
		if !errors.Is(err, ErrNoRun) {
			t.Errorf("Build(%d events): %v, want ErrNoRun", len(evs), err)
		}
		if rep == nil || rep.Verdict != Error || rep.Reason == "" {
			t.Errorf("Build(%d events): report %+v, want an error verdict with a reason", len(evs), rep)
		}
	}
}

func TestBuildScenarioProblems(t *testing.T) {
	for _, tc := range []struct {
		yaml   string
		reason string
	}{
		{"", "run.started holds no scenario"},
		{"apiVersion: drill/v1alpha1\nkind: Scenario\nmetadata: {name: x}\nspec: {clusterz: []}\n", "does not parse"},
	} {
		st := seedStory(t)
		st.yaml = tc.yaml
		rep, err := Build(st.build())
		if err != nil {
			t.Fatal(err)
		}
		if rep.Verdict != Error || !strings.Contains(rep.Reason, tc.reason) {
			t.Errorf("verdict %s (%s), want error with %q", rep.Verdict, rep.Reason, tc.reason)
		}
	}
}

func TestLatency(t *testing.T) {
	expect := "    - name: whole\n      latency: {p50: 1s, p90: 1s, p99: 1s, max: 20s}\n" +
		"    - name: failed-over\n      latency: {p99: 1s, from: reviews-down + 10s, until: reviews-back}\n"
	for _, tc := range []struct {
		name       string
		histograms bool
		upperBound bool
	}{
		{"windows with histograms merge exactly", true, false},
		{"windows without histograms give a bound", false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := seedStory(t)
			st.noHistograms = !tc.histograms
			st.yaml = withExpect(t, st.yaml, expect)
			evs := st.build()
			rep, err := Build(evs)
			if err != nil {
				t.Fatal(err)
			}
			whole := resultOf(t, rep, "whole")
			if len(whole.Measures) != 4 {
				t.Fatalf("whole: %d measures, want p50, p90, p99, max", len(whole.Measures))
			}
			var finished event.Window
			var in []event.Window
			for _, e := range evs {
				var w event.Window
				switch e.Type {
				case event.LoadFinished:
					_ = e.Decode(&finished)
				case event.LoadWindow:
					_ = e.Decode(&w)
					if w.Start >= 40*time.Second && w.End <= 90*time.Second {
						in = append(in, w)
					}
				}
			}
			// The whole load is judged on the attack's own percentiles, always exact.
			for i, want := range []time.Duration{finished.P50, finished.P90, finished.P99, finished.Max} {
				m := whole.Measures[i]
				if *m.Observed != seconds(want) || m.UpperBound {
					t.Errorf("whole %s: %s, want %v exactly", m.Name, m.ObservedText(), want)
				}
			}
			fo := resultOf(t, rep, "failed-over").Measures[0]
			var maxP99 time.Duration
			for _, w := range in {
				maxP99 = max(maxP99, w.P99)
			}
			if fo.UpperBound != tc.upperBound {
				t.Errorf("failed-over p99: upper bound %v, want %v", fo.UpperBound, tc.upperBound)
			}
			if tc.upperBound && *fo.Observed != seconds(maxP99) {
				t.Errorf("failed-over p99: %s, want the largest window p99 %v", fo.ObservedText(), maxP99)
			}
			if !tc.upperBound {
				p, ok := mergedPercentiles(in)
				if !ok || *fo.Observed != seconds(p[2]) {
					t.Errorf("failed-over p99: %s, want the merged %v", fo.ObservedText(), p[2])
				}
				if *fo.Observed > seconds(maxP99) {
					t.Errorf("merged p99 %s above every window's p99 (largest %v)", fo.ObservedText(), maxP99)
				}
			}
			hasNote := slices.ContainsFunc(rep.Notes, func(n string) bool { return strings.Contains(n, "no latency histograms") })
			if hasNote != tc.upperBound {
				t.Errorf("note about missing histograms: %v, want %v (%q)", hasNote, tc.upperBound, rep.Notes)
			}
		})
	}
}

// TestRebuildIsStable checks that a report built during the run (with the engine's
// live detections) and one rebuilt from the log agree.
func TestRebuildIsStable(t *testing.T) {
	live, err := Build(seedStory(t).build())
	if err != nil {
		t.Fatal(err)
	}
	st := seedStory(t)
	st.live = false
	rebuilt, err := Build(st.build())
	if err != nil {
		t.Fatal(err)
	}
	if live.Verdict != rebuilt.Verdict || len(live.Timings.Failovers) != len(rebuilt.Timings.Failovers) {
		t.Fatalf("live %s with %d failovers, rebuilt %s with %d", live.Verdict, len(live.Timings.Failovers), rebuilt.Verdict, len(rebuilt.Timings.Failovers))
	}
	for i, f := range live.Timings.Failovers {
		g := rebuilt.Timings.Failovers[i]
		if !f.Live || g.Live || f.TookSeconds != g.TookSeconds || f.AtSeconds != g.AtSeconds || f.Kind != g.Kind || f.Served != g.Served {
			t.Errorf("failover %d: live %+v, rebuilt %+v", i, f, g)
		}
	}
}
