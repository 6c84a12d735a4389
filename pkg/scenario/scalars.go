package scenario

import (
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
)

// Duration is a non-negative time.Duration written as Go writes durations: 500ms,
// 30s, 2m30s. Zero means unset wherever a default exists.
type Duration time.Duration

func (d *Duration) decodeScalar(s string) error {
	v, err := parseDuration(s)
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// D returns the duration as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

func (d Duration) String() string { return time.Duration(d).String() }

func parseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	v, err := time.ParseDuration(s)
	if err != nil {
		if _, nerr := strconv.ParseFloat(s, 64); nerr == nil {
			return 0, fmt.Errorf("duration %q needs a unit, e.g. %ss or %sms", s, s, s)
		}
		return 0, fmt.Errorf("%q is not a duration; write it like 500ms, 30s or 2m", s)
	}
	if v < 0 {
		return 0, fmt.Errorf("duration %q must not be negative", s)
	}
	return v, nil
}

// Freq is a request rate: 50/s, 3000/m, 20/100ms. A bare number is per second.
type Freq vegeta.Rate

func (f *Freq) decodeScalar(s string) error {
	v, err := parseFreq(s)
	if err != nil {
		return err
	}
	*f = v
	return nil
}

// Rate returns the frequency as vegeta's Rate.
func (f Freq) Rate() vegeta.Rate { return vegeta.Rate(f) }

// PerSecond is the frequency in requests per second.
func (f Freq) PerSecond() float64 {
	if f.Per <= 0 {
		return 0
	}
	return float64(f.Freq) / f.Per.Seconds()
}

func (f Freq) String() string {
	switch f.Per {
	case time.Second:
		return fmt.Sprintf("%d/s", f.Freq)
	case time.Minute:
		return fmt.Sprintf("%d/m", f.Freq)
	}
	return fmt.Sprintf("%d/%s", f.Freq, f.Per)
}

var perUnits = map[string]time.Duration{"s": time.Second, "m": time.Minute, "h": time.Hour, "ms": time.Millisecond}

func parseFreq(s string) (Freq, error) {
	s = strings.TrimSpace(s)
	num, per, hasPer := strings.Cut(s, "/")
	n, err := strconv.Atoi(strings.TrimSpace(num))
	if err != nil || n <= 0 {
		return Freq{}, fmt.Errorf("%q is not a rate; write it like 50/s or 3000/m (a positive whole number of requests per time unit)", s)
	}
	if !hasPer {
		return Freq{Freq: n, Per: time.Second}, nil
	}
	per = strings.TrimSpace(per)
	if d, ok := perUnits[per]; ok {
		return Freq{Freq: n, Per: d}, nil
	}
	d, err := time.ParseDuration(per)
	if err != nil || d <= 0 {
		return Freq{}, fmt.Errorf("%q is not a rate: %q is not a time unit (use s, m, or a duration like 100ms)", s, per)
	}
	return Freq{Freq: n, Per: d}, nil
}

// Rate is the shape of the load: constant (the scalar form, "50/s"), a linear ramp,
// or a list of steps. Exactly one is set.
type Rate struct {
	Constant *Freq      `yaml:"constant" doc:"A constant rate, e.g. 50/s (the same as writing the rate alone)."`
	Ramp     *Ramp      `yaml:"ramp" doc:"A linear ramp over the load's duration."`
	Steps    []RateStep `yaml:"steps" doc:"Constant rates held for a time each, in order; the last holds until the end." schema:"minItems=1"`
}

func (r *Rate) decodeScalar(s string) error {
	f, err := parseFreq(s)
	if err != nil {
		return err
	}
	r.Constant = &f
	return nil
}

// Ramp is a linear change of rate over the load's duration.
type Ramp struct {
	From Freq `yaml:"from" doc:"Rate at the start."`
	To   Freq `yaml:"to" doc:"Rate at the end."`
}

