package drill

import (
	"context"
	"fmt"
	"time"

	"github.com/meshdrill/drill/internal/failover"
	"github.com/meshdrill/drill/internal/stats"
	"github.com/meshdrill/drill/pkg/event"
	"github.com/meshdrill/drill/pkg/scenario"
)

// envoyGuard is a guard on an observed Envoy's answers from a service
// (spec.abort.when[].upstream5xx). The load's guards judge each answer as it
// arrives; this one judges the Envoy's own counters, which change only at a
// scrape: at every stats sample of the Envoy it sums the final answers and
// the 5xx among them over the samples of the last `over`, and trips when
// their share is above the guard's. So it trips at most one scrape interval
// after its condition became true.
type envoyGuard struct {
	name      string
	condition string
	from      string // the observed workload
	cluster   string // its cluster
	over      time.Duration
	limit     float64
	min       int64
	match     func(host string) bool
	ticks     []envoyTick
}

// envoyTick is what one sample added: its moment since load start, the final
// answers from the service and the 5xx among them.
type envoyTick struct {
	at           time.Duration
	answers, bad int64
}

// envoyGuards are the scenario's guards on Envoy stats.
func envoyGuards(s *scenario.Scenario) []*envoyGuard {
	a := s.Spec.Abort
	if a == nil {
		return nil
	}
	var out []*envoyGuard
	for _, g := range a.When {
		u := g.Upstream5xx
		if u == nil {
			continue
		}
		out = append(out, &envoyGuard{
			name:      g.Name,
			condition: fmt.Sprintf("5xx over %s of the answers %s's Envoy in %s got from %s", share(*u.Ratio), u.From, u.Cluster, u.To),
			from:      u.From,
			cluster:   u.Cluster,
			over:      g.Over.D(),
			limit:     *u.Ratio,
			min:       int64(*g.MinRequests),
			match:     failover.HostMatcher(s, u.To),
		})
	}
	return out
}

// observe takes one stats sample of the guard's Envoy, taken at since load
// start, and returns the trip when the window's share of 5xx is over the
// limit.
func (g *envoyGuard) observe(at time.Duration, e event.Event, s event.Sample) (event.GuardTrip, bool) {
	var t envoyTick
	t.at = at
	for name, cd := range s.Clusters {
		ec, ok := stats.ParseClusterName(name, e.Cluster)
		if !ok || ec.Direction != "outbound" || !g.match(ec.Host) {
			continue
		}
		t.answers += cd.Answers
		t.bad += cd.Upstream5xx
	}
	g.ticks = append(g.ticks, t)
	// The window holds the samples taken in (at-over, at]: each sample's
	// counts are the scrape interval before it.
	i := 0
	for i < len(g.ticks) && g.ticks[i].at <= at-g.over {
		i++
	}
	g.ticks = g.ticks[i:]
	var answers, bad int64
	for _, t := range g.ticks {
		answers += t.answers
		bad += t.bad
	}
	if answers == 0 || answers < g.min {
		return event.GuardTrip{}, false
	}
	figure := float64(bad) / float64(answers)
	if figure <= g.limit {
		return event.GuardTrip{}, false
	}
	return event.GuardTrip{Guard: g.name, Condition: g.condition, Figure: figure, Limit: g.limit,
		Answers: answers, Over: g.over, At: at}, true
}

// watchEnvoyGuards judges gs on the bus's stats samples from load start until
// ctx ends or one trips, which it hands to gw. It subscribes before it
// returns; wait waits for its goroutine.
func (r *run) watchEnvoyGuards(ctx context.Context, gs []*envoyGuard, gw *guardWatch) (wait func()) {
	if len(gs) == 0 || gw == nil {
		return func() {}
	}
	sub := r.bus.Subscribe("envoy-guards", event.WithBuffer(1<<12))
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer sub.Unsubscribe()
		var zero time.Duration
		started := false
		for {
			e, err := sub.Next(ctx)
			if err != nil {
				return
			}
			switch e.Type {
			case event.LoadStarted:
				zero, started = e.Elapsed, true
				continue
			case event.StatsSample:
			default:
				continue
			}
			if !started {
				continue
			}
			var s event.Sample
			if e.Decode(&s) != nil {
				continue
			}
			for _, g := range gs {
				if e.Cluster != g.cluster || !failover.ObservedBy(e, s, g.from) {
					continue
				}
				if t, tripped := g.observe(e.Elapsed-zero, e, s); tripped {
					gw.onTrip(t)
					return
				}
			}
		}
	}()
	return func() { <-done }
}
