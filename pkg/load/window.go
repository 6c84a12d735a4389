package load

import (
	"strconv"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"

	"github.com/meshdrill/drill/pkg/event"
)

// Latencies are recorded in nanoseconds with 3 significant digits from 1 µs to an hour
// (about 190 kB per histogram); longer ones are recorded as an hour. The maximum is
// kept exactly beside the histogram.
const (
	histLowest  = int64(time.Microsecond)
	histHighest = int64(time.Hour)
	histDigits  = 3
)

// sample is what a window needs of one vegeta result.
type sample struct {
	seq      uint64        // vegeta's Result.Seq: 0, 1, 2, … in send order
	offset   time.Duration // send time since the load started
	code     uint16        // 0 for a transport error
	latency  time.Duration
	degraded bool
	// aborted results are requests cut short by Run's own cancellation: they say
	// nothing about the target, so they are counted nowhere, but their sequence
	// numbers still count towards knowing a window is complete.
	aborted bool
	// served is who the answer says served it (servedBy), nServed of them.
	served  [maxServed]servedBy
	nServed uint8
}

// servedBy is one service of an answer and the cluster that served it.
type servedBy struct{ service, cluster string }

// maxServed bounds the services one answer can name (productpage names
// itself, reviews and details).
const maxServed = 4

// seenAt is when the answer to s arrived, since the load started.
func (s *sample) seenAt() time.Duration { return s.offset + max(s.latency, 0) }

// tally accumulates the requests of one window, or of the whole attack.
type tally struct {
	requests int64
	errors   int64
	degraded int64
	codes    map[uint16]int64
	hist     *hdrhistogram.Histogram // nil until the first request
	max      time.Duration
	served   map[string]map[string]*event.Seen // nil until an answer names a cluster
	failed   event.Seen
}

func (t *tally) add(s sample, newHist func() *hdrhistogram.Histogram) {
	t.requests++
	if t.codes == nil {
		t.codes = make(map[uint16]int64, 4)
	}
	t.codes[s.code]++
	if s.code < 200 || s.code >= 400 {
		t.errors++
	}
	if s.degraded {
		t.degraded++
	}
	if s.degraded || s.code < 200 || s.code >= 400 {
		t.failed.Add(s.seenAt())
	}
	for _, sb := range s.served[:s.nServed] {
		t.seen(sb).Add(s.seenAt())
	}
	if t.hist == nil {
		t.hist = newHist()
	}
	v := min(max(int64(s.latency), 0), histHighest)
	_ = t.hist.RecordValue(v) // in range by construction
	t.max = max(t.max, s.latency)
}

// seen is the tally's count of answers of sb's service from sb's cluster.
func (t *tally) seen(sb servedBy) *event.Seen {
	if t.served == nil {
		t.served = make(map[string]map[string]*event.Seen, 2)
	}
	byCluster := t.served[sb.service]
	if byCluster == nil {
		byCluster = make(map[string]*event.Seen, 2)
		t.served[sb.service] = byCluster
	}
	n := byCluster[sb.cluster]
	if n == nil {
		n = &event.Seen{}
		byCluster[sb.cluster] = n
	}
	return n
}

// window is the tally as the event payload for [start, end).
func (t *tally) window(start, end time.Duration) event.Window {
	w := event.Window{
		Start:    start,
		End:      end,
		Requests: t.requests,
		Errors:   t.errors,
		Degraded: t.degraded,
		Max:      t.max,
	}
	if len(t.codes) > 0 {
		w.Codes = make(map[string]int64, len(t.codes))
		for c, n := range t.codes {
			w.Codes[strconv.Itoa(int(c))] = n
		}
	}
	if t.hist != nil && t.hist.TotalCount() > 0 {
		// The histogram reports the top of a value's bucket, which can lie just above
		// the exact maximum; no percentile is allowed past it.
		q := func(p float64) time.Duration { return min(time.Duration(t.hist.ValueAtQuantile(p)), t.max) }
		w.P50, w.P90, w.P99 = q(50), q(90), q(99)
		// The whole distribution travels too, so that a report can merge windows
		// into exact percentiles over any part of the run.
		if enc, err := t.hist.Encode(hdrhistogram.V2CompressedEncodingCookieBase); err == nil {
			w.Histogram = string(enc)
		}
	}
	if secs := (end - start).Seconds(); secs > 0 {
		w.Rate = float64(t.requests) / secs
	}
	if len(t.served) > 0 {
		w.Served = make(map[string]map[string]event.Seen, len(t.served))
		for svc, byCluster := range t.served {
			m := make(map[string]event.Seen, len(byCluster))
			for cl, n := range byCluster {
				m[cl] = *n
			}
			w.Served[svc] = m
		}
	}
	if t.failed.N > 0 {
		f := t.failed
		w.Failed = &f
	}
	return w
}

// reset empties t for reuse, keeping its histogram's memory.
func (t *tally) reset() {
	hist := t.hist
	if hist != nil {
		hist.Reset()
	}
	*t = tally{hist: hist}
}