// RateStep is a rate held for a time.
type RateStep struct {
	Rate Freq     `yaml:"rate" doc:"The rate." schema:"required"`
	For  Duration `yaml:"for" doc:"How long it is held."`
}

// Reserved anchors of an Instant.
const (
	AnchorStart = "start"
	AnchorEnd   = "end"
)

// Instant is a moment of the drill: a duration since load start ("30s"), the moment a
// step fired ("reviews-down"), a step plus an offset ("reviews-down + 10s"), or the
// start or end of load ("start", "end + 5s" is not allowed past the end).
type Instant struct {
	// Anchor is a step name, AnchorStart or AnchorEnd.
	Anchor string
	Offset time.Duration
}

var nameRE = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)

func (in *Instant) decodeScalar(s string) error {
	v, err := parseInstant(s)
	if err != nil {
		return err
	}
	*in = v
	return nil
}

func parseInstant(s string) (Instant, error) {
	anchor, off, hasOff := strings.Cut(s, "+")
	anchor = strings.TrimSpace(anchor)
	if anchor == "" {
		return Instant{}, fmt.Errorf("%q is not a moment; write 30s, a step name, or 'step + 10s'", s)
	}
	if d, err := time.ParseDuration(anchor); err == nil {
		if hasOff {
			return Instant{}, fmt.Errorf("%q: write a single duration, e.g. 40s", s)
		}
		if d < 0 {
			return Instant{}, fmt.Errorf("%q must not be negative", s)
		}
		return Instant{Anchor: AnchorStart, Offset: d}, nil
	}
	if !nameRE.MatchString(anchor) {
		return Instant{}, fmt.Errorf("%q is not a moment: %q is neither a duration nor a step name; write 30s, a step name, or 'step + 10s'", s, anchor)
	}
	in := Instant{Anchor: anchor}
	if hasOff {
		d, err := parseDuration(off)
		if err != nil {
			return Instant{}, fmt.Errorf("%q: offset: %v", s, err)
		}
		in.Offset = d
	}
	return in, nil
}

func (in Instant) String() string {
	if in.Anchor == AnchorStart {
		if in.Offset == 0 {
			return AnchorStart
		}
		return in.Offset.String()
	}
	if in.Offset == 0 {
		return in.Anchor
	}
	return in.Anchor + " + " + in.Offset.String()
}

// IsStep reports whether the instant is relative to a step.
func (in Instant) IsStep() bool { return in.Anchor != AnchorStart && in.Anchor != AnchorEnd }

// Event names a step can be triggered by.
const (
	EventFailoverDetected = "failover-detected"
	EventFailbackDetected = "failback-detected"
	EventOutlierEjection  = "outlier-ejection"
	// EventHostEjected and EventPriorityChanged come from the observed Envoys'
	// own /clusters pages: a host ejected by outlier detection, the priority
	// level an Envoy cluster serves from first changed.
	EventHostEjected     = "host-ejected"
	EventPriorityChanged = "priority-changed"
)

var triggerEvents = []string{EventFailoverDetected, EventFailbackDetected, EventOutlierEjection, EventHostEjected, EventPriorityChanged}

// Trigger fires a step on an event: the first occurrence of Event (after the step
// named in After fired, if set), plus Delay. Written as a mapping or as the shorthand
// "failover-detected after reviews-down + 5s".
type Trigger struct {
	Event string   `yaml:"event" doc:"failover-detected, failback-detected, outlier-ejection, host-ejected or priority-changed." schema:"required,enum=failover-detected|failback-detected|outlier-ejection|host-ejected|priority-changed"`
	After string   `yaml:"after" doc:"Only count events after this step fired." schema:"name"`
	Delay Duration `yaml:"delay" doc:"Fire this long after the event."`
}

