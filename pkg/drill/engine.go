package drill

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/meshdrill/drill/pkg/cluster"
	"github.com/meshdrill/drill/pkg/event"
	"github.com/meshdrill/drill/pkg/fault"
	"github.com/meshdrill/drill/pkg/history"
	"github.com/meshdrill/drill/pkg/report"
	"github.com/meshdrill/drill/pkg/scenario"
	"github.com/meshdrill/drill/pkg/translate"
)

// Result is what a run produced.
type Result struct {
	// Dir is the run's report directory.
	Dir    string
	Report *report.Report
	// HistoryErr says why the run history (WithHistory) could not be read or
	// the run recorded in it; the reports in Dir are written all the same.
	HistoryErr error
}

// ExitCode is drill's exit code for the run's verdict (report.Verdict.ExitCode);
// a run with no report could not run. A run that passed but could not be
// recorded in its history exits ExitError: a nightly job must notice that its
// history stopped growing. Any other verdict keeps its own code.
func (r *Result) ExitCode() int {
	if r == nil || r.Report == nil {
		return report.ExitError
	}
	if code := r.Report.Verdict.ExitCode(); code != report.ExitPass || r.HistoryErr == nil {
		return code
	}
	return report.ExitError
}

// RemoteProvider is implemented by providers that know where each cluster's services
// are reachable from the other clusters (an east-west gateway address), which the
// aggregate strategy's per-cluster ServiceEntries need.
type RemoteProvider interface {
	Remotes() map[string]translate.Endpoint
}

// run is the state of one drill.
type run struct {
	cfg      config
	s        *scenario.Scenario
	log      *slog.Logger
	bus      *event.Bus
	dir      string
	clusters map[string]*cluster.Cluster
	faults   *fault.Set

	recMu  sync.Mutex
	record []event.Event

	policyMu sync.Mutex
	applied  map[string]map[string]bool // cluster → keys of the policy objects applied

	// stopTimeline and stopLoad end the timeline and the load early, with a
	// cause (a guard's trip, a mesh not steady); set while the load runs.
	stopTimeline, stopLoad context.CancelCauseFunc
	// The steady-state check before the first fault, made once.
	steadyOnce sync.Once
	steadyErr  error
}

// Run runs the scenario and writes its reports. The error is non-nil only when no
// report could be written at all; every other failure is a report with verdict
// error and its reason.
func Run(ctx context.Context, s *scenario.Scenario, opts ...Option) (*Result, error) {
	cfg := config{out: "reports", logger: slog.Default(), readyTimeout: 3 * time.Minute}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.provider == nil {
		return nil, errors.New("drill: no provider")
	}
	dir, err := reportDir(cfg.out, s.Metadata.Name)
	if err != nil {
		return nil, err
	}
	r := &run{cfg: cfg, s: s, log: cfg.logger, dir: dir, clusters: map[string]*cluster.Cluster{}, applied: map[string]map[string]bool{}}
	rec, err := r.startRecording(ctx)
	if err != nil {
		return nil, err
	}

	r.faults = fault.NewSet(r.bus, fault.NewGuard(append(cfg.allowContexts, fault.AllowedFromEnv()...)...),
		fault.WithLogger(cfg.logger), fault.WithJournal(rec.journal))
	ctx, intr := fault.OnInterrupt(ctx, r.faults, fault.WithOutput(os.Stderr))
	r.bus.Publish(event.New(event.RunStarted, "", "engine", event.RunInfo{
		Scenario:        s.Metadata.Name,
		File:            s.File,
		Provider:        cfg.provider.Name(),
		Clusters:        clusterNames(s),
		DataPlane:       string(cfg.provider.DataPlane()),
		DataPlaneDetail: cluster.DataPlaneDetailOf(cfg.provider),
		LoadDuration:    s.Spec.Load.Duration.D(),
		DrillVersion:    cfg.version,
		Host:            hostname(),
		PID:             os.Getpid(),
		ScenarioYAML:    string(cfg.scenarioYAML),
	}))

	runErr := r.executeGuarded(ctx)

	// Whatever happened, faults are reverted before anything else is torn down.
	revertCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), fault.DefaultRevertTimeout)
	if err := r.faults.RevertAll(revertCtx); err != nil {
		runErr = errors.Join(runErr, fmt.Errorf("revert faults: %w", err))
	}
	cancel()
	intr.Stop()
	if errors.Is(context.Cause(ctx), fault.ErrInterrupted) {
		runErr = errAborted
	}
	if !cfg.keep {
		r.removePolicy(context.WithoutCancel(ctx))
	}
	r.bus.Publish(event.New(event.RunFinished, "", "engine", r.result(runErr)))
	rec.stop()
	return r.writeReports(ctx)
}

