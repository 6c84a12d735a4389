package load

import (
	"fmt"
	"time"

	"github.com/meshdrill/drill/pkg/event"
)

// GuardKind is what a guard counts against the answers of its window.
type GuardKind int

const (
	// GuardErrors counts transport errors and answers outside 2xx/3xx.
	GuardErrors GuardKind = iota
	// GuardDegraded counts degraded answers (WithDegraded).
	GuardDegraded
	// GuardFailed counts both.
	GuardFailed
	// GuardLatency counts answers slower than Bound: a latency percentile p is
	// over Bound exactly when more than 1 - p of the answers are.
	GuardLatency
)

// Guard is a condition on the load's answers over a sliding window of their
// arrival times: it trips when, with at least MinRequests answers in the
// window, more than Ratio of them are what Kind counts.
type Guard struct {
	Name        string
	Kind        GuardKind
	Over        time.Duration
	MinRequests int64
	// Ratio is the share (0-1) above which the guard trips; for GuardLatency,
	// 1 - the percentile (p99: 0.01).
	Ratio float64
	// Bound is GuardLatency's latency bound.
	Bound time.Duration
	// Condition is the guard's condition in words, for the trip event.
	Condition string
}

// guardBucket is the width of a guard window's buckets: answers leave the
// window a bucket at a time, so the window is Over long to within this.
const guardBucket = 100 * time.Millisecond

// guardState follows one guard over the answers: a ring of buckets of
// arrival time, and their running sums.
type guardState struct {
	g       Guard
	buckets []guardCount
	head    int64 // index (arrival / guardBucket) of the newest bucket; -1 before any
	sum     guardCount
}

type guardCount struct{ n, bad int64 }

// guards evaluates a set of guards on every answer, from the collector's one
// goroutine. The first guard to trip is reported once, and then no guard is
// evaluated again.
type guards struct {
	states  []*guardState
	onTrip  func(event.GuardTrip)
	tripped bool
}

func newGuards(gs []Guard, onTrip func(event.GuardTrip)) *guards {
	if len(gs) == 0 || onTrip == nil {
		return nil
	}
	out := &guards{onTrip: onTrip}
	for _, g := range gs {
		n := max(int((g.Over+guardBucket-1)/guardBucket), 1)
		out.states = append(out.states, &guardState{g: g, buckets: make([]guardCount, n), head: -1})
	}
	return out
}

// observe counts one answer, arrived at (since load start), in every guard,
// and reports the first that trips.
func (gs *guards) observe(s *sample) {
	if gs == nil || gs.tripped {
		return
	}
	at := s.seenAt()
	failed := s.code < 200 || s.code >= 400
	for _, st := range gs.states {
		var bad bool
		switch st.g.Kind {
		case GuardErrors:
			bad = failed
		case GuardDegraded:
			bad = s.degraded
		case GuardFailed:
			bad = failed || s.degraded
		case GuardLatency:
			bad = s.latency > st.g.Bound
		}
		if st.add(at, bad) {
			gs.tripped = true
			gs.onTrip(event.GuardTrip{Guard: st.g.Name, Condition: st.g.Condition, Figure: float64(st.sum.bad) / float64(st.sum.n),
				Limit: st.g.Ratio, Answers: st.sum.n, Over: st.g.Over, At: at})
			return
		}
	}
}

// add counts an answer arrived at and says whether the guard trips.
func (st *guardState) add(at time.Duration, bad bool) bool {
	idx := int64(at / guardBucket)
	n := int64(len(st.buckets))
	switch {
	case st.head < 0:
		st.head = idx
	case idx > st.head:
		// Buckets that fell out of the window leave the sums.
		for i := st.head + 1; i <= idx && i <= st.head+n; i++ {
			b := &st.buckets[i%n]
			st.sum.n -= b.n
			st.sum.bad -= b.bad
			*b = guardCount{}
		}
		st.head = idx
	case idx <= st.head-n:
		// Arrived out of order, older than the window: it is gone already.
		return false
	}
	b := &st.buckets[idx%n]
	b.n++
	st.sum.n++
	if bad {
		b.bad++
		st.sum.bad++
	}
	return st.sum.n >= st.g.MinRequests && float64(st.sum.bad) > st.g.Ratio*float64(st.sum.n)
}

// String is the guard in words.
func (g Guard) String() string {
	return fmt.Sprintf("%s: %s over %s", g.Name, g.Condition, g.Over)
}

func (g Guard) validate() error {
	switch {
	case g.Over < guardBucket:
		return fmt.Errorf("load guard %s: window %s: must be at least %s", g.Name, g.Over, guardBucket)
	case g.Ratio < 0 || g.Ratio >= 1:
		return fmt.Errorf("load guard %s: ratio %g: must be at least 0 and below 1", g.Name, g.Ratio)
	case g.MinRequests < 0:
		return fmt.Errorf("load guard %s: minimum requests %d: must not be negative", g.Name, g.MinRequests)
	case g.Kind == GuardLatency && g.Bound <= 0:
		return fmt.Errorf("load guard %s: latency bound %s: must be above zero", g.Name, g.Bound)
	case g.Kind < GuardErrors || g.Kind > GuardLatency:
		return fmt.Errorf("load guard %s: unknown kind %d", g.Name, g.Kind)
	}
	return nil
}
