package localcluster

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"runtime/debug"
	"sync"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// A podWorker runs one pod bound to the node, from its start to its removal.
// One goroutine (run) owns the pod's state and writes its status; container
// goroutines and the sidecar's start report to it through events.
type podWorker struct {
	n   *Node
	key string
	uid types.UID
	pod *corev1.Pod // as bound; read only
	log *slog.Logger

	deleteCh chan *corev1.Pod // the pod with its deletionTimestamp set
	goneCh   chan struct{}    // the pod vanished from the API
	stopCh   chan struct{}    // the node stops
	events   chan podEvent
	done     chan struct{}
	goneOnce sync.Once
	stopOnce sync.Once

	// Owned by run.
	ip, lo      netip.Addr
	started     time.Time
	containers  []*containerState
	injected    bool
	sidecar     Sidecar
	sidecarWhy  sidecarState
	terminating bool
	finished    bool
	allocErr    string
	last        *corev1.Pod // the pod as the worker last wrote or read it
}

type containerState struct {
	spec     corev1.Container
	program  Program
	imageErr string                   // why the image has no program; "" when it has
	binds    map[int32]netip.AddrPort // where declared ports listen, fixed at first start
	first    *containerRun            // the run whose listeners were opened before the sidecar
	run      *containerRun            // the current run
	id       string                   // container ID of the current run
	state    corev1.ContainerState    // as reported
	last     *corev1.ContainerStateTerminated
	restarts int32
	begun    bool // started at least once
	ready    bool
}

// sidecarState is what the pod's status says of its sidecar.
type sidecarState struct {
	ready           bool
	reason, message string
}

type eventKind int

const (
	evStarted eventKind = iota
	evReady
	evExited
	evSidecarUp
	evSidecarFailed
)

type podEvent struct {
	kind     eventKind
	i        int
	run      *containerRun
	at       time.Time
	err      error
	code     int32
	stopping bool
	backoff  time.Duration
	sidecar  Sidecar
}

func newPodWorker(n *Node, pod *corev1.Pod) *podWorker {
	key := pod.Namespace + "/" + pod.Name
	return &podWorker{
		n: n, key: key, uid: pod.UID, pod: pod.DeepCopy(),
		log:      n.cfg.log.With("cluster", n.cluster, "pod", key),
		deleteCh: make(chan *corev1.Pod, 1),
		goneCh:   make(chan struct{}),
		stopCh:   make(chan struct{}),
		events:   make(chan podEvent, 16),
		done:     make(chan struct{}),
	}
}

// delete asks the worker to terminate the pod; the latest request wins.
func (w *podWorker) delete(pod *corev1.Pod) {
	for {
		select {
		case w.deleteCh <- pod:
			return
		default:
		}
		select {
		case <-w.deleteCh:
		default:
		}
	}
}

func (w *podWorker) gone() { w.goneOnce.Do(func() { close(w.goneCh) }) }
func (w *podWorker) stop() { w.stopOnce.Do(func() { close(w.stopCh) }) }

func (w *podWorker) send(ev podEvent) {
	select {
	case w.events <- ev:
	case <-w.done:
	}
}

// killWait is how long containers get after SIGKILL before they are
// abandoned: a Go program cannot be killed, only left.
const killWait = 2 * time.Second