// recording is the run's event log being written, and the goroutines that
// feed it, the engine's own record and the progress lines.
type recording struct {
	r      *run
	lw     *event.LogWriter
	bg     sync.WaitGroup
	logErr error
}

// startRecording opens the run's bus and starts writing every event to the log
// in the report directory.
func (r *run) startRecording(ctx context.Context) (*recording, error) {
	r.bus = event.NewBus(event.WithLogger(r.cfg.logger))
	logSub := r.bus.Subscribe("log", event.WithBuffer(1<<16))
	recSub := r.bus.Subscribe("engine", event.WithBuffer(1<<16))
	lw, err := event.CreateLog(filepath.Join(r.dir, event.LogFile))
	if err != nil {
		r.bus.Close()
		return nil, err
	}
	rec := &recording{r: r, lw: lw}
	rec.bg.Add(2)
	// Without cancel: the events of an aborting run must still reach the log.
	logCtx := context.WithoutCancel(ctx)
	go func() {
		defer rec.bg.Done()
		rec.logErr = lw.Record(logCtx, logSub)
	}()
	go func() {
		defer rec.bg.Done()
		for e := range recSub.Events() {
			r.recMu.Lock()
			r.record = append(r.record, e)
			r.recMu.Unlock()
		}
	}()
	if r.cfg.progress != nil {
		prog := newProgress(r.bus, r.cfg.progress, r.cfg.terminal, r.s.Spec.Load.Duration.D())
		rec.bg.Add(1)
		go func() { defer rec.bg.Done(); prog.run() }()
	}
	return rec, nil
}

// journal puts a fault's undo record in the log and on the disk before the
// fault is applied, so that `drill undo DIR` can put back what a drill killed
// mid-fault (kill -9, a lost laptop) left behind.
func (rec *recording) journal(ctx context.Context, u event.Undo) error {
	seq := rec.r.bus.Emit(event.New(event.FaultUndo, u.Cluster, "fault/"+u.Step, u))
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	return rec.lw.Sync(ctx, seq)
}

// stop closes the bus and waits until every event is in the log.
func (rec *recording) stop() {
	_ = rec.r.bus.Close()
	rec.bg.Wait()
	if err := rec.lw.Close(); err != nil && rec.logErr == nil {
		rec.logErr = err
	}
	if rec.logErr != nil {
		rec.r.log.Warn("the event log is incomplete", "err", rec.logErr)
	}
}

// result is what run.finished says of the run.
func (r *run) result(runErr error) event.RunResult {
	result := event.RunResult{}
	if runErr != nil {
		result.Verdict, result.Reason = string(report.Error), runErr.Error()
		return result
	}
	// Judge the run as it will be recorded: its events so far and a run.finished
	// that says it completed.
	r.recMu.Lock()
	evs := append([]event.Event(nil), r.record...)
	r.recMu.Unlock()
	evs = append(evs, event.New(event.RunFinished, "", "engine", event.RunResult{}))
	// A verdict of error here means expectations that could not be judged, not a
	// run that ended in error: that is the report's to say, from the events.
	if rep, err := report.Build(evs); err == nil && rep.Verdict != report.Error {
		result.Verdict = string(rep.Verdict)
		if rep.Verdict == report.Fail || rep.Verdict == report.Inconclusive || rep.Verdict == report.Aborted {
			result.Reason = rep.Reason
		}
	}
	return result
}

