package fault_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/meshdrill/drill/pkg/event"
	"github.com/meshdrill/drill/pkg/fault"
)

// The child process: the test binary run again with childEnv=1 behaves like
// drill — apply a fault, run until interrupted, revert — against the API
// server named by the kubeconfig in childKubeconfig.
const (
	childEnv        = "DRILL_FAULT_TEST_CHILD"
	childKubeconfig = "DRILL_FAULT_TEST_KUBECONFIG"
	childContext    = "DRILL_FAULT_TEST_CONTEXT"
	childNamespace  = "DRILL_FAULT_TEST_NAMESPACE"
	// childStuck makes the child's engine ignore cancellation and never defer
	// a revert: only the signal handler can revert.
	childStuck = "DRILL_FAULT_TEST_STUCK"
	// childLog makes the child write its events to this log, with each
	// fault's undo record synced to it before the fault (the engine's journal).
	childLog   = "DRILL_FAULT_TEST_LOG"
	childReady = "fault applied; waiting for a signal"
)

// runChild is the whole child: what cmd/drill does around the engine.
func runChild() int {
	kubeconfig, kctx, ns := os.Getenv(childKubeconfig), os.Getenv(childContext), os.Getenv(childNamespace)
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(
		&clientcmd.ClientConfigLoadingRules{ExplicitPath: kubeconfig},
		&clientcmd.ConfigOverrides{CurrentContext: kctx}).ClientConfig()
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 3
	}
	target := fault.Target{Name: "east", Context: kctx, Kubeconfig: kubeconfig, Client: kubernetes.NewForConfigOrDie(cfg)}

	bus := event.NewBus(event.WithLogger(quiet()))
	sub := bus.Subscribe("child")
	opts := []fault.SetOption{fault.WithLogger(quiet())}
	if path := os.Getenv(childLog); path != "" {
		lw, err := event.CreateLog(path)
		if err != nil {
			fmt.Fprintln(os.Stderr, "child:", err)
			return 3
		}
		logSub := bus.Subscribe("log")
		go func() { _ = lw.Record(context.Background(), logSub) }()
		opts = append(opts, fault.WithJournal(func(ctx context.Context, u event.Undo) error {
			return lw.Sync(ctx, bus.Emit(event.New(event.FaultUndo, u.Cluster, "fault/"+u.Step, u)))
		}))
	}
	// Not Owned: the context is allowed the way a user allows one.
	set := fault.NewSet(bus, fault.NewGuard(fault.AllowedFromEnv()...), opts...)
	ctx, intr := fault.OnInterrupt(context.Background(), set, fault.WithOutput(os.Stderr))

	if os.Getenv(childStuck) == "1" {
		f, err := fault.NewScale(target, fault.ByApp(ns, "reviews"), 0)
		if err == nil {
			err = set.Apply(ctx, "reviews-down", f)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "child:", err)
			return 3
		}
		fmt.Println(childReady)
		select {} // an engine that never returns: the second signal must exit
	}

	code := func() int {
		defer func() {
			// The engine's own deferred revert: it finds the handler's work done.
			if err := set.RevertAll(ctx); err != nil {
				fmt.Fprintln(os.Stderr, "child:", err)
			}
		}()
		f, err := fault.NewScale(target, fault.ByApp(ns, "reviews"), 0)
		if err != nil {
			fmt.Fprintln(os.Stderr, "child:", err)
			return 3
		}
		if err := set.Apply(ctx, "reviews-down", f); err != nil {
			fmt.Fprintln(os.Stderr, "child:", err)
			return 3
		}
		fmt.Println(childReady)
		<-ctx.Done() // the drill runs until Ctrl-C
		return 2
	}()
	if err := intr.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "child: revert:", err)
		return 4
	}
	_ = bus.Close()
	for e := range sub.Events() {
		fmt.Println("event", e.Type)
	}
	return code
}

// Ctrl-C during a fault reverts it: a child process applies a scale fault
// against the real API server and receives SIGINT; the parent checks the
// Deployment got its replicas back.
func testCtrlCReverts(t *testing.T, c *cluster) {
	ns := c.namespace(t)
	c.deploy(t, ns, "reviews", "v1", 2)
	cmd, stdout, stderr := startChild(t, c, ns, false)

	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	rest, _ := io.ReadAll(stdout)
	err := cmd.Wait()
	if code := cmd.ProcessState.ExitCode(); code != 2 {
		t.Fatalf("child exited with %v (code %d), want 2 (aborted, reverted)\nstdout:\n%s\nstderr:\n%s", err, code, rest, stderr.String())
	}
	if got := c.replicas(t, ns, "reviews-v1"); got != 2 {
		t.Errorf("after Ctrl-C reviews-v1 has %d replicas, want 2", got)
	}
	if want := "event fault.applied\nevent fault.reverted\n"; string(rest) != want {
		t.Errorf("child events:\n%s\nwant:\n%s", rest, want)
	}
	if !strings.Contains(stderr.String(), "reverting its faults") {
		t.Errorf("child did not tell the user it was reverting:\n%s", stderr.String())
	}
	c.waitPods(t, ns, "reviews-v1", 2)
}

