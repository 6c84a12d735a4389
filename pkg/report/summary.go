package report

import (
	"fmt"
	"io"
	"strings"
)

// WriteSummary writes summary.md: Markdown short enough for a CI job summary
// (GitHub's $GITHUB_STEP_SUMMARY, GitLab's job page) — the verdict, a table of the
// expectations, the key timings, and the notes that change how to read it.
func (r *Report) WriteSummary(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "## %s %s: drill %s\n\n", r.Verdict.Mark(), r.Verdict.Word(), md(r.Scenario))
	if r.Description != "" {
		fmt.Fprintf(&b, "%s\n\n", md(r.Description))
	}
	if r.Reason != "" {
		fmt.Fprintf(&b, "**%s:** %s\n\n", verdictLabel(r.Verdict), md(r.Reason))
	}
	if r.Emulated() {
		fmt.Fprintf(&b, "> **Emulated data plane.** This run used drill's Envoy emulation (provider %s), not Envoy itself. Run it with Envoy's own images (kind pulling them, or an existing cluster) for Envoy's own behaviour.\n", md(r.Provider))
		if r.DataPlaneDetail != "" {
			fmt.Fprintf(&b, "> %s\n", md(r.DataPlaneDetail))
		}
		b.WriteString("\n")
	}
	if len(r.Expectations) > 0 {
		b.WriteString("| | Expectation | Check | Observed | Limit |\n|---|---|---|---|---|\n")
		for _, x := range r.Expectations {
			mark := "✔ pass"
			switch x.Status {
			case StatusFail:
				mark = "✘ **FAIL**"
			case StatusError:
				mark = "✘ **ERROR**"
			case StatusInconclusive:
				mark = "? inconclusive"
			case StatusSkipped:
				mark = "– skipped"
			}
			check := x.Check
			if x.Status != StatusPass {
				check += " — " + x.Message
			}
			if !r.Judged() {
				// The verdict does not rest on it: what it would have been.
				check += " (not judged: it would have been " + string(x.Status) + ")"
				mark = "– not judged"
			}
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n", mark, cell(x.Name), cell(check), cell(x.ObservedText()), cell(x.LimitText()))
		}
		b.WriteString("\n")
	}
	var timings []string
	for _, s := range r.Timings.Steps {
		timings = append(timings, fmt.Sprintf("%s at %s", md(s.Name), clockText(s.AtSeconds)))
	}
	for _, f := range r.Timings.Failovers {
		timings = append(timings, fmt.Sprintf("**%s** of %s to %s %s", f.Kind, md(f.Service), md(f.To), md(f.tookText())))
	}
	if len(timings) > 0 {
		fmt.Fprintf(&b, "**Timeline** (since load start): %s.\n\n", strings.Join(timings, "; "))
	}
	if l := r.Load; l != nil {
		fmt.Fprintf(&b, "**Load:** %s requests at %s over %s: %s, %s degraded; latency p50 %s, p99 %s, max %s.\n\n",
			formatCount(float64(l.Requests)), md(orText(l.Rate, "?")), formatSeconds(r.Timings.LoadSeconds),
			plural(l.Errors, "error", "errors"), formatCount(float64(l.Degraded)),
			formatSeconds(l.P50Seconds), formatSeconds(l.P99Seconds), formatSeconds(l.MaxSeconds))
	}
	if dips := r.DipLines(); len(dips) > 0 {
		b.WriteString("**What the faults cost the clients:**\n\n")
		for _, d := range dips {
			fmt.Fprintf(&b, "- %s\n", md(d))
		}
		b.WriteString("\n")
	}
	if hosts := r.HostLines(12); len(hosts) > 0 {
		b.WriteString("**Envoy's own view** (the observed sidecars' /clusters: hosts ejected and returned, the priority each Envoy cluster served from first):\n\n")
		for _, h := range hosts {
			fmt.Fprintf(&b, "- %s\n", md(h))
		}
		b.WriteString("\n")
	}
	fmt.Fprintf(&b, "Provider %s, data plane %s, clusters %s", md(r.Provider), md(r.DataPlane), md(strings.Join(r.Clusters, ", ")))
	if r.Strategy != "" {
		fmt.Fprintf(&b, ", strategy %s", md(r.Strategy))
	}
	b.WriteString(".\n")
	var notes []string
	for _, n := range r.Notes {
		if r.Emulated() && strings.HasPrefix(n, "The data plane was emulated") {
			continue // said above
		}
		notes = append(notes, n)
	}
	if len(notes) > 0 {
		b.WriteString("\n")
		for _, n := range notes {
			fmt.Fprintf(&b, "- %s\n", md(n))
		}
	}
	if _, err := io.WriteString(w, b.String()); err != nil {
		return fmt.Errorf("write summary.md: %w", err)
	}
	return nil
}

func verdictLabel(v Verdict) string {
	if v == Error {
		return "Could not judge the drill"
	}
	return "Why"
}

// md keeps text from being read as Markdown or HTML markup.
func md(s string) string {
	return mdEscaper.Replace(s)
}

var mdEscaper = strings.NewReplacer("<", "&lt;", ">", "&gt;", "*", `\*`, "_", `\_`, "`", "\\`", "[", `\[`, "]", `\]`)

// cell is md for a table cell: pipes and newlines would break the row.
func cell(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(md(s), "|", `\|`), "\n", " ")
}

func plural(n int64, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return formatCount(float64(n)) + " " + many
}
