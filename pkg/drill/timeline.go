package drill

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/meshdrill/drill/pkg/event"
	"github.com/meshdrill/drill/pkg/scenario"
)

// Actor carries out the actions of steps. The engine's Actor injects faults through
// pkg/fault and changes policy through pkg/translate; the timeline only decides when.
type Actor interface {
	Fault(ctx context.Context, st *scenario.Step) error
	Revert(ctx context.Context, st *scenario.Step) error
	Wait(ctx context.Context, st *scenario.Step) error
	Apply(ctx context.Context, st *scenario.Step) error
}

// triggerEventTypes maps a scenario trigger event to the bus event that fires it.
var triggerEventTypes = map[string]event.Type{
	scenario.EventFailoverDetected: event.FailoverDetected,
	scenario.EventFailbackDetected: event.FailbackDetected,
	scenario.EventOutlierEjection:  event.OutlierEjection,
	scenario.EventHostEjected:      event.HostEjected,
	scenario.EventPriorityChanged:  event.PriorityChanged,
}

// timeline runs a scenario's steps: each waits for its trigger — a time since load
// start, another step, or an event on the bus — then performs its action. Times are
// the bus's monotonic Elapsed, so they match the recorded events exactly.
type timeline struct {
	steps []scenario.Step
	actor Actor
	bus   *event.Bus
	// sub is taken when the timeline is made, before load starts, so that no
	// trigger can be missed.
	sub *event.Subscription

	mu      sync.Mutex
	changed chan struct{} // closed and replaced whenever state changes
	t0      time.Duration // load start, as bus Elapsed; valid once started
	started bool
	fired   map[string]time.Duration       // step name → Elapsed when it fired
	events  map[event.Type][]time.Duration // trigger events seen, in order
	now     func() time.Duration
}

func newTimeline(steps []scenario.Step, actor Actor, bus *event.Bus) *timeline {
	return &timeline{
		steps:   steps,
		actor:   actor,
		bus:     bus,
		sub:     bus.Subscribe("timeline", event.WithBuffer(4096)),
		changed: make(chan struct{}),
		fired:   map[string]time.Duration{},
		events:  map[event.Type][]time.Duration{},
		now:     func() time.Duration { return time.Since(bus.Start()) },
	}
}

// Run follows the bus until ctx is done, firing steps as their triggers come. It
// returns when every step has run or ctx is done; steps that never fired are
// reported with a step.finished event saying why.
func (t *timeline) Run(ctx context.Context) error {
	sub := t.sub
	defer sub.Unsubscribe()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var follow sync.WaitGroup
	follow.Add(1)
	go func() {
		defer follow.Done()
		t.follow(ctx, sub)
	}()

	var wg sync.WaitGroup
	errs := make([]error, len(t.steps))
	for i := range t.steps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = t.runStep(ctx, &t.steps[i])
		}()
	}
	wg.Wait()
	cancel()
	follow.Wait()
	return errors.Join(errs...)
}

// follow records load start and trigger events from the bus.
func (t *timeline) follow(ctx context.Context, sub *event.Subscription) {
	for {
		e, err := sub.Next(ctx)
		if err != nil {
			return
		}
		t.mu.Lock()
		switch {
		case e.Type == event.LoadStarted && !t.started:
			t.t0, t.started = e.Elapsed, true
		case isTrigger(e):
			t.events[e.Type] = append(t.events[e.Type], e.Elapsed)
		default:
			t.mu.Unlock()
			continue
		}
		t.broadcastLocked()
		t.mu.Unlock()
	}
}

func isTrigger(e event.Event) bool {
	switch e.Type {
	case event.FailoverDetected, event.FailbackDetected, event.HostEjected, event.PriorityChanged:
		return true
	case event.OutlierEjection:
		var ej event.Ejection
		return e.Decode(&ej) == nil && ej.Active > ej.Previous
	}
	return false
}

func (t *timeline) broadcastLocked() {
	close(t.changed)
	t.changed = make(chan struct{})
}

