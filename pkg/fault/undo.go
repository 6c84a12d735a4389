package fault

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/retry"

	"github.com/meshdrill/drill/pkg/event"
)

// Undoer is a Fault that says, before it changes anything, how a later
// process puts back what it will change: the undo record a Set with a Journal
// writes before Apply. Every fault of this package is one. Whatever Undo reads
// (a Scale's original replicas) is what Apply then takes for the originals.
type Undoer interface {
	Undo(ctx context.Context) (event.Undo, error)
}

// undoRecord is f's undo record with the fields every record has filled in.
func undoRecord(ctx context.Context, f Fault) (event.Undo, error) {
	var u event.Undo
	if un, ok := f.(Undoer); ok {
		var err error
		if u, err = un.Undo(ctx); err != nil {
			return u, err
		}
	} else {
		u.Cannot = "a fault of kind " + f.Kind() + " leaves no undo record"
	}
	t := f.Target()
	u.Kind, u.Cluster = f.Kind(), t.Name
	u.Context, u.Kubeconfig = t.Context, t.Kubeconfig
	return u, nil
}

// Undo outcomes, for UndoResult.Outcome.
const (
	// UndoDone: the fault's change was put back.
	UndoDone = "undone"
	// UndoReverted: the drill reverted the fault itself; nothing was done.
	UndoReverted = "reverted"
	// UndoNothing: the fault needs no undoing (deleted pods come back by
	// themselves).
	UndoNothing = "nothing to undo"
	// UndoGone: the cluster the fault was in is gone with its drill (the
	// local provider's clusters are processes of the drill).
	UndoGone = "gone"
	// UndoRefused: drill cannot undo it; Detail says why and what to do.
	UndoRefused = "refused"
	// UndoFailed: undoing it was tried and failed; Detail has the error.
	UndoFailed = "failed"
)

// UndoResult is what Undo did about one record.
type UndoResult struct {
	Record  event.Undo
	Outcome string
	Detail  string
}

// Pending is the undo records of a run's events whose fault the run did not
// revert itself, in the order they were written, and those it did revert.
func PendingUndos(evs []event.Event) (pending, reverted []event.Undo, err error) {
	var all []event.Undo
	done := map[string]bool{}
	for _, e := range evs {
		switch e.Type {
		case event.FaultUndo:
			var u event.Undo
			if err := json.Unmarshal(e.Data, &u); err != nil {
				return nil, nil, fmt.Errorf("event %d (%s): %w", e.Seq, e.Type, err)
			}
			all = append(all, u)
		case event.FaultReverted:
			var f event.Fault
			if err := json.Unmarshal(e.Data, &f); err != nil {
				return nil, nil, fmt.Errorf("event %d (%s): %w", e.Seq, e.Type, err)
			}
			if f.Undo != "" {
				done[f.Undo] = true
			}
		}
	}
	for _, u := range all {
		if done[u.ID] {
			reverted = append(reverted, u)
		} else {
			pending = append(pending, u)
		}
	}
	return pending, reverted, nil
}

// UndoEnv is how Undo reaches the clusters and packet filters of a record.
type UndoEnv struct {
	// Connect returns clients for a record's kubeconfig and context.
	Connect func(kubeconfig, context string) (kubernetes.Interface, dynamic.Interface, error)
	// Run runs a command (iptables on this host, docker for a kind node);
	// nil runs it for real.
	Run func(ctx context.Context, argv []string) (string, error)
	// DryRun says what would be done without doing it.
	DryRun bool
	// ClustersEndWithDrill says the run's clusters were processes of its drill
	// (the local provider): one that does not answer is gone, and so is what
	// the fault changed in it.
	ClustersEndWithDrill bool
}

