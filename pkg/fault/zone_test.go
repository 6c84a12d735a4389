package fault_test

import (
	"context"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/meshdrill/drill/pkg/event"
	"github.com/meshdrill/drill/pkg/fault"
)

// A zone loss scales to zero every Deployment of the namespace with a pod on
// a node of the locality — here reviews and details on zone-a's node —
// leaves the other zone's (ratings) alone, records how to undo it before it
// acts, and puts each Deployment back to its own replicas.
func testZoneLoss(t *testing.T, c *cluster) {
	ns := c.namespace(t)
	ctx := context.Background()
	// Node objects carry the locality as istiod reads it; nothing runs on
	// them (the test's control plane has no kubelet), pods are bound by hand.
	nodeA, nodeB := ns+"-a", ns+"-b"
	for name, zone := range map[string]string{nodeA: "zone-a", nodeB: "zone-b"} {
		n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{
			"topology.kubernetes.io/region": "eu-west", "topology.kubernetes.io/zone": zone}}}
		if _, err := c.cs.CoreV1().Nodes().Create(ctx, n, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.cs.CoreV1().Nodes().Delete(context.Background(), name, metav1.DeleteOptions{}) })
	}
	bind := func(deployment, node string, n int) {
		for _, p := range c.waitPods(t, ns, deployment, n) {
			b := &corev1.Binding{ObjectMeta: metav1.ObjectMeta{Name: p.Name, Namespace: ns}, Target: corev1.ObjectReference{Kind: "Node", Name: node}}
			if err := c.cs.CoreV1().Pods(ns).Bind(ctx, b, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
		}
	}
	c.deploy(t, ns, "reviews", "v1", 2)
	c.deploy(t, ns, "details", "v1", 1)
	c.deploy(t, ns, "ratings", "v1", 1)
	bind("reviews-v1", nodeA, 2)
	bind("details-v1", nodeA, 1)
	bind("ratings-v1", nodeB, 1)

	target := fault.Target{Name: "east", Client: c.cs, Owned: true}
	var undos []event.Undo
	set := fault.NewSet(event.NewBus(), nil, fault.WithLogger(quiet()), fault.WithJournal(func(_ context.Context, u event.Undo) error {
		undos = append(undos, u)
		return nil
	}))
	z, err := fault.NewZoneLoss(target, ns, "eu-west/zone-a")
	if err != nil {
		t.Fatal(err)
	}
	if err := set.Apply(ctx, "zone-a-down", z); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]int32{"reviews-v1": 0, "details-v1": 0, "ratings-v1": 1} {
		if got := c.replicas(t, ns, name); got != want {
			t.Errorf("during the zone loss %s has %d replicas, want %d", name, got, want)
		}
	}
	if len(undos) != 1 || len(undos[0].Replicas) != 2 || undos[0].Replicas[0].Name != "details-v1" || undos[0].Replicas[1].From != 2 {
		t.Errorf("undo record %+v", undos)
	}
	if d := z.Describe(); !strings.Contains(d, "details-v1, reviews-v1 on "+nodeA) {
		t.Errorf("Describe: %s", d)
	}
	if r := z.Record(); r.Kind != fault.KindZoneLoss || *r.From != 3 || *r.To != 0 || r.Note != "nodes "+nodeA {
		t.Errorf("Record: %+v", r)
	}
	if err := set.RevertAll(ctx); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]int32{"reviews-v1": 2, "details-v1": 1, "ratings-v1": 1} {
		if got := c.replicas(t, ns, name); got != want {
			t.Errorf("after revert %s has %d replicas, want %d", name, got, want)
		}
	}

	// A locality no node is in: refused before anything changes, naming the
	// localities there are.
	none, err := fault.NewZoneLoss(target, ns, "us-east")
	if err != nil {
		t.Fatal(err)
	}
	set = fault.NewSet(event.NewBus(), nil, fault.WithLogger(quiet()), fault.WithJournal(func(context.Context, event.Undo) error { return nil }))
	err = set.Apply(ctx, "nowhere", none)
	if err == nil || !strings.Contains(err.Error(), "no node of cluster east is in locality us-east") || !strings.Contains(err.Error(), nodeA+" in eu-west/zone-a") {
		t.Errorf("zone loss of a locality without nodes: %v", err)
	}
}
