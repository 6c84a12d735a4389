package main

import "github.com/spf13/cobra"

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
	}
	root.AddCommand(newValidateCmd(), newSchemaCmd(), newVersionCmd(),
		newRunCmd(), newUpCmd(), newTranslateCmd(), newReportCmd(), newUndoCmd(), newCleanCmd(),
		newHistoryCmd(), newCompareCmd())
	return root
}
