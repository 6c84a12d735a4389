package preflight

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"time"
)

// ExitCode is the exit code of a drill that failed its preflight: 2, "the drill
// could not run" (docs/architecture.md, exit codes).
const ExitCode = 2

// Problem is one failed check: what is wrong and what the user can do about it.
type Problem struct {
	// Check names the check, e.g. "docker" or "resources".
	Check string
	// Message says what is wrong, Fix what to do.
	Message string
	Fix     string
}

func (p *Problem) Error() string {
	if p.Fix == "" {
		return p.Check + ": " + p.Message
	}
	return p.Check + ": " + p.Message + "; " + p.Fix
}

// Fail returns a Problem for the running check; Run fills in its name.
func Fail(fix, format string, args ...any) *Problem {
	return &Problem{Message: fmt.Sprintf(format, args...), Fix: fix}
}

// warning is a finding that does not stop the drill but may make it fail
// later; Run logs it.
type warning struct{ Problem }

// Warn returns a finding Run logs as a warning without failing the preflight.
func Warn(fix, format string, args ...any) error {
	return &warning{Problem{Message: fmt.Sprintf(format, args...), Fix: fix}}
}

// Error is what Run returns when a check failed: every problem found, in check
// order. Nothing has been created when a provider returns it.
type Error struct {
	Problems []*Problem
}

func (e *Error) Error() string {
	if len(e.Problems) == 1 {
		return "preflight failed: " + e.Problems[0].Error()
	}
	var b strings.Builder
	fmt.Fprintf(&b, "preflight failed, %d problems:", len(e.Problems))
	for _, p := range e.Problems {
		b.WriteString("\n  - ")
		b.WriteString(p.Error())
	}
	return b.String()
}

// ExitCode is the process exit code the CLI uses for e.
func (e *Error) ExitCode() int { return ExitCode }

// Is makes errors.Is(err, &Error{}) true for any preflight error.
func (e *Error) Is(target error) bool {
	_, ok := target.(*Error)
	return ok
}

// Check is one preflight check.
type Check struct {
	// Name is short and stable, e.g. "docker"; it prefixes the check's messages.
	Name string
	// Run returns a short description of what it found when the check passes
	// (logged, e.g. "Docker 27.3.1, linux/amd64"), and an error when it fails:
	// a *Problem from Fail, or any error, which is reported as the problem.
	Run func(ctx context.Context) (string, error)
	// After names checks this one needs; when one of them failed this check is
	// not run (its failure would only repeat the other's).
	After []string
}

// Option tunes Run.
type Option func(*config)

type config struct {
	log *slog.Logger
}

// WithLogger logs each check's outcome to l (default: discarded).
func WithLogger(l *slog.Logger) Option { return func(c *config) { c.log = l } }

// Run runs the checks in order, logging each outcome, and returns nil when all
// passed or an *Error listing every problem. A cancelled ctx stops it between
// checks with ctx's error.
func Run(ctx context.Context, checks []Check, opts ...Option) error {
	cfg := config{log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	for _, o := range opts {
		o(&cfg)
	}
	var failed []string
	var problems []*Problem
	for _, c := range checks {
		if err := ctx.Err(); err != nil {
			return err
		}
		if blocked := slices.ContainsFunc(c.After, func(n string) bool { return slices.Contains(failed, n) }); blocked {
			failed = append(failed, c.Name)
			cfg.log.Info("preflight: skipped", "check", c.Name, "because", "a check it needs failed")
			continue
		}
		start := time.Now()
		found, err := c.Run(ctx)
		if err == nil {
			cfg.log.Info("preflight: ok", "check", c.Name, "found", found, "took", time.Since(start).Round(time.Millisecond))
			continue
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		var w *warning
		if errors.As(err, &w) {
			cfg.log.Warn("preflight: warning", "check", c.Name, "problem", w.Message, "fix", w.Fix)
			continue
		}
		failed = append(failed, c.Name)
		var p *Problem
		if !errors.As(err, &p) {
			p = &Problem{Message: err.Error()}
		}
		p = &Problem{Check: c.Name, Message: p.Message, Fix: p.Fix}
		cfg.log.Error("preflight: failed", "check", c.Name, "problem", p.Message, "fix", p.Fix)
		problems = append(problems, p)
	}
	if len(problems) > 0 {
		return &Error{Problems: problems}
	}
	return nil
}
