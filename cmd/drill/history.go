package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/meshdrill/drill/pkg/history"
	"github.com/meshdrill/drill/pkg/report"
)

// Environment variables of the history and Pushgateway flags.
const (
	envHistory     = "DRILL_HISTORY"
	envPushgateway = "DRILL_PUSHGATEWAY"
)

// addHistoryFlag adds --history: the run history's file, "off" for none.
func addHistoryFlag(fl *pflag.FlagSet, p *string) {
	fl.StringVar(p, "history", os.Getenv(envHistory),
		`run history file; "off" keeps none (default: history.db in the reports directory; also `+envHistory+`)`)
}

// addPushgatewayFlag adds --pushgateway: where to push the run's metrics.
func addPushgatewayFlag(fl *pflag.FlagSet, p *string) {
	fl.StringVar(p, "pushgateway", os.Getenv(envPushgateway),
		"push the run's metrics.prom to the Prometheus Pushgateway at this URL, e.g. http://pushgateway:9091 (also "+envPushgateway+")")
}

// finish reports what went wrong after the reports were written: the history
// (histErr) and the push to a Pushgateway. Either turns a passing run's exit
// code into exitError (the reports are there, but the nightly's record is
// not); a run that failed keeps its own code.
func finish(ctx context.Context, cmd *cobra.Command, rep *report.Report, histErr error, pushURL string) error {
	var errs []error
	if histErr != nil {
		errs = append(errs, histErr)
	}
	if pushURL != "" && rep != nil {
		pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		err := rep.Push(pctx, pushURL, nil)
		cancel()
		if err != nil {
			errs = append(errs, err)
		} else {
			fmt.Fprintf(cmd.ErrOrStderr(), "drill: pushed the metrics of %s to %s\n", rep.RunID, pushURL)
		}
	}
	return errors.Join(errs...)
}

type historyFlags struct {
	path     string
	scenario string
	provider string
	n        int
	output   string
}

