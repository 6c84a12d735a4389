package load

import (
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"

	"github.com/meshdrill/drill/pkg/event"
)

const ms = time.Millisecond

// ok is a 200 answered in 10 ms, sent at the given offset.
func ok(seq uint64, offset time.Duration) sample {
	return sample{seq: seq, offset: offset, code: 200, latency: 10 * ms}
}

func TestWindowerPublishesWhenFinal(t *testing.T) {
	type step struct {
		in        sample
		published int // windows published once in has been added
	}
	tests := []struct {
		name  string
		width time.Duration
		limit time.Duration
		steps []step
		end   time.Duration
		want  []event.Window // Start, End, Requests, Errors, Codes only
	}{
		{
			name:  "in order",
			width: 100 * ms,
			steps: []step{
				{ok(0, 10*ms), 0},
				{ok(1, 60*ms), 0},
				{ok(2, 99*ms), 0},
				{ok(3, 100*ms), 1}, // sent at the end of window 0: it is complete
				{ok(4, 250*ms), 2}, // window 1 is complete too, though empty
			},
			end: 300 * ms,
			want: []event.Window{
				{Start: 0, End: 100 * ms, Requests: 3, Codes: map[string]int64{"200": 3}},
				{Start: 100 * ms, End: 200 * ms, Requests: 1, Codes: map[string]int64{"200": 1}},
				{Start: 200 * ms, End: 300 * ms, Requests: 1, Codes: map[string]int64{"200": 1}},
			},
		},
		{
			name:  "a slow request holds its window back",
			width: 100 * ms,
			steps: []step{
				{ok(0, 10*ms), 0},
				{ok(2, 90*ms), 0},
				{ok(3, 150*ms), 0},
				{ok(4, 210*ms), 0}, // windows 0 and 1 wait for seq 1
				{sample{seq: 1, offset: 50 * ms, code: 0, latency: 200 * ms}, 2},
			},
			end: 250 * ms,
			want: []event.Window{
				{Start: 0, End: 100 * ms, Requests: 3, Errors: 1, Codes: map[string]int64{"200": 2, "0": 1}},
				{Start: 100 * ms, End: 200 * ms, Requests: 1, Codes: map[string]int64{"200": 1}},
				{Start: 200 * ms, End: 250 * ms, Requests: 1, Codes: map[string]int64{"200": 1}},
			},
		},
		{
			name:  "the last window waits for finish and takes hits sent at the limit",
			width: 100 * ms,
			limit: 200 * ms,
			steps: []step{
				{ok(0, 100*ms), 1},
				{ok(1, 200*ms), 1}, // vegeta's last hit, due at the duration itself
				{ok(2, 201*ms), 1},
			},
			end: 205 * ms,
			want: []event.Window{
				{Start: 0, End: 100 * ms, Requests: 0},
				{Start: 100 * ms, End: 200 * ms, Requests: 3, Codes: map[string]int64{"200": 3}},
			},
		},
		{
			name:  "aborted requests complete windows but count nowhere",
			width: 100 * ms,
			steps: []step{
				{ok(0, 10*ms), 0},
				{sample{seq: 1, offset: 120 * ms, aborted: true}, 1},
			},
			end: 130 * ms,
			want: []event.Window{
				{Start: 0, End: 100 * ms, Requests: 1, Codes: map[string]int64{"200": 1}},
				{Start: 100 * ms, End: 130 * ms, Requests: 0},
			},
		},
		{
			name:  "non-2xx/3xx are errors, 3xx are not",
			width: time.Second,
			steps: []step{
				{sample{seq: 0, offset: 1, code: 503}, 0},
				{sample{seq: 1, offset: 2, code: 302}, 0},
				{sample{seq: 2, offset: 3, code: 404}, 0},
				{sample{seq: 3, offset: 4, code: 101}, 0},
			},
			end: time.Second,
			want: []event.Window{
				{Start: 0, End: time.Second, Requests: 4, Errors: 3, Codes: map[string]int64{"503": 1, "302": 1, "404": 1, "101": 1}},
			},
		},
		{
			name:  "nothing sent",
			width: time.Second,
			end:   0,
			want:  nil,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []event.Window
			w := newWindower(tt.width, tt.limit, func(e event.Window) { got = append(got, e) })
			for i, s := range tt.steps {
				w.add(s.in)
				if len(got) != s.published {
					t.Fatalf("after result %d (seq %d): %d windows published, want %d", i, s.in.seq, len(got), s.published)
				}
			}
			total := w.finish(tt.end)
			if len(got) != len(tt.want) {
				t.Fatalf("published %d windows, want %d: %+v", len(got), len(tt.want), got)
			}
			var sum int64
			for i, g := range got {
				want := tt.want[i]
				if g.Start != want.Start || g.End != want.End || g.Requests != want.Requests || g.Errors != want.Errors || !equalCodes(g.Codes, want.Codes) {
					t.Errorf("window %d = %+v, want %+v", i, g, want)
				}
				sum += g.Requests
			}
			end := tt.end
			if len(got) > 0 {
				end = got[len(got)-1].End
			}
			if total.Requests != sum || total.Start != 0 || total.End != end {
				t.Errorf("total = %+v, want %d requests over [0, %s)", total, sum, end)
			}
		})
	}
}