// writeReports builds the reports from the log as written, as drill report
// would, and tears the clusters down unless they are kept.
func (r *run) writeReports(ctx context.Context) (*Result, error) {
	events, readErr := event.ReadLog(filepath.Join(r.dir, event.LogFile))
	if readErr != nil && len(events) == 0 {
		return &Result{Dir: r.dir}, fmt.Errorf("read back the event log: %w", readErr)
	}
	rep, err, histErr := history.WriteReports(ctx, r.cfg.history, r.dir, events)
	if !r.cfg.keep {
		downCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
		if err := r.cfg.provider.Down(downCtx); err != nil {
			r.log.Error("tearing down the clusters failed", "provider", r.cfg.provider.Name(), "err", err)
		}
		cancel()
	}
	if err != nil {
		return &Result{Dir: r.dir, Report: rep, HistoryErr: histErr}, fmt.Errorf("write reports: %w", err)
	}
	return &Result{Dir: r.dir, Report: rep, HistoryErr: histErr}, nil
}

// executeGuarded runs execute and, should the engine panic, reverts every fault
// before the panic goes on: a bug in drill must not leave a cluster broken.
func (r *run) executeGuarded(ctx context.Context) error {
	defer func() {
		if p := recover(); p != nil {
			revertCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), fault.DefaultRevertTimeout)
			defer cancel()
			if err := r.faults.RevertAll(revertCtx); err != nil {
				fmt.Fprintln(os.Stderr, "drill: reverting faults after a crash failed:", err)
			}
			panic(p)
		}
	}()
	return r.execute(ctx)
}

var errAborted = errors.New("aborted: interrupted by the user; faults were reverted")

// execute is the run between run.started and the final revert.
func (r *run) execute(ctx context.Context) error {
	if r.cfg.provider.DataPlane() == cluster.DataPlaneNone {
		return fmt.Errorf("provider %s: its clusters would run no mesh (data plane none), and a drill needs Istio to apply its policy to; "+
			"bring the clusters up without a drill with `drill up`, or run the drill on a provider with a mesh", r.cfg.provider.Name())
	}
	r.logf("bringing up %d clusters with the %s provider", len(r.s.Spec.Clusters), r.cfg.provider.Name())
	cs, err := r.cfg.provider.Up(ctx, r.s)
	if err != nil {
		return fmt.Errorf("provider %s: %w", r.cfg.provider.Name(), err)
	}
	for _, c := range cs {
		r.clusters[c.Name] = c
	}
	r.recordVersions(ctx)
	if err := r.checkFaultsAllowed(ctx); err != nil {
		return err
	}
	r.logf("applying the %s failover policy", r.s.Spec.Mesh.Strategy)
	if err := r.applyPolicy(ctx, &r.s.Spec.Mesh, ""); err != nil {
		return err
	}
	r.logf("waiting for the mesh to answer at the ingress of %s", r.s.Spec.Load.Target.Cluster)
	if err := r.waitReady(ctx); err != nil {
		return err
	}
	r.warmUp(ctx)

	obsCtx, stopObservers := context.WithCancel(ctx)
	obs, err := r.startObservers(obsCtx)
	if err != nil {
		stopObservers()
		obs.wait()
		return err
	}
	defer func() {
		stopObservers()
		obs.wait()
	}()

	var gw *guardWatch
	if r.s.Spec.Abort != nil {
		gw = newGuardWatch(r)
	}
	attack, err := r.newAttack(ctx, gw)
	if err != nil {
		return err
	}
	tl := newTimeline(r.s.Spec.Steps, &actor{r: r}, r.bus)
	tlCtx, stopTimeline := context.WithCancelCause(ctx)
	loadCtx, stopLoad := context.WithCancelCause(ctx)
	defer stopLoad(nil)
	r.stopTimeline, r.stopLoad = stopTimeline, stopLoad
	tlDone := make(chan error, 1)
	go func() { tlDone <- tl.Run(tlCtx) }()
	stopGuard := make(chan struct{})
	if gw != nil {
		began := time.Now()
		go gw.abort(ctx, stopGuard, stopTimeline, stopLoad, func() time.Duration { return r.s.Spec.Load.Duration.D() - time.Since(began) })
	}

	egCtx, stopEnvoyGuards := context.WithCancel(ctx)
	waitEnvoyGuards := r.watchEnvoyGuards(egCtx, envoyGuards(r.s), gw)

	r.logf("load: %s for %s", attack.Info().Rate, r.s.Spec.Load.Duration)
	_, loadErr := attack.Run(loadCtx, r.bus)
	stopEnvoyGuards()
	waitEnvoyGuards()
	close(stopGuard)
	if gw != nil {
		<-gw.done
	}
	stopTimeline(nil)
	stepErr := <-tlDone
	if stepErr != nil {
		r.bus.Publish(event.New(event.Log, "", "engine", event.LogLine{Level: "warn", Message: stepErr.Error()}))
	}
	if ctx.Err() != nil {
		return context.Cause(ctx)
	}
	if _, stopped := drillStopped(context.Cause(loadCtx)); loadErr != nil && stopped {
		loadErr = nil // a guard or the steady-state check ended the load
	}
	if loadErr != nil {
		return fmt.Errorf("load: %w", loadErr)
	}
	// One more scrape interval so the last window's traffic is in the stats.
	obs.drain(ctx)
	return nil
}

