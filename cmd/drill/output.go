package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"sigs.k8s.io/yaml"

	"github.com/meshdrill/drill/pkg/scenario"
)

// Output formats of -o/--output, kubectl's flag for how a command prints its
// data. Directories are --out-dir, never -o.
const (
	outputJSON = "json"
	outputYAML = "yaml"
)

// addOutputFlag registers -o/--output on fs with the formats a command offers;
// the empty default is the command's own text.
func addOutputFlag(fs *pflag.FlagSet, p *string, def string, formats ...string) {
	usage := "output format: " + strings.Join(formats, " or ")
	if def == "" {
		usage += " (default: text)"
	}
	fs.StringVarP(p, "output", "o", def, usage)
}

// checkOutput rejects a format cmd does not offer, naming the ones it does
// (exit code 2), and --out-dir when cmd writes into a directory: -o took a
// directory in drill report and drill translate before.
func checkOutput(cmd *cobra.Command, format string, formats ...string) error {
	if format == "" || slices.Contains(formats, format) {
		return nil
	}
	msg := fmt.Sprintf("--output %q: use %s", format, strings.Join(formats, " or "))
	if cmd.Flags().Lookup("out-dir") != nil {
		msg += " (-o is the format; a directory is --out-dir)"
	}
	return &exitCodeError{code: exitError, err: errors.New(msg)}
}

// printData writes v as indented JSON (as report.json is written: <, > and &
// left as they are) or as YAML.
func printData(w io.Writer, format string, v any) error {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return err
	}
	b := buf.Bytes()
	if format == outputYAML {
		var err error
		if b, err = yaml.JSONToYAML(b); err != nil {
			return err
		}
	}
	_, err := w.Write(b)
	return err
}

// addOutDirFlag registers --out-dir for a directory a command writes into, and
// the command's former name of it (old) as a hidden alias that warns.
func addOutDirFlag(fs *pflag.FlagSet, p *string, def, usage, old string) {
	fs.StringVar(p, "out-dir", def, usage)
	if old != "" {
		fs.StringVar(p, old, def, usage)
		_ = fs.MarkDeprecated(old, "use --out-dir")
	}
}

// stdinName names standard input in messages when a FILE argument is "-";
// maxStdin bounds what is read from it, as scenario.Load bounds a file.
const (
	stdinName = "<stdin>"
	maxStdin  = 1 << 20
)

// readScenario loads the scenario FILE names, or reads it from standard input
// when FILE is "-", and returns it with the bytes it was read from.
func readScenario(cmd *cobra.Command, file string) (*scenario.Scenario, []byte, error) {
	if file == "-" {
		raw, err := io.ReadAll(io.LimitReader(cmd.InOrStdin(), maxStdin+1))
		if err != nil {
			return nil, nil, fmt.Errorf("read scenario from standard input: %w", err)
		}
		if len(raw) > maxStdin {
			return nil, nil, fmt.Errorf("%s: more than %d bytes; is it a scenario?", stdinName, maxStdin)
		}
		s, err := scenario.Parse(stdinName, raw)
		return s, raw, err
	}
	s, err := scenario.Load(file)
	if err != nil {
		return nil, nil, err
	}
	raw, err := os.ReadFile(file)
	return s, raw, err
}
