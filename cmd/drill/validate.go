package main

import (
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/meshdrill/drill/pkg/scenario"
)

func newValidateCmd() *cobra.Command {
	var quiet bool
	cmd := &cobra.Command{
		Use:   "validate FILE...",
		Short: "Check scenario files without running them",
		Long: `validate parses each scenario file strictly, fills in defaults and checks every
reference (clusters, steps, failover services). Every problem of a file is reported at
once as FILE:LINE:COLUMN: FIELD: message. Exit code 2 when any file is invalid.
A FILE of - reads the scenario from standard input (named <stdin> in messages).`,
		Example: `  drill validate scenarios/reviews-failover.yaml
  drill validate scenarios/*.yaml
  kubectl get configmap drill-scenario -o jsonpath='{.data.scenario\.yaml}' | drill validate -`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, files []string) error {
			bad := 0
			for _, f := range files {
				var s *scenario.Scenario
				var err error
				if f == "-" {
					f = "<stdin>"
					var raw []byte
					if raw, err = io.ReadAll(cmd.InOrStdin()); err == nil {
						s, err = scenario.Parse(f, raw)
					}
				} else {
					s, err = scenario.Load(f)
				}
				if err != nil {
					bad++
					var list scenario.ErrorList
					if errors.As(err, &list) {
						for _, e := range list {
							fmt.Fprintln(cmd.ErrOrStderr(), e)
						}
					} else {
						fmt.Fprintln(cmd.ErrOrStderr(), err)
					}
					continue
				}
				if !quiet {
					fmt.Fprintf(cmd.OutOrStdout(), "%s: ok (%s: %d clusters, %d steps, %d expectations)\n",
						f, s.Metadata.Name, len(s.Spec.Clusters), len(s.Spec.Steps), len(s.Spec.Expect))
				}
			}
			if bad > 0 {
				return &exitCodeError{code: exitError, err: fmt.Errorf("%d of %d scenario files are invalid", bad, len(files))}
			}
			return nil
		},
	}
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "print nothing for valid files")
	return cmd
}