func (w *podWorker) run() {
	defer close(w.done)
	ctx := w.n.ctx // API calls; cancelled by Stop
	w.started = time.Now()

	w.resolve()
	runnable, release := w.network(w.allResolved())
	defer release()

	// podCtx is the pod's SIGTERM; killed its SIGKILL.
	podCtx, sigterm := context.WithCancel(context.Background())
	defer sigterm()
	killed := make(chan struct{})
	var killOnce sync.Once
	kill := func() { killOnce.Do(func() { close(killed) }) }

	var containersWG sync.WaitGroup
	var containersDone chan struct{} // closed when every container goroutine returned; nil before they start
	startContainers := func() {
		outbound := http.RoundTripper(w.n.proxy.transport(w.pod.Namespace, w.lo))
		if w.sidecar != nil {
			outbound = w.sidecar.Outbound()
		}
		containersDone = make(chan struct{})
		for i := range w.containers {
			containersWG.Add(1)
			go func() {
				defer containersWG.Done()
				w.runContainer(podCtx, i, killed, outbound)
			}()
		}
		go func() { containersWG.Wait(); close(containersDone) }()
	}

	for _, cs := range w.containers {
		if cs.imageErr != "" {
			w.n.kubelet.Event(w.pod, corev1.EventTypeWarning, "Failed", cs.imageErr)
		}
	}
	if w.allocErr != "" {
		w.n.kubelet.Event(w.pod, corev1.EventTypeWarning, "FailedCreatePodSandBox", "no address for the pod: "+w.allocErr)
	}
	if runnable {
		switch {
		case w.injected && w.n.cfg.sidecars != nil:
			w.sidecarWhy = sidecarState{reason: "Starting", message: "starting the emulated sidecar"}
			go w.startSidecar(podCtx)
		case w.injected:
			w.sidecarWhy = sidecarState{reason: "NoSidecarFactory",
				message: "Istio would inject a sidecar into this pod; drill's node has no emulated sidecar to run, so the pod runs without one"}
			startContainers()
		default:
			startContainers()
		}
	}
	if err := w.push(ctx); errors.Is(err, errPodGone) {
		w.gone()
	}

	var (
		deadline   time.Time
		graceTimer <-chan time.Time
		killTimer  <-chan time.Time
	)
	// drain applies the events already sent: every container goroutine
	// sends its exit before it returns, so once containersDone is closed
	// this takes them all.
	drain := func() {
		for {
			select {
			case ev := <-w.events:
				w.apply(ev, startContainers)
			default:
				return
			}
		}
	}
	finish := func(abandoned bool) {
		drain()
		if abandoned {
			w.log.Error("containers did not stop within the grace period and after SIGKILL; leaving them behind")
			for _, cs := range w.containers {
				if cs.state.Running != nil {
					cs.ready = false
					cs.state = corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
						ExitCode: 137, Reason: "Error", StartedAt: cs.state.Running.StartedAt, FinishedAt: metav1.Now(),
						ContainerID: cs.id, Message: "did not stop within the grace period after SIGKILL",
					}}
				}
			}
		}
		if w.sidecar != nil {
			sctx, cancel := context.WithDeadline(context.Background(), laterOf(deadline, time.Now().Add(time.Second)))
			if err := w.sidecar.Stop(sctx); err != nil {
				w.log.Warn("stop sidecar", "err", err)
			}
			cancel()
		}
		w.finished = true
		if err := w.push(ctx); err != nil && !errors.Is(err, errPodGone) {
			w.log.Warn("report final pod status", "err", err)
		}
		if err := w.n.deletePod(ctx, w.pod); err != nil {
			w.log.Warn("remove pod", "err", err)
		}
		w.log.Info("pod stopped and removed")
	}
	// vanish stops everything at once, with no word to the API: the pod was
	// removed under the node (a forced deletion) or the node stops.
	vanish := func() {
		sigterm()
		kill()
		if containersDone != nil {
			select {
			case <-containersDone:
			case <-time.After(killWait):
				w.log.Error("containers did not stop after SIGKILL; leaving them behind")
			}
		}
		if w.sidecar != nil {
			sctx, cancel := context.WithTimeout(context.Background(), time.Second)
			_ = w.sidecar.Stop(sctx)
			cancel()
		}
	}

	for {
		var dirty bool
		select {
		case ev := <-w.events:
			w.apply(ev, startContainers)
			drain() // whatever else arrived, for one status update
			dirty = true
		case p := <-w.deleteCh:
			grace := gracePeriod(p)
			if !w.terminating {
				w.terminating = true
				w.log.Info("pod deleted: not ready, then stopping its containers", "grace", grace)
				// Not ready first, so that its endpoints drop before the
				// containers go.
				if err := w.push(ctx); errors.Is(err, errPodGone) {
					vanish()
					return
				}
				for _, cs := range w.containers {
					if cs.state.Running != nil {
						w.n.kubelet.Eventf(w.pod, corev1.EventTypeNormal, "Killing", "Stopping container %s", cs.spec.Name)
					}
				}
				sigterm()
				if containersDone == nil {
					containersDone = make(chan struct{})
					close(containersDone)
				}
			}
			if d := time.Now().Add(grace); deadline.IsZero() || d.Before(deadline) {
				deadline = d
				graceTimer = time.After(grace)
			}
		case <-graceTimer:
			graceTimer = nil
			kill()
			killTimer = time.After(killWait)
		case <-killTimer:
			finish(true)
			return
		case <-containersDone:
			if w.terminating {
				finish(false)
				return
			}
			containersDone = nil // cannot happen: containers return only on SIGTERM
		case <-w.goneCh:
			w.log.Info("pod removed from the API; stopping its containers at once")
			vanish()
			return
		case <-w.stopCh:
			vanish()
			return
		}
		if dirty {
			if err := w.push(ctx); errors.Is(err, errPodGone) {
				vanish()
				return
			}
		}
	}
}

