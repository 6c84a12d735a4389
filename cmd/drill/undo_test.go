package main

import (
	"context"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/meshdrill/drill/pkg/event"
	"github.com/meshdrill/drill/pkg/fault"
)

// runUndoCLI runs drill undo in-process and returns its exit code.
func runUndoCLI(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	return runCLI(t, append([]string{"undo"}, args...)...)
}

// writeRun writes a run's event log with these events, numbered by a real
// bus, into a new directory.
func writeRun(t *testing.T, evs ...event.Event) string {
	t.Helper()
	dir := t.TempDir()
	lw, err := event.CreateLog(filepath.Join(dir, event.LogFile))
	if err != nil {
		t.Fatal(err)
	}
	bus := event.NewBus()
	sub := bus.Subscribe("log", event.WithBuffer(1000))
	for _, e := range evs {
		bus.Publish(e)
	}
	_ = bus.Close()
	if err := lw.Record(context.Background(), sub); err != nil {
		t.Fatal(err)
	}
	if err := lw.Close(); err != nil {
		t.Fatal(err)
	}
	return dir
}

func started(provider string, pid int) event.Event {
	host, _ := os.Hostname()
	return event.New(event.RunStarted, "", "engine", event.RunInfo{Scenario: "s", Provider: provider, Host: host, PID: pid})
}

// hostNet is a cluster's network on this host's loopback, for a partition.
type hostNet string

func (n hostNet) NetworkRanges() []netip.Prefix {
	return []netip.Prefix{netip.MustParsePrefix(string(n))}
}
func (n hostNet) PacketFilters() []fault.PacketFilter { return []fault.PacketFilter{fault.HostFilter} }

func hostChains(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("iptables", "-w", "-S").CombinedOutput()
	if err != nil {
		t.Fatalf("iptables -S: %v: %s", err, out)
	}
	return string(out)
}

// TestUndoVerb: a drill that applied a partition on this host and was
// killed (its process gone, no revert, no run.finished) is undone by
// `drill undo DIR`: --dry-run changes nothing, undo removes the chain, a
// second undo finds nothing left and still exits 0.
func TestUndoVerb(t *testing.T) {
	if _, err := exec.LookPath("iptables"); err != nil || os.Geteuid() != 0 {
		t.Skip("needs iptables and root")
	}
	if out, err := exec.Command("iptables", "-w", "-S", "INPUT").CombinedOutput(); err != nil {
		t.Skipf("iptables does not work here: %v: %s", err, out)
	}
	dir := t.TempDir()
	lw, err := event.CreateLog(filepath.Join(dir, event.LogFile))
	if err != nil {
		t.Fatal(err)
	}
	bus := event.NewBus()
	logSub := bus.Subscribe("log", event.WithBuffer(1000))
	go func() { _ = lw.Record(context.Background(), logSub) }()
	// The run's process is gone: a PID no process has.
	bus.Publish(started("local", 1<<22+12345))
	set := fault.NewSet(bus, nil, fault.WithJournal(func(ctx context.Context, u event.Undo) error {
		ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		return lw.Sync(ctx, bus.Emit(event.New(event.FaultUndo, u.Cluster, "fault/"+u.Step, u)))
	}))
	a := fault.Target{Name: "cluster1", Owned: true, Network: hostNet("127.79.0.0/16")}
	b := fault.Target{Name: "cluster2", Owned: true, Network: hostNet("127.80.0.0/16")}
	p, err := fault.NewPartition(a, []fault.Target{b}, false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Revert(context.Background()) })
	if err := set.Apply(t.Context(), "cut", p); err != nil {
		t.Fatal(err)
	}
	// Killed here: the log is read as the drill left it.

	code, out, errOut := runUndoCLI(t, dir, "--dry-run")
	if code != 0 || !strings.Contains(out, "undone") || !strings.Contains(out, "would be iptables chain "+p.Chain()) {
		t.Fatalf("undo --dry-run: exit %d\n%s%s", code, out, errOut)
	}
	if !strings.Contains(hostChains(t), p.Chain()) {
		t.Fatal("--dry-run removed the chain")
	}
	for i := range 2 {
		code, out, errOut = runUndoCLI(t, dir)
		if code != 0 || !strings.Contains(out, "f1 (step cut, partition in cluster1): iptables chain "+p.Chain()) {
			t.Fatalf("undo #%d: exit %d\n%s%s", i+1, code, out, errOut)
		}
		if strings.Contains(hostChains(t), p.Chain()) {
			t.Fatalf("after undo #%d the chain %s is still there", i+1, p.Chain())
		}
	}
	_ = bus.Close()
	_ = lw.Close()
}

