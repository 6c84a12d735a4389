package main

import (
	"fmt"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Version: drillVersion(),
		Use:     "drill",
		Short:   "Prove multi-cluster service-mesh failover works before an outage does",
		Long: `drill runs failover drills against Istio meshes spanning several clusters.

A scenario file says where the drill runs, which failover policy is under test, the
load to drive, the faults to inject on a timeline and what must hold. drill stands up
(or connects to) the clusters, applies the policy, drives the load, injects the faults,
watches what the mesh does and writes a pass/fail report.

Exit codes: 0 every expectation held; 1 an expectation failed; 2 the drill could not
run (bad scenario, provider error, Ctrl-C); 3 inconclusive (not in steady state, an
expectation not judged on this machine) or aborted by a guard.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		// pflag writes its deprecation notices where cobra keeps flag errors,
		// shown only on a usage error; a former flag name still warns.
		PersistentPreRun: func(cmd *cobra.Command, _ []string) {
			cmd.Flags().Visit(func(f *pflag.Flag) {
				if f.Deprecated != "" {
					fmt.Fprintf(cmd.ErrOrStderr(), "drill: --%s is deprecated: %s\n", f.Name, f.Deprecated)
				}
			})
		},
	}
	root.AddCommand(newValidateCmd(), newSchemaCmd(), newVersionCmd(),
		newRunCmd(), newUpCmd(), newTranslateCmd(), newReportCmd(), newUndoCmd(), newCleanCmd(),
		newHistoryCmd(), newCompareCmd())
	return root
}
