// Command drill proves multi-cluster service-mesh failover works before an outage
// does. It is a thin client of the packages under pkg/.
package main

import (
	"errors"
	"fmt"
	"os"
)

func main() {
	os.Exit(run(os.Args[1:]))
}

// Exit codes, as ARCHITECTURE.md defines them.
const (
	exitPass  = 0 // every expectation held
	exitFail  = 1 // the drill ran and an expectation failed
	exitError = 2 // the drill could not run: bad input, provider error, abort
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
