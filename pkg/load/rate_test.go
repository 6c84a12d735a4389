package load

import (
	"math"
	"strings"
	"testing"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
)

func perSec(n int) vegeta.Rate { return vegeta.Rate{Freq: n, Per: time.Second} }

// simulate runs vegeta's attack loop (lib/attack.go, Attacker.Attack) on a virtual
// clock and returns the send time of every hit. The loop stops once elapsed is past the
// duration, asks the pacer for the wait, sleeps, and sends. Each pass costs tick of
// virtual time, standing for the real time a pass takes; without it, a hit due exactly
// at the duration would be followed by one more.
func simulate(t *testing.T, p vegeta.Pacer, du time.Duration) []time.Duration {
	t.Helper()
	const tick = time.Microsecond
	var (
		elapsed time.Duration
		sends   []time.Duration
	)
	for hits := uint64(0); ; hits++ {
		if du > 0 && elapsed > du {
			return sends
		}
		wait, stop := p.Pace(elapsed, hits)
		if stop {
			return sends
		}
		if wait < 0 {
			t.Fatalf("Pace(%s, %d) = %s: negative wait", elapsed, hits, wait)
		}
		elapsed += wait + tick
		sends = append(sends, elapsed)
		if len(sends) > 1e7 {
			t.Fatal("runaway pacer")
		}
	}
}

// count is how many sends fall in (from, to].
func count(sends []time.Duration, from, to time.Duration) int {
	n := 0
	for _, s := range sends {
		if s > from && s <= to {
			n++
		}
	}
	return n
}

func TestShapePacers(t *testing.T) {
	const slack = 10 * time.Microsecond // the simulated loop's own time
	type span struct {
		from, to time.Duration
		want     int
	}
	tests := []struct {
		name     string
		shape    Shape
		duration time.Duration
		// want is the number of hits, ±tolerance.
		want, tolerance int
		spans           []span // exact counts of hits sent in (from, to]
		rates           map[time.Duration]float64
	}{
		{
			// vegeta's ConstantPacer sends hit n at n/rate: 50 × 10 s exactly.
			name: "constant", shape: Constant(perSec(50)), duration: 10 * time.Second,
			want: 500, rates: map[time.Duration]float64{0: 50, 5 * time.Second: 50},
		},
		{
			// Hit n is due when ∫rate reaches n: 10×2 + 0 + 40×2 = 100.
			name: "steps with a pause",
			shape: Steps(
				Step{perSec(10), 2 * time.Second},
				Step{perSec(0), time.Second},
				Step{perSec(40), 2 * time.Second},
			),
			want: 100,
			spans: []span{
				{0, 2*time.Second + slack, 20},
				{2*time.Second + slack, 3 * time.Second, 0},
				{3 * time.Second, 5*time.Second + slack, 80},
			},
			rates: map[time.Duration]float64{0: 10, 2*time.Second - 1: 10, 2 * time.Second: 0, 3 * time.Second: 40, time.Hour: 40},
		},
		{
			// A step boundary inside a period: ∫ = 3×1.5 + 7×1 = 11.5, so 11 hits.
			name:  "steps off the period",
			shape: Steps(Step{perSec(3), 1500 * time.Millisecond}, Step{perSec(7), time.Second}),
			want:  11,
			spans: []span{{0, 1500 * time.Millisecond, 4}, {1500 * time.Millisecond, 2500*time.Millisecond + slack, 7}},
		},
		{
			// A duration past the steps holds the last rate: 5×1 + 20×2.
			name:  "steps held past their end",
			shape: Steps(Step{perSec(5), time.Second}, Step{perSec(20), time.Second}), duration: 3 * time.Second,
			want: 45,
		},
		{
			// Other periods than a second: 30/m for a minute is 30 hits.
			name: "steps per minute", shape: Steps(Step{vegeta.Rate{Freq: 30, Per: time.Minute}, time.Minute}),
			want: 30, rates: map[time.Duration]float64{0: 0.5},
		},
		{
			// ∫ = (10+50)/2 × 10 s = 300. LinearPacer sends its first hit at 0 rather
			// than when ∫ reaches 1 and catches up whenever it is behind ∫, and vegeta's
			// loop sends the last hit it paced even when that falls due after the end
			// (LinearPacer does not know the end): ⌊∫⌋ hits, or one more.
			name: "ramp up", shape: Ramp(perSec(10), perSec(50)), duration: 10 * time.Second,
			want: 300, tolerance: 1,
			rates: map[time.Duration]float64{0: 10, 5 * time.Second: 30, 10 * time.Second: 50},
		},
		{
			// ∫ = 1010; the last hit falls due half a second past the end.
			name: "ramp down", shape: Ramp(perSec(100), perSec(1)), duration: 20 * time.Second,
			want: 1010, tolerance: 1,
			rates: map[time.Duration]float64{0: 100, 10 * time.Second: 50.5, 20 * time.Second: 1},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			du := tt.duration
			if s, ok := tt.shape.(stepShape); ok && du == 0 {
				du = s.total()
			}
			p, err := tt.shape.Pacer(du)
			if err != nil {
				t.Fatal(err)
			}
			sends := simulate(t, p, du)
			if got := len(sends); math.Abs(float64(got-tt.want)) > float64(tt.tolerance) {
				t.Errorf("%s over %s: %d hits, want %d ± %d", tt.shape, du, got, tt.want, tt.tolerance)
			}
			for _, s := range tt.spans {
				if got := count(sends, s.from, s.to); got != s.want {
					t.Errorf("hits in (%s, %s] = %d, want %d", s.from, s.to, got, s.want)
				}
			}
			for at, want := range tt.rates {
				if got := p.Rate(at); math.Abs(got-want) > 1e-9 {
					t.Errorf("Rate(%s) = %g, want %g", at, got, want)
				}
			}
		})
	}
}

