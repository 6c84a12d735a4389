package fault

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/meshdrill/drill/pkg/event"
)

// recorder keeps the order in which fake faults were applied and reverted.
type recorder struct {
	mu  sync.Mutex
	ops []string
}

func (r *recorder) add(op string) {
	r.mu.Lock()
	r.ops = append(r.ops, op)
	r.mu.Unlock()
}

func (r *recorder) list() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.ops...)
}

// fakeFault is a Fault whose outcome the test decides: the subject here is the
// Set's bookkeeping, not a cluster. Faults on clusters are tested against a
// real API server in scale_test.go and deletepods_test.go.
type fakeFault struct {
	name      string
	target    Target
	rec       *recorder
	applyErr  error
	revertErr func(n int) error // by attempt, from 1
	panics    bool
	block     chan struct{} // Apply waits on it or on ctx
	reverts   int
	ctxSeen   []context.Context
}

func (f *fakeFault) Kind() string   { return "fake" }
func (f *fakeFault) Target() Target { return f.target }
func (f *fakeFault) Apply(ctx context.Context) error {
	f.rec.add("apply " + f.name)
	if f.block != nil {
		select {
		case <-f.block:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return f.applyErr
}
func (f *fakeFault) Revert(ctx context.Context) error {
	f.reverts++
	f.ctxSeen = append(f.ctxSeen, ctx)
	f.rec.add("revert " + f.name)
	if f.panics {
		panic("boom")
	}
	if f.revertErr != nil {
		return f.revertErr(f.reverts)
	}
	return nil
}
func (f *fakeFault) Describe() string { return "fake fault " + f.name }
func (f *fakeFault) RestoreCommand() string {
	return "restore " + f.name
}
func (f *fakeFault) Record() event.Fault {
	return event.Fault{Kind: "fake", Cluster: f.target.Name, Workload: f.name}
}

func ownTarget(name string) Target { return Target{Name: name, Context: name, Owned: true} }

// collect subscribes to a new Bus and returns it with a function that closes
// the bus and returns everything published.
func collect(t *testing.T) (*event.Bus, func() []event.Event) {
	t.Helper()
	bus := event.NewBus(event.WithLogger(quietLog()))
	sub := bus.Subscribe("test")
	return bus, func() []event.Event {
		if err := bus.Close(); err != nil {
			t.Errorf("bus: %v", err)
		}
		var out []event.Event
		for e := range sub.Events() {
			out = append(out, e)
		}
		return out
	}
}

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func types(evs []event.Event) []string {
	var out []string
	for _, e := range evs {
		var f event.Fault
		name := string(e.Type)
		if e.Decode(&f) == nil && f.Step != "" {
			name += " " + f.Step
		}
		out = append(out, name)
	}
	return out
}

func TestSetRevertAllOrderKeepAndIdempotence(t *testing.T) {
	bus, events := collect(t)
	rec := &recorder{}
	s := NewSet(bus, NewGuard(), WithLogger(quietLog()))
	ctx := context.Background()
	a := &fakeFault{name: "a", target: ownTarget("c1"), rec: rec}
	b := &fakeFault{name: "b", target: ownTarget("c1"), rec: rec}
	k := &fakeFault{name: "k", target: ownTarget("c2"), rec: rec}
	c := &fakeFault{name: "c", target: ownTarget("c2"), rec: rec}
	for _, x := range []struct {
		step string
		f    *fakeFault
		keep bool
	}{{"s1", a, false}, {"s2", b, false}, {"s3", k, true}, {"s4", c, false}} {
		if err := s.Apply(ctx, x.step, x.f, Keep(x.keep)); err != nil {
			t.Fatalf("apply %s: %v", x.step, err)
		}
	}
	// The scenario reverts s2 itself; RevertAll must not revert it again.
	if err := s.Revert(ctx, "s2"); err != nil {
		t.Fatalf("revert s2: %v", err)
	}
	if err := s.RevertAll(ctx); err != nil {
		t.Fatalf("RevertAll: %v", err)
	}
	if err := s.RevertAll(ctx); err != nil {
		t.Fatalf("second RevertAll: %v", err)
	}
	want := []string{"apply a", "apply b", "apply k", "apply c", "revert b", "revert c", "revert a"}
	if got := rec.list(); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("operations:\n got %v\nwant %v", got, want)
	}
	if p := s.Pending(); len(p) != 1 || p[0].Step != "s3" || !p[0].Keep || p[0].Restore != "restore k" {
		t.Errorf("Pending = %+v, want only the kept s3", p)
	}

	evs := events()
	wantEv := []string{
		"fault.applied s1", "fault.applied s2", "fault.applied s3", "fault.applied s4",
		"fault.reverted s2", "fault.reverted s4", "log", "fault.reverted s1",
	}
	if got := types(evs); strings.Join(got, ",") != strings.Join(wantEv, ",") {
		t.Errorf("events:\n got %v\nwant %v", got, wantEv)
	}
	for _, e := range evs {
		if e.Type == event.Log {
			var l event.LogLine
			if err := e.Decode(&l); err != nil {
				t.Fatal(err)
			}
			if l.Level != "warn" || !strings.Contains(l.Message, "step s3") || !strings.Contains(l.Message, "restore k") {
				t.Errorf("kept fault log = %+v, want a warning naming step s3 and its restore command", l)
			}
			if e.Cluster != "c2" || e.Source != "fault/s3" {
				t.Errorf("kept fault log cluster/source = %s/%s", e.Cluster, e.Source)
			}
		}
		if e.Type == event.FaultApplied {
			var f event.Fault
			if err := e.Decode(&f); err != nil {
				t.Fatal(err)
			}
			if f.Restore == "" || f.Step == "" || e.Source != "fault/"+f.Step {
				t.Errorf("applied event %+v (source %s): want step, source and restore command", f, e.Source)
			}
		}
	}
}

func TestSetApplyRefusedByGuardChangesNothing(t *testing.T) {
	bus, events := collect(t)
	rec := &recorder{}
	s := NewSet(bus, NewGuard("staging"), WithLogger(quietLog()))
	prod := &fakeFault{name: "p", target: Target{Name: "c1", Context: "prod"}, rec: rec}
	err := s.Apply(context.Background(), "down", prod)
	if !errors.Is(err, ErrNotAllowed) {
		t.Fatalf("Apply against prod = %v, want ErrNotAllowed", err)
	}
	for _, want := range []string{"step down", `"prod"`, "--allow-context=prod", "DRILL_ALLOW_CONTEXTS=prod"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	staging := &fakeFault{name: "s", target: Target{Name: "c2", Context: "staging"}, rec: rec}
	if err := s.Apply(context.Background(), "down2", staging); err != nil {
		t.Fatalf("Apply against allowed context: %v", err)
	}
	if got := rec.list(); len(got) != 1 || got[0] != "apply s" {
		t.Errorf("operations = %v, want only the allowed fault applied", got)
	}
	if got := types(events()); len(got) != 1 || got[0] != "fault.applied down2" {
		t.Errorf("events = %v, want one fault.applied for the allowed fault", got)
	}
}

func TestSetRevertFailureIsLoudAndRetried(t *testing.T) {
	bus, events := collect(t)
	rec := &recorder{}
	s := NewSet(bus, nil, WithLogger(quietLog()))
	ctx := context.Background()
	flaky := &fakeFault{name: "flaky", target: ownTarget("c1"), rec: rec,
		revertErr: func(n int) error {
			if n == 1 {
				return errors.New("connection refused")
			}
			return nil
		}}
	broken := &fakeFault{name: "broken", target: ownTarget("c1"), rec: rec, panics: true}
	ok := &fakeFault{name: "ok", target: ownTarget("c1"), rec: rec}
	if err := s.Apply(ctx, "s1", flaky); err != nil {
		t.Fatal(err)
	}
	if err := s.Apply(ctx, "s2", broken); err != nil {
		t.Fatal(err)
	}
	if err := s.Apply(ctx, "s3", ok); err != nil {
		t.Fatal(err)
	}
	err := s.RevertAll(ctx)
	var rerr *RevertError
	if !errors.As(err, &rerr) {
		t.Fatalf("RevertAll = %v, want a *RevertError", err)
	}
	if len(rerr.Failures) != 2 {
		t.Fatalf("failures = %+v, want 2", rerr.Failures)
	}
	msg := err.Error()
	for _, want := range []string{"2 faults could not be reverted", "step s1", "connection refused", "restore flaky", "step s2", "panicked: boom", "restore broken"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error message lacks %q:\n%s", want, msg)
		}
	}
	if got := rerr.Commands(); strings.Join(got, ";") != "restore broken;restore flaky" {
		t.Errorf("Commands = %v", got)
	}
	// The next call retries the failures only.
	err = s.RevertAll(ctx)
	if !errors.As(err, &rerr) || len(rerr.Failures) != 1 || rerr.Failures[0].Step != "s2" {
		t.Fatalf("second RevertAll = %v, want only s2 failing", err)
	}
	if flaky.reverts != 2 || ok.reverts != 1 || broken.reverts != 2 {
		t.Errorf("reverts: flaky %d ok %d broken %d, want 2 1 2", flaky.reverts, ok.reverts, broken.reverts)
	}
	got := types(events())
	want := []string{"fault.applied s1", "fault.applied s2", "fault.applied s3",
		"fault.reverted s3", "fault.revert-failed s2", "fault.revert-failed s1",
		"fault.revert-failed s2", "fault.reverted s1"}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("events:\n got %v\nwant %v", got, want)
	}
}

