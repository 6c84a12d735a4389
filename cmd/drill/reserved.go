package main

import "github.com/spf13/cobra"

func newRunCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "run FILE",
		Short: "Run a drill and write its reports",
		Long: `run stands up (or connects to) the scenario's clusters, applies the failover
policy, drives load, injects the faults of the timeline, watches the mesh and writes
report.json, junit.xml, summary.md and report.html. Exit code 0 when every expectation
held, 1 when one failed, 2 when the drill could not run.`,
		Example: `  drill run scenarios/reviews-failover.yaml
  drill run scenarios/reviews-failover.yaml --provider kind --out reports/`,
		Args: cobra.ExactArgs(1),
		RunE: reserved("drill run"),
	}
}
