package event

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

// quiet is a logger for buses whose warnings a test does not look at.
var quiet = slog.New(slog.DiscardHandler)

// waitDone fails the test unless done is closed within d; what names what was awaited.
func waitDone(t *testing.T, done <-chan struct{}, d time.Duration, what string) {
	t.Helper()
	select {
	case <-done:
	case <-time.After(d):
		t.Fatalf("%s did not happen within %v", what, d)
	}
}

// drain receives until the subscription's channel closes or d passes.
func drain(t *testing.T, s *Subscription, d time.Duration) []Event {
	t.Helper()
	var got []Event
	deadline := time.After(d)
	for {
		select {
		case e, ok := <-s.Events():
			if !ok {
				return got
			}
			got = append(got, e)
		case <-deadline:
			t.Fatalf("subscription %q not closed within %v (received %d events)", s.Name(), d, len(got))
		}
	}
}

func seqs(evs []Event) []uint64 {
	out := make([]uint64, len(evs))
	for i, e := range evs {
		out[i] = e.Seq
	}
	return out
}

// publishAll publishes n events from each of p goroutines. Source names the producer
// and Data carries its own counter, so that per-producer order can be checked.
func publishAll(b *Bus, p, n int) {
	var wg sync.WaitGroup
	for g := range p {
		wg.Go(func() {
			for i := range n {
				b.Publish(New(LoadWindow, "cluster1", fmt.Sprintf("producer-%d", g), map[string]int{"i": i}))
			}
		})
	}
	wg.Wait()
}

func TestPublishNumbersStampsAndOrders(t *testing.T) {
	const producers, each = 4, 500
	before := time.Now()
	b := NewBus(WithLogger(quiet))
	sub := b.Subscribe("all", WithBuffer(producers*each))
	publishAll(b, producers, each)
	after := time.Now()
	if err := b.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	got := drain(t, sub, 10*time.Second)

	if len(got) != producers*each {
		t.Fatalf("received %d events, want %d", len(got), producers*each)
	}
	next := map[string]int{}
	for i, e := range got {
		if e.Seq != uint64(i+1) {
			t.Fatalf("event %d has seq %d, want %d", i, e.Seq, i+1)
		}
		if e.Time.Location() != time.UTC {
			t.Errorf("seq %d: time %v is not UTC", e.Seq, e.Time)
		}
		if e.Time.Before(before) || e.Time.After(after) {
			t.Errorf("seq %d: time %v outside [%v, %v]", e.Seq, e.Time, before, after)
		}
		if i > 0 {
			prev := got[i-1]
			if e.Elapsed < prev.Elapsed || e.Time.Before(prev.Time) {
				t.Errorf("seq %d stamped (%v, %v) before seq %d (%v, %v)", e.Seq, e.Time, e.Elapsed, prev.Seq, prev.Time, prev.Elapsed)
			}
		}
		if e.Elapsed < 0 || e.Elapsed > after.Sub(before) {
			t.Errorf("seq %d: elapsed %v outside [0, %v]", e.Seq, e.Elapsed, after.Sub(before))
		}
		var p struct{ I int }
		if err := e.Decode(&p); err != nil {
			t.Fatal(err)
		}
		if p.I != next[e.Source] {
			t.Fatalf("seq %d: %s's event %d arrived when %d was due", e.Seq, e.Source, p.I, next[e.Source])
		}
		next[e.Source]++
	}
	if b.Published() != uint64(producers*each) || b.Dropped() != 0 {
		t.Errorf("Published %d Dropped %d, want %d and 0", b.Published(), b.Dropped(), producers*each)
	}
	if skew := got[0].Time.Sub(b.Start().Add(got[0].Elapsed)); skew < -time.Second || skew > time.Second {
		t.Errorf("Time and Start+Elapsed differ by %v", skew)
	}
}

func TestFanOut(t *testing.T) {
	for _, n := range []int{1, 3, 8} {
		t.Run(fmt.Sprintf("subscribers=%d", n), func(t *testing.T) {
			b := NewBus(WithLogger(quiet))
			subs := make([]*Subscription, n)
			results := make([][]Event, n)
			var wg sync.WaitGroup
			for i := range subs {
				// Small buffers read concurrently: delivery must not depend on
				// a reader having room for the whole run.
				subs[i] = b.Subscribe(fmt.Sprintf("sub-%d", i), WithBuffer(4096))
				wg.Go(func() { results[i] = drain(t, subs[i], 20*time.Second) })
			}
			publishAll(b, 2, 1000)
			if err := b.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
			wg.Wait()
			for i, got := range results {
				if len(got) != 2000 {
					t.Fatalf("sub-%d received %d events, want 2000", i, len(got))
				}
				for j := range got {
					if got[j].Seq != results[0][j].Seq || !bytes.Equal(got[j].Data, results[0][j].Data) || got[j].Time != results[0][j].Time {
						t.Fatalf("sub-%d event %d = %+v, sub-0 got %+v", i, j, got[j], results[0][j])
					}
				}
				if d := subs[i].Dropped(); d != 0 {
					t.Errorf("sub-%d dropped %d", i, d)
				}
			}
		})
	}
}

