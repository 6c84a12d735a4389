package main

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/meshdrill/drill/pkg/cluster"
	"github.com/meshdrill/drill/pkg/drill"
	"github.com/meshdrill/drill/pkg/history"
	"github.com/meshdrill/drill/pkg/scenario"
)

// runFlags are the flags of drill run.
type runFlags struct {
	providers     *providerFlags
	out           string
	keep          bool
	allowContexts []string
	verbose       bool
	history       string
	pushgateway   string
}

func newRunCmd() *cobra.Command {
	f := &runFlags{}
	cmd := &cobra.Command{
		Use:   "run FILE",
		Short: "Run a drill and write its reports",
		Long: `run stands up (or connects to) the scenario's clusters, applies the failover
policy, drives load, injects the faults of the timeline, watches the mesh and writes
events.jsonl, report.json, junit.xml, summary.md, report.html and metrics.prom into a
new directory under --out-dir, then records the run in the run history (--history, by
default history.db under --out-dir) and pushes metrics.prom to --pushgateway when given.
Every fault is reverted on the way out, Ctrl-C included (a second Ctrl-C exits at once
and prints the commands that restore what is left). A FILE of - reads the scenario from
standard input.

Exit code 0 when every expectation held, 1 when one failed, 2 when the drill could not
run (bad scenario, provider error, abort), 3 when it is inconclusive (nothing failed,
but a latency bound broke while drill's machine was starved for CPU). A run that passed
exits 2 when it could not be recorded in the history or pushed (its reports are
written all the same).`,
		Example: `  drill run scenarios/reviews-failover.yaml
  drill run scenarios/reviews-failover.yaml --provider kind --out-dir reports/
  drill run my-drill.yaml --provider existing --context cluster1=prod-eu,cluster2=prod-us --allow-context prod-eu`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runDrill(cmd.Context(), cmd, f, args[0])
		},
	}
	fl := cmd.Flags()
	f.providers = addProviderFlags(fl)
	addOutDirFlag(fl, &f.out, "reports", "directory under which the run's report directory is created", "out")
	fl.BoolVar(&f.keep, "keep", false, "leave the clusters and the applied policy in place after the run")
	fl.StringSliceVar(&f.allowContexts, "allow-context", nil, "kube contexts on which destructive faults may run (also DRILL_ALLOW_CONTEXTS)")
	fl.BoolVarP(&f.verbose, "verbose", "v", false, "log every step of the run")
	addHistoryFlag(fl, &f.history)
	addPushgatewayFlag(fl, &f.pushgateway)
	return cmd
}

func runDrill(ctx context.Context, cmd *cobra.Command, f *runFlags, file string) error {
	if ctx == nil {
		ctx = context.Background()
	}
	s, raw, err := readScenario(cmd, file)
	if err != nil {
		return &exitCodeError{code: exitError, err: scenarioError(err)}
	}
	log := newLogger(cmd.ErrOrStderr(), f.verbose)

	p, err := f.providers.build(cluster.Common{Logger: log, Keep: f.keep})
	if err != nil {
		return &exitCodeError{code: exitError, err: err}
	}
	stderr := cmd.ErrOrStderr()
	isTTY := false
	if fd, ok := stderr.(interface{ Fd() uintptr }); ok {
		isTTY = term.IsTerminal(int(fd.Fd())) && os.Getenv("CI") == ""
	}
	res, err := drill.Run(ctx, s,
		drill.WithProvider(p),
		drill.WithOut(f.out),
		drill.WithKeep(f.keep),
		drill.WithLogger(log),
		drill.WithProgress(stderr, isTTY),
		drill.WithAllowContexts(f.allowContexts...),
		drill.WithScenarioYAML(raw),
		drill.WithVersion(drillVersion()),
		drill.WithHistory(history.Path(f.history, f.out)),
	)
	if err != nil {
		return &exitCodeError{code: exitError, err: err}
	}
	if summary, rerr := os.ReadFile(res.Dir + "/summary.md"); rerr == nil {
		fmt.Fprintln(cmd.OutOrStdout(), string(summary))
	}
	fmt.Fprintf(cmd.OutOrStdout(), "reports: %s\n", res.Dir)
	if err := finish(ctx, cmd, res.Report, res.HistoryErr, f.pushgateway); err != nil {
		code := res.ExitCode()
		if code == exitPass {
			code = exitError
		}
		return &exitCodeError{code: code, err: fmt.Errorf("verdict %s, reports in %s, but: %w", res.Report.Verdict, res.Dir, err)}
	}
	if code := res.ExitCode(); code != exitPass {
		msg := fmt.Sprintf("verdict %s", res.Report.Verdict)
		if res.Report.Reason != "" {
			msg += ": " + res.Report.Reason
		}
		return &exitCodeError{code: code, err: errors.New(msg)}
	}
	return nil
}

// scenarioError prints every located problem of a scenario, one per line.
func scenarioError(err error) error {
	var list scenario.ErrorList
	if errors.As(err, &list) {
		return fmt.Errorf("invalid scenario:\n%s", list.Error())
	}
	return err
}