func newHistoryCmd() *cobra.Command {
	f := &historyFlags{}
	cmd := &cobra.Command{
		Use:   "history",
		Short: "List past runs and each figure's trend",
		Long: `history lists the runs the run history holds, newest first, with their verdicts and
headline figures (the first failover time, the load's p99, the run's length), then
each figure's trend per scenario and provider over the runs listed: a sparkline
(oldest left), the last value, the median, the lowest and the highest.

Every drill run (and drill report) records its run in the history, history.db in
the reports directory unless --history (` + envHistory + `) says otherwise.`,
		Example: `  drill history
  drill history --scenario reviews-failover --provider local -n 10
  drill history -o json | jq '.trends[] | select(.figure == "failover-fast")'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return showHistory(cmd, f)
		},
	}
	fl := cmd.Flags()
	addHistoryFlag(fl, &f.path)
	fl.StringVar(&f.scenario, "scenario", "", "only runs of this scenario (its metadata.name)")
	fl.StringVar(&f.provider, "provider", "", "only runs on this provider")
	fl.IntVarP(&f.n, "limit", "n", 20, "the newest N runs (0 for all)")
	fl.StringVarP(&f.output, "output", "o", "table", "output format: table, json or yaml")
	return cmd
}

// openHistory opens the history for reading; it must exist.
func openHistory(ctx context.Context, flag string) (*history.Store, error) {
	path := history.Path(flag, "reports")
	if path == "" {
		return nil, errors.New("the run history is off (--history off); name its file with --history PATH")
	}
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("no run history at %s (%w): drill run records one there, or name another with --history PATH", path, err)
	}
	return history.Open(ctx, path)
}

func showHistory(cmd *cobra.Command, f *historyFlags) error {
	if err := checkOutput(cmd, f.output, "table", outputJSON, outputYAML); err != nil {
		return err
	}
	ctx := cmd.Context()
	if ctx == nil {
		ctx = context.Background()
	}
	s, err := openHistory(ctx, f.path)
	if err != nil {
		return &exitCodeError{code: exitError, err: err}
	}
	defer s.Close()
	runs, err := s.List(ctx, history.Filter{Scenario: f.scenario, Provider: f.provider, Limit: f.n})
	if err != nil {
		return &exitCodeError{code: exitError, err: err}
	}
	trends := history.Trends(runs)
	out := cmd.OutOrStdout()
	if f.output != "table" {
		if runs == nil {
			runs = []history.Run{}
		}
		if trends == nil {
			trends = []history.Trend{}
		}
		return printData(out, f.output, map[string]any{"runs": runs, "trends": trends})
	}
	if len(runs) == 0 {
		fmt.Fprintf(out, "no runs in %s%s\n", s.Path(), filterText(f))
		return nil
	}
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "RUN\tSTARTED (UTC)\tPROVIDER\tVERDICT\tFAILOVER\tP99\tDURATION")
	for _, r := range runs {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.RunID, r.Started.UTC().Format("2006-01-02 15:04:05"), r.Provider, r.Verdict,
			firstFigure(&r, "failover."), figureText(&r, "load.p99"), report.FormatValue(report.UnitSeconds, r.RunSeconds))
	}
	tw.Flush()
	perGroup := map[string]int{}
	for _, r := range runs {
		perGroup[r.Scenario+" on "+r.Provider]++
	}
	group := ""
	for _, t := range trends {
		if g := t.Scenario + " on " + t.Provider; g != group {
			group = g
			fmt.Fprintf(out, "\nTrends of %s over %s (oldest first)\n", g, plural(perGroup[g], "run", "runs"))
			tw.Flush()
			fmt.Fprintln(tw, "FIGURE\tTREND\tLAST\tMEDIAN\tMIN\tMAX")
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", t.Figure, blocks(t.Values),
			report.FormatValue(t.Unit, t.Last), report.FormatValue(t.Unit, t.Median), report.FormatValue(t.Unit, t.Min), report.FormatValue(t.Unit, t.Max))
	}
	return tw.Flush()
}

func filterText(f *historyFlags) string {
	var parts []string
	if f.scenario != "" {
		parts = append(parts, "scenario "+f.scenario)
	}
	if f.provider != "" {
		parts = append(parts, "provider "+f.provider)
	}
	if len(parts) == 0 {
		return ""
	}
	return " for " + strings.Join(parts, ", ")
}

func figureText(r *history.Run, name string) string {
	if f, ok := r.Figure(name); ok {
		return report.FormatValue(f.Unit, f.Value)
	}
	return "—"
}

func firstFigure(r *history.Run, prefix string) string {
	for _, f := range r.Figures {
		if strings.HasPrefix(f.Name, prefix) {
			return report.FormatValue(f.Unit, f.Value)
		}
	}
	return "—"
}

// blocks draws values as a text sparkline, ▁ lowest to █ highest.
func blocks(values []float64) string {
	const bars = "▁▂▃▄▅▆▇█"
	runes := []rune(bars)
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, v := range values {
		lo, hi = min(lo, v), max(hi, v)
	}
	var b strings.Builder
	for _, v := range values {
		i := len(runes) / 2
		if hi > lo {
			i = int(math.Round((v - lo) / (hi - lo) * float64(len(runes)-1)))
		}
		b.WriteRune(runes[i])
	}
	return b.String()
}

func newCompareCmd() *cobra.Command {
	var path, output string
	cmd := &cobra.Command{
		Use:   "compare RUN [RUN]",
		Short: "Show two runs' figures side by side",
		Long: `compare shows two runs of the run history side by side: what ran (scenario file,
provider, data plane, drill version) and every figure with its change. RUN is a run
id or its report directory (reports/reviews-failover-20261206-020000). With one RUN
it is compared with the run of the same scenario on the same provider before it.`,
		Example: `  drill compare reviews-failover-20261206-020000
  drill compare reports/reviews-failover-20261205-020000 reports/reviews-failover-20261206-020000 -o json`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(cmd, output, "table", outputJSON, outputYAML); err != nil {
				return err
			}
			ctx := cmd.Context()
			if ctx == nil {
				ctx = context.Background()
			}
			s, err := openHistory(ctx, path)
			if err != nil {
				return &exitCodeError{code: exitError, err: err}
			}
			defer s.Close()
			b, err := s.Get(ctx, runID(args[len(args)-1]))
			if err != nil {
				return &exitCodeError{code: exitError, err: err}
			}
			var a *history.Run
			if len(args) == 2 {
				a, err = s.Get(ctx, runID(args[0]))
			} else {
				a, err = s.Previous(ctx, b)
			}
			if err != nil {
				return &exitCodeError{code: exitError, err: err}
			}
			rows := history.Compare(a, b)
			if output != "table" {
				return printData(cmd.OutOrStdout(), output, map[string]any{"a": a, "b": b, "figures": rows})
			}
			return printCompare(cmd.OutOrStdout(), a, b, rows)
		},
	}
	addHistoryFlag(cmd.Flags(), &path)
	cmd.Flags().StringVarP(&output, "output", "o", "table", "output format: table, json or yaml")
	return cmd
}

// runID is the run id of a RUN argument: a run id, or a report directory
// named after it.
func runID(arg string) string { return filepath.Base(filepath.Clean(arg)) }

func printCompare(w io.Writer, a, b *history.Run, rows []history.Row) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	sha := func(r *history.Run) string {
		if len(r.ScenarioSHA256) < 12 {
			return "—"
		}
		return r.ScenarioSHA256[:12]
	}
	fmt.Fprintf(tw, "\tA\tB\n")
	fmt.Fprintf(tw, "run\t%s\t%s\n", a.RunID, b.RunID)
	fmt.Fprintf(tw, "started (UTC)\t%s\t%s\n", a.Started.Format("2006-01-02 15:04:05"), b.Started.Format("2006-01-02 15:04:05"))
	fmt.Fprintf(tw, "verdict\t%s\t%s\n", a.Verdict, b.Verdict)
	fmt.Fprintf(tw, "scenario\t%s (sha256 %s)\t%s (sha256 %s)\n", a.Scenario, sha(a), b.Scenario, sha(b))
	fmt.Fprintf(tw, "provider\t%s, %s data plane\t%s, %s data plane\n", a.Provider, orDash(a.DataPlane), b.Provider, orDash(b.DataPlane))
	fmt.Fprintf(tw, "drill\t%s\t%s\n", orDash(a.DrillVersion), orDash(b.DrillVersion))
	fmt.Fprintln(tw, "\t\t\t")
	fmt.Fprintln(tw, "FIGURE\tA\tB\tCHANGE")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", r.Figure, value(r.Unit, r.A, r.StatusA), value(r.Unit, r.B, r.StatusB), change(r))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if a.ScenarioSHA256 != b.ScenarioSHA256 {
		fmt.Fprintln(w, "\nThe two runs ran different scenario files (their sha256 differ): a change in a figure may be the scenario's.")
	}
	return nil
}

func orDash(s string) string {
	if s == "" {
		return "—"
	}
	return s
}

func value(unit string, v *float64, status string) string {
	if v == nil {
		return "—"
	}
	s := report.FormatValue(unit, *v)
	if status != "" && status != string(report.StatusPass) {
		s += " (" + status + ")"
	}
	return s
}

func change(r history.Row) string {
	if r.Change == nil {
		return "—"
	}
	d := *r.Change
	s := report.FormatValue(r.Unit, math.Abs(d))
	switch {
	case d > 0:
		s = "+" + s
	case d < 0:
		s = "−" + s
	default:
		return "="
	}
	if r.ChangeRatio != nil {
		s += fmt.Sprintf(" (%+.0f%%)", *r.ChangeRatio*100)
	}
	return s
}

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}