func TestStuckSubscriberDoesNotBlockPublish(t *testing.T) {
	const n, buf = 20000, 8
	var logs bytes.Buffer
	b := NewBus(WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	stuck := b.Subscribe("stuck", WithBuffer(buf)) // never read until the end
	healthy := b.Subscribe("healthy", WithBuffer(n+1))

	done := make(chan struct{})
	go func() {
		defer close(done)
		publishAll(b, 4, n/4)
	}()
	waitDone(t, done, 10*time.Second, "Publish of 20000 events with a stuck subscriber")

	// It lost every event but the first 8, and the notice of its first loss.
	if got, want := stuck.Dropped(), uint64(n+1-buf); got != want {
		t.Errorf("stuck.Dropped() = %d, want %d", got, want)
	}
	if got := healthy.Dropped(); got != 0 {
		t.Errorf("healthy.Dropped() = %d, want 0", got)
	}
	if got, want := b.Dropped(), uint64(n+1-buf); got != want {
		t.Errorf("bus.Dropped() = %d, want %d", got, want)
	}
	if stuck.Peak() != buf {
		t.Errorf("stuck.Peak() = %d, want %d", stuck.Peak(), buf)
	}
	if c := strings.Count(logs.String(), "not keeping up"); c != 1 {
		t.Errorf("warned %d times about the stuck subscriber, want once:\n%s", c, logs.String())
	}

	err := b.Close()
	if !errors.Is(err, ErrDropped) || !strings.Contains(err.Error(), `"stuck" lost 19993 events`) {
		t.Fatalf("Close() = %v, want ErrDropped naming the stuck subscriber and its loss", err)
	}

	// The stuck subscriber gets what it buffered, then the drop report, then the end.
	got := drain(t, stuck, 5*time.Second)
	if want := []uint64{1, 2, 3, 4, 5, 6, 7, 8, n + 2}; fmt.Sprint(seqs(got)) != fmt.Sprint(want) {
		t.Fatalf("stuck received seqs %v, want %v", seqs(got), want)
	}
	report := got[len(got)-1]
	var line LogLine
	if err := report.Decode(&line); err != nil {
		t.Fatal(err)
	}
	if report.Type != Log || report.Source != "event/bus" || line.Level != "warn" || !strings.Contains(line.Message, `"stuck" lost 19993 events`) {
		t.Errorf("drop report = %+v %+v", report, line)
	}
	// The healthy subscriber (the log, in a run) also learnt of the loss when it
	// began, right after the first event the stuck one lost.
	all := drain(t, healthy, 5*time.Second)
	if len(all) != n+2 || all[n+1].Seq != n+2 || all[n+1].Type != Log {
		t.Fatalf("healthy received %d events ending with %+v, want %d ending with the drop report", len(all), all[len(all)-1], n+2)
	}
	notice := all[buf+1]
	if err := notice.Decode(&line); err != nil {
		t.Fatal(err)
	}
	if notice.Seq != buf+2 || notice.Type != Log || !strings.Contains(line.Message, `"stuck" is not keeping up`) || !strings.Contains(line.Message, "from seq 9 on") {
		t.Errorf("event after the first loss = %+v %q, want the bus's notice", notice, line.Message)
	}
}

func TestDropsShowAsGaps(t *testing.T) {
	tests := []struct {
		name    string
		buffer  int
		rounds  []int // publish this many, then read everything buffered
		want    []uint64
		notice  uint64 // seq of the bus's notice of the first loss
		dropped uint64
	}{
		{name: "never full", buffer: 10, rounds: []int{5, 5}, want: []uint64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}},
		// The first loss is followed by the bus's notice (seq 6), lost too.
		{name: "full once", buffer: 4, rounds: []int{6, 2}, want: []uint64{1, 2, 3, 4, 8, 9}, notice: 6, dropped: 3},
		{name: "full twice", buffer: 2, rounds: []int{3, 1, 4}, want: []uint64{1, 2, 5, 6, 7}, notice: 4, dropped: 4},
		{name: "buffer below one means one", buffer: 0, rounds: []int{2, 2}, want: []uint64{1, 4}, notice: 3, dropped: 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := NewBus(WithLogger(quiet))
			s := b.Subscribe("s", WithBuffer(tt.buffer))
			witness := b.Subscribe("witness")
			var got []uint64
			for _, n := range tt.rounds {
				for range n {
					b.Publish(New(StepStarted, "", "test", nil))
				}
				for len(s.Events()) > 0 {
					got = append(got, (<-s.Events()).Seq)
				}
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("received %v, want %v", got, tt.want)
			}
			if s.Dropped() != tt.dropped || b.Dropped() != tt.dropped {
				t.Errorf("Dropped: subscription %d, bus %d, want %d", s.Dropped(), b.Dropped(), tt.dropped)
			}
			err := b.Close()
			if (err != nil) != (tt.dropped > 0) {
				t.Errorf("Close() = %v with %d dropped", err, tt.dropped)
			}
			var notices []uint64
			for _, e := range drain(t, witness, time.Second) {
				if e.Type == Log && strings.Contains(string(e.Data), "is not keeping up") {
					notices = append(notices, e.Seq)
				}
			}
			if want := []uint64{tt.notice}; tt.notice == 0 && len(notices) > 0 || tt.notice > 0 && fmt.Sprint(notices) != fmt.Sprint(want) {
				t.Errorf("notices of loss at seqs %v, want %d", notices, tt.notice)
			}
		})
	}
}

