package drill

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/meshdrill/drill/pkg/event"
)

// progress shows a run as it goes: one line redrawn in place on a terminal, or a
// plain line every plainEvery (and one per step and failover) where output is a log.
type progress struct {
	sub      *event.Subscription
	w        io.Writer
	terminal bool
	total    time.Duration

	elapsed        time.Duration
	requests, errs int64
	degraded       int64
	rate           float64
	p99            time.Duration
	last           string
	lastPlain      time.Duration
	// start is when the run began; before load starts, notes are stamped with the
	// setup time instead of load time.
	start       time.Time
	loadStarted bool
	// loadAt is the load.started event's Elapsed: notes are stamped with their
	// own event's time since then, not with the last window's end, which lags
	// by the slowest request in flight.
	loadAt time.Duration
	// at is the time of the event being observed, since load start.
	at time.Duration
}

const plainEvery = 10 * time.Second

func newProgress(bus *event.Bus, w io.Writer, terminal bool, total time.Duration) *progress {
	return &progress{sub: bus.Subscribe("progress", event.WithBuffer(4096)), w: w, terminal: terminal, total: total, start: time.Now()}
}

func (p *progress) run() {
	for e := range p.sub.Events() {
		p.observe(e)
	}
	if p.terminal {
		fmt.Fprintln(p.w)
	}
}

func (p *progress) observe(e event.Event) {
	p.at = max(e.Elapsed-p.loadAt, 0)
	switch e.Type {
	case event.LoadStarted:
		p.loadStarted = true
		p.loadAt, p.at = e.Elapsed, 0
	case event.LoadWindow:
		var w event.Window
		if e.Decode(&w) != nil {
			return
		}
		p.elapsed = w.End
		p.requests += w.Requests
		p.errs += w.Errors
		p.degraded += w.Degraded
		p.rate = w.Rate
		p.p99 = w.P99
		if p.terminal {
			p.draw()
		} else if p.elapsed-p.lastPlain >= plainEvery {
			p.lastPlain = p.elapsed
			fmt.Fprintln(p.w, p.line())
		}
	case event.StepStarted, event.StepFinished:
		var st event.Step
		if e.Decode(&st) != nil {
			return
		}
		switch {
		case e.Type == event.StepStarted:
			p.note(fmt.Sprintf("step %s (%s %s)", st.Name, st.Action, st.Trigger))
		case st.Error != "":
			p.note(fmt.Sprintf("step %s: %s", st.Name, st.Error))
		}
	case event.FailoverDetected, event.FailbackDetected:
		var f event.Failover
		if e.Decode(&f) != nil {
			return
		}
		what := "failover"
		if e.Type == event.FailbackDetected {
			what = "failback"
		}
		p.note(fmt.Sprintf("%s of %s %s → %s after %s (±%s)", what, f.Service, f.From, f.To, f.Took.Round(time.Millisecond), f.Resolution.Round(time.Millisecond)))
	case event.Log:
		var l event.LogLine
		if e.Decode(&l) == nil && l.Level != "debug" {
			p.note(l.Message)
		}
	}
}

func (p *progress) note(msg string) {
	p.last = msg
	if p.terminal {
		p.draw()
		return
	}
	if !p.loadStarted {
		fmt.Fprintf(p.w, "[setup %s] %s\n", fmtDur(time.Since(p.start)), msg)
		return
	}
	fmt.Fprintf(p.w, "[%s] %s\n", fmtDur(p.at), msg)
}

func (p *progress) line() string {
	return fmt.Sprintf("%s/%s  %.0f req/s  %d requests  %d errors  %d degraded  p99 %s",
		fmtDur(p.elapsed), fmtDur(p.total), p.rate, p.requests, p.errs, p.degraded, p.p99.Round(time.Millisecond))
}

func (p *progress) draw() {
	s := p.line()
	if p.last != "" {
		s += "  | " + p.last
	}
	// \r and erase-line keep one line redrawn in place.
	fmt.Fprintf(p.w, "\r\x1b[K%s", strings.TrimSpace(s))
}

func fmtDur(d time.Duration) string {
	d = d.Round(time.Second)
	return fmt.Sprintf("%d:%02d", int(d.Minutes()), int(d.Seconds())%60)
}
