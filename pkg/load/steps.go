package load

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
)

// Step is one stage of a Steps shape: a rate held for a while.
type Step struct {
	Rate vegeta.Rate
	For  time.Duration
}

// Steps holds each rate for its duration, one after the other, e.g. 20/s for 30 s then
// 100/s for 60 s. A step may have a zero rate (a pause), but not the last one. The
// attack lasts the sum of the steps unless WithDuration says otherwise; the last step's
// rate then holds until the end.
func Steps(steps ...Step) Shape { return stepShape(append([]Step(nil), steps...)) }

type stepShape []Step

func (s stepShape) Pacer(duration time.Duration) (vegeta.Pacer, error) {
	if len(s) == 0 {
		return nil, errors.New("steps: no steps; give at least one {rate, for}")
	}
	p := &stepsPacer{
		end:    duration,
		start:  make([]time.Duration, len(s)),
		perNs:  make([]float64, len(s)),
		before: make([]float64, len(s)),
	}
	var at time.Duration
	var due float64
	for i, st := range s {
		if st.For <= 0 {
			return nil, fmt.Errorf("steps: step %d (%s): duration %s must be above zero", i+1, formatRate(st.Rate), st.For)
		}
		if st.Rate.Freq < 0 || st.Rate.Per <= 0 {
			return nil, fmt.Errorf("steps: step %d: rate %d per %s must be zero or above, per a positive period", i+1, st.Rate.Freq, st.Rate.Per)
		}
		p.start[i], p.before[i] = at, due
		p.perNs[i] = float64(st.Rate.Freq) / float64(st.Rate.Per)
		at += st.For
		due += p.perNs[i] * float64(st.For)
	}
	if p.perNs[len(s)-1] == 0 {
		// vegeta ends an attack when its pacer says stop, so a trailing pause could only
		// end the load early; shorten the duration instead.
		return nil, fmt.Errorf("steps: the last step (%s for %s) must have a rate above zero; end the load earlier instead", formatRate(s[len(s)-1].Rate), s[len(s)-1].For)
	}
	return p, nil
}

// total is the sum of the steps' durations: the attack's duration unless one is given.
func (s stepShape) total() time.Duration {
	var d time.Duration
	for _, st := range s {
		d += st.For
	}
	return d
}

func (s stepShape) String() string {
	parts := make([]string, len(s))
	for i, st := range s {
		parts[i] = fmt.Sprintf("%s for %s", formatRate(st.Rate), st.For)
	}
	return "steps " + strings.Join(parts, ", ")
}

// stepsPacer paces hits along a piecewise-constant rate. The number of hits due by time
// t, H(t), is the integral of the rate; the n-th hit is due at the first t where
// H(t) = n, the convention of vegeta's ConstantPacer (whose n-th hit is due at n × the
// interval), so a step of r/s for d seconds sends r×d hits. Unlike ConstantPacer it
// solves for the due time exactly instead of counting whole periods, which keeps steps
// that start mid-period exact. And it says stop when the next hit falls due after the
// attack's end: vegeta's loop sends the hit it last paced whenever it falls due, so a
// pacer that does not know the end sends one hit past it.
type stepsPacer struct {
	end    time.Duration   // the attack's duration; 0: none
	start  []time.Duration // when each step begins, since the attack's start
	perNs  []float64       // each step's rate in hits per nanosecond
	before []float64       // H at the start of each step
}

var _ vegeta.Pacer = (*stepsPacer)(nil)

// Pace implements vegeta.Pacer: the wait until hit number hits+1 is due, 0 when the
// attack is behind.
func (p *stepsPacer) Pace(elapsed time.Duration, hits uint64) (time.Duration, bool) {
	due, ok := p.due(float64(hits) + 1)
	if !ok || (p.end > 0 && due > p.end) {
		return 0, true
	}
	if wait := due - elapsed; wait > 0 {
		return wait, false
	}
	return 0, false
}

// Rate implements vegeta.Pacer: the rate of the step under way, in hits per second.
func (p *stepsPacer) Rate(elapsed time.Duration) float64 {
	return p.perNs[p.step(elapsed)] * 1e9
}

// step is the index of the step under way at t; the last step lasts forever.
func (p *stepsPacer) step(t time.Duration) int {
	i := sort.Search(len(p.start), func(i int) bool { return p.start[i] > t }) - 1
	return max(i, 0)
}

// hits is H(t), the number of hits due by t.
func (p *stepsPacer) hits(t time.Duration) float64 {
	if t <= 0 {
		return 0
	}
	i := p.step(t)
	return p.before[i] + p.perNs[i]*float64(t-p.start[i])
}

// due is the first time at which n hits are due; false when that never comes.
func (p *stepsPacer) due(n float64) (time.Duration, bool) {
	last := len(p.start) - 1
	for i := range p.start {
		if p.perNs[i] == 0 || (i < last && n > p.before[i+1]) {
			continue
		}
		at := math.Ceil((n - p.before[i]) / p.perNs[i])
		if float64(p.start[i])+at >= math.MaxInt64 {
			return 0, false
		}
		return p.start[i] + time.Duration(at), true
	}
	return 0, false
}
