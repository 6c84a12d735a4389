// Package event is the record of a drill: every part of a run (load, faults, stats
// scrapes, cluster watches, the step timeline) publishes typed, timestamped events on
// one Bus, the Bus fans them out to subscribers and to the on-disk log (events.jsonl),
// and the report is computed from that log alone.
//
// # The Bus
//
// NewBus starts a Bus; Publish gives each event its Seq (1, 2, … in publication
// order), its wall-clock Time (UTC) and its Elapsed time since the Bus started (on the
// monotonic clock), then hands it to every Subscription. Publish never waits for a
// subscriber: each Subscription has a bounded buffer (DefaultBuffer events unless
// WithBuffer says otherwise), and a subscriber whose buffer is full loses the event.
// A loss is never silent: it is counted (Subscription.Dropped, Bus.Dropped), shows as
// a gap in Seq, and is announced twice on the Bus itself, so that the log records it:
// when a subscriber loses its first event, a Log event (Source "event/bus") says so at
// that point of the run, and Close publishes a final one naming every subscriber that
// lost events and how many, which even a stuck subscriber receives, and returns an
// error wrapping ErrDropped. The Bus also warns through log/slog.
// Each subscriber receives events in Seq order. Close ends the Bus: later Publish
// calls are ignored (and counted), and every subscriber receives what was buffered,
// then sees its channel closed.
//
// # The log
//
// A LogWriter writes one Event per line as JSON (JSON Lines), buffered and flushed
// periodically and on Close; LogWriter.Record attaches it to a Subscription.
// ReadLog and LogReader read it back, field for field. A log whose last line was cut
// short by a killed run reads up to that line, with an error wrapping ErrTruncated.
//
// A run wires them like this:
//
//	bus := event.NewBus()
//	lw, err := event.CreateLog(filepath.Join(dir, event.LogFile))
//	…
//	sub := bus.Subscribe("log")
//	go func() { errc <- lw.Record(context.WithoutCancel(ctx), sub) }()
//	… components Publish …
//	dropErr := bus.Close() // Record returns once it has written the last event
//	recErr := <-errc
//	closeErr := lw.Close()
package event