// checkFaultsAllowed refuses, before anything changes, a drill whose faults would
// act on a cluster drill did not create and whose context the user did not allow.
func (r *run) checkFaultsAllowed(ctx context.Context) error {
	guard := fault.NewGuard(append(r.cfg.allowContexts, fault.AllowedFromEnv()...)...)
	var errs []error
	seen := map[string]bool{}
	for _, st := range r.s.Spec.Steps {
		if st.Fault == nil {
			continue
		}
		if st.Fault.Partition != nil {
			// A partition changes its peers' packet filters too: every one of
			// them must allow it, and the filters must be there and usable.
			if err := r.checkPartition(ctx, st, guard); err != nil {
				errs = append(errs, fmt.Errorf("step %s: %w", st.Name, err))
			}
		}
		name := fault.ScenarioCluster(*st.Fault)
		if seen[name] {
			continue
		}
		seen[name] = true
		t, err := (&actor{r: r}).target(name)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if err := guard.Check(t); err != nil {
			errs = append(errs, fmt.Errorf("step %s: %w", st.Name, err))
		}
	}
	return errors.Join(errs...)
}

// checkPartition builds a partition step's fault without applying it, and
// checks that each packet filter it would change answers.
func (r *run) checkPartition(ctx context.Context, st scenario.Step, guard *fault.Guard) error {
	a := &actor{r: r}
	t, err := a.target(st.Fault.Partition.Cluster)
	if err != nil {
		return err
	}
	peers, err := a.peers(*st.Fault)
	if err != nil {
		return err
	}
	for _, p := range peers {
		if err := guard.Check(p); err != nil {
			return err
		}
	}
	p, err := fault.NewPartition(t, peers, st.Fault.Partition.OneWay)
	if err != nil {
		return err
	}
	return p.Check(ctx)
}

func (r *run) logf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	r.log.Info(msg)
	r.bus.Publish(event.New(event.Log, "", "engine", event.LogLine{Level: "info", Message: msg}))
}

func reportDir(out, name string) (string, error) {
	base := filepath.Join(out, fmt.Sprintf("%s-%s", name, time.Now().UTC().Format("20060102-150405")))
	dir := base
	for i := 2; ; i++ {
		err := os.MkdirAll(filepath.Dir(dir), 0o755)
		if err == nil {
			err = os.Mkdir(dir, 0o755)
		}
		if err == nil {
			return dir, nil
		}
		if !errors.Is(err, os.ErrExist) || i > 100 {
			return "", fmt.Errorf("create the report directory: %w", err)
		}
		dir = fmt.Sprintf("%s-%d", base, i)
	}
}

func clusterNames(s *scenario.Scenario) []string {
	names := make([]string, len(s.Spec.Clusters))
	for i, c := range s.Spec.Clusters {
		names[i] = c.Name
	}
	return names
}

// hostname is the machine's name for the record, empty when it has none.
func hostname() string {
	h, _ := os.Hostname()
	return h
}
