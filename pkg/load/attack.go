package load

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"

	"github.com/meshdrill/drill/pkg/event"
)

// Source is the Source of the events an Attack publishes.
const Source = "load"

// attackName is vegeta's attack name: the X-Vegeta-Attack header on every request and
// the attack field in the results file.
const attackName = "drill"

// Attack is a load to send at one target, ready to Run. It holds no state between
// runs: every Run is a fresh vegeta attack with fresh connections.
type Attack struct {
	target   Target
	cfg      config
	pacer    vegeta.Pacer
	duration time.Duration
	header   http.Header
	match    *matcher // nil: no degraded matcher
	maxBody  int64
}

// New checks the target and options and returns an Attack.
func New(target Target, opts ...Option) (*Attack, error) {
	cfg := defaults()
	for _, o := range opts {
		o(&cfg)
	}
	if err := target.validate(); err != nil {
		return nil, err
	}
	if cfg.shape == nil {
		return nil, errors.New("load rate: no rate given; pass Constant, Ramp or Steps to WithRate")
	}
	duration := cfg.duration
	if s, ok := cfg.shape.(stepShape); ok && !cfg.durationSet {
		duration = s.total()
	}
	if duration < 0 {
		return nil, fmt.Errorf("load duration %s: must not be negative (0 runs until cancelled)", duration)
	}
	pacer, err := cfg.shape.Pacer(duration)
	if err != nil {
		return nil, fmt.Errorf("load rate: %w", err)
	}
	switch {
	case cfg.timeout <= 0:
		// Windows wait for every request sent in them: without a timeout a hung request
		// would hold them back for ever.
		return nil, fmt.Errorf("load timeout %s: must be above zero", cfg.timeout)
	case cfg.window <= 0:
		return nil, fmt.Errorf("load window %s: must be above zero", cfg.window)
	case cfg.connections < 0:
		return nil, fmt.Errorf("load connections %d: must not be negative", cfg.connections)
	case cfg.maxConnections < 0:
		return nil, fmt.Errorf("load max connections %d: must not be negative (0: no cap)", cfg.maxConnections)
	case cfg.maxWorkers == 0:
		return nil, errors.New("load max workers: must be above zero")
	}

	a := &Attack{target: target, cfg: cfg, pacer: pacer, duration: duration, header: http.Header{}}
	for k, vs := range cfg.headers {
		a.header[k] = append([]string(nil), vs...)
	}
	if target.Host != "" {
		// vegeta.Target.Request turns a Host header into http.Request.Host.
		a.header.Set("Host", target.Host)
	}
	if d := cfg.degraded; d != nil {
		if err := d.validate(); err != nil {
			return nil, err
		}
		a.match, a.maxBody = d.matcher(), d.within()
	}
	for _, g := range cfg.guards {
		if err := g.validate(); err != nil {
			return nil, err
		}
	}
	// Without a matcher no body byte is kept: vegeta still reads bodies to the end (so
	// connections are reused) but discards them. Its default, -1, keeps every body of
	// every result in memory until the result is consumed.
	return a, nil
}

// Duration is how long the attack sends requests; 0 until cancelled.
func (a *Attack) Duration() time.Duration { return a.duration }

// Info is the load.started payload.
func (a *Attack) Info() event.LoadInfo {
	return event.LoadInfo{Target: a.target.String(), Rate: a.cfg.shape.String(), Duration: a.duration}
}

