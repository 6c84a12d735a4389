package event

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultBuffer is the number of events a subscription holds for its reader before
// the Bus starts dropping events for it. At 10,000 events/s it absorbs a reader stall
// of 1.6 s; a slot costs about 112 bytes plus the payload the event points to, so a
// full default buffer of typical events stays within a few MiB.
const DefaultBuffer = 16384

// ErrDropped is wrapped by the errors that report events lost by a subscriber that
// did not keep up: Bus.Close and LogWriter.Record return it.
var ErrDropped = errors.New("events were dropped")

// ErrClosed is returned by Subscription.Next once the subscription is closed and
// every event buffered before that has been received.
var ErrClosed = errors.New("event subscription closed")

// busSource is the Source of the events the Bus publishes itself.
const busSource = "event/bus"

// Bus numbers, timestamps and fans out the events of one run.
//
// Publish never blocks on subscribers: every subscription has a bounded buffer and an
// event that finds it full is dropped for that subscriber alone and counted. A
// subscriber receives events in Seq order, with no gap unless it fell behind.
type Bus struct {
	start time.Time // carries the monotonic reading Elapsed is measured from
	log   *slog.Logger

	mu     sync.Mutex
	seq    uint64
	subs   []*Subscription
	closed bool

	dropped atomic.Uint64 // every event lost by every subscriber
	ignored atomic.Uint64 // Publish calls after Close
}

// BusOption configures a Bus.
type BusOption func(*Bus)

// WithLogger sets where the Bus warns about subscribers that fall behind; the default
// is slog.Default().
func WithLogger(l *slog.Logger) BusOption {
	return func(b *Bus) { b.log = l }
}

// NewBus starts a Bus. Its start instant is now: the Elapsed of every event is
// measured from it on the monotonic clock.
func NewBus(opts ...BusOption) *Bus {
	b := &Bus{start: time.Now(), log: slog.Default()}
	for _, o := range opts {
		o(b)
	}
	return b
}

// Start is the wall-clock instant (UTC) the Bus started; an event happened at
// Start().Add(e.Elapsed) on the monotonic clock.
func (b *Bus) Start() time.Time { return b.start.UTC() }

// Publish numbers e (Seq), stamps it (Time, Elapsed; any values already set are
// replaced) and hands it to every subscriber. It never waits for a subscriber: one
// whose buffer is full loses the event, and the loss is counted. The first time a
// subscriber loses an event, Publish also publishes a Log event (Source "event/bus",
// level "warn") saying so, which the other subscribers, the log among them, receive
// at the point of the run where it happened. Publish after Close does nothing but
// count the event in Ignored. Safe for concurrent use.
//
// Subscribers share e.Data and must not modify it.
func (b *Bus) Publish(e Event) { b.Emit(e) }

// Emit is Publish that returns the Seq it gave e, or 0 when the Bus is closed:
// what LogWriter.Sync waits for when an event must be on disk before the run goes
// on.
func (b *Bus) Emit(e Event) uint64 {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		b.ignored.Add(1)
		return 0
	}
	late, seq := b.deliver(e)
	// A notice can itself be lost by a subscriber whose buffer is full, making it
	// late in turn; each subscriber is late once, so this ends.
	for i := 0; i < len(late); i++ {
		s := late[i]
		more, _ := b.deliver(New(Log, "", busSource, LogLine{Level: "warn", Message: fmt.Sprintf(
			"event bus: subscriber %q is not keeping up: its buffer of %d events is full, so it is losing events from seq %d on",
			s.name, s.limit, s.firstLost)}))
		late = append(late, more...)
	}
	b.mu.Unlock()
	for _, s := range late {
		// Once per subscriber: a stuck subscriber would otherwise log at the
		// publication rate. Close reports the totals.
		b.log.Warn("event subscriber is not keeping up; it is losing events",
			"subscriber", s.name, "buffer", s.limit, "firstLostSeq", s.firstLost)
	}
	return seq
}

// deliver stamps e and offers it to every subscriber, returning those that lost
// their first event to it, and the Seq it gave e. Called with b.mu held.
func (b *Bus) deliver(e Event) (late []*Subscription, seq uint64) {
	// Stamping under the lock makes Seq, Time and Elapsed increase together, and
	// delivering under it makes every subscriber see the same order.
	now := time.Now()
	b.seq++
	e.Seq = b.seq
	e.Time = now.UTC()
	e.Elapsed = now.Sub(b.start)
	for _, s := range b.subs {
		if s.offer(e) {
			continue
		}
		b.dropped.Add(1)
		if s.dropped.Add(1) == 1 {
			s.firstLost = e.Seq
			late = append(late, s)
		}
	}
	return late, e.Seq
}

// Subscribe adds a subscriber that receives every event published from now on. name
// identifies it in warnings and in the drop report. Subscribing to a closed Bus gives
// a subscription that is already closed.
//
// Subscribe before the events you need are published: a component that starts a
// goroutine to consume should subscribe first, then start the goroutine.
func (b *Bus) Subscribe(name string, opts ...SubscribeOption) *Subscription {
	s := &Subscription{name: name, bus: b, limit: DefaultBuffer}
	for _, o := range opts {
		o(s)
	}
	if s.limit < 1 {
		s.limit = 1
	}
	// One slot more than the limit: publications stop at the limit, so the last slot
	// is always free for the drop report Close delivers even to a stuck subscriber.
	s.ch = make(chan Event, s.limit+1)
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		s.closed = true
		close(s.ch)
		return s
	}
	b.subs = append(b.subs, s)
	return s
}

