package main

import (
	"encoding/json"

	"github.com/spf13/cobra"

	"github.com/meshdrill/drill/pkg/report"
	"github.com/meshdrill/drill/pkg/scenario"
)

func newSchemaCmd() *cobra.Command {
	var reportSchema bool
	var output string
	cmd := &cobra.Command{
		Use:   "schema",
		Short: "Print the JSON Schema of the scenario file (or of report.json), for editors and validators",
		Long: `schema prints the JSON Schema (draft 2020-12) of drill's scenario file: required
fields, ranges, enums, name patterns, exactly one action per step and one check per
expectation. Point your editor's YAML language server at it for completion and inline
errors, with a modeline as the first line of a scenario:

  # yaml-language-server: $schema=` + scenario.SchemaID + `

drill validate remains the authority: it also checks what JSON Schema cannot, such as
references between steps, clusters and policies (docs/schema.md lists them).

With --report it prints the schema of report.json instead. The same schemas are
published under docs/schema/.`,
		Example: `  drill schema > scenario.schema.json
  drill schema --report > report.schema.json
  # VS Code (redhat.vscode-yaml), in settings.json:
  #   "yaml.schemas": {"./scenario.schema.json": "scenarios/*.yaml"}`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkOutput(cmd, output, outputJSON, outputYAML); err != nil {
				return err
			}
			b, err := scenario.Schema()
			if reportSchema {
				b, err = report.JSONSchema()
			}
			if err != nil {
				return &exitCodeError{code: exitError, err: err}
			}
			if err := printData(cmd.OutOrStdout(), output, json.RawMessage(b)); err != nil {
				return &exitCodeError{code: exitError, err: err}
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&reportSchema, "report", false, "print the JSON Schema of report.json")
	addOutputFlag(cmd.Flags(), &output, outputJSON, outputJSON, outputYAML)
	return cmd
}
