// Command drill proves multi-cluster service-mesh failover works before an outage
// does. It is a thin client of the packages under pkg/.
package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/meshdrill/drill/pkg/report"
)

func main() {
	os.Exit(run(os.Args[1:]))
}

// Exit codes: the verdict's (report.Verdict.ExitCode), and exitError for a
// command that could not run.
const (
	exitPass  = report.ExitPass
	exitError = report.ExitError
)

// exitCodeError carries an exit code through cobra.
type exitCodeError struct {
	code int
	err  error
}

func (e *exitCodeError) Error() string { return e.err.Error() }
func (e *exitCodeError) Unwrap() error { return e.err }

func run(args []string) int {
	cmd := newRootCmd()
	cmd.SetArgs(args)
	err := cmd.Execute()
	if err == nil {
		return exitPass
	}
	var ec *exitCodeError
	if errors.As(err, &ec) {
		if ec.err != nil && ec.err.Error() != "" {
			fmt.Fprintln(os.Stderr, "drill:", ec.err)
		}
		return ec.code
	}
	// Usage errors from cobra (unknown flag, wrong number of arguments).
	fmt.Fprintln(os.Stderr, "drill:", err)
	return exitError
}

// newLogger is the log every command writes to w: warnings and errors, and
// every step with --verbose.
func newLogger(w io.Writer, verbose bool) *slog.Logger {
	level := slog.LevelWarn
	if verbose {
		level = slog.LevelInfo
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level}))
}
