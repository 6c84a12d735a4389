package load

import (
	"context"
	"math"
	"runtime/metrics"
	"time"

	"github.com/meshdrill/drill/pkg/event"
)

// schedMetric is the Go runtime's histogram of how long goroutines waited
// runnable before running: on a starved machine, a load generator's requests
// leave late and its answers are read late, and the latency it records is the
// machine's.
const schedMetric = "/sched/latencies:seconds"

// schedReader turns the runtime's cumulative scheduling-latency histogram into
// one distribution per interval.
type schedReader struct {
	sample []metrics.Sample
	prev   []uint64
}

func newSchedReader() *schedReader {
	r := &schedReader{sample: []metrics.Sample{{Name: schedMetric}}}
	r.read() // the baseline
	return r
}

// read returns the waits since the last read: how many, their p99 and their
// maximum, each the lower bound of its bucket.
func (r *schedReader) read() (waits uint64, p99, maxWait time.Duration) {
	metrics.Read(r.sample)
	if r.sample[0].Value.Kind() != metrics.KindFloat64Histogram {
		return 0, 0, 0 // not in this runtime
	}
	h := r.sample[0].Value.Float64Histogram()
	if len(r.prev) != len(h.Counts) {
		r.prev = make([]uint64, len(h.Counts))
	}
	delta := make([]uint64, len(h.Counts))
	for i, c := range h.Counts {
		delta[i] = c - r.prev[i]
		waits += delta[i]
	}
	copy(r.prev, h.Counts)
	if waits == 0 {
		return 0, 0, 0
	}
	lower := func(i int) time.Duration {
		b := h.Buckets[i]
		if math.IsInf(b, -1) || b < 0 {
			return 0
		}
		return time.Duration(b * float64(time.Second))
	}
	target := uint64(math.Ceil(float64(waits) * 0.99))
	var seen uint64
	p99set := false
	for i, c := range delta {
		if c == 0 {
			continue
		}
		seen += c
		if !p99set && seen >= target {
			p99, p99set = lower(i), true
		}
		maxWait = lower(i)
	}
	return waits, p99, maxWait
}

// watchSched publishes a Sched every interval from began until ctx ends, and
// one for the last partial interval.
func watchSched(ctx context.Context, interval time.Duration, began time.Time, publish func(event.Sched)) {
	r := newSchedReader()
	tick := time.NewTicker(interval)
	defer tick.Stop()
	last := time.Duration(0)
	emit := func(now time.Time) {
		end := max(now.Sub(began), last)
		waits, p99, mx := r.read()
		publish(event.Sched{Start: last, End: end, Waits: waits, P99: p99, Max: mx})
		last = end
	}
	for {
		select {
		case now := <-tick.C:
			emit(now)
		case <-ctx.Done():
			if time.Since(began) > last {
				emit(time.Now())
			}
			return
		}
	}
}
