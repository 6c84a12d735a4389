package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/meshdrill/drill/pkg/scenario"
)

// validation is one file's result in drill validate -o json|yaml.
type validation struct {
	File         string          `json:"file"`
	Valid        bool            `json:"valid"`
	Name         string          `json:"name,omitempty"`
	Clusters     int             `json:"clusters,omitempty"`
	Steps        int             `json:"steps,omitempty"`
	Expectations int             `json:"expectations,omitempty"`
	Errors       []validationErr `json:"errors,omitempty"`
}

// validationErr is one located problem.
type validationErr struct {
	Line    int    `json:"line,omitempty"`
	Column  int    `json:"column,omitempty"`
	Field   string `json:"field,omitempty"`
	Message string `json:"message"`
}

func newValidateCmd() *cobra.Command {
	var quiet bool
	var output string
	cmd := &cobra.Command{
		Use:   "validate FILE...",
		Short: "Check scenario files without running them",
		Long: `validate parses each scenario file strictly, fills in defaults and checks every
reference (clusters, steps, failover services). Every problem of a file is reported at
once as FILE:LINE:COLUMN: FIELD: message. Exit code 2 when any file is invalid.
A FILE of - reads the scenario from standard input (named <stdin> in messages).

With -o json or -o yaml it prints one result per file instead (file, valid, the
scenario's name and sizes, or its errors with line, column and field), still
exiting 2 when any file is invalid.`,
		Example: `  drill validate scenarios/reviews-failover.yaml
  drill validate scenarios/*.yaml
  drill validate -o json scenarios/*.yaml | jq -r '.[] | select(.valid | not) | .file'
  kubectl get configmap drill-scenario -o jsonpath='{.data.scenario\.yaml}' | drill validate -`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, files []string) error {
			if err := checkOutput(cmd, output, outputJSON, outputYAML); err != nil {
				return err
			}
			bad := 0
			var results []validation
			for _, f := range files {
				s, _, err := readScenario(cmd, f)
				if f == "-" {
					f = stdinName
				}
				r := validation{File: f, Valid: err == nil}
				if err != nil {
					bad++
					var list scenario.ErrorList
					if errors.As(err, &list) {
						for _, e := range list {
							r.Errors = append(r.Errors, validationErr{Line: e.Line, Column: e.Column, Field: e.Field, Message: e.Msg})
							if output == "" {
								fmt.Fprintln(cmd.ErrOrStderr(), e)
							}
						}
					} else {
						r.Errors = append(r.Errors, validationErr{Message: err.Error()})
						if output == "" {
							fmt.Fprintln(cmd.ErrOrStderr(), err)
						}
					}
				} else {
					r.Name, r.Clusters, r.Steps, r.Expectations = s.Metadata.Name, len(s.Spec.Clusters), len(s.Spec.Steps), len(s.Spec.Expect)
					if output == "" && !quiet {
						fmt.Fprintf(cmd.OutOrStdout(), "%s: ok (%s: %d clusters, %d steps, %d expectations)\n",
							f, r.Name, r.Clusters, r.Steps, r.Expectations)
					}
				}
				results = append(results, r)
			}
			if output != "" {
				if err := printData(cmd.OutOrStdout(), output, results); err != nil {
					return &exitCodeError{code: exitError, err: err}
				}
			}
			if bad > 0 {
				return &exitCodeError{code: exitError, err: fmt.Errorf("%d of %d scenario files are invalid", bad, len(files))}
			}
			return nil
		},
	}
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "print nothing for valid files")
	addOutputFlag(cmd.Flags(), &output, "", outputJSON, outputYAML)
	return cmd
}
