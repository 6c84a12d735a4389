package fault

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/meshdrill/drill/pkg/event"
)

// KindHTTPFault is the Kind of an HTTPFault.
const KindHTTPFault = "http-fault"

// envoyFilters is Istio's EnvoyFilter resource.
var envoyFilters = schema.GroupVersionResource{Group: "networking.istio.io", Version: "v1alpha3", Resource: "envoyfilters"}

// HTTPFault makes a workload answer with errors or slowly while it stays up:
// an EnvoyFilter that inserts Envoy's HTTP fault filter
// (envoy.filters.http.fault, envoy docs: configuration/http/http_filters/fault_filter)
// into the inbound HTTP connection manager of the workload's sidecars, ahead
// of the router. Because the fault is injected at the workload's own sidecar,
// its callers see real upstream answers — 503s that their outlier detection
// counts, delays that their timeouts see — unlike a VirtualService fault,
// which Istio injects at the caller's sidecar, where no upstream and no
// outlier detection is involved. Revert deletes the EnvoyFilter.
type HTTPFault struct {
	target Target
	sel    Selector
	spec   HTTPFaultSpec
	name   string

	mu       sync.Mutex
	applied  bool
	reverted bool
}

// HTTPFaultSpec is what an HTTPFault injects; a zero AbortStatus or Delay
// leaves that part out. Percentages are 0-100.
type HTTPFaultSpec struct {
	AbortStatus  int
	AbortPercent float64
	Delay        time.Duration
	DelayPercent float64
}

// NewHTTPFault returns the fault spec describes for the pods sel selects by
// app label or label selector.
func NewHTTPFault(t Target, sel Selector, spec HTTPFaultSpec) (*HTTPFault, error) {
	if t.Dynamic == nil {
		return nil, fmt.Errorf("http fault %s: cluster %s has no dynamic client", sel, t.Name)
	}
	if err := sel.validate(); err != nil {
		return nil, fmt.Errorf("http fault in cluster %s: %w", t.Name, err)
	}
	if sel.Deployment != "" {
		return nil, fmt.Errorf("http fault in cluster %s: select the pods by app label or label selector, not by Deployment name", t.Name)
	}
	if _, err := sel.podLabels(); err != nil {
		return nil, fmt.Errorf("http fault in cluster %s: %w", t.Name, err)
	}
	switch {
	case spec.AbortStatus == 0 && spec.Delay <= 0:
		return nil, fmt.Errorf("http fault %s in cluster %s: neither an abort nor a delay", sel, t.Name)
	case spec.AbortStatus != 0 && (spec.AbortStatus < 200 || spec.AbortStatus > 599):
		return nil, fmt.Errorf("http fault %s in cluster %s: abort status %d is not 200-599", sel, t.Name, spec.AbortStatus)
	case spec.AbortPercent < 0 || spec.AbortPercent > 100 || spec.DelayPercent < 0 || spec.DelayPercent > 100:
		return nil, fmt.Errorf("http fault %s in cluster %s: percentages must be 0-100", sel, t.Name)
	}
	sum := sha256.Sum256([]byte(sel.String() + "\x00" + t.Name))
	name := "drill-http-fault-" + dnsLabel(sel.Workload(), 30) + "-" + hex.EncodeToString(sum[:3])
	return &HTTPFault{target: t, sel: sel, spec: spec, name: name}, nil
}

// dnsLabel keeps the characters of s a DNS label allows, up to n of them.
func dnsLabel(s string, n int) string {
	var b strings.Builder
	for _, c := range strings.ToLower(s) {
		if c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' {
			b.WriteRune(c)
		} else {
			b.WriteByte('-')
		}
		if b.Len() == n {
			break
		}
	}
	return strings.Trim(b.String(), "-")
}

// podLabels is the workloadSelector of the EnvoyFilter: app=<app>, or the
// equality requirements of a label selector.
func (s Selector) podLabels() (map[string]string, error) {
	if s.App != "" {
		return map[string]string{"app": s.App}, nil
	}
	sel, err := labels.Parse(s.Labels)
	if err != nil {
		return nil, fmt.Errorf("selector %q: %w", s.Labels, err)
	}
	reqs, _ := sel.Requirements()
	out := map[string]string{}
	for _, r := range reqs {
		vals := r.Values().List()
		if (r.Operator() != "=" && r.Operator() != "==") || len(vals) != 1 {
			return nil, fmt.Errorf("selector %q: an Istio workloadSelector takes only key=value labels", s.Labels)
		}
		out[r.Key()] = vals[0]
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("selector %q selects no labels", s.Labels)
	}
	return out, nil
}

// Kind is KindHTTPFault.
func (f *HTTPFault) Kind() string { return KindHTTPFault }

// Target is the cluster the fault acts on.
func (f *HTTPFault) Target() Target { return f.target }

// Name is the EnvoyFilter's name.
func (f *HTTPFault) Name() string { return f.name }