// await blocks until cond (called with t.mu held) reports a firing time, then until
// that time. It returns false when ctx ends first.
func (t *timeline) await(ctx context.Context, cond func() (time.Duration, bool)) (time.Duration, bool) {
	for {
		t.mu.Lock()
		at, ok := cond()
		ch := t.changed
		t.mu.Unlock()
		if ok {
			if d := at - t.now(); d > 0 {
				timer := time.NewTimer(d)
				select {
				case <-ctx.Done():
					timer.Stop()
					return 0, false
				case <-timer.C:
				}
			}
			return at, true
		}
		select {
		case <-ctx.Done():
			return 0, false
		case <-ch:
		}
	}
}

// when returns the condition under which a step fires.
func (t *timeline) when(st *scenario.Step) func() (time.Duration, bool) {
	switch {
	case st.At != nil:
		return func() (time.Duration, bool) { return t.t0 + st.At.D(), t.started }
	case st.After != nil:
		in := *st.After
		return func() (time.Duration, bool) {
			if in.Anchor == scenario.AnchorStart {
				return t.t0 + in.Offset, t.started
			}
			f, ok := t.fired[in.Anchor]
			return f + in.Offset, ok
		}
	case st.When != nil:
		w := *st.When
		typ := triggerEventTypes[w.Event]
		return func() (time.Duration, bool) {
			if !t.started {
				return 0, false
			}
			since := t.t0
			if w.After != "" {
				f, ok := t.fired[w.After]
				if !ok {
					return 0, false
				}
				since = f
			}
			for _, at := range t.events[typ] {
				if at >= since {
					return at + w.Delay.D(), true
				}
			}
			return 0, false
		}
	}
	return func() (time.Duration, bool) { return 0, false }
}

func (t *timeline) runStep(ctx context.Context, st *scenario.Step) error {
	trigger := triggerString(st)
	action := actionString(st)
	if _, ok := t.await(ctx, t.when(st)); !ok {
		why := "not run: its trigger did not fire before load ended"
		if stop, ok := drillStopped(context.Cause(ctx)); ok {
			why = "not run: " + stop
		}
		t.bus.Publish(event.New(event.StepFinished, "", "timeline", event.Step{
			Name: st.Name, Trigger: trigger, Action: action, Error: why,
		}))
		return nil
	}
	t.mu.Lock()
	t.fired[st.Name] = t.now()
	t.broadcastLocked()
	t.mu.Unlock()
	t.bus.Publish(event.New(event.StepStarted, "", "timeline", event.Step{Name: st.Name, Trigger: trigger, Action: action}))

	var err error
	switch {
	case st.Fault != nil:
		err = t.actor.Fault(ctx, st)
	case st.Revert != "":
		err = t.actor.Revert(ctx, st)
	case st.Wait != nil:
		err = t.actor.Wait(ctx, st)
	case st.Apply != nil:
		err = t.actor.Apply(ctx, st)
	}
	done := event.Step{Name: st.Name, Trigger: trigger, Action: action}
	if stop, ok := drillStopped(context.Cause(ctx)); err != nil && ok {
		// A guard or the steady-state check stopped the timeline while this
		// step acted: the revert of every fault undoes whatever it did.
		done.Error = fmt.Sprintf("%s %s (%s)", event.StepCutShort, err, stop)
		t.bus.Publish(event.New(event.StepFinished, "", "timeline", done))
		return nil
	}
	if err != nil {
		done.Error = err.Error()
	}
	t.bus.Publish(event.New(event.StepFinished, "", "timeline", done))
	if err != nil {
		return fmt.Errorf("step %s: %w", st.Name, err)
	}
	return nil
}

func triggerString(st *scenario.Step) string {
	switch {
	case st.At != nil:
		return "at " + st.At.String()
	case st.After != nil:
		return "after " + st.After.String()
	case st.When != nil:
		return "when " + st.When.String()
	}
	return ""
}

func actionString(st *scenario.Step) string {
	switch {
	case st.Fault != nil:
		return "fault"
	case st.Revert != "":
		return "revert"
	case st.Wait != nil:
		return "wait"
	case st.Apply != nil:
		return "apply"
	}
	return ""
}
