package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/meshdrill/drill/pkg/scenario"
)

func newSchemaCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "schema",
		Short: "Print the JSON Schema of the scenario file, for editors",
		Long: `schema prints the JSON Schema (draft 2020-12) of drill's scenario file. Point your
editor's YAML language server at it for completion and inline errors. drill validate
remains the authority: it also checks references between steps, clusters and policies.`,
		Example: `  drill schema > scenario.schema.json
  # VS Code (redhat.vscode-yaml), in settings.json:
  #   "yaml.schemas": {"./scenario.schema.json": "scenarios/*.yaml"}`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			b, err := scenario.Schema()
			if err != nil {
				return &exitCodeError{code: exitError, err: err}
			}
			_, err = fmt.Fprintln(cmd.OutOrStdout(), string(b))
			return err
		},
	}
}