// windower cuts results into windows of send time and publishes each window once it
// is final.
//
// Results arrive out of order: a request sent early may answer after many sent later,
// up to the request timeout. vegeta assigns Result.Seq and Result.Timestamp together
// under one lock, so send times never decrease as Seq grows. The windower tracks the
// longest run of sequence numbers 0…n-1 that have all arrived; once the send time of
// n-1 is at or past a window's end, every request sent in that window has arrived, and
// the window is published. Publication is exact and as early as possible: no timer, no
// guess at how late results can be, and a window held back by a slow request is
// published the moment that request finishes or times out.
type windower struct {
	width time.Duration
	// limit is the attack's duration (0: none). vegeta's pacers send the n-th hit at n
	// intervals, so the last hit is sent just at or after the duration: results sent
	// at or after the limit count in the last window, which is therefore only
	// published by finish.
	limit time.Duration
	emit  func(event.Window)

	base  int      // index of open[0]; windows before it are published
	open  []*tally // windows not yet published
	total tally
	free  []*tally // published tallies, reused to spare their histograms

	next    uint64          // every result with Seq < next has arrived
	early   []time.Duration // early[head:]: send offsets of Seq next, next+1, …; -1 while missing
	head    int
	reached time.Duration // send offset of result next-1; -1 before any
}

func newWindower(width, limit time.Duration, emit func(event.Window)) *windower {
	return &windower{width: width, limit: limit, emit: emit, reached: -1}
}

func newHistogram() *hdrhistogram.Histogram {
	return hdrhistogram.New(histLowest, histHighest, histDigits)
}

// index is the window a request sent at offset belongs to.
func (w *windower) index(offset time.Duration) int {
	if w.limit > 0 && offset >= w.limit {
		offset = w.limit - 1
	}
	return int(offset / w.width)
}

// last is the index of the window that may only be published by finish.
func (w *windower) last() int {
	if w.limit <= 0 {
		return -1
	}
	return w.index(w.limit - 1)
}

func (w *windower) add(s sample) {
	if !s.aborted {
		// A result for a published window cannot happen (see the type's comment); if
		// it ever did, counting it in the oldest open window keeps totals equal to the
		// sum of the windows.
		i := max(w.index(s.offset), w.base) - w.base
		for len(w.open) <= i {
			w.open = append(w.open, w.tally())
		}
		w.open[i].add(s, newHistogram)
		w.total.add(s, newHistogram)
	}

	if s.seq < w.next {
		return // a duplicate; vegeta never sends one
	}
	i := w.head + int(s.seq-w.next)
	for len(w.early) <= i {
		w.early = append(w.early, -1)
	}
	w.early[i] = s.offset
	for w.head < len(w.early) && w.early[w.head] >= 0 {
		w.reached = w.early[w.head]
		w.head++
		w.next++
	}
	// Reuse the buffer rather than reslice it away: results mostly arrive in order,
	// and this keeps the common case free of allocations.
	if w.head == len(w.early) {
		w.early, w.head = w.early[:0], 0
	} else if w.head >= 1024 && w.head*2 >= len(w.early) {
		n := copy(w.early, w.early[w.head:])
		w.early, w.head = w.early[:n], 0
	}

	last := w.last()
	for (last < 0 || w.base < last) && w.reached >= time.Duration(w.base+1)*w.width {
		w.publish(time.Duration(w.base+1) * w.width)
	}
}

// finish publishes the windows left up to end, the end of the load, and returns the
// totals. end is taken once every result has arrived, so no request was sent after it
// but those at or after the limit, which count in the last window.
func (w *windower) finish(end time.Duration) event.Window {
	if w.limit > 0 {
		end = min(end, w.limit)
	}
	end = max(end, time.Duration(w.base)*w.width)
	last := w.base - 1
	if end > 0 {
		last = int((end - 1) / w.width)
	}
	if beyond := w.base + len(w.open) - 1; beyond > last {
		// Only if a result was sent after end, which the caller rules out (and index
		// puts those sent at or after the limit in the last window): stretch the load
		// over the windows holding results rather than lose them.
		last = beyond
		end = time.Duration(last+1) * w.width
	}
	for w.base <= last {
		w.publish(min(time.Duration(w.base+1)*w.width, end))
	}
	return w.total.window(0, end)
}

// publish emits the oldest open window, ending at end.
func (w *windower) publish(end time.Duration) {
	var t *tally
	if len(w.open) > 0 {
		t, w.open = w.open[0], w.open[1:]
	} else {
		t = w.tally()
	}
	w.emit(t.window(time.Duration(w.base)*w.width, end))
	w.base++
	t.reset()
	w.free = append(w.free, t)
}

func (w *windower) tally() *tally {
	if n := len(w.free); n > 0 {
		t := w.free[n-1]
		w.free = w.free[:n-1]
		return t
	}
	return &tally{}
}