func TestSetRevertAllOnCancelledContext(t *testing.T) {
	bus, _ := collect(t)
	rec := &recorder{}
	s := NewSet(bus, nil, WithLogger(quietLog()), WithRevertTimeout(5*time.Second))
	ctx, cancel := context.WithCancel(context.WithValue(context.Background(), ctxKey{}, "v"))
	f := &fakeFault{name: "a", target: ownTarget("c1"), rec: rec}
	if err := s.Apply(ctx, "s1", f); err != nil {
		t.Fatal(err)
	}
	cancel()
	if err := s.RevertAll(ctx); err != nil {
		t.Fatalf("RevertAll: %v", err)
	}
	if len(f.ctxSeen) != 1 {
		t.Fatalf("reverted %d times, want 1", len(f.ctxSeen))
	}
	rctx := f.ctxSeen[0]
	if rctx.Err() == nil {
		// The revert's own context is released once the revert returns.
		t.Error("revert context still live after RevertAll returned")
	}
	if _, ok := rctx.Deadline(); !ok {
		t.Error("revert context has no deadline")
	}
	if rctx.Value(ctxKey{}) != "v" {
		t.Error("revert context lost the run context's values")
	}
}

type ctxKey struct{}

func TestSetApplyAfterRevertAllIsRefused(t *testing.T) {
	bus, _ := collect(t)
	rec := &recorder{}
	s := NewSet(bus, nil, WithLogger(quietLog()))
	if err := s.RevertAll(context.Background()); err != nil {
		t.Fatal(err)
	}
	err := s.Apply(context.Background(), "late", &fakeFault{name: "late", target: ownTarget("c1"), rec: rec})
	if !errors.Is(err, ErrClosed) {
		t.Fatalf("Apply after RevertAll = %v, want ErrClosed", err)
	}
	if len(rec.list()) != 0 {
		t.Errorf("operations = %v, want none", rec.list())
	}
}