// network gives the pod its address and opens its containers' ports (when
// runnable): the node's own for hostNetwork pods, else a loopback twin of its
// own. The twins are shared with every process on the machine, so an address
// whose ports something else holds is left to it and another taken. It returns
// whether the containers can run and what to release when the pod ends.
func (w *podWorker) network(runnable bool) (bool, func()) {
	if w.pod.Spec.HostNetwork {
		w.ip, w.lo = w.n.ip, w.n.lo
		if runnable {
			if err := w.openFirst(); err != nil {
				w.log.Warn("open container ports", "err", err)
				return false, func() {}
			}
		}
		return runnable, func() {}
	}
	for try := 0; ; try++ {
		ip, err := w.n.alloc.allocate(w.key)
		if err != nil {
			w.allocErr = err.Error()
			return false, func() {}
		}
		w.ip = ip
		w.lo, _ = loopbackAddr(ip)
		release := func() { w.n.alloc.release(ip) }
		if !runnable {
			return false, release
		}
		err = w.openFirst()
		if errors.Is(err, syscall.EADDRINUSE) && try < 8 {
			w.log.Info("pod address in use outside the node; taking another", "address", ip, "err", err)
			w.n.alloc.reserve(ip, "in use outside the node")
			w.resetContainerStates()
			continue
		}
		if err != nil {
			w.log.Warn("open container ports", "err", err)
			return false, release
		}
		return true, release
	}
}