func equalCodes(a, b map[string]int64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func TestWindowPercentiles(t *testing.T) {
	var got []event.Window
	w := newWindower(time.Second, 0, func(e event.Window) { got = append(got, e) })
	// Latencies 1 ms … 1000 ms, each once, in a shuffled order of arrival.
	const n = 1000
	order := rand.New(rand.NewPCG(1, 2)).Perm(n)
	for _, i := range order {
		w.add(sample{seq: uint64(i), offset: time.Duration(i) * ms, code: 200, latency: time.Duration(i+1) * ms})
	}
	total := w.finish(time.Second)
	if len(got) != 1 {
		t.Fatalf("published %d windows, want 1", len(got))
	}
	for _, c := range []struct {
		name      string
		got, want time.Duration
	}{
		{"p50", total.P50, 500 * ms},
		{"p90", total.P90, 900 * ms},
		{"p99", total.P99, 990 * ms},
	} {
		// 3 significant digits: within 0.1 % of the true value.
		if d := c.got - c.want; d < 0 || d > c.want/1000 {
			t.Errorf("%s = %s, want %s within 0.1%%", c.name, c.got, c.want)
		}
	}
	if total.Max != 1000*ms {
		t.Errorf("max = %s, want exactly 1s", total.Max)
	}
	if total.Rate != n {
		t.Errorf("rate = %g, want %d/s", total.Rate, n)
	}
	if !reflect.DeepEqual(got[0], total) {
		t.Errorf("the only window %+v differs from the total %+v", got[0], total)
	}
	// The encoded distribution decodes to the same counts and percentiles.
	h, err := hdrhistogram.Decode([]byte(total.Histogram))
	if err != nil {
		t.Fatalf("decode the window's histogram: %v", err)
	}
	if h.TotalCount() != n || min(time.Duration(h.ValueAtQuantile(99)), total.Max) != total.P99 {
		t.Errorf("decoded histogram: %d values, p99 %s; want %d, %s", h.TotalCount(), time.Duration(h.ValueAtQuantile(99)), n, total.P99)
	}
}

// FuzzWindower feeds results in an arbitrary order of arrival and checks that every
// window is published once, in order, only when complete, and that the windows add up
// to the totals.
func FuzzWindower(f *testing.F) {
	f.Add(uint64(1), uint16(200), uint8(10), uint16(0))
	f.Add(uint64(7), uint16(2000), uint8(3), uint16(1500))
	f.Add(uint64(42), uint16(50), uint8(1), uint16(10))
	f.Fuzz(func(t *testing.T, seed uint64, n uint16, widthMs uint8, limitMs uint16) {
		if widthMs == 0 || n == 0 {
			return
		}
		width := time.Duration(widthMs) * ms
		limit := time.Duration(limitMs) * ms
		rng := rand.New(rand.NewPCG(seed, uint64(n)))

		// Send times never decrease with Seq, as in vegeta.
		samples := make([]sample, n)
		var at time.Duration
		for i := range samples {
			at += time.Duration(rng.IntN(5)) * ms
			samples[i] = sample{seq: uint64(i), offset: at, code: uint16(200 + 100*rng.IntN(4)), latency: time.Duration(rng.IntN(100)) * ms, aborted: rng.IntN(20) == 0}
		}
		// Arrival order: each result may overtake up to 30 earlier ones.
		order := make([]int, n)
		for i := range order {
			order[i] = i
		}
		for i := range order {
			j := min(i+rng.IntN(30), len(order)-1)
			order[i], order[j] = order[j], order[i]
		}

		var got []event.Window
		w := newWindower(width, limit, func(e event.Window) { got = append(got, e) })
		missing := map[int]int{} // window index → requests not yet arrived
		for _, s := range samples {
			missing[w.index(s.offset)]++
		}
		checked := 0
		for _, i := range order {
			w.add(samples[i])
			missing[w.index(samples[i].offset)]--
			// A window may only be published once all its requests are in.
			for ; checked < len(got); checked++ {
				if k := int(got[checked].Start / width); missing[k] != 0 {
					t.Fatalf("window %s published with %d requests still out", got[checked].Start, missing[k])
				}
			}
		}
		end := at + ms
		total := w.finish(end)

		var sum, errs int64
		var next time.Duration
		for _, win := range got {
			if win.Start != next || win.End <= win.Start {
				t.Fatalf("windows not contiguous: %+v after %s", win, next)
			}
			next = win.End
			sum += win.Requests
			errs += win.Errors
			if win.Requests > 0 && (win.P50 > win.P90 || win.P90 > win.P99 || win.P99 > win.Max) {
				t.Fatalf("percentiles out of order: %+v", win)
			}
		}
		if next != total.End {
			t.Fatalf("windows end at %s, total at %s", next, total.End)
		}
		var want int64
		for _, s := range samples {
			if !s.aborted {
				want++
			}
		}
		if sum != total.Requests || total.Requests != want || errs != total.Errors {
			t.Fatalf("windows hold %d requests (%d errors), total %d (%d errors), sent %d not aborted", sum, errs, total.Requests, total.Errors, want)
		}
	})
}

// TestWindowerFarAhead has one result arrive far ahead of the rest, so the buffer of
// early arrivals stays non-empty for thousands of results and is compacted on the way.
func TestWindowerFarAhead(t *testing.T) {
	const n = 3000
	var got []event.Window
	w := newWindower(100*ms, 0, func(e event.Window) { got = append(got, e) })
	w.add(ok(n, n*ms))
	for i := range uint64(n) {
		w.add(ok(i, time.Duration(i)*ms))
		// Seq 0 … i are in and i was sent at i ms: the windows ending by then are final;
		// the last one completes the run up to seq n, sent at n ms.
		want := int(i / 100)
		if i == n-1 {
			want = n / 100
		}
		if len(got) != want {
			t.Fatalf("after seq %d: %d windows published, want %d", i, len(got), want)
		}
	}
	if len(w.early) != 0 {
		t.Errorf("%d early results still buffered, want none", len(w.early)-w.head)
	}
	total := w.finish(n*ms + 1)
	if total.Requests != n+1 || len(got) != n/100+1 {
		t.Errorf("total %d requests in %d windows, want %d in %d", total.Requests, len(got), n+1, n/100+1)
	}
}
