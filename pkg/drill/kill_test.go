package drill_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/meshdrill/drill/internal/localcluster/localtest"
	"github.com/meshdrill/drill/pkg/cluster/local"
	"github.com/meshdrill/drill/pkg/drill"
	"github.com/meshdrill/drill/pkg/event"
	"github.com/meshdrill/drill/pkg/fault"
	"github.com/meshdrill/drill/pkg/scenario"
)

// The test binary run again with childScenario set is a drill: it runs that
// scenario on the local provider, writing its reports under childOut, until
// it is killed.
const (
	childScenario = "DRILL_TEST_CHILD_SCENARIO"
	childOut      = "DRILL_TEST_CHILD_OUT"
)

func TestMain(m *testing.M) {
	if file := os.Getenv(childScenario); file != "" {
		os.Exit(runChildDrill(file, os.Getenv(childOut)))
	}
	os.Exit(m.Run())
}

func runChildDrill(file, out string) int {
	raw, err := os.ReadFile(file)
	if err == nil {
		var s *scenario.Scenario
		if s, err = scenario.Parse(file, raw); err == nil {
			_, err = drill.Run(context.Background(), s,
				drill.WithProvider(local.New(local.WithRunDir(filepath.Join(out, "clusters")))),
				drill.WithOut(out), drill.WithScenarioYAML(raw))
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "child drill:", err)
		return 2
	}
	return 0
}

// TestKilledDrillUndo kills a drill with SIGKILL while its partition and a
// scale fault are in place: nothing reverts them, the partition's iptables
// chain stays in this host's netfilter, and the undo records the drill wrote
// to its events.jsonl before each fault are enough to remove it afterwards
// (what `drill undo DIR` does). The scale fault's cluster ended with the
// drill: undo says it is gone.
func TestKilledDrillUndo(t *testing.T) {
	localtest.SkipIfDisabled(t)
	if testing.Short() {
		t.Skip("runs a drill")
	}
	if out, err := exec.Command("iptables", "-w", "-S", "INPUT").CombinedOutput(); err != nil || os.Geteuid() != 0 {
		t.Skipf("a partition on the local provider needs iptables and root: %v %s", err, out)
	}
	out := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childScenario+"=testdata/partition-short.yaml", childOut+"="+out)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	chainPrefix := fmt.Sprintf("DRILL-PART-%d-", cmd.Process.Pid)

	// Wait until both faults are applied, as the drill's own log says.
	var log string
	applied := func() int {
		logs, _ := filepath.Glob(filepath.Join(out, "*", event.LogFile))
		if len(logs) == 0 {
			return 0
		}
		log = logs[0]
		evs, _ := event.ReadLog(log)
		n := 0
		for _, e := range evs {
			if e.Type == event.FaultApplied {
				n++
			}
		}
		return n
	}
	deadline := time.Now().Add(4 * time.Minute)
	for applied() < 2 {
		select {
		case err := <-exited:
			t.Fatalf("the drill ended before its faults were applied: %v\n%s", err, stderr.String())
		case <-time.After(200 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			t.Fatalf("the drill did not apply its two faults within 4 minutes\n%s", stderr.String())
		}
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-exited
	chains := func() string {
		b, err := exec.Command("iptables", "-w", "-S").CombinedOutput()
		if err != nil {
			t.Fatalf("iptables -S: %v: %s", err, b)
		}
		return string(b)
	}
	if !strings.Contains(chains(), chainPrefix) {
		t.Fatalf("after kill -9 no partition chain %s… is left: nothing to undo, and nothing tested", chainPrefix)
	}
	t.Cleanup(func() { _, _ = fault.CleanPartitions(context.Background(), fault.HostFilter) })

	evs, err := event.ReadLog(log)
	if err != nil && !errors.Is(err, event.ErrTruncated) {
		t.Fatal(err)
	}
	pending, reverted, err := fault.PendingUndos(evs)
	if err != nil || len(pending) != 2 || len(reverted) != 0 {
		t.Fatalf("undo records: %d pending, %d reverted, %v; want the partition and the scale fault pending", len(pending), len(reverted), err)
	}
	env := fault.UndoEnv{ClustersEndWithDrill: true, Connect: func(kubeconfig, kctx string) (kubernetes.Interface, dynamic.Interface, error) {
		cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(
			&clientcmd.ClientConfigLoadingRules{ExplicitPath: kubeconfig},
			&clientcmd.ConfigOverrides{CurrentContext: kctx}).ClientConfig()
		if err != nil {
			return nil, nil, err
		}
		cfg.Timeout = 5 * time.Second
		cs, err := kubernetes.NewForConfig(cfg)
		return cs, nil, err
	}}
	outcomes := map[string]string{}
	for i := len(pending) - 1; i >= 0; i-- {
		res := fault.Undo(t.Context(), pending[i], env)
		outcomes[res.Record.Kind] = res.Outcome
		t.Logf("%s %s: %s", res.Outcome, res.Record.Step, res.Detail)
	}
	if outcomes[fault.KindPartition] != fault.UndoDone || outcomes[fault.KindScale] != fault.UndoGone {
		t.Errorf("outcomes %v: want the partition undone and the scale fault gone with its cluster", outcomes)
	}
	if s := chains(); strings.Contains(s, chainPrefix) {
		t.Errorf("after undo the partition chain is still in the host's netfilter:\n%s", s)
	}
}
