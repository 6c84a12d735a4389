package bookinfo_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/meshdrill/drill/internal/bookinfo"
	"github.com/meshdrill/drill/internal/localcluster/localtest"
	"github.com/meshdrill/drill/pkg/scenario"
)

// TestApply applies the seed's cluster1 objects, Istio's included, to a real
// API server with Istio's CRDs: everything lands as built, a second apply
// changes nothing, a field someone else changed is taken back, and with no
// node to run the pods the wait fails naming what is not ready and why.
func TestApply(t *testing.T) {
	cp := localtest.Start(t)
	cs := kubernetes.NewForConfigOrDie(cp.RESTConfig())
	dyn := dynamic.NewForConfigOrDie(cp.RESTConfig())
	ctx := t.Context()

	v1 := []string{"v1"}
	set, err := bookinfo.Manifests(scenario.Bookinfo{Productpage: v1, Details: v1, Reviews: []string{"v1", "v2"}, Ratings: v1},
		"default", bookinfo.WithIngress(), bookinfo.WithObserved("productpage"))
	if err != nil {
		t.Fatal(err)
	}
	if err := bookinfo.Apply(ctx, "cluster1", cs, dyn, set, bookinfo.WithoutWait()); err != nil {
		t.Fatal(err)
	}

	versions := map[string]string{}
	for _, obj := range set.Objects() {
		gvr, err := bookinfo.Resource(obj)
		if err != nil {
			t.Fatal(err)
		}
		var ri dynamic.ResourceInterface = dyn.Resource(gvr)
		if obj.GetNamespace() != "" {
			ri = dyn.Resource(gvr).Namespace(obj.GetNamespace())
		}
		got, err := ri.Get(ctx, obj.GetName(), metav1.GetOptions{})
		if err != nil {
			t.Fatalf("%s %s after apply: %v", gvr.Resource, obj.GetName(), err)
		}
		versions[gvr.Resource+"/"+obj.GetName()] = got.GetResourceVersion()
		managed := false
		for _, m := range got.GetManagedFields() {
			managed = managed || (m.Manager == bookinfo.FieldManager && m.Operation == metav1.ManagedFieldsOperationApply)
		}
		if !managed {
			t.Errorf("%s %s: not applied by field manager %q", gvr.Resource, obj.GetName(), bookinfo.FieldManager)
		}
	}
	gwResource, _ := bookinfo.Resource(set.Gateway)
	gw, err := dyn.Resource(gwResource).Namespace("default").Get(ctx, bookinfo.GatewayName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	servers, _, _ := unstructured.NestedSlice(gw.Object, "spec", "servers")
	if len(servers) != 1 {
		t.Fatalf("gateway servers %v, want one", servers)
	}
	if port, _, _ := unstructured.NestedInt64(servers[0].(map[string]any), "port", "number"); port != bookinfo.GatewayPort {
		t.Errorf("gateway server port %d, want %d", port, bookinfo.GatewayPort)
	}
	vsResource, _ := bookinfo.Resource(set.VirtualService)
	vs, err := dyn.Resource(vsResource).Namespace("default").Get(ctx, bookinfo.VirtualServiceName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	routes, _, _ := unstructured.NestedSlice(vs.Object, "spec", "http")
	if len(routes) != 1 {
		t.Fatalf("virtual service routes %v, want one", routes)
	}
	if match, _, _ := unstructured.NestedSlice(routes[0].(map[string]any), "match"); len(match) != len(bookinfo.IngressPaths) {
		t.Errorf("virtual service matches %v, want upstream's %d", match, len(bookinfo.IngressPaths))
	}
	ns, err := cs.CoreV1().Namespaces().Get(ctx, "default", metav1.GetOptions{})
	if err != nil || ns.Labels[bookinfo.InjectionLabel] != "enabled" {
		t.Errorf("namespace default labels %v (%v), want %s=enabled", ns.Labels, err, bookinfo.InjectionLabel)
	}

	// Idempotent: nothing changes the second time.
	if err := bookinfo.Apply(ctx, "cluster1", cs, dyn, set, bookinfo.WithoutWait()); err != nil {
		t.Fatal(err)
	}
	for _, obj := range set.Objects() {
		gvr, _ := bookinfo.Resource(obj)
		var ri dynamic.ResourceInterface = dyn.Resource(gvr)
		if obj.GetNamespace() != "" {
			ri = dyn.Resource(gvr).Namespace(obj.GetNamespace())
		}
		got, err := ri.Get(ctx, obj.GetName(), metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		key := gvr.Resource + "/" + obj.GetName()
		// Deployments' status moves on its own (the controllers work on them).
		if gvr.Resource != "deployments" && got.GetResourceVersion() != versions[key] {
			t.Errorf("%s changed on the second apply (resourceVersion %s → %s)", key, versions[key], got.GetResourceVersion())
		}
	}

	// Someone scales reviews-v1 by hand; applying again takes the field back.
	d, err := cs.AppsV1().Deployments("default").Get(ctx, "reviews-v1", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	three := int32(3)
	d.Spec.Replicas = &three
	if _, err := cs.AppsV1().Deployments("default").Update(ctx, d, metav1.UpdateOptions{FieldManager: "kubectl-edit"}); err != nil {
		t.Fatal(err)
	}
	if err := bookinfo.Apply(ctx, "cluster1", cs, dyn, set, bookinfo.WithoutWait()); err != nil {
		t.Fatal(err)
	}
	if d, err = cs.AppsV1().Deployments("default").Get(ctx, "reviews-v1", metav1.GetOptions{}); err != nil || *d.Spec.Replicas != 1 {
		t.Errorf("reviews-v1 replicas after re-apply: %v (%v), want 1", replicas(d), err)
	}

	// No node runs the pods: the wait fails in time and says why.
	begin := time.Now()
	err = bookinfo.WaitAvailable(ctx, cs, "default", set.DeploymentNames(), 2*time.Second)
	if !errors.Is(err, bookinfo.ErrNotAvailable) {
		t.Fatalf("WaitAvailable with no node: %v, want ErrNotAvailable", err)
	}
	if took := time.Since(begin); took > 15*time.Second {
		t.Errorf("WaitAvailable took %s past its 2s timeout", took)
	}
	for _, want := range []string{"reviews-v2: 0 of 1 replicas available", "not scheduled", "kubectl -n default describe pods"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("WaitAvailable error lacks %q:\n%v", want, err)
		}
	}
	t.Logf("the error a user sees: %v", err)

	// Stopped from outside before its timeout: the caller's cancellation, not a
	// timeout with an explanation.
	cctx, cancel := context.WithCancel(ctx)
	time.AfterFunc(300*time.Millisecond, cancel)
	err = bookinfo.WaitAvailable(cctx, cs, "default", set.DeploymentNames(), time.Minute)
	if !errors.Is(err, context.Canceled) || errors.Is(err, bookinfo.ErrNotAvailable) || strings.Contains(err.Error(), "after 1m0s") {
		t.Errorf("WaitAvailable cancelled: %v, want context.Canceled and no timeout", err)
	}
}

func replicas(d *appsv1.Deployment) any {
	if d == nil || d.Spec.Replicas == nil {
		return nil
	}
	return *d.Spec.Replicas
}