// EnvoyFilter is the object Apply creates.
func (f *HTTPFault) EnvoyFilter() *unstructured.Unstructured {
	sel, _ := f.sel.podLabels()
	selAny := map[string]any{}
	for k, v := range sel {
		selAny[k] = v
	}
	fault := map[string]any{"@type": "type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault"}
	pct := func(p float64) map[string]any {
		// FractionalPercent over a million keeps shares like 0.5 %.
		return map[string]any{"numerator": int64(p * 10000), "denominator": "MILLION"}
	}
	if f.spec.AbortStatus != 0 {
		fault["abort"] = map[string]any{"http_status": int64(f.spec.AbortStatus), "percentage": pct(f.spec.AbortPercent)}
	}
	if f.spec.Delay > 0 {
		fault["delay"] = map[string]any{"fixed_delay": strconv.FormatFloat(f.spec.Delay.Seconds(), 'f', -1, 64) + "s", "percentage": pct(f.spec.DelayPercent)}
	}
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "networking.istio.io/v1alpha3",
		"kind":       "EnvoyFilter",
		"metadata": map[string]any{
			"name":      f.name,
			"namespace": f.sel.Namespace,
			"labels":    map[string]any{"app.kubernetes.io/managed-by": "drill", "drill.dev/fault": KindHTTPFault},
		},
		"spec": map[string]any{
			"workloadSelector": map[string]any{"labels": selAny},
			"configPatches": []any{map[string]any{
				"applyTo": "HTTP_FILTER",
				"match": map[string]any{
					"context": "SIDECAR_INBOUND",
					"listener": map[string]any{"filterChain": map[string]any{"filter": map[string]any{
						"name":      "envoy.filters.network.http_connection_manager",
						"subFilter": map[string]any{"name": "envoy.filters.http.router"},
					}}},
				},
				"patch": map[string]any{
					"operation": "INSERT_BEFORE",
					"value":     map[string]any{"name": "envoy.filters.http.fault", "typed_config": fault},
				},
			}},
		},
	}}
	return u
}

// Undo is the record of how to remove the fault: delete its EnvoyFilter.
func (f *HTTPFault) Undo(context.Context) (event.Undo, error) {
	return event.Undo{Namespace: f.sel.Namespace, EnvoyFilter: f.name}, nil
}

// Apply creates the EnvoyFilter; istiod pushes it to the workload's sidecars.
func (f *HTTPFault) Apply(ctx context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.applied {
		return fmt.Errorf("%s: already applied", f.describe())
	}
	f.applied = true
	api := f.target.Dynamic.Resource(envoyFilters).Namespace(f.sel.Namespace)
	if _, err := api.Create(ctx, f.EnvoyFilter(), metav1.CreateOptions{FieldManager: "drill"}); err != nil {
		if apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("%s: EnvoyFilter %s/%s already exists (left by an earlier run? %s)", f.describe(), f.sel.Namespace, f.name, f.restore())
		}
		return fmt.Errorf("%s: %w", f.describe(), err)
	}
	return nil
}

// Revert deletes the EnvoyFilter; one already gone counts as reverted.
func (f *HTTPFault) Revert(ctx context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.applied || f.reverted {
		return nil
	}
	err := f.target.Dynamic.Resource(envoyFilters).Namespace(f.sel.Namespace).Delete(ctx, f.name, metav1.DeleteOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("revert %s: %w", f.describe(), err)
	}
	f.reverted = true
	return nil
}

// Describe says what the fault does.
func (f *HTTPFault) Describe() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.describe()
}

func (f *HTTPFault) describe() string {
	var parts []string
	if f.spec.AbortStatus != 0 {
		parts = append(parts, fmt.Sprintf("answer %g %% of requests %d", f.spec.AbortPercent, f.spec.AbortStatus))
	}
	if f.spec.Delay > 0 {
		parts = append(parts, fmt.Sprintf("delay %g %% of requests by %s", f.spec.DelayPercent, f.spec.Delay))
	}
	return fmt.Sprintf("make %s in namespace %s of cluster %s %s (EnvoyFilter %s)", f.sel, f.sel.Namespace, f.target.Name, strings.Join(parts, " and "), f.name)
}

// RestoreCommand deletes the EnvoyFilter by hand; empty once reverted.
func (f *HTTPFault) RestoreCommand() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.applied || f.reverted {
		return ""
	}
	return f.restore()
}

func (f *HTTPFault) restore() string {
	return fmt.Sprintf("%s delete envoyfilter %s", f.target.kubectl(f.sel.Namespace), f.name)
}

// Record is the fault as an event payload.
func (f *HTTPFault) Record() event.Fault {
	f.mu.Lock()
	defer f.mu.Unlock()
	r := event.Fault{Kind: KindHTTPFault, Cluster: f.target.Name, Namespace: f.sel.Namespace, Workload: f.sel.Workload(), Note: "EnvoyFilter " + f.name}
	if f.applied && !f.reverted {
		r.Restore = f.restore()
	}
	return r
}
