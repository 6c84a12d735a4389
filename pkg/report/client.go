package report

import (
	"fmt"
	"time"

	"github.com/meshdrill/drill/pkg/event"
)

// ClientView is a failover or failback as the load's own answers show it, to
// the millisecond: each answer of drill's Bookinfo names the cluster that
// served each service on its path (event.Window.Served), so no scrape interval
// blurs the moment. Times are seconds since load start.
type ClientView struct {
	// FirstErrorSeconds: the first error or degraded answer seen after the step.
	FirstErrorSeconds *float64 `json:"firstErrorSeconds,omitempty"`
	// LastFromSeconds: the last answer served by the cluster traffic left, seen
	// after the step; FirstToSeconds: the first answer served by the cluster it
	// went to, seen after the step.
	LastFromSeconds *float64 `json:"lastFromSeconds,omitempty"`
	FirstToSeconds  *float64 `json:"firstToSeconds,omitempty"`
	// MovedSeconds: from this moment to the horizon, every answer for the
	// service came from the cluster traffic went to; TookSeconds is it less the
	// step's moment.
	MovedSeconds float64 `json:"movedSeconds"`
	TookSeconds  float64 `json:"tookSeconds"`
	// HorizonSeconds: the end of the answers looked at: the first revert
	// step after the step (for a failover) or the end of the load.
	HorizonSeconds float64 `json:"horizonSeconds"`
	// Failed: errors and degraded answers of the windows sent from the step
	// to the move; From and To: answers served by each cluster after the step.
	Failed int64 `json:"failed"`
	From   int64 `json:"fromAnswers"`
	To     int64 `json:"toAnswers"`
}

// clientOutcome is what the load's answers say about a move of service from
// from to to after the moment at, up to horizon.
type clientOutcome struct {
	seen     bool // some answer after at named a cluster for the service
	moved    bool // every answer from some moment to horizon came from to
	view     ClientView
	stillTwo bool // both clusters answered up to the horizon
}

// clientView reads the move from the load windows, the answers seen from at
// to horizon. A window that straddles either end is read by its first and
// last answer of each cluster (see clip and before).
func (ev *evaluator) clientView(service, from, to string, at, horizon time.Duration) clientOutcome {
	var out clientOutcome
	var lastFrom, firstTo, firstErr event.Seen
	for _, w := range ev.r.windows {
		if w.End <= at || w.Start >= horizon {
			continue
		}
		if f := w.Failed; f != nil && f.Last >= at && f.First < horizon {
			firstErr.Merge(clip(before(*f, horizon), at))
		}
		byCluster := w.Served[service]
		for cl, n := range byCluster {
			if n.Last < at || n.First >= horizon {
				continue
			}
			n = before(n, horizon)
			out.seen = true
			switch cl {
			case from:
				lastFrom.Merge(clip(n, at))
			case to:
				firstTo.Merge(clip(n, at))
			}
		}
	}
	if !out.seen {
		return out
	}
	v := &out.view
	v.HorizonSeconds = seconds(horizon)
	v.From, v.To = lastFrom.N, firstTo.N
	if firstErr.N > 0 {
		v.FirstErrorSeconds = fptr(seconds(firstErr.First))
	}
	if lastFrom.N > 0 {
		v.LastFromSeconds = fptr(seconds(lastFrom.Last))
	}
	if firstTo.N == 0 {
		return out
	}
	v.FirstToSeconds = fptr(seconds(firstTo.First))
	// The cluster traffic left answered after the last answer from the other:
	// no moment from which every answer came from the other.
	if lastFrom.N > 0 && firstTo.Last <= lastFrom.Last {
		out.stillTwo = true
		return out
	}
	moved := max(firstTo.First, lastFrom.Last)
	// Both clusters answering to the end, the last answer from the one
	// traffic went to: not a move, a coin toss at the horizon. A move must
	// leave the backup answering alone for a second before it.
	if lastFrom.N > 0 && horizon-moved < time.Second {
		out.stillTwo = true
		return out
	}
	out.moved = true
	v.MovedSeconds, v.TookSeconds = seconds(moved), seconds(moved-at)
	for _, w := range ev.r.windows {
		if w.Start >= at-(w.End-w.Start)/2 && w.Start < moved {
			v.Failed += w.Errors + w.Degraded
		}
	}
	return out
}

// before is s without what was seen at or after horizon, as far as First and
// Last tell: in a window that straddles the horizon only the first answer is
// known to have come before it.
func before(s event.Seen, horizon time.Duration) event.Seen {
	if s.Last >= horizon {
		s.Last = s.First
	}
	return s
}

// clip is s without what was seen before at, as far as First and Last tell:
// a First before at moves to the earliest moment that can be said, at itself.
func clip(s event.Seen, at time.Duration) event.Seen {
	if s.First < at {
		s.First = at
	}
	return s
}

// clientText says the client view in a sentence.
func clientText(v ClientView, service, from, to, step string, stepAt float64) string {
	s := fmt.Sprintf("the load's answers: every %s answer came from %s from %s on, %s after %s", service, to, formatAt(v.MovedSeconds), formatSeconds(v.TookSeconds), step)
	if v.LastFromSeconds != nil {
		s += fmt.Sprintf("; last answer from %s at %s", from, formatAt(*v.LastFromSeconds))
	}
	if v.FirstToSeconds != nil {
		s += fmt.Sprintf(", first from %s at %s", to, formatAt(*v.FirstToSeconds))
	}
	if v.FirstErrorSeconds != nil && *v.FirstErrorSeconds <= v.MovedSeconds {
		s += fmt.Sprintf(", first error or degraded answer at %s (%s after %s)", formatAt(*v.FirstErrorSeconds), formatSeconds(*v.FirstErrorSeconds-stepAt), step)
	}
	if v.Failed > 0 {
		s += fmt.Sprintf("; %s failed or degraded in between", plural(v.Failed, "request", "requests"))
	}
	return s
}

// formatAt is a moment on the load clock, to the millisecond: 31.234 s.
func formatAt(sec float64) string { return fmt.Sprintf("%.3f s", sec) }
