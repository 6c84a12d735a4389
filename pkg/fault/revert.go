package fault

import (
	"fmt"
	"strings"
)

// FailedRevert is a fault that could not be reverted.
type FailedRevert struct {
	Step    string
	Fault   string // what the fault did (Describe)
	Restore string // the command that restores it by hand; empty if none
	Err     error
}

// RevertError reports every fault a revert left in place, each with the
// command a human runs to restore it. Its message is meant to be printed as
// is at the end of a drill.
type RevertError struct {
	Failures []FailedRevert
}

func (e *RevertError) Error() string {
	var b strings.Builder
	if len(e.Failures) == 1 {
		b.WriteString("1 fault could not be reverted and is still in place; restore it by hand:")
	} else {
		fmt.Fprintf(&b, "%d faults could not be reverted and are still in place; restore them by hand:", len(e.Failures))
	}
	for _, f := range e.Failures {
		fmt.Fprintf(&b, "\n  step %s: %s: %v", f.Step, f.Fault, f.Err)
		if f.Restore != "" {
			fmt.Fprintf(&b, "\n    %s", f.Restore)
		}
	}
	return b.String()
}

// Unwrap gives the underlying errors to errors.Is and errors.As.
func (e *RevertError) Unwrap() []error {
	errs := make([]error, 0, len(e.Failures))
	for _, f := range e.Failures {
		errs = append(errs, f.Err)
	}
	return errs
}

// Commands lists the restore commands of the failures, one per fault that has
// one.
func (e *RevertError) Commands() []string {
	var out []string
	for _, f := range e.Failures {
		if f.Restore != "" {
			out = append(out, f.Restore)
		}
	}
	return out
}