var (
	// The shapes of what an undo record names, checked before anything is
	// run: a record is read from a file, and is only acted on when it names
	// what drill itself creates.
	chainRE = regexp.MustCompile(`^` + partitionChainPrefix + `[0-9]+-[0-9A-F]{4}$`)
	nodeRE  = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$`)
	dnsRE   = regexp.MustCompile(`^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$`)
)

// Undo puts back what the fault of one record changed. It refuses, saying
// why, a record it cannot act on: a component that ran inside the drill's own
// process, a cluster whose API server does not answer, a record naming
// something drill does not create. Everything it does is idempotent: undoing
// a record twice changes nothing the second time.
func Undo(ctx context.Context, u event.Undo, env UndoEnv) UndoResult {
	res := UndoResult{Record: u}
	refuse := func(format string, args ...any) UndoResult {
		res.Outcome, res.Detail = UndoRefused, fmt.Sprintf(format, args...)
		return res
	}
	fail := func(err error) UndoResult {
		res.Outcome, res.Detail = UndoFailed, err.Error()
		return res
	}
	actions := 0
	for _, set := range []bool{len(u.Replicas) > 0, u.EnvoyFilter != "", u.Chain != "", len(u.Nodes) > 0} {
		if set {
			actions++
		}
	}
	switch {
	case u.Cannot != "":
		return refuse("%s", u.Cannot)
	case actions == 0 && u.Nothing != "":
		res.Outcome, res.Detail = UndoNothing, u.Nothing
		return res
	case actions != 1:
		return refuse("the record names %d ways to undo the fault, not one (written by a newer drill?)", actions)
	}
	run := env.Run
	if run == nil {
		run = runCommand
	}

	switch {
	case u.Chain != "":
		if !chainRE.MatchString(u.Chain) {
			return refuse("chain %q is not a name drill gives a partition's chain", u.Chain)
		}
		var errs []error
		var where []string
		for _, f := range u.Filters {
			pf, err := undoFilter(f)
			if err != nil {
				return refuse("%v", err)
			}
			where = append(where, pf.Name)
			if env.DryRun {
				continue
			}
			p := &Partition{chain: u.Chain, run: run}
			if err := p.removeFrom(ctx, pf); err != nil {
				errs = append(errs, fmt.Errorf("in %s: %w", pf.Name, err))
			}
		}
		if len(u.Filters) == 0 {
			return refuse("the record names no packet filter for chain %s", u.Chain)
		}
		if err := errors.Join(errs...); err != nil {
			return fail(fmt.Errorf("remove iptables chain %s: %w", u.Chain, err))
		}
		res.Outcome, res.Detail = UndoDone, fmt.Sprintf("iptables chain %s and its jumps removed from %s", u.Chain, strings.Join(where, ", "))

	case len(u.Nodes) > 0:
		for _, n := range u.Nodes {
			if !nodeRE.MatchString(n) {
				return refuse("%q is not a node container name", n)
			}
		}
		if !env.DryRun {
			if _, err := run(ctx, append([]string{"docker", "start"}, u.Nodes...)); err != nil {
				return fail(fmt.Errorf("start node containers %s: %w", strings.Join(u.Nodes, ", "), err))
			}
		}
		res.Outcome, res.Detail = UndoDone, "node containers "+strings.Join(u.Nodes, ", ")+" started (their kubelets take a minute to report Ready)"

	default:
		if !dnsRE.MatchString(u.Namespace) {
			return refuse("namespace %q is not a Kubernetes name", u.Namespace)
		}
		if env.Connect == nil {
			return refuse("no way to reach cluster %s", u.Cluster)
		}
		cs, dyn, err := env.Connect(u.Kubeconfig, u.Context)
		if err == nil {
			_, err = cs.Discovery().ServerVersion()
		}
		if err != nil {
			if env.ClustersEndWithDrill {
				res.Outcome, res.Detail = UndoGone, fmt.Sprintf("cluster %s ended with its drill, and the change with it (%v)", u.Cluster, err)
				return res
			}
			return refuse("cannot reach cluster %s (kubeconfig %q, context %q): %v", u.Cluster, u.Kubeconfig, u.Context, err)
		}
		if len(u.Replicas) > 0 {
			return undoReplicas(ctx, cs, u, env.DryRun, res)
		}
		return undoEnvoyFilter(ctx, dyn, u, env.DryRun, res)
	}
	if env.DryRun {
		res.Detail = "would be " + res.Detail
	}
	return res
}

// undoFilter is the packet filter an undo record names: this host's, or a
// kind node's reached through docker exec.
func undoFilter(f event.UndoFilter) (PacketFilter, error) {
	if f.Node == "" {
		return HostFilter, nil
	}
	if !nodeRE.MatchString(f.Node) {
		return PacketFilter{}, fmt.Errorf("%q is not a node container name", f.Node)
	}
	return NodeFilter(f.Node), nil
}

// NodeFilter is the netfilter of a kind node container, reached with docker
// exec.
func NodeFilter(node string) PacketFilter {
	return PacketFilter{
		Name:    "node " + node,
		Command: []string{"docker", "exec", node, "iptables"},
		Restore: []string{"docker", "exec", "-i", node, "iptables-restore"},
	}
}

// undoFilterOf is the record of a packet filter: its node when it is a kind
// node's, nothing when it is this host's.
func undoFilterOf(f PacketFilter) (event.UndoFilter, bool) {
	switch {
	case len(f.Command) == 1 && filepath.Base(f.Command[0]) == "iptables":
		return event.UndoFilter{Name: f.Name}, true
	case len(f.Command) == 4 && filepath.Base(f.Command[0]) == "docker" && f.Command[1] == "exec" && f.Command[3] == "iptables":
		return event.UndoFilter{Name: f.Name, Node: f.Command[2]}, true
	}
	return event.UndoFilter{}, false
}

func undoReplicas(ctx context.Context, cs kubernetes.Interface, u event.Undo, dryRun bool, res UndoResult) UndoResult {
	api := cs.AppsV1().Deployments(u.Namespace)
	var done, errs []string
	for _, d := range u.Replicas {
		if !dnsRE.MatchString(d.Name) || d.From < 0 {
			res.Outcome, res.Detail = UndoRefused, fmt.Sprintf("deployment %q with %d replicas is not something drill records", d.Name, d.From)
			return res
		}
		err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
			sc, err := api.GetScale(ctx, d.Name, metav1.GetOptions{})
			if err != nil {
				return err
			}
			if sc.Spec.Replicas == d.From || dryRun {
				return nil
			}
			sc.Spec.Replicas = d.From
			_, err = api.UpdateScale(ctx, d.Name, sc, metav1.UpdateOptions{})
			return err
		})
		if err != nil {
			if apierrors.IsNotFound(err) {
				err = errors.New("it was deleted since: nothing to scale back")
			}
			errs = append(errs, fmt.Sprintf("deployment %s/%s to %d: %v", u.Namespace, d.Name, d.From, err))
			continue
		}
		done = append(done, fmt.Sprintf("%s to %d", d.Name, d.From))
	}
	if len(errs) > 0 {
		res.Outcome, res.Detail = UndoFailed, "scale back "+strings.Join(errs, "; ")
		return res
	}
	res.Outcome, res.Detail = UndoDone, fmt.Sprintf("deployments in %s scaled back: %s", u.Namespace, strings.Join(done, ", "))
	if dryRun {
		res.Detail = "would be " + res.Detail
	}
	return res
}

func undoEnvoyFilter(ctx context.Context, dyn dynamic.Interface, u event.Undo, dryRun bool, res UndoResult) UndoResult {
	if !dnsRE.MatchString(u.EnvoyFilter) || !strings.HasPrefix(u.EnvoyFilter, "drill-") {
		res.Outcome, res.Detail = UndoRefused, fmt.Sprintf("EnvoyFilter %q is not a name drill gives its objects", u.EnvoyFilter)
		return res
	}
	api := dyn.Resource(envoyFilters).Namespace(u.Namespace)
	obj, err := api.Get(ctx, u.EnvoyFilter, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		res.Outcome, res.Detail = UndoDone, fmt.Sprintf("EnvoyFilter %s/%s is already gone", u.Namespace, u.EnvoyFilter)
		return res
	case err != nil:
		res.Outcome, res.Detail = UndoFailed, fmt.Sprintf("get EnvoyFilter %s/%s: %v", u.Namespace, u.EnvoyFilter, err)
		return res
	case obj.GetLabels()["app.kubernetes.io/managed-by"] != "drill":
		res.Outcome, res.Detail = UndoRefused, fmt.Sprintf("EnvoyFilter %s/%s is not labelled app.kubernetes.io/managed-by=drill: someone else's, left alone", u.Namespace, u.EnvoyFilter)
		return res
	}
	if !dryRun {
		if err := api.Delete(ctx, u.EnvoyFilter, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			res.Outcome, res.Detail = UndoFailed, fmt.Sprintf("delete EnvoyFilter %s/%s: %v", u.Namespace, u.EnvoyFilter, err)
			return res
		}
	}
	res.Outcome, res.Detail = UndoDone, fmt.Sprintf("EnvoyFilter %s/%s deleted", u.Namespace, u.EnvoyFilter)
	if dryRun {
		res.Detail = "would be " + res.Detail
	}
	return res
}