// TestUndoVerbOutcomes: what undo says and its exit code for a run still
// running, a fault drill cannot undo, a local run's vanished cluster, a run
// that reverted everything, and a directory with no log.
func TestUndoVerbOutcomes(t *testing.T) {
	inProcess := event.Undo{ID: "f1", Step: "istiod-down", Kind: fault.KindControlPlaneLoss, Cluster: "cluster1",
		Cannot: "istiod of cluster cluster1 ran inside the drill's own process, and ended with it"}
	scale := event.Undo{ID: "f1", Step: "down", Kind: fault.KindScale, Cluster: "cluster1", Namespace: "default",
		Kubeconfig: filepath.Join(t.TempDir(), "gone.kubeconfig"), Context: "cluster1",
		Replicas: []event.DeploymentReplicas{{Name: "reviews-v1", From: 1}}}
	applied := event.New(event.FaultApplied, "cluster1", "fault/down", event.Fault{Step: "down", Undo: "f1", Restore: "kubectl scale deployment/reviews-v1 --replicas=1"})

	for _, tc := range []struct {
		name   string
		dir    string
		args   []string
		code   int
		want   []string
		stderr string
	}{
		{name: "still running", dir: writeRun(t, started("kind", os.Getpid()), event.New(event.FaultUndo, "cluster1", "fault/down", scale)),
			code: exitError, stderr: "still running"},
		{name: "cannot", dir: writeRun(t, started("local", 0), event.New(event.FaultUndo, "cluster1", "fault/istiod-down", inProcess),
			event.New(event.FaultApplied, "cluster1", "fault/istiod-down", event.Fault{Undo: "f1", Restore: "start it again"})),
			code: 1, want: []string{"refused", "ran inside the drill's own process", "restore it by hand with: start it again"}},
		{name: "local cluster gone", dir: writeRun(t, started("local", 0), event.New(event.FaultUndo, "cluster1", "fault/down", scale), applied),
			code: 0, want: []string{"gone", "cluster cluster1 ended with its drill"}},
		{name: "kind cluster unreachable", dir: writeRun(t, started("kind", 0), event.New(event.FaultUndo, "cluster1", "fault/down", scale), applied),
			code: 1, want: []string{"refused", "cannot reach cluster cluster1", "restore it by hand with: kubectl scale"}},
		{name: "reverted by the drill", dir: writeRun(t, started("kind", 0), event.New(event.FaultUndo, "cluster1", "fault/down", scale), applied,
			event.New(event.FaultReverted, "cluster1", "fault/down", event.Fault{Undo: "f1"}), event.New(event.RunFinished, "", "engine", event.RunResult{Verdict: "pass"})),
			code: 0, want: []string{"reverted", "the drill reverted it"}},
		{name: "no fault", dir: writeRun(t, started("kind", 0), event.New(event.RunFinished, "", "engine", event.RunResult{Verdict: "pass"})),
			code: 0, want: []string{"nothing to undo"}},
		{name: "no log", dir: t.TempDir(), code: exitError, stderr: "events.jsonl"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := runUndoCLI(t, append([]string{tc.dir}, tc.args...)...)
			if code != tc.code {
				t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tc.code, out, errOut)
			}
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("stdout lacks %q:\n%s", w, out)
				}
			}
			if !strings.Contains(errOut, tc.stderr) {
				t.Errorf("stderr lacks %q:\n%s", tc.stderr, errOut)
			}
		})
	}
}
