package load

import (
	"context"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
)

// maxLoggedErrors bounds how many distinct transport errors an attack logs.
const maxLoggedErrors = 10

// collector takes each vegeta result of one Run as it arrives: it tells degraded
// answers, writes the results file and hands the result to the windows. It runs on the
// one goroutine that drains vegeta's results channel, which is unbuffered: the time it
// takes per result is time vegeta's workers wait, so it does the least it can.
type collector struct {
	win     *windower
	match   *matcher     // nil: no degraded matcher
	out     *resultsFile // nil: no results file
	log     *slog.Logger
	began   time.Time    // when the load started; windows are relative to it
	stopped *atomic.Bool // set before Run aborts requests in flight

	aborted  int64 // requests cut short by the abort, counted nowhere
	seenErrs map[string]bool
}

func (c *collector) add(r *vegeta.Result) {
	s := sample{seq: r.Seq, offset: max(r.Timestamp.Sub(c.began), 0), code: r.Code, latency: r.Latency}
	if r.Code == 0 && c.stopped.Load() && isAbort(r.Error) {
		s.aborted = true
		c.aborted++
		c.win.add(s)
		return
	}
	if c.match != nil && r.Code >= 200 && r.Code < 300 {
		s.degraded = c.match.match(r.Body)
	}
	if r.Code == 0 && !c.seenErrs[r.Error] && len(c.seenErrs) < maxLoggedErrors {
		if c.seenErrs == nil {
			c.seenErrs = map[string]bool{}
		}
		c.seenErrs[r.Error] = true
		c.log.Warn("load transport error", "error", r.Error)
	}
	if c.out != nil {
		if err := c.out.write(r); err != nil {
			c.log.Error("load results file: writing stopped, load goes on", "error", err)
		}
	}
	c.win.add(s)
}

// isAbort tells a request cancelled by Run's abort from a real transport error; vegeta
// keeps only the error's text ("Get \"…\": context canceled").
func isAbort(msg string) bool {
	return strings.HasSuffix(msg, context.Canceled.Error())
}
