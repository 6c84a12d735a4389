package fault_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/meshdrill/drill/pkg/event"
	"github.com/meshdrill/drill/pkg/fault"
)

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func (c *cluster) target(t *testing.T) fault.Target {
	return fault.Target{Name: "east", Context: c.cp.Name(), Kubeconfig: c.cp.Kubeconfig(), Owned: true, Client: c.cs}
}

// The seed's fault: reviews (reviews-v1 with 2 replicas, reviews-v2 with 1)
// scaled to zero, then back, each to its own count.
func testScaleByApp(t *testing.T, c *cluster) {
	ns := c.namespace(t)
	c.deploy(t, ns, "reviews", "v1", 2)
	c.deploy(t, ns, "reviews", "v2", 1)
	c.deploy(t, ns, "ratings", "v1", 1)

	bus := event.NewBus(event.WithLogger(quiet()))
	sub := bus.Subscribe("test")
	set := fault.NewSet(bus, fault.NewGuard(), fault.WithLogger(quiet()))
	f, err := fault.NewScale(c.target(t), fault.ByApp(ns, "reviews"), 0, fault.WaitScaled(60*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := set.Apply(ctx, "reviews-down", f); err != nil {
		t.Fatal(err)
	}
	// WaitScaled returned: the controllers have acted.
	c.waitPods(t, ns, "reviews-v1", 0)
	c.waitPods(t, ns, "reviews-v2", 0)
	if got := c.replicas(t, ns, "ratings-v1"); got != 1 {
		t.Errorf("ratings-v1 has %d replicas, want it untouched at 1", got)
	}
	wantRestore := "kubectl --kubeconfig " + c.cp.Kubeconfig() + " --context " + c.cp.Name() + " -n " + ns + " scale deployment/reviews-v1 --replicas=2 && " +
		"kubectl --kubeconfig " + c.cp.Kubeconfig() + " --context " + c.cp.Name() + " -n " + ns + " scale deployment/reviews-v2 --replicas=1"
	if got := f.RestoreCommand(); got != wantRestore {
		t.Errorf("RestoreCommand:\n got %s\nwant %s", got, wantRestore)
	}

	if err := set.RevertAll(ctx); err != nil {
		t.Fatal(err)
	}
	if v1, v2 := c.replicas(t, ns, "reviews-v1"), c.replicas(t, ns, "reviews-v2"); v1 != 2 || v2 != 1 {
		t.Errorf("after revert reviews-v1=%d reviews-v2=%d, want 2 and 1", v1, v2)
	}
	c.waitPods(t, ns, "reviews-v1", 2)
	c.waitPods(t, ns, "reviews-v2", 1)

	evs := events(t, bus, sub)
	if got := typesOf(evs); got != "fault.applied,fault.reverted" {
		t.Fatalf("events %s", got)
	}
	applied, reverted := faultOf(t, evs[0]), faultOf(t, evs[1])
	if applied.Step != "reviews-down" || applied.Kind != "scale" || applied.Cluster != "east" || applied.Namespace != ns ||
		applied.Workload != "reviews" || *applied.From != 3 || *applied.To != 0 || applied.Restore != wantRestore {
		t.Errorf("applied event %+v", applied)
	}
	wantDeps := []event.DeploymentReplicas{{Name: "reviews-v1", From: 2, To: 0}, {Name: "reviews-v2", From: 1, To: 0}}
	if !equalDeps(applied.Deployments, wantDeps) {
		t.Errorf("applied deployments %+v, want %+v", applied.Deployments, wantDeps)
	}
	wantBack := []event.DeploymentReplicas{{Name: "reviews-v1", From: 0, To: 2}, {Name: "reviews-v2", From: 0, To: 1}}
	if *reverted.From != 0 || *reverted.To != 3 || !equalDeps(reverted.Deployments, wantBack) || reverted.Restore != "" || reverted.Error != "" {
		t.Errorf("reverted event %+v", reverted)
	}
	if evs[0].Cluster != "east" || evs[0].Source != "fault/reviews-down" {
		t.Errorf("event cluster/source %s/%s", evs[0].Cluster, evs[0].Source)
	}
}

func equalDeps(a, b []event.DeploymentReplicas) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func testScaleByNameAndSelector(t *testing.T, c *cluster) {
	ns := c.namespace(t)
	c.deploy(t, ns, "reviews", "v1", 1)
	c.deploy(t, ns, "reviews", "v2", 1)
	c.deploy(t, ns, "reviews", "v3", 1)
	tests := []struct {
		sel     fault.Selector
		to      int32
		changed map[string]int32
	}{
		{fault.ByName(ns, "reviews-v2"), 0, map[string]int32{"reviews-v1": 1, "reviews-v2": 0, "reviews-v3": 1}},
		{fault.ByLabels(ns, "app=reviews,version in (v1,v3)"), 3, map[string]int32{"reviews-v1": 3, "reviews-v2": 1, "reviews-v3": 3}},
	}
	for _, tt := range tests {
		set := fault.NewSet(discard{}, fault.NewGuard(), fault.WithLogger(quiet()))
		f, err := fault.NewScale(c.target(t), tt.sel, tt.to)
		if err != nil {
			t.Fatal(err)
		}
		if err := set.Apply(context.Background(), "s", f); err != nil {
			t.Fatal(err)
		}
		for name, want := range tt.changed {
			if got := c.replicas(t, ns, name); got != want {
				t.Errorf("%s: %s has %d replicas, want %d", tt.sel, name, got, want)
			}
		}
		if err := set.Revert(context.Background(), "s"); err != nil {
			t.Fatal(err)
		}
		for _, name := range []string{"reviews-v1", "reviews-v2", "reviews-v3"} {
			if got := c.replicas(t, ns, name); got != 1 {
				t.Errorf("%s: after revert %s has %d replicas, want 1", tt.sel, name, got)
			}
		}
	}
}

type discard struct{}

func (discard) Publish(event.Event) {}

func testScaleNoMatch(t *testing.T, c *cluster) {
	ns := c.namespace(t)
	set := fault.NewSet(discard{}, fault.NewGuard(), fault.WithLogger(quiet()))
	for _, sel := range []fault.Selector{fault.ByApp(ns, "reviewz"), fault.ByName(ns, "reviews-v9")} {
		f, err := fault.NewScale(c.target(t), sel, 0)
		if err != nil {
			t.Fatal(err)
		}
		err = set.Apply(context.Background(), "typo", f)
		if err == nil || !strings.Contains(err.Error(), "get deployments") {
			t.Errorf("%s: Apply = %v, want an error telling how to list the deployments", sel, err)
		}
	}
	if err := set.RevertAll(context.Background()); err != nil {
		t.Errorf("RevertAll after faults that changed nothing: %v", err)
	}
}

// The cluster becomes unreachable before the drill ends: the revert fails,
// says so loudly, and the command it prints restores the cluster when run by
// hand once the cluster is back.
func testRevertFailsThenRestoreByHand(t *testing.T, c *cluster) {
	ns := c.namespace(t)
	c.deploy(t, ns, "reviews", "v1", 2)
	cs, conn := c.breakableClient(t)
	target := c.target(t)
	target.Client = cs

	bus := event.NewBus(event.WithLogger(quiet()))
	sub := bus.Subscribe("test")
	set := fault.NewSet(bus, fault.NewGuard(), fault.WithLogger(quiet()), fault.WithRevertTimeout(5*time.Second))
	f, err := fault.NewScale(target, fault.ByApp(ns, "reviews"), 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := set.Apply(context.Background(), "reviews-down", f); err != nil {
		t.Fatal(err)
	}
	conn.broken.Store(true)
	err = set.RevertAll(context.Background())
	var rerr *fault.RevertError
	if !errors.As(err, &rerr) || len(rerr.Failures) != 1 {
		t.Fatalf("RevertAll = %v, want one failed revert", err)
	}
	cmd := rerr.Failures[0].Restore
	want := "kubectl --kubeconfig " + c.cp.Kubeconfig() + " --context " + c.cp.Name() + " -n " + ns + " scale deployment/reviews-v1 --replicas=2"
	if cmd != want || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("error:\n%v\nwant it to name the cause and the command %q", err, want)
	}
	evs := events(t, bus, sub)
	if got := typesOf(evs); got != "fault.applied,fault.revert-failed" {
		t.Fatalf("events %s", got)
	}
	if failed := faultOf(t, evs[1]); failed.Restore != want || !strings.Contains(failed.Error, "connection refused") {
		t.Errorf("revert-failed event %+v", failed)
	}
	if got := c.replicas(t, ns, "reviews-v1"); got != 0 {
		t.Fatalf("reviews-v1 has %d replicas, want the fault still in place", got)
	}

	kubectl, err := exec.LookPath("kubectl")
	if err != nil {
		t.Skip("kubectl is not installed: the printed command was checked, not run")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "sh", "-c", strings.Replace(cmd, "kubectl", kubectl, 1)).CombinedOutput()
	if err != nil {
		t.Fatalf("restore command failed: %v\n%s", err, out)
	}
	if got := c.replicas(t, ns, "reviews-v1"); got != 2 {
		t.Errorf("after the restore command reviews-v1 has %d replicas, want 2", got)
	}
}

// The engine defers RevertAll; a panic in the middle of the drill still
// reverts.
func testPanicInEngineReverts(t *testing.T, c *cluster) {
	ns := c.namespace(t)
	c.deploy(t, ns, "reviews", "v1", 2)
	set := fault.NewSet(discard{}, fault.NewGuard(), fault.WithLogger(quiet()))
	engine := func(ctx context.Context) (err error) {
		defer func() {
			if rerr := set.RevertAll(ctx); rerr != nil {
				t.Errorf("RevertAll: %v", rerr)
			}
		}()
		f, err := fault.NewScale(c.target(t), fault.ByApp(ns, "reviews"), 0)
		if err != nil {
			return err
		}
		if err := set.Apply(ctx, "reviews-down", f); err != nil {
			return err
		}
		if got := c.replicas(t, ns, "reviews-v1"); got != 0 {
			t.Errorf("fault not applied: %d replicas", got)
		}
		panic("engine bug")
	}
	func() {
		defer func() {
			if r := recover(); r != "engine bug" {
				t.Errorf("recovered %v", r)
			}
		}()
		_ = engine(context.Background())
	}()
	if got := c.replicas(t, ns, "reviews-v1"); got != 2 {
		t.Errorf("after the panic reviews-v1 has %d replicas, want 2", got)
	}
}
