package drill

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/meshdrill/drill/pkg/event"
	"github.com/meshdrill/drill/pkg/report"
)

// steadyWait bounds how long the check before the first fault waits for the
// load windows before it to come back: a window is published once every
// request sent in it has an answer, and a mesh whose answers hang that long
// is not steady.
const steadyWait = 3 * time.Second

// notSteady is the cause the timeline and the load are stopped with when the
// mesh is not in its steady state before the first fault.
type notSteady struct{ check event.SteadyCheck }

func (n notSteady) Error() string {
	return fmt.Sprintf("the mesh was not in its steady state before the first fault (%s): no fault was injected", strings.Join(n.check.Broken, ", "))
}

// drillStopped is a cause that ends the timeline early on purpose: steps it
// cuts short are not failed steps.
func drillStopped(err error) (string, bool) {
	switch c := err.(type) {
	case abortedByGuard:
		return c.Error(), true
	case notSteady:
		return c.Error(), true
	}
	return "", false
}

// steadyGate checks the steady state before the first fault, once: every
// fault step waits for the one check, and none is injected when it fails.
func (r *run) steadyGate(ctx context.Context) error {
	if r.s.Spec.SteadyState == nil {
		return nil
	}
	r.steadyOnce.Do(func() { r.steadyErr = r.checkSteady(ctx) })
	return r.steadyErr
}

// checkSteady judges the load windows of the steady state's span that ends
// with the last complete window, records the check, and when it fails stops
// the timeline and the load.
func (r *run) checkSteady(ctx context.Context) error {
	ss := r.s.Spec.SteadyState
	width := r.s.Spec.Load.Window.D()
	loadAt, ok := r.loadStartedAt()
	if !ok || width <= 0 {
		return nil // no load: nothing to judge by (the report says the load never ran)
	}
	now := time.Since(r.bus.Start()) - loadAt
	end := now / width * width
	from := end - ss.Over.D()
	deadline := time.Now().Add(steadyWait)
	var windows []event.Window
	for {
		var complete bool
		windows, complete = r.loadWindows(from, end)
		if complete || time.Now().After(deadline) {
			break
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	c := report.SteadyCheck(ss, windows)
	c.From, c.Until = from, end
	if len(windows) == 0 {
		c.Held, c.Broken, c.Message = false, []string{"answers"}, fmt.Sprintf("no load window of [%s, %s) came back within %s", from, end, steadyWait)
	}
	r.bus.Publish(event.New(event.SteadyStateChecked, r.s.Spec.Load.Target.Cluster, "engine", c))
	if c.Held {
		r.logf("steady state held before the first fault: %s", c.Message)
		return nil
	}
	cause := notSteady{c}
	r.logf("%s: %s", cause.Error(), c.Message)
	r.stopTimeline(cause)
	r.stopLoad(cause)
	return cause
}

// loadStartedAt is the bus time load.started was recorded at.
func (r *run) loadStartedAt() (time.Duration, bool) {
	r.recMu.Lock()
	defer r.recMu.Unlock()
	for _, e := range r.record {
		if e.Type == event.LoadStarted {
			return e.Elapsed, true
		}
	}
	return 0, false
}

// loadWindows are the recorded load windows that lie in [from, until) by
// their middle, and whether the last of them, ending at until, is there.
func (r *run) loadWindows(from, until time.Duration) (ws []event.Window, complete bool) {
	r.recMu.Lock()
	defer r.recMu.Unlock()
	for _, e := range r.record {
		if e.Type != event.LoadWindow {
			continue
		}
		var w event.Window
		if e.Decode(&w) != nil {
			continue
		}
		if mid := w.Start + (w.End-w.Start)/2; mid >= from && mid < until {
			ws = append(ws, w)
			complete = complete || w.End >= until
		}
	}
	return ws, complete
}
