package fault

import (
	"context"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	"k8s.io/client-go/kubernetes"
	k8sfake "k8s.io/client-go/kubernetes/fake"

	"github.com/meshdrill/drill/pkg/scenario"
)

// TestHTTPFaultObject: the EnvoyFilter is Istio's shape for an inbound
// fault filter — workloadSelector from the app label, HTTP_FILTER in
// SIDECAR_INBOUND before the router, the percentage over a million — and
// Apply then Revert leave nothing behind. (A narrow unit test on client-go's
// fake; pkg/drill's TestErrorsDrill runs the fault against a real istiod.)
func TestHTTPFaultObject(t *testing.T) {
	dyn := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(),
		map[schema.GroupVersionResource]string{envoyFilters: "EnvoyFilterList"})
	target := Target{Name: "cluster1", Context: "kind-drill-cluster1", Dynamic: dyn}
	f, err := NewHTTPFault(target, ByApp("default", "reviews"), HTTPFaultSpec{AbortStatus: 503, AbortPercent: 12.5, Delay: 1500 * time.Millisecond, DelayPercent: 100})
	if err != nil {
		t.Fatal(err)
	}
	obj := f.EnvoyFilter()
	if got, _, _ := unstructured.NestedString(obj.Object, "spec", "workloadSelector", "labels", "app"); got != "reviews" {
		t.Errorf("workloadSelector app %q", got)
	}
	patches, _, _ := unstructured.NestedSlice(obj.Object, "spec", "configPatches")
	p := patches[0].(map[string]any)
	if p["applyTo"] != "HTTP_FILTER" || p["match"].(map[string]any)["context"] != "SIDECAR_INBOUND" ||
		p["patch"].(map[string]any)["operation"] != "INSERT_BEFORE" {
		t.Errorf("patch %v", p)
	}
	tc := p["patch"].(map[string]any)["value"].(map[string]any)["typed_config"].(map[string]any)
	abort := tc["abort"].(map[string]any)
	if abort["http_status"] != int64(503) || abort["percentage"].(map[string]any)["numerator"] != int64(125000) {
		t.Errorf("abort %v, want 503 at 125000 per million", abort)
	}
	if d := tc["delay"].(map[string]any)["fixed_delay"]; d != "1.5s" {
		t.Errorf("fixed_delay %v", d)
	}

	ctx := context.Background()
	if err := f.Apply(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := dyn.Resource(envoyFilters).Namespace("default").Get(ctx, f.Name(), metav1.GetOptions{}); err != nil {
		t.Fatalf("after Apply: %v", err)
	}
	if cmd := f.RestoreCommand(); !strings.Contains(cmd, "--context kind-drill-cluster1 -n default delete envoyfilter "+f.Name()) {
		t.Errorf("restore command %q", cmd)
	}
	if err := f.Revert(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := dyn.Resource(envoyFilters).Namespace("default").Get(ctx, f.Name(), metav1.GetOptions{}); err == nil {
		t.Errorf("the EnvoyFilter is still there after Revert")
	}
	if f.RestoreCommand() != "" {
		t.Errorf("a reverted fault still has a restore command")
	}
	if err := f.Revert(ctx); err != nil {
		t.Errorf("a second Revert: %v", err)
	}
}

// TestHTTPFaultFromScenario: the scenario's percentages default to 100 and
// the pods are selected by label.
func TestHTTPFaultFromScenario(t *testing.T) {
	dyn := dynamicfake.NewSimpleDynamicClient(runtime.NewScheme())
	sf := scenario.Fault{HTTPFault: &scenario.HTTPFault{WorkloadRef: scenario.WorkloadRef{Cluster: "cluster1", Selector: "app=reviews,version=v2"},
		Abort: &scenario.FaultAbort{Status: 503}}}
	f, err := FromScenario(sf, "default", Target{Name: "cluster1", Dynamic: dyn})
	if err != nil {
		t.Fatal(err)
	}
	hf := f.(*HTTPFault)
	if hf.spec.AbortPercent != 100 {
		t.Errorf("abort percent %g, want 100 by default", hf.spec.AbortPercent)
	}
	labels, _, _ := unstructured.NestedStringMap(hf.EnvoyFilter().Object, "spec", "workloadSelector", "labels")
	if labels["app"] != "reviews" || labels["version"] != "v2" || len(labels) != 2 {
		t.Errorf("workloadSelector %v", labels)
	}
	if _, err := FromScenario(scenario.Fault{HTTPFault: &scenario.HTTPFault{WorkloadRef: scenario.WorkloadRef{Cluster: "cluster1", Selector: "app in (a,b)"},
		Abort: &scenario.FaultAbort{Status: 503}}}, "default", Target{Name: "cluster1", Dynamic: dyn}); err == nil {
		t.Errorf("a set-based selector was accepted for a workloadSelector")
	}
}

// TestUndoEnvoyFilter: an http fault's undo record names its EnvoyFilter;
// undoing deletes it when drill's label is on it, refuses one without, and
// finds a deleted one done. (Narrow, on client-go's fakes; the API server
// paths of undo are tested in TestAgainstAPIServer/KillThenUndo.)
func TestUndoEnvoyFilter(t *testing.T) {
	dyn := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(),
		map[schema.GroupVersionResource]string{envoyFilters: "EnvoyFilterList"})
	target := Target{Name: "cluster1", Context: "kind-drill-cluster1", Dynamic: dyn}
	f, err := NewHTTPFault(target, ByApp("default", "reviews"), HTTPFaultSpec{AbortStatus: 503, AbortPercent: 100})
	if err != nil {
		t.Fatal(err)
	}
	u, err := undoRecord(t.Context(), f)
	if err != nil || u.EnvoyFilter != f.Name() || u.Namespace != "default" || u.Context != "kind-drill-cluster1" {
		t.Fatalf("undo record %+v, %v", u, err)
	}
	if err := f.Apply(t.Context()); err != nil {
		t.Fatal(err)
	}
	env := UndoEnv{Connect: func(string, string) (kubernetes.Interface, dynamic.Interface, error) {
		return k8sfake.NewClientset(), dyn, nil
	}}
	if res := Undo(t.Context(), u, env); res.Outcome != UndoDone || !strings.Contains(res.Detail, "deleted") {
		t.Fatalf("undo: %s: %s", res.Outcome, res.Detail)
	}
	if _, err := dyn.Resource(envoyFilters).Namespace("default").Get(t.Context(), f.Name(), metav1.GetOptions{}); err == nil {
		t.Fatal("the EnvoyFilter is still there after undo")
	}
	if res := Undo(t.Context(), u, env); res.Outcome != UndoDone || !strings.Contains(res.Detail, "already gone") {
		t.Errorf("second undo: %s: %s", res.Outcome, res.Detail)
	}
	foreign := f.EnvoyFilter()
	foreign.SetLabels(nil)
	if _, err := dyn.Resource(envoyFilters).Namespace("default").Create(t.Context(), foreign, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if res := Undo(t.Context(), u, env); res.Outcome != UndoRefused || !strings.Contains(res.Detail, "someone else's") {
		t.Errorf("undo of an unlabelled EnvoyFilter: %s: %s", res.Outcome, res.Detail)
	}
}
