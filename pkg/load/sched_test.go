package load

import (
	"context"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/meshdrill/drill/pkg/event"
)

// TestSchedReaderSeesStarvation: goroutines that must wait for the only
// thread behind CPU-bound ones show up as long scheduling waits, longer than
// without the CPU-bound ones.
func TestSchedReaderSeesStarvation(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))

	// wakers become runnable every millisecond, as a load generator's workers
	// do when answers arrive.
	wake := func(stop *atomic.Bool, wg *sync.WaitGroup) {
		for range 8 {
			wg.Go(func() {
				for !stop.Load() {
					time.Sleep(time.Millisecond)
				}
			})
		}
	}

	quiet := newSchedReader()
	var stop atomic.Bool
	var wg sync.WaitGroup
	wake(&stop, &wg)
	time.Sleep(200 * time.Millisecond)
	waits, p99, _ := quiet.read()
	stop.Store(true)
	wg.Wait()
	if waits == 0 {
		t.Fatal("no scheduling waits recorded while goroutines slept and woke")
	}
	quietP99 := p99

	// CPU-bound goroutines that yield only when preempted (every 10 ms): the
	// wakers wait behind them.
	starved := newSchedReader()
	stop.Store(false)
	wake(&stop, &wg)
	for range 4 {
		wg.Go(func() {
			for !stop.Load() {
			}
		})
	}
	deadline := time.Now().Add(10 * time.Second)
	var worst time.Duration
	for time.Now().Before(deadline) && worst < 20*time.Millisecond {
		time.Sleep(100 * time.Millisecond)
		if _, p, _ := starved.read(); p > worst {
			worst = p
		}
	}
	stop.Store(true)
	wg.Wait()
	if worst < 20*time.Millisecond {
		t.Fatalf("behind 4 CPU-bound goroutines on one thread, the worst p99 wait was %v; want ≥ 20ms", worst)
	}
	if quietP99 >= worst {
		t.Fatalf("waits without CPU-bound goroutines (p99 %v) were no shorter than with them (%v)", quietP99, worst)
	}
}

// TestWatchSchedIntervals: the intervals are contiguous from 0, one per tick
// and a last partial one.
func TestWatchSchedIntervals(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	var got []event.Sched
	var mu sync.Mutex
	done := make(chan struct{})
	began := time.Now()
	go func() {
		defer close(done)
		watchSched(ctx, 20*time.Millisecond, began, func(s event.Sched) {
			mu.Lock()
			got = append(got, s)
			mu.Unlock()
		})
	}()
	deadline := time.Now().Add(5 * time.Second)
	for {
		mu.Lock()
		n := len(got)
		mu.Unlock()
		if n >= 3 || time.Now().After(deadline) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	<-done
	if len(got) < 3 {
		t.Fatalf("%d intervals in 5 s at a 20 ms interval", len(got))
	}
	var last time.Duration
	for i, s := range got {
		if s.Start != last || s.End < s.Start {
			t.Fatalf("interval %d is [%v, %v) after one ending at %v", i, s.Start, s.End, last)
		}
		last = s.End
	}
}
