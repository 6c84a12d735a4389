package fault_test

import (
	"context"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/meshdrill/drill/pkg/fault"
)

// testGatewayLossScale: on a cluster whose east-west gateway is a Deployment
// in istio-system (kind, existing clusters), the fault scales it to zero and
// back to its own replicas.
func testGatewayLossScale(t *testing.T, c *cluster) {
	ctx := context.Background()
	c.systemDeployment(t, "istio-eastwestgateway", map[string]string{"app": "istio-eastwestgateway", "istio": "eastwestgateway"}, 2)
	f, err := fault.NewGatewayLoss(c.target(t), fault.GatewayEastWest)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Apply(ctx); err != nil {
		t.Fatal(err)
	}
	if got := c.replicas(t, "istio-system", "istio-eastwestgateway"); got != 0 {
		t.Errorf("after Apply the gateway has %d replicas, want 0", got)
	}
	if f.RestoreCommand() == "" || f.Record().Kind != fault.KindGatewayLoss {
		t.Errorf("restore %q, record %+v", f.RestoreCommand(), f.Record())
	}
	if err := f.Revert(ctx); err != nil {
		t.Fatal(err)
	}
	if got := c.replicas(t, "istio-system", "istio-eastwestgateway"); got != 2 {
		t.Errorf("after Revert the gateway has %d replicas, want its own 2", got)
	}
}

// hostGateways records what a GatewayHost was asked.
type hostGateways struct{ calls []string }

func (h *hostGateways) SetGateway(_ context.Context, role string, serving bool) error {
	state := "stop"
	if serving {
		state = "start"
	}
	h.calls = append(h.calls, state+" "+role)
	return nil
}

// TestGatewayLossHost: a cluster that runs its gateways itself is asked to
// stop the gateway and start it again, once each.
func TestGatewayLossHost(t *testing.T) {
	h := &hostGateways{}
	f, err := fault.NewGatewayLoss(fault.Target{Name: "cluster2", Gateways: h}, fault.GatewayEastWest)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := f.Apply(ctx); err != nil {
		t.Fatal(err)
	}
	if err := f.Revert(ctx); err != nil {
		t.Fatal(err)
	}
	if err := f.Revert(ctx); err != nil {
		t.Fatal(err)
	}
	if len(h.calls) != 2 || h.calls[0] != "stop eastwest" || h.calls[1] != "start eastwest" {
		t.Errorf("calls %v, want stop then start of the eastwest gateway", h.calls)
	}
	if _, err := fault.NewGatewayLoss(fault.Target{Name: "cluster2", Gateways: h}, "egress"); err == nil {
		t.Errorf("an unknown gateway role was accepted")
	}
}

// hostControlPlane records what a ControlPlaneHost was asked.
type hostControlPlane struct{ calls []bool }

func (h *hostControlPlane) SetControlPlane(_ context.Context, running bool) error {
	h.calls = append(h.calls, running)
	return nil
}

// TestControlPlaneLossHost: a cluster that runs istiod itself is asked to
// stop it and resume it, once each; without one the fault scales the istiod
// Deployment of istio-system.
func TestControlPlaneLossHost(t *testing.T) {
	h := &hostControlPlane{}
	f, err := fault.NewControlPlaneLoss(fault.Target{Name: "cluster1", ControlPlane: h})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := f.Apply(ctx); err != nil {
		t.Fatal(err)
	}
	if err := f.Revert(ctx); err != nil {
		t.Fatal(err)
	}
	if err := f.Revert(ctx); err != nil {
		t.Fatal(err)
	}
	if len(h.calls) != 2 || h.calls[0] || !h.calls[1] {
		t.Errorf("calls %v, want stop then resume", h.calls)
	}
	if f.RestoreCommand() != "" || f.Record().Kind != fault.KindControlPlaneLoss {
		t.Errorf("restore %q, record %+v", f.RestoreCommand(), f.Record())
	}
}

// testControlPlaneLossScale: where istiod is a Deployment (kind, existing
// clusters) it is scaled to zero and back to its own replicas.
func testControlPlaneLossScale(t *testing.T, c *cluster) {
	ctx := context.Background()
	c.systemDeployment(t, "istiod", map[string]string{"app": "istiod", "istio": "pilot"}, 1)
	f, err := fault.NewControlPlaneLoss(c.target(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Apply(ctx); err != nil {
		t.Fatal(err)
	}
	if got := c.replicas(t, "istio-system", "istiod"); got != 0 {
		t.Errorf("after Apply istiod has %d replicas, want 0", got)
	}
	if err := f.Revert(ctx); err != nil {
		t.Fatal(err)
	}
	if got := c.replicas(t, "istio-system", "istiod"); got != 1 {
		t.Errorf("after Revert istiod has %d replicas, want 1", got)
	}
}

// systemDeployment creates a Deployment of Istio's own in istio-system (the
// namespace too, when it is missing), as an installation has it.
func (c *cluster) systemDeployment(t *testing.T, name string, lbl map[string]string, replicas int32) {
	t.Helper()
	ctx := context.Background()
	_, err := c.cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "istio-system"}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "istio-system", Labels: lbl},
		Spec: appsv1.DeploymentSpec{Replicas: &replicas, Selector: &metav1.LabelSelector{MatchLabels: lbl},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: lbl},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: name, Image: "docker.io/istio/proxyv2:1.31.1"}}}}},
	}
	if _, err := c.cs.AppsV1().Deployments("istio-system").Create(ctx, d, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}