// Close stops the Bus. Later Publish calls are ignored. If any subscriber lost events,
// Close first publishes a Log event (Source "event/bus", level "warn") naming each
// such subscriber and its loss, which every subscriber receives as its last event,
// stuck or not, and returns an error wrapping ErrDropped. Then it closes every
// subscription: each reader still receives what was buffered, then sees its channel
// closed. Close is idempotent and does not wait for readers.
func (b *Bus) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil
	}
	b.closed = true
	var lost []string
	for _, s := range b.subs {
		if d := s.dropped.Load(); d > 0 {
			lost = append(lost, fmt.Sprintf("subscriber %q lost %d events (its buffer of %d was full)", s.name, d, s.limit))
		}
	}
	var err error
	if len(lost) > 0 {
		msg := strings.Join(lost, "; ")
		now := time.Now()
		b.seq++
		e := New(Log, "", busSource, LogLine{Level: "warn", Message: "event bus: " + msg})
		e.Seq, e.Time, e.Elapsed = b.seq, now.UTC(), now.Sub(b.start)
		for _, s := range b.subs {
			s.ch <- e // the reserved slot: cannot block, see Subscribe
		}
		err = fmt.Errorf("event bus: %s: %w; give slow subscribers a larger buffer (event.WithBuffer) or make them faster", msg, ErrDropped)
		b.log.Warn("event bus closed with lost events", "detail", msg)
	}
	for _, s := range b.subs {
		s.closed = true
		close(s.ch)
	}
	b.subs = nil
	return err
}

// Published is the number of events the Bus has numbered, its own included.
func (b *Bus) Published() uint64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.seq
}

// Dropped is the number of deliveries lost across all subscribers: an event lost by
// two subscribers counts twice.
func (b *Bus) Dropped() uint64 { return b.dropped.Load() }

// Ignored is the number of events published after Close.
func (b *Bus) Ignored() uint64 { return b.ignored.Load() }

// Subscription is one subscriber's view of a Bus: a bounded buffer of events in Seq
// order, read through Events or Next.
type Subscription struct {
	name  string
	bus   *Bus
	limit int
	ch    chan Event

	// Written under bus.mu; read atomically by anyone.
	dropped atomic.Uint64
	peak    atomic.Int64

	// Guarded by bus.mu.
	closed    bool
	firstLost uint64 // the Seq of the first event the subscriber lost
}

// SubscribeOption configures a Subscription.
type SubscribeOption func(*Subscription)

// WithBuffer sets how many events the subscription holds for its reader before the
// Bus drops events for it (default DefaultBuffer). Size it for the longest stall the
// reader can have at the highest event rate of a run.
func WithBuffer(n int) SubscribeOption {
	return func(s *Subscription) { s.limit = n }
}

// offer delivers e if the buffer is below its limit. Called with bus.mu held: every
// send happens under that lock and the reader only ever empties the channel, so the
// length check cannot be overtaken and the send never blocks.
func (s *Subscription) offer(e Event) bool {
	n := len(s.ch)
	if n >= s.limit {
		return false
	}
	s.ch <- e
	if int64(n+1) > s.peak.Load() {
		s.peak.Store(int64(n + 1))
	}
	return true
}

// Name is the name given to Subscribe.
func (s *Subscription) Name() string { return s.name }

// Events is the channel the subscription's events arrive on. It is closed after the
// Bus closes (or Unsubscribe) and the events buffered before that are received.
func (s *Subscription) Events() <-chan Event { return s.ch }

// Next returns the next event, waiting for one until ctx is done. After the
// subscription is closed and drained it returns ErrClosed.
func (s *Subscription) Next(ctx context.Context) (Event, error) {
	select {
	case e, ok := <-s.ch:
		if !ok {
			return Event{}, ErrClosed
		}
		return e, nil
	case <-ctx.Done():
		return Event{}, ctx.Err()
	}
}

// Dropped is the number of events this subscriber lost because its buffer was full.
// A subscriber can also see a loss as a gap in Seq.
func (s *Subscription) Dropped() uint64 { return s.dropped.Load() }

// Peak is the largest number of events that were ever waiting in the buffer at once:
// how close the subscriber came to losing events.
func (s *Subscription) Peak() int { return int(s.peak.Load()) }

// Buffer is the buffer limit of the subscription.
func (s *Subscription) Buffer() int { return s.limit }

// Unsubscribe stops deliveries to the subscription and closes its channel once the
// events already buffered are received. It is idempotent.
func (s *Subscription) Unsubscribe() {
	b := s.bus
	b.mu.Lock()
	defer b.mu.Unlock()
	if s.closed {
		return
	}
	s.closed = true
	for i, x := range b.subs {
		if x == s {
			b.subs = append(b.subs[:i], b.subs[i+1:]...)
			break
		}
	}
	close(s.ch)
}