// Run sends the load, publishing load.started, a load.window per window as each becomes
// final, a load.sched per window with how long drill's goroutines waited for a CPU,
// and load.finished with the totals, which it also returns. pub may be nil.
//
// Window times are since the load started, which is within microseconds of the
// load.started event. When ctx is cancelled Run stops sending, cancels the requests in
// flight (they are counted nowhere: they say nothing of the target), publishes what was
// measured and returns it with an error wrapping ctx.Err(). vegeta's pacer may be
// asleep until its next hit when that happens, so Run returns within one request
// interval (1/rate; for a zero-rate step, the rest of it). An error writing the results
// file does not stop the load; it is returned, joined, at the end.
func (a *Attack) Run(ctx context.Context, pub event.Publisher) (event.Window, error) {
	if err := ctx.Err(); err != nil {
		return event.Window{}, fmt.Errorf("load %s: not started: %w", a.target, err)
	}
	log := a.cfg.logger.With("source", Source, "target", a.target.String())
	publish := func(t event.Type, payload any) {
		if pub != nil {
			pub.Publish(event.New(t, a.cfg.cluster, Source, payload))
		}
	}

	var out *resultsFile
	if a.cfg.resultsFile != "" {
		var err error
		if out, err = createResultsFile(a.cfg.resultsFile); err != nil {
			return event.Window{}, fmt.Errorf("load %s: %w", a.target, err)
		}
	}

	abortCtx, abort := context.WithCancel(context.Background())
	defer abort()
	client := newClient(&a.cfg, abortCtx)
	defer client.CloseIdleConnections()
	// A fresh Attacker per attack: vegeta stops an Attacker for good when its attack
	// ends.
	atk := vegeta.NewAttacker(
		vegeta.Client(client),
		vegeta.Workers(a.cfg.workers),
		vegeta.MaxWorkers(a.cfg.maxWorkers),
		vegeta.MaxBody(a.maxBody),
	)
	targeter := vegeta.NewStaticTargeter(vegeta.Target{Method: a.target.method(), URL: a.target.URL, Header: a.header})

	win := newWindower(a.cfg.window, a.duration, func(w event.Window) {
		publish(event.LoadWindow, w)
		log.Debug("load window", "start", w.Start, "requests", w.Requests, "errors", w.Errors,
			"degraded", w.Degraded, "p50", w.P50, "p99", w.P99, "rate", w.Rate)
	})

	info := a.Info()
	publish(event.LoadStarted, info)
	log.Info("load started", "rate", info.Rate, "duration", info.Duration)
	began := time.Now()
	results := atk.Attack(targeter, a.pacer, a.duration, attackName)
	schedCtx, stopSched := context.WithCancel(context.Background())
	schedDone := make(chan struct{})
	go func() {
		defer close(schedDone)
		watchSched(schedCtx, a.cfg.window, began, func(s event.Sched) { publish(event.LoadSched, s) })
	}()

	// The watcher is the only one to stop the attack early; it ends once the results
	// are drained.
	var stopped atomic.Bool
	drained := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		select {
		case <-ctx.Done():
			stopped.Store(true)
			atk.Stop()
			abort()
		case <-drained:
		}
	})

	col := &collector{win: win, match: a.match, out: out, log: log, began: began, stopped: &stopped,
		guards: newGuards(a.cfg.guards, a.cfg.onTrip)}
	for r := range results {
		col.add(r)
	}
	end := time.Since(began)
	if !stopped.Load() && a.duration > 0 {
		// The attack ran its course. A pacer that knows the end (Steps) stops at its
		// last hit, before the duration is up; the load still covered all of it.
		end = a.duration
	}
	close(drained)
	wg.Wait()
	stopSched()
	<-schedDone

	total := win.finish(end)
	publish(event.LoadFinished, total)
	log.Info("load finished", "requests", total.Requests, "errors", total.Errors, "degraded", total.Degraded,
		"p50", total.P50, "p99", total.P99, "max", total.Max, "rate", total.Rate)

	var errs []error
	if stopped.Load() {
		if col.aborted > 0 {
			log.Info("load stopped: requests in flight cancelled and not counted", "cancelled", col.aborted)
		}
		errs = append(errs, fmt.Errorf("load %s stopped after %s: %w", a.target, end.Round(time.Millisecond), ctx.Err()))
	}
	if out != nil {
		if err := out.close(); err != nil {
			errs = append(errs, err)
		}
	}
	return total, errors.Join(errs...)
}