func TestClose(t *testing.T) {
	b := NewBus(WithLogger(quiet))
	s := b.Subscribe("s")
	for range 3 {
		b.Publish(New(StepStarted, "", "test", nil))
	}
	if err := b.Close(); err != nil {
		t.Fatalf("Close without drops = %v, want nil", err)
	}
	if err := b.Close(); err != nil {
		t.Fatalf("second Close = %v, want nil", err)
	}
	b.Publish(New(StepStarted, "", "test", nil))
	b.Publish(New(StepStarted, "", "test", nil))
	if b.Ignored() != 2 || b.Published() != 3 {
		t.Errorf("after Close: Ignored %d Published %d, want 2 and 3", b.Ignored(), b.Published())
	}

	// Buffered events are still delivered, then ErrClosed, for good.
	ctx := t.Context()
	for want := uint64(1); want <= 3; want++ {
		e, err := s.Next(ctx)
		if err != nil || e.Seq != want {
			t.Fatalf("Next = %d, %v; want %d", e.Seq, err, want)
		}
	}
	for range 2 {
		if _, err := s.Next(ctx); !errors.Is(err, ErrClosed) {
			t.Fatalf("Next after drain = %v, want ErrClosed", err)
		}
	}

	late := b.Subscribe("late")
	if _, err := late.Next(ctx); !errors.Is(err, ErrClosed) {
		t.Errorf("Next on a subscription made after Close = %v, want ErrClosed", err)
	}
	s.Unsubscribe() // harmless after Close
}

func TestCloseWhilePublishing(t *testing.T) {
	b := NewBus(WithLogger(quiet))
	s := b.Subscribe("s", WithBuffer(1<<20))
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 5000 {
				b.Publish(New(StepStarted, "", "test", nil))
			}
		})
	}
	_ = b.Close()
	wg.Wait()
	got := drain(t, s, 10*time.Second)
	if uint64(len(got)) != b.Published() {
		t.Errorf("received %d events, bus published %d", len(got), b.Published())
	}
	if b.Published()+b.Ignored() != 20000 {
		t.Errorf("Published %d + Ignored %d != 20000", b.Published(), b.Ignored())
	}
	for i, e := range got {
		if e.Seq != uint64(i+1) {
			t.Fatalf("event %d has seq %d", i, e.Seq)
		}
	}
}

func TestUnsubscribe(t *testing.T) {
	b := NewBus(WithLogger(quiet))
	gone := b.Subscribe("gone")
	stays := b.Subscribe("stays")
	b.Publish(New(StepStarted, "", "test", nil))
	gone.Unsubscribe()
	gone.Unsubscribe()
	b.Publish(New(StepStarted, "", "test", nil))
	if got := seqs(drain(t, gone, time.Second)); fmt.Sprint(got) != "[1]" {
		t.Errorf("unsubscribed received %v, want [1]", got)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if got := seqs(drain(t, stays, time.Second)); fmt.Sprint(got) != "[1 2]" {
		t.Errorf("remaining subscriber received %v, want [1 2]", got)
	}
}

func TestNextHonoursContext(t *testing.T) {
	b := NewBus(WithLogger(quiet))
	defer b.Close()
	s := b.Subscribe("s")
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Millisecond)
	defer cancel()
	if _, err := s.Next(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Next on an idle bus = %v, want the context's error", err)
	}
}
