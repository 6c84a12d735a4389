package main

import (
	"errors"
	"fmt"
	"os/exec"

	"github.com/spf13/cobra"

	"github.com/meshdrill/drill/pkg/cluster/kind"
	"github.com/meshdrill/drill/pkg/fault"
)

func newCleanCmd() *cobra.Command {
	var verbose bool
	cmd := &cobra.Command{
		Use:   "clean",
		Short: "Delete every kind cluster and partition rule drill created and left behind",
		Long: `clean deletes the kind clusters that drill created and did not delete: those kept
with --keep, and those left by a drill that was killed (kill -9, a closed laptop lid
mid-create). drill marks each kind cluster it creates in its state directory, so clean
never touches a kind cluster of your own, whatever its name.

It also removes from this host's iptables the rules of a partition fault whose drill was
killed before it could revert them (chains named DRILL-PART-<pid>-…, whose process is
gone); a running drill's are left alone. A kind cluster's own rules go with its nodes.`,
		Example: `  drill clean`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log := newLogger(cmd.ErrOrStderr(), verbose)
			var errs []error
			if _, err := exec.LookPath("iptables"); err == nil {
				gone, err := fault.CleanPartitions(cmd.Context(), fault.HostFilter)
				for _, g := range gone {
					fmt.Fprintf(cmd.OutOrStdout(), "removed partition rules %s from this host's iptables (their drill, process %d, is gone)\n", g.Chain, g.PID)
				}
				switch {
				case errors.Is(err, fault.ErrFilterUnavailable):
					// Without root iptables cannot even be listed, and no
					// drill of this user could have left rules there.
					log.Debug("partition rules not checked", "err", err)
				case err != nil:
					errs = append(errs, err)
				}
			}
			p := kind.New(kind.WithLogger(log))
			deleted, err := p.Clean(cmd.Context())
			for _, name := range deleted {
				fmt.Fprintln(cmd.OutOrStdout(), "deleted kind cluster", name)
			}
			if err != nil {
				errs = append(errs, err)
			}
			if err := errors.Join(errs...); err != nil {
				return &exitCodeError{code: exitError, err: err}
			}
			if len(deleted) == 0 {
				fmt.Fprintln(cmd.OutOrStdout(), "no kind cluster of drill's is left")
			}
			return nil
		},
	}
	cmd.Flags().BoolVarP(&verbose, "verbose", "v", false, "log every step")
	return cmd
}
