package drill

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/meshdrill/drill/pkg/event"
	"github.com/meshdrill/drill/pkg/scenario"
)

type recordingActor struct {
	mu    sync.Mutex
	calls []string
	did   chan string
}

func (a *recordingActor) record(kind string, st *scenario.Step) error {
	a.mu.Lock()
	a.calls = append(a.calls, kind+" "+st.Name)
	a.mu.Unlock()
	a.did <- st.Name
	return nil
}
func (a *recordingActor) Fault(_ context.Context, st *scenario.Step) error {
	return a.record("fault", st)
}
func (a *recordingActor) Revert(_ context.Context, st *scenario.Step) error {
	return a.record("revert", st)
}
func (a *recordingActor) Wait(_ context.Context, st *scenario.Step) error {
	return a.record("wait", st)
}
func (a *recordingActor) Apply(_ context.Context, st *scenario.Step) error {
	return a.record("apply", st)
}

func parseSteps(t *testing.T, steps string) *scenario.Scenario {
	t.Helper()
	in := `apiVersion: drill/v1alpha1
kind: Scenario
metadata: {name: t}
spec:
  clusters: [{name: c1}, {name: c2}]
  load: {rate: 10/s, duration: 60s}
  steps:
` + steps
	s, err := scenario.Parse("t.yaml", []byte(in))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func waitFor(t *testing.T, ch <-chan string, want string) {
	t.Helper()
	select {
	case got := <-ch:
		if got != want {
			t.Fatalf("step %q ran, want %q next", got, want)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("step %q did not run within 10s", want)
	}
}

func TestTimelineTriggers(t *testing.T) {
	s := parseSteps(t, `    - name: down
      at: 100ms
      fault: {scale: {cluster: c1, workload: reviews, replicas: 0}}
    - name: second
      when: failover-detected after down + 50ms
      fault: {scale: {cluster: c2, workload: reviews, replicas: 0}}
    - name: back
      after: second + 100ms
      revert: down
`)
	bus := event.NewBus()
	defer bus.Close()
	rec := bus.Subscribe("test", event.WithBuffer(1024))
	actor := &recordingActor{did: make(chan string, 10)}
	tl := newTimeline(s.Spec.Steps, actor, bus)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- tl.Run(ctx) }()

	// A failover before the fault must not fire "second".
	bus.Publish(event.New(event.LoadStarted, "", "load", event.LoadInfo{}))
	bus.Publish(event.New(event.FailoverDetected, "", "test", event.Failover{Service: "early"}))
	waitFor(t, actor.did, "down")
	select {
	case got := <-actor.did:
		t.Fatalf("%s ran before any failover after down", got)
	case <-time.After(200 * time.Millisecond):
	}
	bus.Publish(event.New(event.FailoverDetected, "", "test", event.Failover{Service: "reviews"}))
	waitFor(t, actor.did, "second")
	waitFor(t, actor.did, "back")
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	bus.Close()

	// Check the recorded times against the triggers.
	var load, failover time.Duration
	started := map[string]time.Duration{}
	for e := range rec.Events() {
		switch e.Type {
		case event.LoadStarted:
			load = e.Elapsed
		case event.FailoverDetected:
			var f event.Failover
			_ = e.Decode(&f)
			if f.Service == "reviews" {
				failover = e.Elapsed
			}
		case event.StepStarted:
			var st event.Step
			_ = e.Decode(&st)
			started[st.Name] = e.Elapsed
		}
	}
	if d := started["down"] - load; d < 100*time.Millisecond {
		t.Errorf("down fired %v after load start, want ≥ 100ms", d)
	}
	if d := started["second"] - failover; d < 50*time.Millisecond {
		t.Errorf("second fired %v after the failover, want ≥ 50ms", d)
	}
	if d := started["back"] - started["second"]; d < 100*time.Millisecond {
		t.Errorf("back fired %v after second, want ≥ 100ms", d)
	}
	if got := strings.Join(actor.calls, ","); got != "fault down,fault second,revert back" {
		t.Errorf("calls = %s", got)
	}
}

func TestTimelineReportsStepsThatNeverFired(t *testing.T) {
	s := parseSteps(t, `    - name: down
      at: 10ms
      fault: {scale: {cluster: c1, workload: reviews, replicas: 0}}
    - name: never
      when: failback-detected after down
      revert: down
`)
	bus := event.NewBus()
	defer bus.Close()
	rec := bus.Subscribe("test", event.WithBuffer(1024))
	actor := &recordingActor{did: make(chan string, 10)}
	tl := newTimeline(s.Spec.Steps, actor, bus)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- tl.Run(ctx) }()
	bus.Publish(event.New(event.LoadStarted, "", "load", event.LoadInfo{}))
	waitFor(t, actor.did, "down")
	cancel() // load ended
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("timeline did not stop when its context ended")
	}
	bus.Close()
	var notRun []string
	for e := range rec.Events() {
		if e.Type == event.StepFinished {
			var st event.Step
			_ = e.Decode(&st)
			if strings.HasPrefix(st.Error, "not run") {
				notRun = append(notRun, st.Name)
			}
		}
	}
	if strings.Join(notRun, ",") != "never" {
		t.Errorf("steps reported as not run: %v, want [never]", notRun)
	}
}

// TestTimelineEnvoyTriggers: steps fire on the observed Envoys' own /clusters
// changes, a host ejected and the serving priority changed.
func TestTimelineEnvoyTriggers(t *testing.T) {
	s := parseSteps(t, `    - name: down
      at: 0s
      fault: {scale: {cluster: c1, workload: reviews, replicas: 0}}
    - name: on-ejection
      when: host-ejected after down
      fault: {scale: {cluster: c2, workload: reviews, replicas: 0}}
    - name: on-priority
      when: priority-changed after down
      revert: down
`)
	bus := event.NewBus()
	defer bus.Close()
	actor := &recordingActor{did: make(chan string, 10)}
	tl := newTimeline(s.Spec.Steps, actor, bus)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- tl.Run(ctx) }()
	bus.Publish(event.New(event.LoadStarted, "", "load", event.LoadInfo{}))
	waitFor(t, actor.did, "down")
	bus.Publish(event.New(event.HostEjected, "c1", "stats/productpage", event.HostChange{EnvoyCluster: "outbound|9080||reviews.default.svc.cluster.local", Host: "10.0.0.1:9080"}))
	waitFor(t, actor.did, "on-ejection")
	bus.Publish(event.New(event.PriorityChanged, "c1", "stats/productpage", event.HostChange{EnvoyCluster: "outbound|9080||reviews.default.svc.cluster.local", From: 0, To: 1}))
	waitFor(t, actor.did, "on-priority")
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
