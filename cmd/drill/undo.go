package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/meshdrill/drill/pkg/event"
	"github.com/meshdrill/drill/pkg/fault"
)

func newUndoCmd() *cobra.Command {
	var dryRun, force bool
	cmd := &cobra.Command{
		Use:   "undo DIR",
		Short: "Put back the faults a killed drill left in place, from its events.jsonl",
		Long: `undo reads a run's DIR/events.jsonl and reverts every fault the run applied and did
not revert itself: a drill killed with kill -9, by the OOM killer or a lost machine never
got to its revert. Before each fault changes anything, drill writes to that log (and
syncs it to the disk) how to undo it — each Deployment's replicas before a scale, the
EnvoyFilter an httpFault creates, the iptables chain of a partition and the filters it
is in — and undo acts on exactly that, newest first, through the run's own kubeconfig
and context.

It refuses, saying why, what it cannot undo: a gateway or istiod the local provider ran
inside the drill's own process (it ended with the drill), a record that names something
drill does not create, a drill that is still running (stop it with Ctrl-C: it reverts
by itself). Faults of a local-provider run that lived in its clusters ended with them:
they are reported as gone. A fault kept on purpose (keep: true) is undone too.

Undoing twice changes nothing the second time. Exit code 0 when nothing is left in
place, 1 when a fault could not be undone (each is printed with the command that
restores it by hand), 2 when DIR holds no readable event log.`,
		Example: `  drill undo reports/reviews-failover-20261124-101500
  drill undo reports/reviews-failover-20261124-101500 --dry-run`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			out := cmd.OutOrStdout()
			path := filepath.Join(args[0], event.LogFile)
			evs, readErr := event.ReadLog(path)
			if readErr != nil {
				if len(evs) == 0 {
					return &exitCodeError{code: exitError, err: readErr}
				}
				// A drill killed mid-write leaves its last line cut short; every
				// record before it is whole.
				fmt.Fprintf(cmd.ErrOrStderr(), "drill: %v; undoing from the %d events before it\n", readErr, len(evs))
			}
			info, finished := runOf(evs)
			if !finished && !force {
				if alive, why := stillRunning(info); alive {
					return &exitCodeError{code: exitError, err: fmt.Errorf("%s: %s; stop it with Ctrl-C, which reverts its faults itself (or pass --force)", path, why)}
				}
			}
			pending, reverted, err := fault.PendingUndos(evs)
			if err != nil {
				return &exitCodeError{code: exitError, err: fmt.Errorf("%s: %w", path, err)}
			}
			restore := restoreCommands(evs)
			for _, u := range reverted {
				fmt.Fprintf(out, "%-16s %s: the drill reverted it\n", fault.UndoReverted, describeUndo(u))
			}
			env := fault.UndoEnv{Connect: connect, DryRun: dryRun, ClustersEndWithDrill: info.Provider == "local"}
			var left int
			// Newest first, as the drill itself reverts.
			for i := len(pending) - 1; i >= 0; i-- {
				res := fault.Undo(cmd.Context(), pending[i], env)
				fmt.Fprintf(out, "%-16s %s: %s\n", res.Outcome, describeUndo(res.Record), res.Detail)
				if res.Outcome == fault.UndoRefused || res.Outcome == fault.UndoFailed {
					left++
					if r := restore[res.Record.ID]; r != "" {
						fmt.Fprintf(out, "%-16s restore it by hand with: %s\n", "", r)
					}
				}
			}
			if len(pending)+len(reverted) == 0 {
				fmt.Fprintln(out, "the run applied no fault: nothing to undo")
			}
			if left > 0 {
				return &exitCodeError{code: 1, err: fmt.Errorf("%d fault(s) of %s could not be undone: see above", left, args[0])}
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "say what would be undone without changing anything")
	cmd.Flags().BoolVar(&force, "force", false, "undo even though the run's drill process still seems to be running")
	return cmd
}

// runOf is the run's run.started payload and whether the run finished.
func runOf(evs []event.Event) (info event.RunInfo, finished bool) {
	for _, e := range evs {
		switch e.Type {
		case event.RunStarted:
			_ = json.Unmarshal(e.Data, &info)
		case event.RunFinished:
			finished = true
		}
	}
	return info, finished
}

// stillRunning says whether the drill of a run that did not finish is still
// alive: the same process ID on this host.
func stillRunning(info event.RunInfo) (bool, string) {
	host, _ := os.Hostname()
	if info.PID <= 0 || info.Host != host {
		return false, ""
	}
	err := syscall.Kill(info.PID, 0)
	if err == nil || errors.Is(err, syscall.EPERM) {
		return true, fmt.Sprintf("the run has not finished and its drill (process %d) is still running", info.PID)
	}
	return false, ""
}

// restoreCommands maps each undo record's ID to the by-hand restore command
// its fault.applied event carries.
func restoreCommands(evs []event.Event) map[string]string {
	out := map[string]string{}
	for _, e := range evs {
		if e.Type != event.FaultApplied {
			continue
		}
		var f event.Fault
		if json.Unmarshal(e.Data, &f) == nil && f.Undo != "" && f.Restore != "" {
			out[f.Undo] = f.Restore
		}
	}
	return out
}

func describeUndo(u event.Undo) string {
	return fmt.Sprintf("%s (step %s, %s in %s)", u.ID, u.Step, u.Kind, u.Cluster)
}

// connect builds clients for a kubeconfig (empty: the default loading rules)
// and context, with a short timeout: undo must not hang on a dead cluster.
func connect(kubeconfig, kctx string) (kubernetes.Interface, dynamic.Interface, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	if kubeconfig != "" {
		if _, err := os.Stat(kubeconfig); err != nil {
			return nil, nil, err
		}
		rules = &clientcmd.ClientConfigLoadingRules{ExplicitPath: kubeconfig}
	}
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{CurrentContext: kctx}).ClientConfig()
	if err != nil {
		return nil, nil, err
	}
	cfg.Timeout = 15 * time.Second
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, nil, err
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, nil, err
	}
	return cs, dyn, nil
}