func laterOf(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// gracePeriod is the pod's termination grace period: the deletion's, else the
// pod's own, else Kubernetes' default of 30 s.
func gracePeriod(pod *corev1.Pod) time.Duration {
	switch {
	case pod.DeletionGracePeriodSeconds != nil:
		return time.Duration(*pod.DeletionGracePeriodSeconds) * time.Second
	case pod.Spec.TerminationGracePeriodSeconds != nil:
		return time.Duration(*pod.Spec.TerminationGracePeriodSeconds) * time.Second
	}
	return 30 * time.Second
}

// resolve finds each container's program and whether Istio would inject the
// pod.
func (w *podWorker) resolve() {
	for _, c := range w.pod.Spec.Containers {
		cs := &containerState{spec: c}
		cs.program, cs.imageErr = w.n.program(c.Image)
		if cs.imageErr != "" {
			cs.state = corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ErrImagePull", Message: cs.imageErr}}
		} else {
			cs.state = corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ContainerCreating"}}
		}
		w.containers = append(w.containers, cs)
	}
	var nsLabels map[string]string
	if ns, err := w.n.namespaces.Get(w.pod.Namespace); err == nil {
		nsLabels = ns.Labels
	}
	w.injected = Injected(w.pod, nsLabels)
}

// resetContainerStates undoes a failed openFirst, for another try.
func (w *podWorker) resetContainerStates() {
	for _, cs := range w.containers {
		cs.first, cs.binds = nil, nil
		cs.state = corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ContainerCreating"}}
	}
}

func (w *podWorker) allResolved() bool {
	for _, cs := range w.containers {
		if cs.imageErr != "" {
			return false
		}
	}
	return true
}

// openFirst opens every container's declared ports before anything runs, so
// the sidecar knows where the application listens.
func (w *podWorker) openFirst() error {
	behind := w.injected && w.n.cfg.sidecars != nil
	for _, cs := range w.containers {
		cs.binds = map[int32]netip.AddrPort{}
		for _, p := range cs.spec.Ports {
			bind := netip.AddrPortFrom(w.lo, uint16(p.ContainerPort))
			if behind {
				bind = netip.AddrPortFrom(w.lo, 0)
			}
			cs.binds[p.ContainerPort] = bind
		}
		cs.first = &containerRun{name: cs.spec.Name, addr: w.lo}
		got, err := cs.first.openDeclared(cs.spec, cs.binds)
		if err != nil {
			msg := err.Error()
			cs.state = corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CreateContainerError", Message: msg}}
			for _, other := range w.containers {
				if other.first != nil {
					other.first.close()
				}
			}
			return err
		}
		cs.binds = got
	}
	return nil
}

// appPorts is where each declared port of the pod's containers listens.
func (w *podWorker) appPorts() map[int32]netip.AddrPort {
	out := map[int32]netip.AddrPort{}
	for _, cs := range w.containers {
		for p, a := range cs.binds {
			out[p] = a
		}
	}
	return out
}

// startSidecar starts the pod's sidecar, retrying with the restart back-off
// until it starts or the pod terminates.
func (w *podWorker) startSidecar(ctx context.Context) {
	backoff := w.n.cfg.backoff
	for {
		sc, err := w.n.cfg.sidecars.StartSidecar(ctx, SidecarPod{
			Cluster: w.n.cluster, Pod: w.pod, PodIP: w.ip, Addr: w.lo,
			AppPorts: w.appPorts(), Direct: w.n.proxy.transport(w.pod.Namespace, w.lo),
		})
		if err == nil {
			select {
			case w.events <- podEvent{kind: evSidecarUp, sidecar: sc, at: time.Now()}:
			case <-w.done:
				// The pod went while its sidecar started: stop it.
				sctx, cancel := context.WithTimeout(context.Background(), time.Second)
				_ = sc.Stop(sctx)
				cancel()
			}
			return
		}
		w.send(podEvent{kind: evSidecarFailed, err: err, backoff: backoff, at: time.Now()})
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, w.n.cfg.maxBackoff)
	}
}

// backoffReset: the kubelet forgets a container's back-off after it ran this
// long without crashing.
const backoffReset = 10 * time.Minute

// runContainer runs one container's program until the pod's SIGTERM,
// restarting it after a back-off whenever it exits before.
func (w *podWorker) runContainer(ctx context.Context, i int, killed <-chan struct{}, outbound http.RoundTripper) {
	cs := w.containers[i] // spec, program and binds do not change once running
	backoff := w.n.cfg.backoff
	run := cs.first
	for {
		if run == nil {
			run = &containerRun{name: cs.spec.Name, addr: w.lo}
			if _, err := run.openDeclared(cs.spec, cs.binds); err != nil {
				w.send(podEvent{kind: evExited, i: i, run: run, at: time.Now(), err: err, code: 128, backoff: backoff})
				if !sleepCtx(ctx, backoff) {
					return
				}
				backoff = min(2*backoff, w.n.cfg.maxBackoff)
				run = nil
				continue
			}
		}
		r := run
		r.onReady = func() { w.send(podEvent{kind: evReady, i: i, run: r}) }
		env, unresolved := resolveEnv(w.pod, cs.spec, w.ip, w.n.ip)
		c := &Container{
			Cluster: w.n.cluster, Pod: w.pod, Spec: cs.spec, PodIP: w.ip, Addr: w.lo, Env: env,
			Outbound: outbound, Log: w.log.With("container", cs.spec.Name), run: r, killed: killed,
		}
		if len(unresolved) > 0 {
			c.Log.Warn("environment variables the node cannot resolve are left unset", "vars", unresolved)
		}
		begin := time.Now()
		w.send(podEvent{kind: evStarted, i: i, run: r, at: begin})
		err := runProgram(ctx, cs.program, c)
		r.close()
		stopping := ctx.Err() != nil
		code := exitCode(err, stopping, killed)
		w.send(podEvent{kind: evExited, i: i, run: r, at: time.Now(), err: err, code: code, stopping: stopping, backoff: backoff})
		if stopping {
			return
		}
		w.log.Warn("container exited; restarting after back-off", "container", cs.spec.Name, "exitCode", code, "err", err, "backoff", backoff)
		if time.Since(begin) > backoffReset {
			backoff = w.n.cfg.backoff
		}
		if !sleepCtx(ctx, backoff) {
			return
		}
		backoff = min(2*backoff, w.n.cfg.maxBackoff)
		run = nil
	}
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// errPanic marks a program that panicked: the container's process crashed.
var errPanic = errors.New("program panicked")

func runProgram(ctx context.Context, p Program, c *Container) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: %v\n%s", errPanic, r, debug.Stack())
		}
	}()
	return p.Run(ctx, c)
}

