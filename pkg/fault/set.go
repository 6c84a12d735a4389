package fault

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/meshdrill/drill/pkg/event"
)

// DefaultRevertTimeout bounds each revert RevertAll and Revert make, on a
// context of their own: long enough for an API server under load and for
// WaitScaled, short enough that a dead cluster does not hold the end of a
// drill for long.
const DefaultRevertTimeout = 90 * time.Second

// ErrClosed is returned by Set.Apply once RevertAll has started: a fault
// applied after the last revert would outlive the drill.
var ErrClosed = errors.New("the drill is ending: no more faults are applied")

// ErrUnknownStep is wrapped by Set.Revert for a step that applied no fault.
var ErrUnknownStep = errors.New("no fault was applied by this step")

// Set is the record of the faults a drill applied, and the promise to revert
// them. It is safe for concurrent use: Apply, Revert and RevertAll run one at a
// time, so a RevertAll called while a fault is being applied (on Ctrl-C) waits
// for it and then reverts it too.
type Set struct {
	pub     event.Publisher
	guard   *Guard
	log     *slog.Logger
	timeout time.Duration
	journal Journal
	undos   int // undo records written, for their IDs

	op sync.Mutex // held by Apply, Revert and RevertAll for their whole run

	mu      sync.Mutex // guards the fields below; never held during cluster calls
	entries []*entry
	closed  bool
}

type entry struct {
	undo     string // the ID of its undo record, when the Set has a Journal
	step     string
	f        Fault
	keep     bool
	reverted bool
	told     bool // a kept fault has been reported once
}

// SetOption configures a Set.
type SetOption func(*Set)

// WithLogger sets where the Set logs; the default is slog.Default(). Failed
// reverts are logged at error level.
func WithLogger(l *slog.Logger) SetOption { return func(s *Set) { s.log = l } }

// WithRevertTimeout bounds each revert (default DefaultRevertTimeout).
func WithRevertTimeout(d time.Duration) SetOption { return func(s *Set) { s.timeout = d } }

// Journal makes a fault's undo record durable — on disk, where a later
// process finds it — before the fault is applied. The engine's journal puts it
// in the run's event log and syncs the file (event.LogWriter.Sync).
type Journal func(ctx context.Context, u event.Undo) error

// WithJournal makes Apply write each fault's undo record through j before the
// fault changes anything, and refuse the fault when that fails: a fault is
// never in place without a record of how to put it back.
func WithJournal(j Journal) SetOption { return func(s *Set) { s.journal = j } }

// NewSet returns an empty Set that publishes fault events on pub and lets
// guard decide where faults may run.
func NewSet(pub event.Publisher, guard *Guard, opts ...SetOption) *Set {
	s := &Set{pub: pub, guard: guard, log: slog.Default(), timeout: DefaultRevertTimeout}
	for _, o := range opts {
		o(s)
	}
	if s.guard == nil {
		// No guard is the strictest guard: drill's own clusters only.
		s.guard = NewGuard()
	}
	return s
}

// ApplyOption configures one Set.Apply.
type ApplyOption func(*entry)

// Keep leaves the fault in place when the drill ends (the scenario's keep:
// true); an explicit Set.Revert of its step still reverts it.
func Keep(keep bool) ApplyOption { return func(e *entry) { e.keep = keep } }

// Apply checks f's cluster against the Guard — refusing, before anything
// changes, a cluster the user did not allow — then applies f on behalf of the
// named step and publishes event.FaultApplied. From the moment f.Apply is
// called, f is on record: even if it fails or panics part way, Revert and
// RevertAll undo whatever it changed. A failed Apply is published with Error
// set.
func (s *Set) Apply(ctx context.Context, step string, f Fault, opts ...ApplyOption) error {
	s.op.Lock()
	defer s.op.Unlock()

	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if closed {
		return fmt.Errorf("step %s: %s: %w", step, f.Describe(), ErrClosed)
	}
	if err := s.guard.Check(f.Target()); err != nil {
		return fmt.Errorf("step %s: refusing to %s: %w", step, f.Describe(), err)
	}

	e := &entry{step: step, f: f}
	for _, o := range opts {
		o(e)
	}
	if s.journal != nil {
		u, err := undoRecord(ctx, f)
		if err != nil {
			return fmt.Errorf("step %s: %s: %w", step, f.Describe(), err)
		}
		s.undos++
		u.ID = fmt.Sprintf("f%d", s.undos)
		u.Step = step
		if err := s.journal(ctx, u); err != nil {
			return fmt.Errorf("step %s: refusing to %s: the record of how to undo it could not be written: %w", step, f.Describe(), err)
		}
		e.undo = u.ID
	}
	s.mu.Lock()
	s.entries = append(s.entries, e)
	s.mu.Unlock()

	err := f.Apply(ctx)
	rec := s.record(e)
	if err != nil {
		rec.Error = err.Error()
	}
	s.pub.Publish(event.New(event.FaultApplied, rec.Cluster, source(step), rec))
	if err != nil {
		return fmt.Errorf("step %s: %w", step, err)
	}
	s.log.Info("fault applied", "step", step, "fault", f.Describe())
	return nil
}

