package drill

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/meshdrill/drill/pkg/event"
)

func TestProgressPlain(t *testing.T) {
	bus := event.NewBus()
	var out bytes.Buffer
	p := newProgress(bus, &out, false, 30*time.Second)
	done := make(chan struct{})
	go func() { p.run(); close(done) }()

	bus.Publish(event.New(event.Log, "", "engine", event.LogLine{Level: "info", Message: "bringing up 2 clusters"}))
	bus.Publish(event.New(event.LoadStarted, "c1", "load", event.LoadInfo{}))
	for i := 1; i <= 25; i++ {
		bus.Publish(event.New(event.LoadWindow, "c1", "load", event.Window{
			Start: time.Duration(i-1) * time.Second, End: time.Duration(i) * time.Second,
			Requests: 50, Errors: 1, Rate: 50, P99: 12 * time.Millisecond,
		}))
		if i == 12 {
			bus.Publish(event.New(event.StepStarted, "", "timeline", event.Step{Name: "reviews-down", Action: "fault", Trigger: "at 12s"}))
			bus.Publish(event.New(event.FailoverDetected, "", "detector", event.Failover{Service: "reviews", From: "c1", To: "c2", Took: time.Second, Resolution: time.Second}))
		}
	}
	bus.Close()
	<-done
	got := out.String()
	for _, want := range []string{
		"[setup 0:00] bringing up 2 clusters\n",
		"0:10/0:30  50 req/s  500 requests  10 errors  0 degraded  p99 12ms\n",
		"[0:12] step reviews-down (fault at 12s)\n",
		"[0:12] failover of reviews c1 → c2 after 1s (±1s)\n",
		"0:20/0:30  50 req/s  1000 requests  20 errors",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("progress lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "\r") || strings.Contains(got, "\x1b[") {
		t.Errorf("plain progress has terminal control characters:\n%q", got)
	}
	if n := strings.Count(got, "req/s"); n != 2 {
		t.Errorf("%d periodic lines in 25 s of load, want 2 (one per 10 s)", n)
	}
}
