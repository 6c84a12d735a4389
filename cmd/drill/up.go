package main

import (
	"context"
	"fmt"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/meshdrill/drill/pkg/cluster"
	"github.com/meshdrill/drill/pkg/drill"
)

func newUpCmd() *cobra.Command {
	var (
		pf      *providerFlags
		policy  bool
		verbose bool
	)
	cmd := &cobra.Command{
		Use:   "up FILE",
		Short: "Bring up a scenario's clusters and keep them until Ctrl-C",
		Long: `up brings up the clusters of a scenario — control planes, istiod, the emulated node
and gateways, Bookinfo — without running the drill, prints how to reach each one, and
keeps them until Ctrl-C, when it tears everything down. With --policy it also applies
the scenario's translated failover policy.

Use it to look around with kubectl while you write a scenario: scale a workload by hand,
watch its endpoints, read istiod's debug pages.`,
		Example: `  drill up scenarios/reviews-failover.yaml
  # in another terminal, with the kubeconfig path up printed:
  kubectl --kubeconfig /tmp/drill-local-…/cluster1/kubeconfig get pods -A`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, _, err := readScenario(cmd, args[0])
			if err != nil {
				return &exitCodeError{code: exitError, err: scenarioError(err)}
			}
			log := newLogger(cmd.ErrOrStderr(), verbose)
			p, err := pf.build(cluster.Common{Logger: log})
			if err != nil {
				return &exitCodeError{code: exitError, err: err}
			}
			ctx := cmd.Context()
			if ctx == nil {
				ctx = context.Background()
			}
			ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			start := time.Now()
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "bringing up %d clusters with the %s provider...\n", len(s.Spec.Clusters), p.Name())
			cs, upErr := drill.Up(ctx, s, p, policy, log)
			defer func() {
				dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
				defer cancel()
				if err := p.Down(dctx); err != nil {
					fmt.Fprintln(cmd.ErrOrStderr(), "drill: tearing down:", err)
				}
				fmt.Fprintln(out, "clusters down")
			}()
			if upErr != nil {
				return &exitCodeError{code: exitError, err: upErr}
			}
			fmt.Fprintf(out, "up in %s\n", time.Since(start).Round(100*time.Millisecond))
			for _, c := range cs {
				ingress, err := c.Access.Ingress(ctx)
				if err != nil {
					ingress = "none"
				}
				fmt.Fprintf(out, "cluster %s: kubeconfig %s  ingress %s\n", c.Name, c.Kubeconfig, ingress)
			}
			fmt.Fprintln(out, "ready; press Ctrl-C to tear down")
			<-ctx.Done()
			return nil
		},
	}
	fl := cmd.Flags()
	pf = addProviderFlags(fl)
	fl.BoolVar(&policy, "policy", false, "also apply the scenario's translated failover policy")
	fl.BoolVarP(&verbose, "verbose", "v", false, "log every step")
	return cmd
}
