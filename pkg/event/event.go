package event

import (
	"encoding/json"
	"fmt"
	"time"
)

// Type names what kind of thing happened. The payload carried in Event.Data is fixed
// by the type; the payload structs live beside the constants in this package so that
// producers and consumers (engine, report) share one definition.
type Type string

// Event is one thing that happened during a drill.
type Event struct {
	// Seq is the position of the event in the run, from 1, assigned by the Bus.
	Seq uint64 `json:"seq"`
	// Time is the wall-clock time (UTC) at which the Bus accepted the event.
	Time time.Time `json:"time"`
	// Elapsed is the time since the Bus started, read from the monotonic clock, so
	// that ordering and durations survive wall-clock steps.
	Elapsed time.Duration `json:"elapsed"`
	Type    Type          `json:"type"`
	// Cluster is the cluster the event is about, when it is about one.
	Cluster string `json:"cluster,omitempty"`
	// Source names the producer (e.g. "load", "stats/productpage", "fault/reviews-down").
	Source string `json:"source,omitempty"`
	// Data is the JSON-encoded payload; its shape is fixed by Type.
	Data json.RawMessage `json:"data,omitempty"`
}

// Publisher accepts events. Publish must not block on slow consumers.
type Publisher interface {
	Publish(Event)
}

// New builds an event of type t carrying payload (which may be nil). Seq, Time and
// Elapsed are filled by the Bus when the event is published.
func New(t Type, cluster, source string, payload any) Event {
	e := Event{Type: t, Cluster: cluster, Source: source}
	if payload != nil {
		b, err := json.Marshal(payload)
		if err != nil {
			// Payloads are plain structs defined in this package; failing to encode one
			// is a programming error worth surfacing in the log rather than dropping.
			b, _ = json.Marshal(map[string]string{"encodeError": err.Error()})
		}
		e.Data = b
	}
	return e
}

// Decode unmarshals the event's payload into v.
func (e Event) Decode(v any) error {
	if len(e.Data) == 0 {
		return fmt.Errorf("event %d (%s) has no payload", e.Seq, e.Type)
	}
	if err := json.Unmarshal(e.Data, v); err != nil {
		return fmt.Errorf("event %d (%s): decode payload: %w", e.Seq, e.Type, err)
	}
	return nil
}
