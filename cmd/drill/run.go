package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sort"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/meshdrill/drill/pkg/cluster"
	"github.com/meshdrill/drill/pkg/drill"
	"github.com/meshdrill/drill/pkg/scenario"
)

// runFlags are the flags of drill run that providers read.
type runFlags struct {
	provider      string
	out           string
	keep          bool
	allowContexts []string
	contexts      []string
	kubeconfig    string
	verbose       bool
	// kind
	reuse       bool
	kindIngress string
	// existing
	installBookinfo bool
	ingress         []string
}

// providerFactories builds a provider by name; each provider registers itself in
// providers.go.
var providerFactories = map[string]func(f *runFlags, log *slog.Logger) (cluster.Provider, error){}

func providerNames() []string {
	names := make([]string, 0, len(providerFactories))
	for n := range providerFactories {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func newRunCmd() *cobra.Command {
	f := &runFlags{}
	cmd := &cobra.Command{
		Use:   "run FILE",
		Short: "Run a drill and write its reports",
		Long: `run stands up (or connects to) the scenario's clusters, applies the failover
policy, drives load, injects the faults of the timeline, watches the mesh and writes
events.jsonl, report.json, junit.xml, summary.md and report.html into a new directory
under --out. Every fault is reverted on the way out, Ctrl-C included (a second Ctrl-C
exits at once and prints the commands that restore what is left).

Exit code 0 when every expectation held, 1 when one failed, 2 when the drill could not
run (bad scenario, provider error, abort).`,
		Example: `  drill run scenarios/reviews-failover.yaml
  drill run scenarios/reviews-failover.yaml --provider kind --out reports/
  drill run my-drill.yaml --provider existing --context cluster1=prod-eu,cluster2=prod-us --allow-context prod-eu`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runDrill(cmd.Context(), cmd, f, args[0])
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.provider, "provider", "local", "where the clusters come from: local, kind or existing")
	fl.StringVar(&f.out, "out", "reports", "directory under which the run's report directory is created")
	fl.BoolVar(&f.keep, "keep", false, "leave the clusters and the applied policy in place after the run")
	fl.StringSliceVar(&f.allowContexts, "allow-context", nil, "kube contexts on which destructive faults may run (also DRILL_ALLOW_CONTEXTS)")
	fl.StringSliceVar(&f.contexts, "context", nil, "existing provider: scenario cluster to kube context, cluster1=ctx-a,cluster2=ctx-b")
	fl.StringVar(&f.kubeconfig, "kubeconfig", "", "existing provider: kubeconfig file (default: $KUBECONFIG or ~/.kube/config)")
	fl.BoolVar(&f.reuse, "reuse", false, "kind provider: reuse kind clusters of the same name left by an earlier --keep run")
	fl.StringVar(&f.kindIngress, "kind-ingress", "", "kind provider: reach the ingress gateway by its MetalLB address (loadbalancer, Linux default) or a host port (hostport, macOS/Windows default)")
	fl.BoolVar(&f.installBookinfo, "install-bookinfo", false, "existing provider: install Bookinfo where the scenario says so (default: expect it to be there)")
	fl.StringSliceVar(&f.ingress, "ingress", nil, "existing provider: the ingress URL of a cluster, cluster1=http://10.0.0.5:80, when its gateway has no LoadBalancer address")
	fl.BoolVarP(&f.verbose, "verbose", "v", false, "log every step of the run")
	return cmd
}

func runDrill(ctx context.Context, cmd *cobra.Command, f *runFlags, file string) error {
	if ctx == nil {
		ctx = context.Background()
	}
	s, err := scenario.Load(file)
	if err != nil {
		return &exitCodeError{code: exitError, err: scenarioError(err)}
	}
	raw, err := os.ReadFile(file)
	if err != nil {
		return &exitCodeError{code: exitError, err: err}
	}
	level := slog.LevelWarn
	if f.verbose {
		level = slog.LevelInfo
	}
	log := slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: level}))

	factory, ok := providerFactories[f.provider]
	if !ok {
		return &exitCodeError{code: exitError, err: fmt.Errorf("unknown provider %q; use one of: %s", f.provider, strings.Join(providerNames(), ", "))}
	}
	p, err := factory(f, log)
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
	)
	if err != nil {
		return &exitCodeError{code: exitError, err: err}
	}
	if summary, rerr := os.ReadFile(res.Dir + "/summary.md"); rerr == nil {
		fmt.Fprintln(cmd.OutOrStdout(), string(summary))
	}
	fmt.Fprintf(cmd.OutOrStdout(), "reports: %s\n", res.Dir)
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
