package report

import (
	"encoding/xml"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// The JUnit XML shape CI test reporters read (Jenkins, GitLab, GitHub actions
// reporters): testsuites › testsuite › testcase, with failure or error children.
type junitSuites struct {
	XMLName  xml.Name     `xml:"testsuites"`
	Name     string       `xml:"name,attr"`
	Tests    int          `xml:"tests,attr"`
	Failures int          `xml:"failures,attr"`
	Errors   int          `xml:"errors,attr"`
	Time     string       `xml:"time,attr"`
	Suites   []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name       string          `xml:"name,attr"`
	Tests      int             `xml:"tests,attr"`
	Failures   int             `xml:"failures,attr"`
	Errors     int             `xml:"errors,attr"`
	Skipped    int             `xml:"skipped,attr"`
	Time       string          `xml:"time,attr"`
	Timestamp  string          `xml:"timestamp,attr,omitempty"`
	Hostname   string          `xml:"hostname,attr,omitempty"`
	Properties []junitProperty `xml:"properties>property"`
	Cases      []junitCase     `xml:"testcase"`
	SystemOut  string          `xml:"system-out,omitempty"`
}

type junitProperty struct {
	Name  string `xml:"name,attr"`
	Value string `xml:"value,attr"`
}

type junitCase struct {
	Name      string        `xml:"name,attr"`
	Classname string        `xml:"classname,attr"`
	Time      string        `xml:"time,attr"`
	Failure   *junitProblem `xml:"failure,omitempty"`
	Error     *junitProblem `xml:"error,omitempty"`
	Skipped   *junitSkipped `xml:"skipped,omitempty"`
	SystemOut string        `xml:"system-out,omitempty"`
}

// junitSkipped marks a case that ran but could not be judged: CI reporters
// show it as neither passed nor failed.
type junitSkipped struct {
	Message string `xml:"message,attr"`
}

type junitProblem struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr"`
	Text    string `xml:",chardata"`
}

// WriteJUnit writes junit.xml: one testsuite for the drill, one testcase per
// expectation (failed ones carry a failure, ones that could not be evaluated an
// error), and a testcase "run" with an error when the run itself did not complete,
// so that a CI test reporter shows a broken drill as broken, not as green.
func (r *Report) WriteJUnit(w io.Writer) error {
	class := "drill." + r.Scenario
	suite := junitSuite{
		Name: "drill: " + r.Scenario,
		Time: junitSeconds(r.Timings.RunSeconds),
		Properties: []junitProperty{
			{"scenario", r.Scenario},
			{"provider", r.Provider},
			{"dataPlane", r.DataPlane},
			{"clusters", strings.Join(r.Clusters, ",")},
			{"strategy", r.Strategy},
			{"verdict", string(r.Verdict)},
		},
		Hostname: r.Host,
	}
	if r.RunID != "" {
		// Runs of one scenario share the suite's name: the run's identity tells
		// them apart when reports are merged.
		suite.Properties = append(suite.Properties, junitProperty{"runId", r.RunID})
	}
	if !r.Started.IsZero() {
		suite.Timestamp = r.Started.UTC().Format("2006-01-02T15:04:05")
	}
	if r.DrillVersion != "" {
		suite.Properties = append(suite.Properties, junitProperty{"drillVersion", r.DrillVersion})
	}
	expErrors := 0
	for _, x := range r.Expectations {
		// time is how long the test ran, which an expectation judged from the
		// record does not: 0. A failover's delay is a measurement; it is in the
		// text, as "observed".
		c := junitCase{Name: x.Name, Classname: class, Time: "0"}
		detail := x.Check + "\n" + x.Message
		if x.Window != nil {
			detail += "\nwindow: " + spanText(x.Window)
		}
		detail += "\nobserved: " + x.ObservedText() + "\nlimit: " + x.LimitText()
		switch {
		case x.Kind == "steadyState" && x.Status == StatusInconclusive:
			// The mesh was unwell before the first fault, so none was
			// injected: the reason for the verdict, a failure to a CI
			// reporter as an aborting guard is.
			c.Failure = &junitProblem{Message: x.Message, Type: "not-steady", Text: detail}
			suite.Failures++
		case !r.Judged():
			// A guard aborted the drill, or the mesh was not steady and no
			// fault ran: the expectations are shown, not judged, as in the
			// summary; the guard's own testcase below carries the failure.
			c.Skipped = &junitSkipped{Message: fmt.Sprintf("not judged (%s): it would have been %s", r.Verdict, x.Status)}
			c.SystemOut = detail
			suite.Skipped++
		case x.Status == StatusFail:
			c.Failure = &junitProblem{Message: failureLine(x), Type: x.Kind, Text: detail}
			suite.Failures++
		case x.Status == StatusError:
			c.Error = &junitProblem{Message: x.Message, Type: x.Kind, Text: detail}
			suite.Errors++
			expErrors++
		case x.Status == StatusInconclusive || x.Status == StatusSkipped:
			c.Skipped = &junitSkipped{Message: "not judged: " + x.Message}
			c.SystemOut = detail
			suite.Skipped++
		default:
			c.SystemOut = detail
		}
		suite.Cases = append(suite.Cases, c)
	}
	// A guard that aborted the drill is a failed testcase of its own: CI
	// reporters show it beside the expectations it cut short.
	if g := r.Abort; g != nil {
		suite.Cases = append(suite.Cases, junitCase{Name: "guard " + g.Guard, Classname: class, Time: "0",
			Failure: &junitProblem{Message: "aborted: " + g.text(), Type: "aborted", Text: r.Reason}})
		suite.Failures++
	}
	// The run's own problems (it did not finish, a fault stayed in place) are a
	// testcase of their own, so that a CI reporter shows them however the
	// expectations went.
	runProblems := r.runProblems
	if r.Verdict == Error && expErrors == 0 && len(runProblems) == 0 {
		runProblems = []string{r.Reason}
	}
	if len(runProblems) > 0 {
		suite.Cases = append(suite.Cases, junitCase{
			Name: "run", Classname: class, Time: junitSeconds(r.Timings.RunSeconds),
			Error: &junitProblem{Message: runProblems[0], Type: "run", Text: strings.Join(runProblems, "\n")},
		})
		suite.Errors++
	}
	suite.Tests = len(suite.Cases)
	var out strings.Builder
	for _, m := range r.Moments() {
		fmt.Fprintf(&out, "%8s  %s\n", clockText(m.AtSeconds), m.What)
	}
	for _, n := range r.Notes {
		out.WriteString("note: " + n + "\n")
	}
	suite.SystemOut = out.String()
	doc := junitSuites{Name: "drill", Tests: suite.Tests, Failures: suite.Failures, Errors: suite.Errors,
		Time: suite.Time, Suites: []junitSuite{suite}}
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return fmt.Errorf("write junit.xml: %w", err)
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return fmt.Errorf("write junit.xml: %w", err)
	}
	if _, err := io.WriteString(w, "\n"); err != nil {
		return fmt.Errorf("write junit.xml: %w", err)
	}
	return nil
}

// failureLine is the one-line failure message: the failed measures against their
// limits, or for failover and failback the sentence saying what traffic did.
func failureLine(x Result) string {
	if f := x.failedMeasures(); len(f) > 0 && x.Kind != "failover" && x.Kind != "failback" {
		return strings.Join(f, "; ")
	}
	return x.Message
}

func junitSeconds(v float64) string { return strconv.FormatFloat(v, 'f', 3, 64) }