func (t *Trigger) decodeScalar(s string) error {
	rest, delay, hasDelay := strings.Cut(s, "+")
	fields := strings.Fields(rest)
	var tr Trigger
	switch {
	case len(fields) == 1:
		tr.Event = fields[0]
	case len(fields) == 3 && fields[1] == "after":
		tr.Event, tr.After = fields[0], fields[2]
	default:
		return fmt.Errorf("%q is not a trigger; write 'failover-detected', 'failover-detected + 5s' or 'failover-detected after reviews-down'", s)
	}
	if hasDelay {
		d, err := parseDuration(delay)
		if err != nil {
			return fmt.Errorf("%q: delay: %v", s, err)
		}
		tr.Delay = Duration(d)
	}
	*t = tr
	return nil
}

func (t Trigger) String() string {
	s := t.Event
	if t.After != "" {
		s += " after " + t.After
	}
	if t.Delay > 0 {
		s += " + " + t.Delay.String()
	}
	return s
}

// Wait is a step that waits: for a time (the scalar form, "20s"), or until a workload
// is ready again (with a timeout).
type Wait struct {
	For     Duration     `yaml:"for" doc:"Wait this long."`
	Ready   *WorkloadRef `yaml:"ready" doc:"Wait until every Deployment of this workload has all replicas ready."`
	Timeout Duration     `yaml:"timeout" doc:"Give up waiting for ready after this long (the step fails). Default: 2m."`
}

func (w *Wait) decodeScalar(s string) error {
	d, err := parseDuration(s)
	if err != nil {
		return err
	}
	w.For = Duration(d)
	return nil
}

// Percent is a share written as a percentage: 50%, 12.5%. It holds the share
// (0.5 for 50%); zero means unset.
type Percent float64

func (p *Percent) decodeScalar(s string) error {
	v, err := parsePercent(s)
	if err != nil {
		return err
	}
	*p = Percent(v)
	return nil
}

// Share is the percentage as a share: 0.5 for 50%.
func (p Percent) Share() float64 { return float64(p) }

func (p Percent) String() string {
	return strconv.FormatFloat(float64(p)*100, 'f', -1, 64) + "%"
}

func parsePercent(s string) (float64, error) {
	t := strings.TrimSpace(s)
	num, ok := strings.CutSuffix(t, "%")
	if !ok {
		return 0, fmt.Errorf("%q is not a percentage; write it like 50%%", s)
	}
	v, err := strconv.ParseFloat(strings.TrimSpace(num), 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, fmt.Errorf("%q is not a percentage; write it like 50%% or 12.5%%", s)
	}
	if v < 0 {
		return 0, fmt.Errorf("percentage %q must not be negative", s)
	}
	return v / 100, nil
}

// Amount is a quantity in the unit of the figure it is compared with: a
// duration (500ms) for a time, a plain number (20) for a count or a share.
type Amount struct {
	// Value is the amount, in seconds when IsDuration.
	Value      float64
	IsDuration bool
}

func (a *Amount) decodeScalar(s string) error {
	v, err := parseAmount(s)
	if err != nil {
		return err
	}
	*a = v
	return nil
}

func (a Amount) String() string {
	if a.IsDuration {
		return time.Duration(a.Value * float64(time.Second)).String()
	}
	return strconv.FormatFloat(a.Value, 'f', -1, 64)
}

func parseAmount(s string) (Amount, error) {
	t := strings.TrimSpace(s)
	if v, err := strconv.ParseFloat(t, 64); err == nil {
		if math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
			return Amount{}, fmt.Errorf("amount %q must be a finite number, not negative", s)
		}
		return Amount{Value: v}, nil
	}
	d, err := time.ParseDuration(t)
	if err != nil {
		return Amount{}, fmt.Errorf("%q is neither a duration (500ms, 2s) nor a number (20)", s)
	}
	if d < 0 {
		return Amount{}, fmt.Errorf("amount %q must not be negative", s)
	}
	return Amount{Value: d.Seconds(), IsDuration: true}, nil
}
