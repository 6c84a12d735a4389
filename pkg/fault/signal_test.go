package fault

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// syncBuffer is a bytes.Buffer safe to write from the handler and read from
// the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// These tests signal the test process itself with SIGUSR1, which OnInterrupt
// is told to handle instead of SIGINT, so that a stray signal cannot stop the
// test binary. The child-process test in interrupt_test.go sends a real
// SIGINT.

func TestInterruptCancelsAndReverts(t *testing.T) {
	bus, _ := collect(t)
	rec := &recorder{}
	s := NewSet(bus, nil, WithLogger(quietLog()))
	out := &syncBuffer{}
	ctx, intr := OnInterrupt(context.Background(), s, WithSignals(syscall.SIGUSR1), WithOutput(out),
		WithExit(func(code int) { t.Errorf("exit(%d) on a single signal", code) }))
	if err := s.Apply(ctx, "down", &fakeFault{name: "a", target: ownTarget("c1"), rec: rec}); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(syscall.Getpid(), syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ctx.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("run context not cancelled within 10s of the signal")
	}
	if !errors.Is(context.Cause(ctx), ErrInterrupted) {
		t.Errorf("cause = %v, want ErrInterrupted", context.Cause(ctx))
	}
	// The engine's own deferred RevertAll runs too; it must find nothing left.
	if err := s.RevertAll(ctx); err != nil {
		t.Fatal(err)
	}
	if err := intr.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if got := rec.list(); strings.Join(got, ",") != "apply a,revert a" {
		t.Errorf("operations = %v, want one revert", got)
	}
	if intr.Signal() != syscall.SIGUSR1 {
		t.Errorf("Signal = %v", intr.Signal())
	}
	for _, want := range []string{"reverting its faults", "faults reverted"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}

func TestInterruptSecondSignalExits(t *testing.T) {
	bus, _ := collect(t)
	rec := &recorder{}
	s := NewSet(bus, nil, WithLogger(quietLog()))
	out := &syncBuffer{}
	exited := make(chan int, 1)
	release := make(chan struct{})
	hang := &fakeFault{name: "hang", target: ownTarget("c1"), rec: rec,
		revertErr: func(int) error { <-release; return nil }}
	ctx, intr := OnInterrupt(context.Background(), s, WithSignals(syscall.SIGUSR1), WithOutput(out),
		WithExit(func(code int) { exited <- code }))
	if err := s.Apply(ctx, "down", hang); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(syscall.Getpid(), syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	// The revert hangs; the user presses Ctrl-C again.
	waitFor(t, func() bool { return len(rec.list()) == 2 })
	if err := syscall.Kill(syscall.Getpid(), syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	select {
	case code := <-exited:
		if code != ExitInterrupted {
			t.Errorf("exit code %d, want %d", code, ExitInterrupted)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no exit within 10s of the second signal")
	}
	for _, want := range []string{"again: exiting now", "step down: fake fault hang", "restore hang"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	close(release)
	_ = intr.Stop()
}

func TestInterruptStopWithoutSignal(t *testing.T) {
	bus, _ := collect(t)
	s := NewSet(bus, nil, WithLogger(quietLog()))
	ctx, intr := OnInterrupt(context.Background(), s, WithSignals(syscall.SIGUSR1))
	if err := intr.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := intr.Stop(); err != nil {
		t.Fatal(err)
	}
	if intr.Signal() != nil {
		t.Errorf("Signal = %v, want nil", intr.Signal())
	}
	if ctx.Err() == nil {
		t.Error("context still live after Stop")
	}
}
