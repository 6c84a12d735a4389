package scenario

import (
	"errors"
	"strings"
	"testing"
)

func TestRegressionExpectation(t *testing.T) {
	in := seed + `    - name: p99
      latency: {p50: 100ms, p99: 500ms}
    - name: failover-not-slower
      regression: {figure: failover, last: 4, maxIncrease: 50%, maxIncreaseBy: 500ms}
    - name: p50-not-slower
      regression: {figure: p99.p50, maxIncrease: 12.5%}
    - name: errors-not-more
      regression: {figure: load.errors, maxIncreaseBy: 20}
`
	s, err := Parse("t.yaml", []byte(in))
	if err != nil {
		t.Fatal(err)
	}
	r := s.Spec.Expect[2].Regression
	if r == nil || r.Figure != "failover" || r.Runs() != 4 || r.Needed() != 3 {
		t.Fatalf("regression = %+v", r)
	}
	if r.MaxIncrease == nil || r.MaxIncrease.Share() != 0.5 || r.MaxIncreaseBy == nil || !r.MaxIncreaseBy.IsDuration || r.MaxIncreaseBy.Value != 0.5 {
		t.Errorf("limits = %v %+v", r.MaxIncrease, r.MaxIncreaseBy)
	}
	r2 := s.Spec.Expect[3].Regression
	if r2.Runs() != DefaultRegressionLast || r2.Needed() != DefaultRegressionMinRuns || r2.MaxIncrease.Share() != 0.125 {
		t.Errorf("defaults: %+v runs %d needed %d", r2, r2.Runs(), r2.Needed())
	}
	if a := s.Spec.Expect[4].Regression.MaxIncreaseBy; a == nil || a.IsDuration || a.Value != 20 {
		t.Errorf("count amount = %+v", a)
	}
	for fig, want := range map[string]string{"failover": "seconds", "p99.p50": "seconds", "load.errors": "requests", "run.seconds": "seconds"} {
		if u, err := FigureUnit(s, fig); err != nil || u != want {
			t.Errorf("FigureUnit(%s) = %q, %v; want %s", fig, u, err, want)
		}
	}
}

func TestRegressionErrors(t *testing.T) {
	for _, tc := range []struct {
		name, expect, field, msg string
	}{
		{"no figure", `regression: {maxIncrease: 50%}`, "figure", "required"},
		{"unknown figure", `regression: {figure: nope, maxIncrease: 50%}`, "figure", `"nope" names no expectation of the scenario (failover)`},
		{"itself", `regression: {figure: r, maxIncrease: 50%}`, "figure", "is a regression expectation"},
		{"measure of failover", `regression: {figure: failover.p99, maxIncrease: 50%}`, "figure", "only a latency expectation has measures"},
		{"no limit", `regression: {figure: failover}`, "", "set maxIncrease"},
		{"percent without sign", `regression: {figure: failover, maxIncrease: 50}`, "maxIncrease", "is not a percentage"},
		{"negative percent", `regression: {figure: failover, maxIncrease: -5%}`, "maxIncrease", "must not be negative"},
		{"count for a time", `regression: {figure: failover, maxIncreaseBy: 2}`, "maxIncreaseBy", "write the increase as a duration"},
		{"duration for a count", `regression: {figure: load.errors, maxIncreaseBy: 2s}`, "maxIncreaseBy", "write the increase as a number"},
		{"not an amount", `regression: {figure: failover, maxIncreaseBy: soon}`, "maxIncreaseBy", "neither a duration"},
		{"min over last", `regression: {figure: failover, last: 2, minRuns: 3, maxIncrease: 5%}`, "minRuns", "larger than last"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := seed + "    - name: r\n      " + tc.expect + "\n"
			_, err := Parse("t.yaml", []byte(in))
			var list ErrorList
			if !errors.As(err, &list) {
				t.Fatalf("want an ErrorList, got %v", err)
			}
			field := "spec.expect[1].regression"
			if tc.field != "" {
				field += "." + tc.field
			}
			for _, e := range list {
				if e.Field == field && strings.Contains(e.Msg, tc.msg) {
					if e.Line != 24 || e.Column == 0 {
						t.Errorf("error at %d:%d, want line 24: %v", e.Line, e.Column, e)
					}
					return
				}
			}
			t.Errorf("no error on %s containing %q in:\n%v", field, tc.msg, err)
		})
	}
}

// FuzzParseAmount checks that the percentage and amount parsers never panic,
// accept only finite values that are not negative, and agree with their String.
func FuzzParseAmount(f *testing.F) {
	for _, s := range []string{"50%", "12.5%", " 0% ", "500ms", "2m30s", "20", "1e400", "NaN", "-1", "%", "5%%"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if p, err := parsePercent(s); err == nil {
			if p < 0 || p != p {
				t.Fatalf("parsePercent(%q) = %v", s, p)
			}
			if q, err := parsePercent(Percent(p).String()); err != nil || q != p {
				t.Fatalf("percent %q → %v → %q → %v, %v", s, p, Percent(p).String(), q, err)
			}
		}
		if a, err := parseAmount(s); err == nil {
			if a.Value < 0 || a.Value != a.Value {
				t.Fatalf("parseAmount(%q) = %+v", s, a)
			}
			if b, err := parseAmount(a.String()); err != nil || b.IsDuration != a.IsDuration {
				t.Fatalf("amount %q → %+v → %q → %+v, %v", s, a, a.String(), b, err)
			}
		}
	})
}