// A RevertAll that starts while a fault is being applied (Ctrl-C during a
// slow Apply) waits for it and reverts it too.
func TestSetRevertAllWaitsForApplyInFlight(t *testing.T) {
	bus, _ := collect(t)
	rec := &recorder{}
	s := NewSet(bus, nil, WithLogger(quietLog()))
	ctx, cancel := context.WithCancel(context.Background())
	f := &fakeFault{name: "slow", target: ownTarget("c1"), rec: rec, block: make(chan struct{})}
	applied := make(chan error, 1)
	go func() { applied <- s.Apply(ctx, "s1", f) }()
	waitFor(t, func() bool { return len(rec.list()) == 1 })

	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = s.RevertAll(ctx)
		}()
	}
	cancel() // the run is interrupted: Apply gives up
	if err := <-applied; !errors.Is(err, context.Canceled) {
		t.Errorf("Apply = %v, want context.Canceled", err)
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("RevertAll %d: %v", i, err)
		}
	}
	if got := rec.list(); strings.Join(got, ",") != "apply slow,revert slow" {
		t.Errorf("operations = %v, want the fault applied then reverted once", got)
	}
}

func TestSetRevertUnknownStep(t *testing.T) {
	bus, _ := collect(t)
	s := NewSet(bus, nil, WithLogger(quietLog()))
	if err := s.Revert(context.Background(), "nope"); !errors.Is(err, ErrUnknownStep) {
		t.Fatalf("Revert(nope) = %v, want ErrUnknownStep", err)
	}
}

func TestSetFailedApplyIsRecordedAndReverted(t *testing.T) {
	bus, events := collect(t)
	rec := &recorder{}
	s := NewSet(bus, nil, WithLogger(quietLog()))
	f := &fakeFault{name: "half", target: ownTarget("c1"), rec: rec, applyErr: fmt.Errorf("second deployment: forbidden")}
	if err := s.Apply(context.Background(), "s1", f); err == nil || !strings.Contains(err.Error(), "forbidden") {
		t.Fatalf("Apply = %v, want the fault's error", err)
	}
	if err := s.RevertAll(context.Background()); err != nil {
		t.Fatal(err)
	}
	if f.reverts != 1 {
		t.Errorf("a partly applied fault was reverted %d times, want 1", f.reverts)
	}
	evs := events()
	var got event.Fault
	if err := evs[0].Decode(&got); err != nil {
		t.Fatal(err)
	}
	if evs[0].Type != event.FaultApplied || !strings.Contains(got.Error, "forbidden") {
		t.Errorf("first event %s %+v, want fault.applied carrying the error", evs[0].Type, got)
	}
}

// waitFor polls cond until it holds or 10 s pass.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
