package event

import (
	"bytes"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Payloads the size of a run's real ones: a load window, an Envoy stats sample and a
// pod event (about 250, 330 and 70 bytes of JSON).
func benchWindow(i int) Event {
	return New(LoadWindow, "cluster1", "load", Window{Start: time.Duration(i) * time.Second, End: time.Duration(i+1) * time.Second,
		Requests: 10000, Codes: map[string]int64{"200": 9990, "503": 10}, Errors: 10,
		P50: 3 * time.Millisecond, P90: 8 * time.Millisecond, P99: 20 * time.Millisecond, Max: 41 * time.Millisecond, Rate: 10000})
}

func benchSample(i int) Event {
	return New(StatsSample, "cluster1", "stats/productpage", Sample{Workload: "productpage-v1", Pod: "productpage-v1-7d9f8-x2x", Interval: time.Second,
		Clusters: map[string]ClusterDelta{"outbound|9080||reviews.default.svc.cluster.local": {Requests: int64(i), Codes: map[string]int64{"200": int64(i)},
			EjectionsActive: 0, MembershipHealthy: 3, MembershipTotal: 3}}})
}

func benchPod(i int) Event {
	return New(PodReady, "cluster2", "watch", Pod{Namespace: "default", Name: fmt.Sprintf("reviews-v2-5c9d-%d", i), App: "reviews", Version: "v2", IP: "127.1.0.7"})
}

var benchMakers = []func(int) Event{benchWindow, benchSample, benchPod}

// recorder is a bus with the log attached as a run has it, writing to a file.
type recorder struct {
	bus  *Bus
	lw   *LogWriter
	sub  *Subscription
	errc chan error
}

func newRecorder(b *testing.B, opts ...SubscribeOption) *recorder {
	lw, err := CreateLog(filepath.Join(b.TempDir(), LogFile))
	if err != nil {
		b.Fatal(err)
	}
	r := &recorder{bus: NewBus(WithLogger(quiet)), lw: lw, errc: make(chan error, 1)}
	r.sub = r.bus.Subscribe("log", opts...)
	go func() { r.errc <- lw.Record(b.Context(), r.sub) }()
	return r
}

// finish closes the bus and waits until the log holds every event it received.
func (r *recorder) finish(b *testing.B) {
	_ = r.bus.Close() // drops are reported as a metric
	if err := <-r.errc; err != nil && r.sub.Dropped() == 0 {
		b.Fatal(err)
	}
	if err := r.lw.Close(); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkPublish publishes as fast as p producers can, with the log attached: the
// capacity of the bus and the log writer, far beyond any run's rate. An op is one
// event; events/s counts from the first Publish until the log is flushed. With
// producers outrunning the writer the log's subscription may overflow: dropped says
// how many events it lost.
func BenchmarkPublish(b *testing.B) {
	for _, p := range []int{1, 4} {
		b.Run(fmt.Sprintf("producers=%d", p), func(b *testing.B) {
			evs := make([]Event, 64)
			for i := range evs {
				evs[i] = benchMakers[i%len(benchMakers)](i)
			}
			r := newRecorder(b)
			b.ReportAllocs()
			b.ResetTimer()
			start := time.Now()
			var wg sync.WaitGroup
			for g := range p {
				n := b.N / p
				if g == 0 {
					n += b.N % p
				}
				wg.Go(func() {
					for i := range n {
						r.bus.Publish(evs[i%len(evs)])
					}
				})
			}
			wg.Wait()
			published := time.Since(start)
			r.finish(b)
			total := time.Since(start)
			b.StopTimer()
			b.ReportMetric(float64(b.N)/published.Seconds(), "published/s")
			b.ReportMetric(float64(r.lw.Written())/total.Seconds(), "logged/s")
			b.ReportMetric(float64(r.sub.Dropped()), "dropped")
		})
	}
}

// BenchmarkSustained publishes at a fixed rate from three producers (load windows,
// stats samples, pod events, each made with New as producers do) to the log and two
// engine-like subscribers, one decoding every payload, one counting. An op is one
// event, so a run lasts b.N/rate: run it with -benchtime 5s or more. It reports the
// rate achieved; the events lost (which must be 0) by all subscribers and by the log;
// the fullest any subscriber's buffer got (peak, out of DefaultBuffer) and the log's;
// and how long Publish calls took, 99th percentile and longest. On a busy machine the
// longest is the scheduler's doing: a publisher descheduled while it holds the bus's
// lock delays the others.
func BenchmarkSustained(b *testing.B) {
	for _, rate := range []int{10_000, 20_000, 50_000} {
		b.Run(fmt.Sprintf("rate=%dk", rate/1000), func(b *testing.B) {
			r := newRecorder(b)
			decoder := r.bus.Subscribe("engine")
			counter := r.bus.Subscribe("progress")
			var consumers sync.WaitGroup
			var decodeErrs, counted atomic.Int64
			consumers.Go(func() {
				for e := range decoder.Events() {
					var err error
					switch e.Type {
					case LoadWindow:
						err = e.Decode(&Window{})
					case StatsSample:
						err = e.Decode(&Sample{})
					case PodReady:
						err = e.Decode(&Pod{})
					}
					if err != nil {
						decodeErrs.Add(1)
					}
				}
			})
			consumers.Go(func() {
				for range counter.Events() {
					counted.Add(1)
				}
			})

			producers := len(benchMakers)
			lat := make([][]time.Duration, producers) // each Publish call's duration
			b.ReportAllocs()
			b.ResetTimer()
			start := time.Now()
			var wg sync.WaitGroup
			for g, mk := range benchMakers {
				n := b.N / producers
				if g == 0 {
					n += b.N % producers
				}
				lat[g] = make([]time.Duration, 0, n)
				perProducer := float64(rate) / float64(producers)
				wg.Go(func() {
					for sent := 0; sent < n; {
						// Publish what is due by now, then wait a millisecond: the
						// average rate is exact, with bursts of rate/1000 events.
						due := min(n, int(time.Since(start).Seconds()*perProducer)+1)
						for ; sent < due; sent++ {
							e := mk(sent)
							t := time.Now()
							r.bus.Publish(e)
							lat[g] = append(lat[g], time.Since(t))
						}
						if sent < n {
							time.Sleep(time.Millisecond)
						}
					}
				})
			}
			wg.Wait()
			elapsed := time.Since(start)
			r.finish(b)
			consumers.Wait()
			b.StopTimer()
			if decodeErrs.Load() != 0 {
				b.Fatalf("%d payloads did not decode", decodeErrs.Load())
			}
			if counted.Load() != int64(b.N) && r.bus.Dropped() == 0 {
				b.Fatalf("progress subscriber counted %d of %d events", counted.Load(), b.N)
			}
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "events/s")
			b.ReportMetric(float64(r.bus.Dropped()), "dropped")
			b.ReportMetric(float64(r.sub.Dropped()), "log-dropped")
			b.ReportMetric(float64(max(r.sub.Peak(), decoder.Peak(), counter.Peak())), "peak")
			b.ReportMetric(float64(r.sub.Peak()), "log-peak")
			all := slices.Concat(lat...)
			slices.Sort(all)
			b.ReportMetric(float64(all[len(all)*99/100])/1e3, "p99-publish-µs")
			b.ReportMetric(float64(all[len(all)-1])/1e3, "max-publish-µs")
		})
	}
}

// BenchmarkLogWriter is the log writer alone, writing to a file: the rate at which it
// drains its subscription.
func BenchmarkLogWriter(b *testing.B) {
	evs := make([]Event, 64)
	for i := range evs {
		evs[i] = benchMakers[i%len(benchMakers)](i)
		evs[i].Seq, evs[i].Time, evs[i].Elapsed = uint64(i+1), t0, time.Duration(i)*time.Millisecond
	}
	lw, err := CreateLog(filepath.Join(b.TempDir(), LogFile))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if err := lw.Write(evs[i%len(evs)]); err != nil {
			b.Fatal(err)
		}
	}
	if err := lw.Close(); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkReadLog reads a log back, as drill report does.
func BenchmarkReadLog(b *testing.B) {
	evs := make([]Event, 10000)
	for i := range evs {
		evs[i] = benchMakers[i%len(benchMakers)](i)
		evs[i].Seq, evs[i].Time, evs[i].Elapsed = uint64(i+1), t0.Add(time.Duration(i)*time.Millisecond), time.Duration(i)*time.Millisecond
	}
	log := encode(b, evs)
	b.SetBytes(int64(len(log)))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		got, err := readAll(bytes.NewReader(log))
		if err != nil || len(got) != len(evs) {
			b.Fatal(len(got), err)
		}
	}
	b.ReportMetric(float64(b.N*len(evs))/b.Elapsed().Seconds(), "events/s")
}
