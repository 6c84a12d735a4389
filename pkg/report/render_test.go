package report

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/meshdrill/drill/pkg/event"
)

// TestJUnitShape reads junit.xml back as a CI reporter would and checks its counts
// against the verdict.
func TestJUnitShape(t *testing.T) {
	type problem struct {
		Message string `xml:"message,attr"`
	}
	type tc struct {
		Name    string   `xml:"name,attr"`
		Time    string   `xml:"time,attr"`
		Failure *problem `xml:"failure"`
		Error   *problem `xml:"error"`
		Skipped *problem `xml:"skipped"`
	}
	type suite struct {
		Tests      int    `xml:"tests,attr"`
		Failures   int    `xml:"failures,attr"`
		Errors     int    `xml:"errors,attr"`
		Skipped    int    `xml:"skipped,attr"`
		Hostname   string `xml:"hostname,attr"`
		Cases      []tc   `xml:"testcase"`
		Properties []struct {
			Name  string `xml:"name,attr"`
			Value string `xml:"value,attr"`
		} `xml:"properties>property"`
	}
	type suites struct {
		XMLName xml.Name `xml:"testsuites"`
		Tests   int      `xml:"tests,attr"`
		Suites  []suite  `xml:"testsuite"`
	}
	for _, c := range []struct {
		name    string
		story   func(*story)
		verdict Verdict
		runCase bool
	}{
		{"pass", func(*story) {}, Pass, false},
		{"fail", func(s *story) { s.never = true }, Fail, false},
		{"killed", func(s *story) { s.finish, s.stopAt = "", 60e9 }, Error, true},
		{"revert failed", func(s *story) { s.revertFails = true }, Error, true},
		{"inconclusive", func(s *story) { s.slow, s.starved = 12, 400*time.Millisecond }, Inconclusive, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			st := seedStory(t)
			c.story(st)
			rep, _ := Build(st.build())
			if rep.Verdict != c.verdict {
				t.Fatalf("verdict %s, want %s", rep.Verdict, c.verdict)
			}
			var buf bytes.Buffer
			if err := rep.WriteJUnit(&buf); err != nil {
				t.Fatal(err)
			}
			var doc suites
			if err := xml.Unmarshal(buf.Bytes(), &doc); err != nil {
				t.Fatalf("junit.xml does not parse: %v", err)
			}
			if len(doc.Suites) != 1 {
				t.Fatalf("%d testsuites, want 1", len(doc.Suites))
			}
			s := doc.Suites[0]
			fails, errs, skips, run := 0, 0, 0, false
			for _, k := range s.Cases {
				if k.Skipped != nil {
					skips++
					if !strings.Contains(k.Skipped.Message, "waited") {
						t.Errorf("testcase %s: skipped without saying why: %q", k.Name, k.Skipped.Message)
					}
				}
				if k.Failure != nil {
					fails++
				}
				if k.Error != nil {
					errs++
					if k.Error.Message == "" {
						t.Errorf("testcase %s: error without a message", k.Name)
					}
				}
				run = run || k.Name == "run"
			}
			if s.Skipped != skips {
				t.Errorf("skipped %d, testcases skipped %d", s.Skipped, skips)
			}
			if s.Tests != len(s.Cases) || doc.Tests != s.Tests || s.Failures != fails || s.Errors != errs {
				t.Errorf("counts: tests %d/%d, failures %d, errors %d; testcases %d, failures %d, errors %d",
					doc.Tests, s.Tests, s.Failures, s.Errors, len(s.Cases), fails, errs)
			}
			if want := len(rep.Expectations); len(s.Cases) != want+map[bool]int{true: 1}[c.runCase] {
				t.Errorf("%d testcases for %d expectations (run case %v)", len(s.Cases), want, c.runCase)
			}
			if run != c.runCase {
				t.Errorf("testcase run: %v, want %v", run, c.runCase)
			}
			switch c.verdict {
			case Pass:
				if fails+errs != 0 {
					t.Errorf("a passing drill has %d failures and %d errors", fails, errs)
				}
			case Fail:
				if fails == 0 || errs != 0 {
					t.Errorf("a failed drill has %d failures and %d errors", fails, errs)
				}
			case Error:
				if errs == 0 {
					t.Error("a drill in error has no error testcase")
				}
			case Inconclusive:
				if fails+errs != 0 || skips == 0 {
					t.Errorf("an inconclusive drill has %d failures, %d errors and %d skipped cases", fails, errs, skips)
				}
			}
			props := map[string]string{}
			for _, p := range s.Properties {
				props[p.Name] = p.Value
			}
			if props["provider"] != "local" || props["dataPlane"] != "emulated" || props["verdict"] != string(c.verdict) {
				t.Errorf("properties %v", props)
			}
			// Runs of one scenario are told apart by the run's identity.
			if props["runId"] != "reviews-failover-"+storyStart.Format("20060102-150405") || props["drillVersion"] != "v0.1.0" || s.Hostname != "drill-ci-1" {
				t.Errorf("run identity: runId %q, drillVersion %q, hostname %q", props["runId"], props["drillVersion"], s.Hostname)
			}
			for _, k := range s.Cases {
				if k.Name != "run" && k.Time != "0" {
					t.Errorf("testcase %s: time %s; an expectation takes no time of its own", k.Name, k.Time)
				}
			}
		})
	}
}

