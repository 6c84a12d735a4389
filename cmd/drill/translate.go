package main

import "github.com/spf13/cobra"

func newTranslateCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "translate FILE",
		Short: "Print the Istio objects a scenario's mesh policy becomes, per cluster",
		Example: `  drill translate scenarios/reviews-failover.yaml
  drill translate scenarios/reviews-failover.yaml -o out/`,
		Args: cobra.ExactArgs(1),
		RunE: reserved("drill translate"),
	}
}