// An engine stuck past Ctrl-C: the signal handler reverts on its own, and a
// second Ctrl-C exits at once with 130.
func testCtrlCRevertsStuckEngine(t *testing.T, c *cluster) {
	ns := c.namespace(t)
	c.deploy(t, ns, "reviews", "v1", 2)
	cmd, stdout, stderr := startChild(t, c, ns, true)

	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	err := wait.PollUntilContextTimeout(context.Background(), 50*time.Millisecond, 60*time.Second, true, func(ctx context.Context) (bool, error) {
		return c.replicas(t, ns, "reviews-v1") == 2, nil
	})
	if err != nil {
		t.Fatalf("the handler did not revert while the engine was stuck: %v\nstderr:\n%s", err, stderr.String())
	}
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	_, _ = io.ReadAll(stdout)
	_ = cmd.Wait()
	if code := cmd.ProcessState.ExitCode(); code != fault.ExitInterrupted {
		t.Fatalf("child exited with code %d after a second Ctrl-C, want %d\nstderr:\n%s", code, fault.ExitInterrupted, stderr.String())
	}
	if !strings.Contains(stderr.String(), "exiting now") {
		t.Errorf("stderr:\n%s", stderr.String())
	}
}

// A drill killed with SIGKILL mid-fault reverts nothing; its event log holds
// the undo record written before the fault, and undoing from the log alone
// gives the Deployment its replicas back.
func testKillThenUndo(t *testing.T, c *cluster) {
	ns := c.namespace(t)
	c.deploy(t, ns, "reviews", "v1", 2)
	log := filepath.Join(t.TempDir(), event.LogFile)
	cmd, stdout, stderr := startChild(t, c, ns, false, childLog+"="+log)
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_, _ = io.ReadAll(stdout)
	_ = cmd.Wait()
	if got := c.replicas(t, ns, "reviews-v1"); got != 0 {
		t.Fatalf("after kill -9 reviews-v1 has %d replicas: something reverted it\nstderr:\n%s", got, stderr.String())
	}
	evs, err := event.ReadLog(log)
	if err != nil && !errors.Is(err, event.ErrTruncated) {
		t.Fatal(err)
	}
	pending, _, err := fault.PendingUndos(evs)
	if err != nil || len(pending) != 1 {
		t.Fatalf("pending undo records: %+v, %v", pending, err)
	}
	u := pending[0]
	if u.Kind != fault.KindScale || u.Namespace != ns || len(u.Replicas) != 1 || u.Replicas[0].Name != "reviews-v1" || u.Replicas[0].From != 2 || u.Kubeconfig != c.cp.Kubeconfig() {
		t.Fatalf("undo record %+v", u)
	}
	env := fault.UndoEnv{Connect: func(kubeconfig, kctx string) (kubernetes.Interface, dynamic.Interface, error) {
		cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(
			&clientcmd.ClientConfigLoadingRules{ExplicitPath: kubeconfig},
			&clientcmd.ConfigOverrides{CurrentContext: kctx}).ClientConfig()
		if err != nil {
			return nil, nil, err
		}
		return kubernetes.NewForConfigOrDie(cfg), nil, nil
	}}
	if res := fault.Undo(t.Context(), u, env); res.Outcome != fault.UndoDone || !strings.Contains(res.Detail, "reviews-v1 to 2") {
		t.Fatalf("undo: %s: %s", res.Outcome, res.Detail)
	}
	if got := c.replicas(t, ns, "reviews-v1"); got != 2 {
		t.Errorf("after undo reviews-v1 has %d replicas, want 2", got)
	}
	c.waitPods(t, ns, "reviews-v1", 2)
	// Undone twice: the second changes nothing.
	if res := fault.Undo(t.Context(), u, env); res.Outcome != fault.UndoDone {
		t.Errorf("second undo: %s: %s", res.Outcome, res.Detail)
	}
}

// startChild runs the child against namespace ns and waits until it has
// applied its fault.
func startChild(t *testing.T, c *cluster, ns string, stuck bool, env ...string) (*exec.Cmd, io.Reader, *syncBuilder) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(),
		childEnv+"=1",
		childKubeconfig+"="+c.cp.Kubeconfig(),
		childContext+"="+c.cp.Name(),
		childNamespace+"="+ns,
		fault.EnvAllowContexts+"="+c.cp.Name(),
	)
	if stuck {
		cmd.Env = append(cmd.Env, childStuck+"=1")
	}
	cmd.Env = append(cmd.Env, env...)
	stderr := &syncBuilder{}
	cmd.Stderr = stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(stdout)
	line, _ := r.ReadString('\n')
	if strings.TrimSpace(line) != childReady {
		_ = cmd.Wait()
		t.Fatalf("child did not apply the fault: %q\nstderr:\n%s", line, stderr.String())
	}
	if got := c.replicas(t, ns, "reviews-v1"); got != 0 {
		t.Fatalf("with the child running reviews-v1 has %d replicas, want 0", got)
	}
	return cmd, r, stderr
}

// syncBuilder is a strings.Builder the child's stderr copier writes to while
// the test reads it.
type syncBuilder struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuilder) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuilder) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