// exitCode is the exit code the kubelet would report for a container whose
// program returned err: 0 for a clean exit (or one caused by SIGTERM), 137
// for one that outlived the grace period (SIGKILL), 2 for a panic (Go's exit
// code for one), else 1.
func exitCode(err error, stopping bool, killed <-chan struct{}) int32 {
	select {
	case <-killed:
		return 137
	default:
	}
	switch {
	case err == nil:
		return 0
	case errors.Is(err, errPanic):
		return 2
	case stopping && (errors.Is(err, context.Canceled) || errors.Is(err, http.ErrServerClosed)):
		return 0
	}
	return 1
}

// apply folds one event into the pod's state.
func (w *podWorker) apply(ev podEvent, startContainers func()) {
	switch ev.kind {
	case evSidecarUp:
		if w.terminating {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			_ = ev.sidecar.Stop(ctx)
			cancel()
			return
		}
		w.sidecar = ev.sidecar
		w.sidecarWhy = sidecarState{ready: true, reason: "Running", message: "the emulated sidecar is running"}
		startContainers()
	case evSidecarFailed:
		w.sidecarWhy = sidecarState{reason: "StartFailed", message: fmt.Sprintf("%v; retrying in %s", ev.err, ev.backoff)}
		w.n.kubelet.Event(w.pod, corev1.EventTypeWarning, "Failed", "start the emulated sidecar: "+w.sidecarWhy.message)
		w.log.Warn("start sidecar", "err", ev.err, "backoff", ev.backoff)
	case evStarted:
		cs := w.containers[ev.i]
		if cs.begun {
			cs.restarts++
		}
		cs.begun = true
		cs.run, cs.ready, cs.id = ev.run, false, newContainerID()
		cs.state = corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: since(ev.at)}}
		w.n.kubelet.Eventf(w.pod, corev1.EventTypeNormal, "Started", "Started container %s", cs.spec.Name)
	case evReady:
		if cs := w.containers[ev.i]; cs.run == ev.run {
			cs.ready = true
		}
	case evExited:
		cs := w.containers[ev.i]
		cs.ready = false
		var startedAt = since(ev.at)
		if cs.run == ev.run && cs.state.Running != nil {
			startedAt = cs.state.Running.StartedAt
		}
		t := &corev1.ContainerStateTerminated{
			ExitCode: ev.code, Reason: "Completed", StartedAt: startedAt, FinishedAt: since(ev.at), ContainerID: cs.id,
		}
		if ev.code != 0 {
			t.Reason = "Error"
		}
		if ev.err != nil && ev.code != 0 {
			t.Message = ev.err.Error()
		}
		if ev.stopping {
			cs.state = corev1.ContainerState{Terminated: t}
			return
		}
		cs.last = t
		w.n.kubelet.Eventf(w.pod, corev1.EventTypeWarning, "BackOff", "Back-off restarting failed container %s in pod %s_%s(%s)", cs.spec.Name, w.pod.Name, w.pod.Namespace, w.uid)
		cs.state = corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{
			Reason:  "CrashLoopBackOff",
			Message: fmt.Sprintf("back-off %s restarting failed container=%s pod=%s_%s(%s)", ev.backoff, cs.spec.Name, w.pod.Name, w.pod.Namespace, w.uid),
		}}
	}
}

func newContainerID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return "drill://" + hex.EncodeToString(b)
}