// Revert reverts the faults the named step applied that are still in place,
// kept or not: this is the scenario's revert step. A revert that fails stays
// on record, so RevertAll tries it again at the end; the error is a
// *RevertError naming the command that restores it by hand.
func (s *Set) Revert(ctx context.Context, step string) error {
	s.op.Lock()
	defer s.op.Unlock()
	var todo []*entry
	found := false
	s.mu.Lock()
	for _, e := range s.entries {
		if e.step == step {
			found = true
			if !e.reverted {
				todo = append(todo, e)
			}
		}
	}
	s.mu.Unlock()
	if !found {
		return fmt.Errorf("revert step %s: %w", step, ErrUnknownStep)
	}
	var rerr RevertError
	for i := len(todo) - 1; i >= 0; i-- {
		if f := s.revert(ctx, todo[i]); f != nil {
			rerr.Failures = append(rerr.Failures, *f)
		}
	}
	if len(rerr.Failures) > 0 {
		return &rerr
	}
	return nil
}

// RevertAll reverts every fault still in place, newest first, except those
// applied with Keep(true), which it reports (a Log event and a warning with
// the restore command) and leaves. From its first call on, Apply refuses new
// faults.
//
// Each revert runs on a fresh context that keeps ctx's values but not its
// cancellation, with a deadline of its own: a drill cancelled by Ctrl-C or by
// a failure still reverts. It is idempotent — a fault reverted once is not
// reverted again, a failed one is retried by the next call — and safe to call
// from several goroutines at once (the deferred call of the engine and the
// signal handler of OnInterrupt). It returns nil or a *RevertError listing
// each fault that could not be reverted with the exact command that restores
// it by hand; each failure is also published (event.FaultRevertFailed) and
// logged at error level.
func (s *Set) RevertAll(ctx context.Context) error {
	s.op.Lock()
	defer s.op.Unlock()
	s.mu.Lock()
	s.closed = true
	entries := append([]*entry(nil), s.entries...)
	s.mu.Unlock()

	var rerr RevertError
	for i := len(entries) - 1; i >= 0; i-- {
		e := entries[i]
		s.mu.Lock()
		reverted, keep, told := e.reverted, e.keep, e.told
		if keep {
			e.told = true
		}
		s.mu.Unlock()
		switch {
		case reverted:
		case keep:
			if !told {
				s.reportKept(e)
			}
		default:
			if f := s.revert(ctx, e); f != nil {
				rerr.Failures = append(rerr.Failures, *f)
			}
		}
	}
	if len(rerr.Failures) > 0 {
		return &rerr
	}
	return nil
}

// revert reverts one fault on its own context and publishes the outcome.
func (s *Set) revert(ctx context.Context, e *entry) *FailedRevert {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.timeout)
	defer cancel()
	err := safeRevert(rctx, e.f)
	rec := s.record(e)
	if err == nil {
		s.mu.Lock()
		e.reverted = true
		s.mu.Unlock()
		s.pub.Publish(event.New(event.FaultReverted, rec.Cluster, source(e.step), rec))
		s.log.Info("fault reverted", "step", e.step, "fault", e.f.Describe())
		return nil
	}
	rec.Error = err.Error()
	s.pub.Publish(event.New(event.FaultRevertFailed, rec.Cluster, source(e.step), rec))
	s.log.Error("FAULT NOT REVERTED: restore it by hand", "step", e.step, "fault", e.f.Describe(),
		"error", err, "restore", rec.Restore)
	return &FailedRevert{Step: e.step, Fault: e.f.Describe(), Restore: rec.Restore, Err: err}
}

// safeRevert turns a panic in a fault's Revert into an error, so that one
// broken fault does not stop the others from being reverted.
func safeRevert(ctx context.Context, f Fault) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("revert panicked: %v", r)
		}
	}()
	return f.Revert(ctx)
}

func (s *Set) reportKept(e *entry) {
	rec := s.record(e)
	msg := fmt.Sprintf("fault of step %s kept in place as the scenario asks (keep: true): %s", e.step, e.f.Describe())
	if rec.Restore != "" {
		msg += "; restore it by hand with: " + rec.Restore
	}
	s.pub.Publish(event.New(event.Log, rec.Cluster, source(e.step), event.LogLine{Level: "warn", Message: msg}))
	s.log.Warn("fault kept", "step", e.step, "fault", e.f.Describe(), "restore", rec.Restore)
}

func (s *Set) record(e *entry) event.Fault {
	rec := e.f.Record()
	rec.Step = e.step
	rec.Undo = e.undo
	rec.Restore = e.f.RestoreCommand()
	return rec
}

// Pending lists the faults still in place, oldest first, kept ones included.
// It does not wait for an Apply or revert in progress, so a signal handler can
// print it while one hangs.
func (s *Set) Pending() []Pending {
	s.mu.Lock()
	entries := append([]*entry(nil), s.entries...)
	var out []Pending
	for _, e := range entries {
		if !e.reverted {
			out = append(out, Pending{Step: e.step, Fault: e.f.Describe(), Restore: e.f.RestoreCommand(), Keep: e.keep})
		}
	}
	s.mu.Unlock()
	return out
}

// Pending is a fault still in place.
type Pending struct {
	Step    string
	Fault   string // Describe
	Restore string // RestoreCommand
	Keep    bool
}

func source(step string) string { return "fault/" + step }
