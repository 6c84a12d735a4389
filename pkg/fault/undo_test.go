package fault

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/meshdrill/drill/pkg/event"
)

// TestJournalBeforeApply: with a Journal, a fault's undo record is written
// before the fault's Apply runs, and a record that cannot be written stops
// the fault before it changes anything.
func TestJournalBeforeApply(t *testing.T) {
	rec := &recorder{}
	var undos []event.Undo
	journal := func(_ context.Context, u event.Undo) error {
		rec.add("journal " + u.ID + " " + u.Step)
		undos = append(undos, u)
		return nil
	}
	bus := event.NewBus(event.WithLogger(quietLog()))
	sub := bus.Subscribe("test", event.WithBuffer(100))
	s := NewSet(bus, nil, WithLogger(quietLog()), WithJournal(journal))
	own := Target{Name: "east", Context: "kind-east", Kubeconfig: "/tmp/kc", Owned: true}
	if err := s.Apply(t.Context(), "down", &fakeFault{name: "a", target: own, rec: rec}); err != nil {
		t.Fatal(err)
	}
	if err := s.Apply(t.Context(), "worse", &fakeFault{name: "b", target: own, rec: rec}); err != nil {
		t.Fatal(err)
	}
	want := []string{"journal f1 down", "apply a", "journal f2 worse", "apply b"}
	if got := rec.list(); strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("order %q, want %q", got, want)
	}
	// A fault that is not an Undoer is on record as one drill cannot undo.
	if u := undos[0]; u.Kind != "fake" || u.Cluster != "east" || u.Context != "kind-east" || u.Kubeconfig != "/tmp/kc" || u.Cannot == "" {
		t.Errorf("undo record %+v", u)
	}
	if err := s.RevertAll(t.Context()); err != nil {
		t.Fatal(err)
	}
	bus.Close()
	// The fault's events name their undo record.
	ids := map[event.Type][]string{}
	for e := range sub.Events() {
		if f, ok := decode[event.Fault](e); ok {
			ids[e.Type] = append(ids[e.Type], f.Undo)
		}
	}
	if strings.Join(ids[event.FaultApplied], ",") != "f1,f2" || strings.Join(ids[event.FaultReverted], ",") != "f2,f1" {
		t.Errorf("undo IDs in fault events: %v", ids)
	}

	// The journal fails: the fault is not applied, and not on record.
	rec2 := &recorder{}
	s2 := NewSet(event.NewBus(), nil, WithLogger(quietLog()), WithJournal(func(context.Context, event.Undo) error {
		return errors.New("disk full")
	}))
	err := s2.Apply(t.Context(), "down", &fakeFault{name: "a", target: own, rec: rec2})
	if err == nil || !strings.Contains(err.Error(), "could not be written: disk full") {
		t.Fatalf("Apply with a failing journal: %v", err)
	}
	if ops := rec2.list(); len(ops) != 0 {
		t.Errorf("the fault ran although its undo record was not written: %v", ops)
	}
	if p := s2.Pending(); len(p) != 0 {
		t.Errorf("pending after a refused fault: %+v", p)
	}
}

// TestUndoRefuses: a record that names nothing drill creates, or no single
// way to undo, is refused with the reason, and nothing is run.
func TestUndoRefuses(t *testing.T) {
	var ran [][]string
	env := UndoEnv{Run: func(_ context.Context, argv []string) (string, error) {
		ran = append(ran, argv)
		return "", nil
	}}
	for _, tc := range []struct {
		name    string
		u       event.Undo
		outcome string
		detail  string
	}{
		{"in process", event.Undo{Cannot: "istiod ran inside the drill"}, UndoRefused, "istiod ran inside the drill"},
		{"pods", event.Undo{Nothing: "recreated"}, UndoNothing, "recreated"},
		{"no action", event.Undo{}, UndoRefused, "0 ways"},
		{"two actions", event.Undo{Chain: "DRILL-PART-1-ABCD", Nodes: []string{"n"}}, UndoRefused, "2 ways"},
		{"foreign chain", event.Undo{Chain: "INPUT", Filters: []event.UndoFilter{{Name: "this host"}}}, UndoRefused, "not a name drill gives"},
		{"no filter", event.Undo{Chain: "DRILL-PART-1-ABCD"}, UndoRefused, "no packet filter"},
		{"bad node", event.Undo{Chain: "DRILL-PART-1-ABCD", Filters: []event.UndoFilter{{Name: "x", Node: "a;rm -rf /"}}}, UndoRefused, "not a node container"},
		{"bad node to start", event.Undo{Nodes: []string{"$(reboot)"}}, UndoRefused, "not a node container"},
		{"bad namespace", event.Undo{Namespace: "Default", EnvoyFilter: "drill-x"}, UndoRefused, "not a Kubernetes name"},
		{"no cluster access", event.Undo{Namespace: "default", EnvoyFilter: "drill-x"}, UndoRefused, "no way to reach"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := Undo(t.Context(), tc.u, env)
			if res.Outcome != tc.outcome || !strings.Contains(res.Detail, tc.detail) {
				t.Errorf("Undo = %s: %s; want %s: …%s…", res.Outcome, res.Detail, tc.outcome, tc.detail)
			}
		})
	}
	if len(ran) != 0 {
		t.Errorf("refused records ran commands: %q", ran)
	}
}