// TestReportJSONRoundTrip checks that report.json reads back into a Report with the
// same judgement.
func TestReportJSONRoundTrip(t *testing.T) {
	st := seedStory(t)
	st.never = true
	rep, _ := Build(st.build())
	var buf bytes.Buffer
	if err := rep.WriteJSON(&buf); err != nil {
		t.Fatal(err)
	}
	var back Report
	dec := json.NewDecoder(&buf)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&back); err != nil {
		t.Fatal(err)
	}
	if back.Schema != Schema || back.Verdict != rep.Verdict || len(back.Expectations) != len(rep.Expectations) {
		t.Fatalf("read back %s %s with %d expectations", back.Schema, back.Verdict, len(back.Expectations))
	}
	for i, x := range back.Expectations {
		if x.Status != rep.Expectations[i].Status || x.ObservedText() != rep.Expectations[i].ObservedText() {
			t.Errorf("expectation %s: %s %s, want %s %s", x.Name, x.Status, x.ObservedText(), rep.Expectations[i].Status, rep.Expectations[i].ObservedText())
		}
	}
}

// TestHTMLSelfContained checks that report.html needs nothing beyond itself: no
// script, no stylesheet, font or image to fetch, no link out.
func TestHTMLSelfContained(t *testing.T) {
	rep, _ := Build(seedStory(t).build())
	var buf bytes.Buffer
	if err := rep.WriteHTML(&buf); err != nil {
		t.Fatal(err)
	}
	page := buf.String()
	for _, re := range []string{`<script`, `<link`, `<img`, `<iframe`, `<object`, `@import`, `@font-face`, `\bsrc=`, `\bhref=`, `url\((?:[^#)]|$)`} {
		if loc := regexp.MustCompile(re).FindStringIndex(page); loc != nil {
			t.Errorf("report.html holds %q at byte %d: %.80s", re, loc[0], page[loc[0]:])
		}
	}
	// Every chart is inline SVG with its own clip path.
	if n, want := strings.Count(page, "<svg "), len(rep.charts()); n != want || n < 6 {
		t.Errorf("%d inline charts, want %d (at least 6)", n, want)
	}
	for _, want := range []string{"✔ PASS", "failover → cluster2 (+2.4 s)", "failback → cluster1 (+7.4 s)", "reviews · cluster2 (.global)", "EMULATED"} {
		if !strings.Contains(page, want) {
			t.Errorf("report.html lacks %q", want)
		}
	}
}

// TestJUnitNotJudged: the expectations of a drill that injected no fault
// because the mesh was not steady are skipped testcases ("not judged"), not
// failures — even one that would have failed — and the steady-state check
// that decided it is the failure a CI reporter shows.
func TestJUnitNotJudged(t *testing.T) {
	story := seedStory(t)
	story.yaml = strings.Replace(story.yaml, "  expect:\n", "  steadyState: {over: 10s, failedRatio: 0.01}\n  expect:\n", 1)
	story.yaml = withExpect(t, story.yaml, "    - name: no-errors-at-all\n      errors: {max: 0}\n")
	evs := story.build()
	notHeld := event.New(event.SteadyStateChecked, "cluster1", "engine", event.SteadyCheck{Held: false, From: 20 * time.Second, Until: 30 * time.Second, Requests: 500,
		Message: "errors and degraded 40 % of 500 answers (at most 1 %)", Broken: []string{"errors and degraded"}})
	notHeld.Seq, notHeld.Elapsed = evs[len(evs)-1].Seq+1, storyLoadAt+30*time.Second
	rep, err := Build(append(slices.Clone(evs), notHeld))
	if err != nil {
		t.Fatal(err)
	}
	if rep.Verdict != Inconclusive || resultOf(t, rep, "no-errors-at-all").Status != StatusFail {
		t.Fatalf("verdict %s, no-errors-at-all %s; want inconclusive, and the expectation failing as shown", rep.Verdict, resultOf(t, rep, "no-errors-at-all").Status)
	}
	var buf bytes.Buffer
	if err := rep.WriteJUnit(&buf); err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Suites []struct {
			Failures int `xml:"failures,attr"`
			Skipped  int `xml:"skipped,attr"`
			Cases    []struct {
				Name    string `xml:"name,attr"`
				Failure *struct {
					Type string `xml:"type,attr"`
				} `xml:"failure"`
				Skipped *struct {
					Message string `xml:"message,attr"`
				} `xml:"skipped"`
			} `xml:"testcase"`
		} `xml:"testsuite"`
	}
	if err := xml.Unmarshal(buf.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	s := doc.Suites[0]
	for _, c := range s.Cases {
		switch {
		case c.Name == "steady-state-before":
			if c.Failure == nil || c.Failure.Type != "not-steady" {
				t.Errorf("steady-state-before: failure %+v, want type not-steady", c.Failure)
			}
		case c.Failure != nil:
			t.Errorf("%s is a failure of a drill that was not judged", c.Name)
		case c.Name == "no-errors-at-all" && (c.Skipped == nil || !strings.Contains(c.Skipped.Message, "would have been fail")):
			t.Errorf("no-errors-at-all: skipped %+v, want \"not judged … would have been fail\"", c.Skipped)
		}
	}
	if s.Failures != 1 || s.Skipped != 1 {
		t.Errorf("suite: %d failures, %d skipped; want 1 failure (the steady state) and the expectations skipped", s.Failures, s.Skipped)
	}
}
