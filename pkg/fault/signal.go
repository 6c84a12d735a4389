package fault

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sync"
	"syscall"
)

// ErrInterrupted is the cause of a run context cancelled by OnInterrupt.
var ErrInterrupted = errors.New("drill interrupted")

// ExitInterrupted is the exit code after a second signal: 128 + SIGINT, as a
// shell reports a process killed by Ctrl-C.
const ExitInterrupted = 130

// Interrupt is the signal handling OnInterrupt set up.
type Interrupt struct {
	set     *Set
	out     io.Writer
	exit    func(int)
	sigs    chan os.Signal
	stop    chan struct{}
	done    chan struct{}
	once    sync.Once
	cancel  context.CancelCauseFunc
	mu      sync.Mutex
	sig     os.Signal
	err     error
	signals []os.Signal
}

// InterruptOption configures OnInterrupt.
type InterruptOption func(*Interrupt)

// WithSignals replaces the signals handled (default SIGINT and SIGTERM).
func WithSignals(sigs ...os.Signal) InterruptOption {
	return func(i *Interrupt) { i.signals = sigs }
}

// WithOutput sets where the handler tells the user what it does (default
// os.Stderr): the terminal, not the log, since the user is at it.
func WithOutput(w io.Writer) InterruptOption { return func(i *Interrupt) { i.out = w } }

// WithExit replaces os.Exit, called on a second signal.
func WithExit(exit func(code int)) InterruptOption { return func(i *Interrupt) { i.exit = exit } }

// OnInterrupt handles SIGINT and SIGTERM for a drill: the first signal cancels
// the returned context (with cause ErrInterrupted) and reverts every fault of
// set (Set.RevertAll) at once, without waiting for the engine to unwind; the
// engine's own deferred RevertAll then finds nothing left to do, or waits for
// this one. A second signal — the user who will not wait — prints the restore
// command of every fault still in place and exits with ExitInterrupted.
//
// Call Stop when the drill is over: it stops handling signals and waits for a
// revert the handler started.
func OnInterrupt(ctx context.Context, set *Set, opts ...InterruptOption) (context.Context, *Interrupt) {
	i := &Interrupt{
		set:     set,
		out:     os.Stderr,
		exit:    os.Exit,
		stop:    make(chan struct{}),
		done:    make(chan struct{}),
		signals: []os.Signal{os.Interrupt, syscall.SIGTERM},
	}
	for _, o := range opts {
		o(i)
	}
	ctx, i.cancel = context.WithCancelCause(ctx)
	// Room for both signals, so that a second one is not lost while the first
	// is being handled.
	i.sigs = make(chan os.Signal, 2)
	signal.Notify(i.sigs, i.signals...)
	go i.run(ctx)
	return ctx, i
}

func (i *Interrupt) run(ctx context.Context) {
	defer close(i.done)
	var sig os.Signal
	select {
	case sig = <-i.sigs:
	case <-i.stop:
		return
	}
	i.mu.Lock()
	i.sig = sig
	i.mu.Unlock()
	fmt.Fprintf(i.out, "\ndrill: %v: stopping the drill and reverting its faults (press Ctrl-C again to exit at once)\n", sig)
	i.cancel(fmt.Errorf("%w by %v", ErrInterrupted, sig))

	reverted := make(chan error, 1)
	go func() { reverted <- i.set.RevertAll(ctx) }()
	select {
	case err := <-reverted:
		i.mu.Lock()
		i.err = err
		i.mu.Unlock()
		if err != nil {
			fmt.Fprintf(i.out, "drill: %v\n", err)
		} else {
			fmt.Fprintln(i.out, "drill: faults reverted")
		}
	case sig := <-i.sigs:
		i.forceExit(sig)
		<-reverted // only reached when exit returned, i.e. in tests
		return
	}
	// The revert is done, but the engine may still be unwinding: a user who
	// presses Ctrl-C again must still be able to leave.
	select {
	case sig := <-i.sigs:
		i.forceExit(sig)
	case <-i.stop:
	}
}

func (i *Interrupt) forceExit(sig os.Signal) {
	fmt.Fprintf(i.out, "drill: %v again: exiting now\n", sig)
	if p := i.set.Pending(); len(p) > 0 {
		fmt.Fprintf(i.out, "drill: %d faults may still be in place; restore them by hand:\n", len(p))
		for _, f := range p {
			if f.Restore != "" {
				fmt.Fprintf(i.out, "  step %s: %s\n    %s\n", f.Step, f.Fault, f.Restore)
			} else {
				fmt.Fprintf(i.out, "  step %s: %s (nothing to restore)\n", f.Step, f.Fault)
			}
		}
	}
	i.exit(ExitInterrupted)
}

// Stop stops handling signals and waits for a revert the handler started. It
// returns that revert's error (a *RevertError), if any. Safe to call more than
// once.
func (i *Interrupt) Stop() error {
	i.once.Do(func() {
		signal.Stop(i.sigs)
		close(i.stop)
	})
	<-i.done
	i.cancel(context.Canceled)
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.err
}

// Signal is the signal that interrupted the drill, or nil.
func (i *Interrupt) Signal() os.Signal {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.sig
}
