package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/meshdrill/drill/pkg/event"
	"github.com/meshdrill/drill/pkg/history"
	"github.com/meshdrill/drill/pkg/report"
)

func newReportCmd() *cobra.Command {
	var out, output, historyFlag, pushgateway string
	var quiet bool
	cmd := &cobra.Command{
		Use:   "report DIR",
		Short: "Rebuild a run's reports from its events.jsonl",
		Long: `report judges a run again from DIR/events.jsonl alone — the scenario, the steps,
the load, the Envoy stats and the failovers are all in it — and writes report.json,
junit.xml, summary.md, report.html and metrics.prom into DIR (or --out-dir). It prints
the summary, or with -o json|yaml the report itself (report.json's content,
docs/schema/). A DIR of - reads the event log from standard input; the reports then go
to --out-dir. Regression expectations are judged against the run history (history.db
beside DIR, or --history) and the run is recorded there again, replacing its earlier
record.

A log cut short by a killed run is reported up to where it ends, with the verdict
error. Exit code 0 when every expectation held, 1 when one failed, 2 when the run
could not be judged, 3 when it is inconclusive (see drill run --help).`,
		Example: `  drill report reports/reviews-failover-20261124-101500
  drill report reports/reviews-failover-20261124-101500 --out-dir /tmp/again
  drill report reports/reviews-failover-20261124-101500 -o json | jq .verdict
  zcat events.jsonl.gz | drill report - --out-dir /tmp/again`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir := args[0]
			if err := checkOutput(cmd, output, outputJSON, outputYAML); err != nil {
				return err
			}
			var events []event.Event
			var readErr error
			if dir == "-" {
				if out == "" {
					return &exitCodeError{code: exitError, err: errors.New("drill report - reads the event log from standard input; say where the reports go with --out-dir DIR")}
				}
				events, readErr = event.ReadLogFrom(cmd.InOrStdin())
			} else {
				events, readErr = event.ReadLog(filepath.Join(dir, event.LogFile))
			}
			if readErr != nil {
				if len(events) == 0 {
					return &exitCodeError{code: exitError, err: readErr}
				}
				// What was read before a cut or a bad line is still the run's record.
				fmt.Fprintf(cmd.ErrOrStderr(), "drill: %v; reporting on the %d events before it\n", readErr, len(events))
			}
			if out == "" {
				out = dir
			}
			if err := os.MkdirAll(out, 0o755); err != nil {
				return &exitCodeError{code: exitError, err: fmt.Errorf("report: %w", err)}
			}
			ctx := cmd.Context()
			if ctx == nil {
				ctx = context.Background()
			}
			// The history lives in the directory that holds the run
			// directories: beside DIR, or beside --out-dir for a log read
			// from standard input (not in the working directory).
			runDir := dir
			if dir == "-" {
				runDir = out
			}
			histPath := history.Path(historyFlag, filepath.Dir(filepath.Clean(runDir)))
			rep, err, histErr := history.WriteReports(ctx, histPath, out, events)
			if err != nil && !errors.Is(err, report.ErrNoRun) {
				return &exitCodeError{code: exitError, err: err}
			}
			if err := finish(ctx, cmd, rep, histErr, pushgateway); err != nil {
				code := rep.Verdict.ExitCode()
				if code == exitPass {
					code = exitError
				}
				return &exitCodeError{code: code, err: fmt.Errorf("verdict %s, reports in %s, but: %w", rep.Verdict, out, err)}
			}
			switch {
			case output != "":
				if err := printData(cmd.OutOrStdout(), output, rep); err != nil {
					return &exitCodeError{code: exitError, err: err}
				}
			case !quiet:
				if err := rep.WriteSummary(cmd.OutOrStdout()); err != nil {
					return &exitCodeError{code: exitError, err: err}
				}
			}
			if !quiet {
				fmt.Fprintf(cmd.ErrOrStderr(), "drill: wrote %s, %s, %s, %s and %s in %s\n",
					report.JSONFile, report.JUnitFile, report.SummaryFile, report.HTMLFile, report.MetricsFile, out)
			}
			switch rep.Verdict {
			case report.Pass:
				return nil
			case report.Fail:
				return &exitCodeError{code: rep.Verdict.ExitCode(), err: fmt.Errorf("drill %s failed: %s", rep.Scenario, rep.Reason)}
			case report.Inconclusive:
				return &exitCodeError{code: rep.Verdict.ExitCode(), err: fmt.Errorf("drill %s was inconclusive: %s", rep.Scenario, rep.Reason)}
			}
			return &exitCodeError{code: rep.Verdict.ExitCode(), err: fmt.Errorf("drill %s could not be judged: %s", rep.Scenario, rep.Reason)}
		},
	}
	addOutDirFlag(cmd.Flags(), &out, "", "directory to write the reports to (default: DIR)", "out")
	addOutputFlag(cmd.Flags(), &output, "", outputJSON, outputYAML)
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "print neither the summary nor the files written")
	addHistoryFlag(cmd.Flags(), &historyFlag)
	addPushgatewayFlag(cmd.Flags(), &pushgateway)
	return cmd
}
