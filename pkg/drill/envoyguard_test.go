package drill

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/meshdrill/drill/pkg/event"
	"github.com/meshdrill/drill/pkg/scenario"
)

// envoyGuardScenario is guard-trips.yaml's setting with a guard on the
// Envoy's own answers from reviews: more than half 5xx over 3 s, at least 10.
func envoyGuardScenario(t *testing.T) *scenario.Scenario {
	t.Helper()
	s, err := scenario.Load("testdata/envoy-guard-trips.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// reviewsSample is one scrape of productpage's Envoy in cluster1: answers
// final answers from reviews through the failover service's aggregate
// cluster, bad of them 5xx, retried 5xx attempts beside, and traffic to
// another service that must not count.
func reviewsSample(elapsed time.Duration, answers, bad, retried int64) event.Event {
	e := event.New(event.StatsSample, "cluster1", "stats/productpage", event.Sample{Workload: "productpage", Interval: time.Second,
		Clusters: map[string]event.ClusterDelta{
			"outbound|9080||reviews-failover.default.global":   {Answers: answers, Upstream5xx: bad, Retried5xx: retried},
			"outbound|9080||details.default.svc.cluster.local": {Answers: 50, Upstream5xx: 50},
		}})
	e.Elapsed = elapsed
	return e
}

// TestEnvoyGuardWindow: the guard sums the samples of its window, counts
// final answers only (retried attempts and other services aside), waits for
// its minimum of answers, and trips on the first sample whose window is over
// its share.
func TestEnvoyGuardWindow(t *testing.T) {
	gs := envoyGuards(envoyGuardScenario(t))
	if len(gs) != 1 || gs[0].name != "reviews-answers-5xx" || gs[0].limit != 0.5 || gs[0].over != 3*time.Second {
		t.Fatalf("guards %+v, want reviews-answers-5xx at 0.5 over 3s", gs)
	}
	g := gs[0]
	steps := []struct {
		at           time.Duration
		answers, bad int64
		retried      int64
		trip         bool
	}{
		{1 * time.Second, 50, 0, 0, false},
		{2 * time.Second, 50, 0, 40, false}, // retried 5xx are not answers
		{3 * time.Second, 4, 4, 0, false},   // 4 of 104: under half
		{4 * time.Second, 50, 30, 0, false}, // window (1 s, 4 s]: 34 of 104
		{5 * time.Second, 50, 50, 0, true},  // window (2 s, 5 s]: 84 of 104
	}
	for _, st := range steps {
		e := reviewsSample(st.at, st.answers, st.bad, st.retried)
		var s event.Sample
		if err := e.Decode(&s); err != nil {
			t.Fatal(err)
		}
		trip, ok := g.observe(st.at, e, s)
		if ok != st.trip {
			t.Fatalf("at %s: tripped %v (%+v), want %v", st.at, ok, trip, st.trip)
		}
		if ok {
			if trip.Answers != 104 || trip.Figure < 0.80 || trip.Figure > 0.81 || trip.At != st.at || trip.Limit != 0.5 {
				t.Errorf("trip %+v, want 84 of 104 answers at %s", trip, st.at)
			}
			if !strings.Contains(trip.Condition, "productpage's Envoy in cluster1 got from reviews") {
				t.Errorf("condition %q does not say whose answers", trip.Condition)
			}
		}
	}
	// Too few answers in the window: no trip, however bad.
	g2 := envoyGuards(envoyGuardScenario(t))[0]
	e := reviewsSample(time.Second, 5, 5, 0)
	var s event.Sample
	_ = e.Decode(&s)
	if _, ok := g2.observe(time.Second, e, s); ok {
		t.Error("tripped on 5 answers, under minRequests (10)")
	}
}

// TestWatchEnvoyGuards: the watch reads samples from the bus only after the
// load started, times them from it, and hands the trip to the guard watch.
func TestWatchEnvoyGuards(t *testing.T) {
	s := envoyGuardScenario(t)
	bus := event.NewBus()
	defer bus.Close()
	r := &run{s: s, bus: bus}
	gw := newGuardWatch(r)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	wait := r.watchEnvoyGuards(ctx, envoyGuards(s), gw)
	// Bad samples before the load are not judged.
	for range 3 {
		bus.Publish(reviewsSample(0, 50, 50, 0))
	}
	bus.Publish(event.New(event.LoadStarted, "cluster1", "load", event.LoadInfo{}))
	bus.Publish(reviewsSample(0, 50, 0, 0))
	bus.Publish(reviewsSample(0, 50, 50, 0))
	// 50 of 100 is not over half: the first trip, if any, must come with
	// the next sample's answers in it.
	bus.Publish(reviewsSample(0, 50, 50, 0))
	select {
	case trip := <-gw.trips:
		if trip.Guard != "reviews-answers-5xx" || trip.Answers != 150 || trip.Figure < 0.66 || trip.Figure > 0.67 {
			t.Errorf("trip %+v, want 100 of 150 answers 5xx", trip)
		}
	case <-ctx.Done():
		t.Fatal("the guard did not trip")
	}
	wait()
}
