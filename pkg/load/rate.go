package load

import (
	"fmt"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
)

// Shape is how the request rate of an attack changes over its duration: Constant, Ramp
// or Steps.
type Shape interface {
	// Pacer returns the vegeta pacer for an attack of the given duration (0: until
	// stopped), or an error saying what is wrong with the shape.
	Pacer(duration time.Duration) (vegeta.Pacer, error)
	// String describes the shape for people, e.g. "50/s" or "ramp 10/s → 100/s".
	String() string
}

// Constant is a fixed rate, e.g. Constant(vegeta.Rate{Freq: 50, Per: time.Second}).
func Constant(r vegeta.Rate) Shape { return constant{r} }

type constant struct{ rate vegeta.Rate }

func (c constant) Pacer(time.Duration) (vegeta.Pacer, error) {
	if err := positiveRate(c.rate); err != nil {
		return nil, fmt.Errorf("constant rate: %w", err)
	}
	return c.rate, nil
}

func (c constant) String() string { return formatRate(c.rate) }

// Ramp changes the rate linearly from one rate to another over the attack's duration,
// with vegeta's LinearPacer. Both ends must be above zero: LinearPacer reads a zero
// start rate as "unlimited", and its waits are one interval at the current rate, so a
// rate reaching zero would make it sleep past the end of the attack. As LinearPacer
// does not know the end, vegeta sends one last hit when it falls due, up to one interval
// (1/to) after the duration; it counts in the last window.
func Ramp(from, to vegeta.Rate) Shape { return ramp{from, to} }

type ramp struct{ from, to vegeta.Rate }

func (r ramp) Pacer(d time.Duration) (vegeta.Pacer, error) {
	if err := positiveRate(r.from); err != nil {
		return nil, fmt.Errorf("ramp from: %w (start the ramp at 1/s instead of 0/s)", err)
	}
	if err := positiveRate(r.to); err != nil {
		return nil, fmt.Errorf("ramp to: %w (end the ramp at 1/s instead of 0/s)", err)
	}
	if d <= 0 {
		return nil, fmt.Errorf("ramp %s: needs a duration to ramp over; set WithDuration", r)
	}
	// LinearPacer's slope is in hits/s per second of attack.
	slope := (perSecond(r.to) - perSecond(r.from)) / d.Seconds()
	return vegeta.LinearPacer{StartAt: r.from, Slope: slope}, nil
}

func (r ramp) String() string {
	return fmt.Sprintf("ramp %s → %s", formatRate(r.from), formatRate(r.to))
}

// positiveRate rejects rates vegeta would not pace: its ConstantPacer reads a zero
// frequency or period as "as fast as possible" and a negative one as "stop at once".
func positiveRate(r vegeta.Rate) error {
	if r.Freq <= 0 || r.Per <= 0 {
		return fmt.Errorf("rate %d per %s must be above zero", r.Freq, r.Per)
	}
	return nil
}

// perSecond is a rate in hits per second.
func perSecond(r vegeta.Rate) float64 {
	if r.Per <= 0 {
		return 0
	}
	return float64(r.Freq) / r.Per.Seconds()
}

// formatRate writes a rate the way scenarios spell it: "50/s", "3/m", "5/100ms".
func formatRate(r vegeta.Rate) string {
	switch r.Per {
	case time.Second:
		return fmt.Sprintf("%d/s", r.Freq)
	case time.Minute:
		return fmt.Sprintf("%d/m", r.Freq)
	case time.Hour:
		return fmt.Sprintf("%d/h", r.Freq)
	}
	return fmt.Sprintf("%d/%s", r.Freq, r.Per)
}
