package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/meshdrill/drill/pkg/cluster/kind"
)

func newCleanCmd() *cobra.Command {
	var verbose bool
	cmd := &cobra.Command{
		Use:   "clean",
		Short: "Delete every kind cluster drill created and left behind",
		Long: `clean deletes the kind clusters that drill created and did not delete: those kept
with --keep, and those left by a drill that was killed (kill -9, a closed laptop lid
mid-create). drill marks each kind cluster it creates in its state directory, so clean
never touches a kind cluster of your own, whatever its name.`,
		Example: `  drill clean`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			p := kind.New(kind.WithLogger(newLogger(cmd.ErrOrStderr(), verbose)))
			deleted, err := p.Clean(cmd.Context())
			for _, name := range deleted {
				fmt.Fprintln(cmd.OutOrStdout(), "deleted kind cluster", name)
			}
			if err != nil {
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
