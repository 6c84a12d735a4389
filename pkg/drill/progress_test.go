package drill

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/meshdrill/drill/pkg/event"
)

func TestProgressPlain(t *testing.T) {
	var out bytes.Buffer
	p := &progress{w: &out, total: 30 * time.Second, start: time.Now()}
	// observe as the bus would deliver: load starts 3 s into the run; each
	// window is final 4 s after it ends (its slowest requests took that long);
	// the step fires at 12 s of load, before the window that ends then is final.
	at := func(e event.Event, d time.Duration) event.Event { e.Elapsed = d; return e }
	const loadAt = 3 * time.Second
	p.observe(at(event.New(event.Log, "", "engine", event.LogLine{Level: "info", Message: "bringing up 2 clusters"}), 0))
	p.observe(at(event.New(event.LoadStarted, "c1", "load", event.LoadInfo{}), loadAt))
	for i := 1; i <= 25; i++ {
		end := time.Duration(i) * time.Second
		p.observe(at(event.New(event.LoadWindow, "c1", "load", event.Window{
			Start: end - time.Second, End: end,
			Requests: 50, Errors: 1, Rate: 50, P99: 12 * time.Millisecond,
		}), loadAt+end+4*time.Second))
		if i == 8 {
			p.observe(at(event.New(event.StepStarted, "", "timeline", event.Step{Name: "reviews-down", Action: "fault", Trigger: "at 12s"}), loadAt+12*time.Second))
			p.observe(at(event.New(event.FailoverDetected, "", "detector", event.Failover{Service: "reviews", From: "c1", To: "c2", Took: time.Second, Resolution: time.Second}), loadAt+13*time.Second))
		}
	}
	got := out.String()
	for _, want := range []string{
		"[setup 0:00] bringing up 2 clusters\n",
		"0:10/0:30  50 req/s  500 requests  10 errors  0 degraded  p99 12ms\n",
		"[0:12] step reviews-down (fault at 12s)\n",
		"[0:13] failover of reviews c1 → c2 after 1s (±1s)\n",
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