func TestShapeErrors(t *testing.T) {
	tests := []struct {
		name     string
		shape    Shape
		duration time.Duration
		want     string
	}{
		{"zero constant", Constant(perSec(0)), time.Second, "must be above zero"},
		{"zero period", Constant(vegeta.Rate{Freq: 5}), time.Second, "must be above zero"},
		{"ramp from zero", Ramp(perSec(0), perSec(10)), time.Second, "start the ramp at 1/s"},
		{"ramp to zero", Ramp(perSec(10), perSec(0)), time.Second, "end the ramp at 1/s"},
		{"ramp without duration", Ramp(perSec(1), perSec(10)), 0, "set WithDuration"},
		{"no steps", Steps(), 0, "no steps"},
		{"step without duration", Steps(Step{perSec(1), 0}), 0, "step 1 (1/s): duration 0s"},
		{"negative step rate", Steps(Step{perSec(1), time.Second}, Step{perSec(-1), time.Second}), 0, "step 2"},
		{"trailing pause", Steps(Step{perSec(1), time.Second}, Step{perSec(0), time.Second}), 0, "last step"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.shape.Pacer(tt.duration)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Pacer(%s) error = %v, want one containing %q", tt.duration, err, tt.want)
			}
		})
	}
}

func TestShapeString(t *testing.T) {
	for _, tt := range []struct {
		shape Shape
		want  string
	}{
		{Constant(perSec(50)), "50/s"},
		{Constant(vegeta.Rate{Freq: 5, Per: 100 * time.Millisecond}), "5/100ms"},
		{Ramp(perSec(1), vegeta.Rate{Freq: 600, Per: time.Minute}), "ramp 1/s → 600/m"},
		{Steps(Step{perSec(10), 30 * time.Second}, Step{perSec(0), 5 * time.Second}), "steps 10/s for 30s, 0/s for 5s"},
	} {
		if got := tt.shape.String(); got != tt.want {
			t.Errorf("String() = %q, want %q", got, tt.want)
		}
	}
}

// FuzzStepsPacer checks the steps pacer against its own definition on arbitrary steps:
// the hits sent are ⌊∫rate⌋, none fall in a pause, and waits are never negative.
func FuzzStepsPacer(f *testing.F) {
	f.Add(uint8(10), uint16(2000), uint8(0), uint16(1000), uint8(40), uint16(2000))
	f.Add(uint8(3), uint16(1500), uint8(7), uint16(1000), uint8(1), uint16(1))
	f.Add(uint8(255), uint16(7), uint8(0), uint16(65535), uint8(1), uint16(333))
	f.Fuzz(func(t *testing.T, r1 uint8, d1 uint16, r2 uint8, d2 uint16, r3 uint8, d3 uint16) {
		if d1 == 0 || d2 == 0 || d3 == 0 || r3 == 0 {
			return
		}
		steps := []Step{
			{perSec(int(r1)), time.Duration(d1) * ms},
			{perSec(int(r2)), time.Duration(d2) * ms},
			{perSec(int(r3)), time.Duration(d3) * ms},
		}
		shape := Steps(steps...)
		du := shape.(stepShape).total()
		p, err := shape.Pacer(du)
		if err != nil {
			t.Fatal(err)
		}
		sends := simulate(t, p, du)
		var due float64
		for _, s := range steps {
			due += float64(s.Rate.Freq) * s.For.Seconds()
		}
		// ⌊∫⌋ hits, but float rounding at an exact integer may land either side, and a
		// hit due exactly at the duration is sent (see simulate).
		if got := float64(len(sends)); got < math.Floor(due+1e-9)-1 || got > math.Floor(due+1e-9) {
			t.Fatalf("%s: %d hits, want ⌊%g⌋", shape, len(sends), due)
		}
		var at time.Duration
		for _, s := range steps {
			if s.Rate.Freq == 0 {
				// 10 µs: the simulated loop's own time after the previous step's last hit.
				if n := count(sends, at+10*time.Microsecond, at+s.For); n != 0 {
					t.Fatalf("%s: %d hits during the pause from %s", shape, n, at)
				}
			}
			at += s.For
		}
	})
}