// TestUndoPartitionRecord: a partition's record names its chain and filters
// (a kind node's by its container), and undoing it removes the chain and
// both jumps from each filter, through the same commands as its Revert.
func TestUndoPartitionRecord(t *testing.T) {
	node := PacketFilter{Name: "node east-control-plane", Command: []string{"/usr/bin/docker", "exec", "east-control-plane", "iptables"}}
	a := netTarget("east", "10.10.0.0/16", node)
	b := netTarget("west", "10.20.0.0/16", hostFilter)
	p, err := NewPartition(a, []Target{b}, false)
	if err != nil {
		t.Fatal(err)
	}
	u, err := undoRecord(t.Context(), p)
	if err != nil {
		t.Fatal(err)
	}
	if u.Chain != p.Chain() || len(u.Filters) != 2 || u.Filters[0].Node != "east-control-plane" || u.Filters[1].Node != "" || u.Kind != KindPartition {
		t.Fatalf("undo record %+v", u)
	}
	var ran []string
	res := Undo(t.Context(), u, UndoEnv{Run: func(_ context.Context, argv []string) (string, error) {
		ran = append(ran, strings.Join(argv, " "))
		if argv[len(argv)-4] == "-D" { // the jump is not there (any more)
			return "", errors.New("iptables: Bad rule (does a matching rule exist in that chain?)")
		}
		return "", nil
	}})
	if res.Outcome != UndoDone {
		t.Fatalf("Undo = %s: %s", res.Outcome, res.Detail)
	}
	want := []string{
		"docker exec east-control-plane iptables -w -D INPUT -j " + p.Chain(),
		"docker exec east-control-plane iptables -w -D FORWARD -j " + p.Chain(),
		"docker exec east-control-plane iptables -w -F " + p.Chain(),
		"docker exec east-control-plane iptables -w -X " + p.Chain(),
		"iptables -w -D INPUT -j " + p.Chain(),
		"iptables -w -D FORWARD -j " + p.Chain(),
		"iptables -w -F " + p.Chain(),
		"iptables -w -X " + p.Chain(),
	}
	if strings.Join(ran, "\n") != strings.Join(want, "\n") {
		t.Errorf("commands run:\n%s\nwant:\n%s", strings.Join(ran, "\n"), strings.Join(want, "\n"))
	}
}

// TestUndoPartitionAfterKill applies a partition on this host's iptables
// through a Set whose journal is a real event log, abandons it as a killed
// drill would, and undoes it from the log file alone.
func TestUndoPartitionAfterKill(t *testing.T) {
	needIPTables(t)
	path := filepath.Join(t.TempDir(), event.LogFile)
	lw, err := event.CreateLog(path, event.WithFlushInterval(0))
	if err != nil {
		t.Fatal(err)
	}
	bus := event.NewBus(event.WithLogger(quietLog()))
	logSub := bus.Subscribe("log")
	go func() { _ = lw.Record(context.Background(), logSub) }()
	journal := func(ctx context.Context, u event.Undo) error {
		ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		return lw.Sync(ctx, bus.Emit(event.New(event.FaultUndo, u.Cluster, "fault/"+u.Step, u)))
	}
	s := NewSet(bus, nil, WithLogger(quietLog()), WithJournal(journal))
	a := netTarget("cluster1", "127.77.0.0/16", hostBatchFilter)
	a.Owned = true
	b := netTarget("cluster2", "127.78.0.0/16", hostBatchFilter)
	p, err := NewPartition(a, []Target{b}, false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Revert(context.Background()) })
	if err := s.Apply(t.Context(), "cut", p); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(chainsOf(t), "-A INPUT -j "+p.Chain()) {
		t.Fatalf("the partition is not in place:\n%s", chainsOf(t))
	}
	// The drill dies here: no revert, and the log is read while its writer
	// is still open, as after a kill -9.
	evs, err := event.ReadLog(path)
	if err != nil {
		t.Fatal(err)
	}
	pending, reverted, err := PendingUndos(evs)
	if err != nil || len(pending) != 1 || len(reverted) != 0 {
		t.Fatalf("PendingUndos: %d pending, %d reverted, %v", len(pending), len(reverted), err)
	}
	res := Undo(t.Context(), pending[0], UndoEnv{DryRun: true})
	if res.Outcome != UndoDone || !strings.HasPrefix(res.Detail, "would be") || !strings.Contains(chainsOf(t), p.Chain()) {
		t.Fatalf("dry run: %s: %s (or it changed iptables)", res.Outcome, res.Detail)
	}
	for i := range 2 { // the second time finds nothing left, and says it is done
		res = Undo(t.Context(), pending[0], UndoEnv{})
		if res.Outcome != UndoDone {
			t.Fatalf("undo #%d: %s: %s", i+1, res.Outcome, res.Detail)
		}
		if s := chainsOf(t); strings.Contains(s, p.Chain()) {
			t.Fatalf("after undo #%d iptables still holds %s:\n%s", i+1, p.Chain(), s)
		}
	}
	_ = bus.Close()
	_ = lw.Close()
}

func decode[T any](e event.Event) (T, bool) {
	var v T
	if e.Type != event.FaultApplied && e.Type != event.FaultReverted {
		return v, false
	}
	return v, json.Unmarshal(e.Data, &v) == nil
}
