package drill

import (
	"context"
	"fmt"
	"time"

	"github.com/meshdrill/drill/pkg/event"
	"github.com/meshdrill/drill/pkg/fault"
	"github.com/meshdrill/drill/pkg/load"
	"github.com/meshdrill/drill/pkg/scenario"
)

// abortedByGuard is the cause the timeline and the load are stopped with when
// a guard trips.
type abortedByGuard struct{ trip event.GuardTrip }

func (a abortedByGuard) Error() string {
	return fmt.Sprintf("the drill was aborted by guard %s", a.trip.Guard)
}

// loadGuards are the scenario's guards as the load judges them.
func loadGuards(s *scenario.Scenario) []load.Guard {
	a := s.Spec.Abort
	if a == nil {
		return nil
	}
	out := make([]load.Guard, 0, len(a.When))
	for _, g := range a.When {
		if g.Upstream5xx != nil {
			continue // judged on the Envoy's stats: envoyGuards
		}
		lg := load.Guard{Name: g.Name, Over: g.Over.D(), MinRequests: int64(*g.MinRequests)}
		switch {
		case g.ErrorRatio != nil:
			lg.Kind, lg.Ratio = load.GuardErrors, *g.ErrorRatio
			lg.Condition = fmt.Sprintf("errors over %s of the answers", share(*g.ErrorRatio))
		case g.DegradedRatio != nil:
			lg.Kind, lg.Ratio = load.GuardDegraded, *g.DegradedRatio
			lg.Condition = fmt.Sprintf("degraded answers over %s of the answers", share(*g.DegradedRatio))
		case g.FailedRatio != nil:
			lg.Kind, lg.Ratio = load.GuardFailed, *g.FailedRatio
			lg.Condition = fmt.Sprintf("errors and degraded answers over %s of the answers", share(*g.FailedRatio))
		case g.Latency != nil:
			p, bound := g.Latency.Bound()
			lg.Kind, lg.Bound, lg.Ratio = load.GuardLatency, bound, 1-p/100
			lg.Condition = fmt.Sprintf("p%g over %s", p, bound)
		}
		out = append(out, lg)
	}
	return out
}

func share(r float64) string { return fmt.Sprintf("%g %%", r*100) }

// guardWatch is the engine's side of the guards: the load reports a trip on
// its collecting goroutine (onTrip, which must not block); abort, on its own
// goroutine, stops the timeline, reverts every fault through the same path as
// Ctrl-C, and ends the load after the scenario's tail.
type guardWatch struct {
	r     *run
	trips chan event.GuardTrip
	done  chan struct{}
}

func newGuardWatch(r *run) *guardWatch {
	return &guardWatch{r: r, trips: make(chan event.GuardTrip, 1), done: make(chan struct{})}
}

// onTrip records the trip and hands it to abort.
func (g *guardWatch) onTrip(t event.GuardTrip) {
	g.r.bus.Publish(event.New(event.GuardTripped, g.r.s.Spec.Load.Target.Cluster, "guard", t))
	select {
	case g.trips <- t:
	default:
	}
}

// abort waits for a trip until stop is closed. On one, it stops the timeline
// with the trip as the cause, reverts every fault, and stops the load tail
// after the trip (never later than the load would have ended).
func (g *guardWatch) abort(ctx context.Context, stop <-chan struct{}, stopTimeline, stopLoad context.CancelCauseFunc, loadLeft func() time.Duration) {
	defer close(g.done)
	var t event.GuardTrip
	select {
	case t = <-g.trips:
	case <-stop:
		return
	}
	cause := abortedByGuard{t}
	stopTimeline(cause)
	tail := g.r.s.Spec.Abort.Tail.D()
	g.r.logf("guard %s tripped at %s: %s (%.1f %% of %d answers over %s); reverting every fault, no further step runs, load goes on for %s",
		t.Guard, t.At.Round(time.Millisecond), t.Condition, t.Figure*100, t.Answers, t.Over, min(tail, max(loadLeft(), 0)).Round(time.Second))
	// The tail runs from the trip, the reverts within it.
	timer := time.NewTimer(tail)
	defer timer.Stop()
	revertCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), fault.DefaultRevertTimeout)
	if err := g.r.faults.RevertAll(revertCtx); err != nil {
		g.r.logf("after guard %s tripped, reverting the faults failed: %v", t.Guard, err)
	}
	cancel()
	select {
	case <-timer.C:
		stopLoad(cause)
	case <-stop:
	}
}
