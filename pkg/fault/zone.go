package fault

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/meshdrill/drill/pkg/event"
)

// KindZoneLoss is the Kind of a ZoneLoss.
const KindZoneLoss = "zone-loss"

// The node labels a locality is read from, as istiod reads a pod's locality
// from its node (Istio docs, "Locality Load Balancing": region and zone from
// topology.kubernetes.io, subzone from topology.istio.io/subzone).
var localityLabels = []string{"topology.kubernetes.io/region", "topology.kubernetes.io/zone", "topology.istio.io/subzone"}

// ZoneLoss takes down, at once, every workload of one locality of a cluster
// — a region, a zone or a subzone going dark — which is what locality
// failover exists for. The workloads are the Deployments of a namespace with
// a pod on a node of that locality; each is scaled to zero, and on Revert
// back to its own replicas, with Scale's bookkeeping. What runs outside the
// namespace (the gateways, istiod) stays up: the zone's application is lost,
// not the mesh's own machinery — gatewayLoss and controlPlaneLoss take those.
type ZoneLoss struct {
	target   Target
	ns       string
	locality string
	opts     []ScaleOption

	mu     sync.Mutex
	nodes  []string
	scales []*Scale // one per Deployment, by name; set by resolve
}

// NewZoneLoss takes down the workloads of namespace ns in t that run in
// locality (region, region/zone or region/zone/subzone).
func NewZoneLoss(t Target, ns, locality string, opts ...ScaleOption) (*ZoneLoss, error) {
	if t.Client == nil {
		return nil, fmt.Errorf("zone loss in cluster %s: the cluster has no client", t.Name)
	}
	parts := strings.Split(locality, "/")
	if locality == "" || len(parts) > 3 || slices.Contains(parts, "") {
		return nil, fmt.Errorf("zone loss in cluster %s: %q is not a locality; write region, region/zone or region/zone/subzone", t.Name, locality)
	}
	if ns == "" {
		return nil, fmt.Errorf("zone loss in cluster %s: the namespace is not set", t.Name)
	}
	return &ZoneLoss{target: t, ns: ns, locality: locality, opts: opts}, nil
}

// Kind is KindZoneLoss.
func (z *ZoneLoss) Kind() string { return KindZoneLoss }

// Target is the cluster the locality is in.
func (z *ZoneLoss) Target() Target { return z.target }

// resolve finds the locality's nodes and the Deployments with pods on them,
// once. Selecting nothing is an error that says which localities the
// cluster's nodes are in.
func (z *ZoneLoss) resolve(ctx context.Context) error {
	z.mu.Lock()
	defer z.mu.Unlock()
	if z.scales != nil {
		return nil
	}
	nodes, err := z.target.Client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return fmt.Errorf("zone loss: list the nodes of cluster %s: %w", z.target.Name, err)
	}
	want := strings.Split(z.locality, "/")
	in := map[string]bool{}
	var seen []string
	for _, n := range nodes.Items {
		var loc []string
		match := true
		for i, key := range localityLabels {
			v := n.Labels[key]
			if v != "" {
				loc = append(loc, v)
			}
			if i < len(want) && v != want[i] {
				match = false
			}
		}
		if match {
			in[n.Name] = true
			z.nodes = append(z.nodes, n.Name)
		}
		seen = append(seen, n.Name+" in "+orNone(strings.Join(loc, "/")))
	}
	if len(in) == 0 {
		return fmt.Errorf("zone loss: no node of cluster %s is in locality %s (its nodes: %s); the locality is read from the node labels %s",
			z.target.Name, z.locality, orNone(strings.Join(seen, ", ")), strings.Join(localityLabels, ", "))
	}
	sort.Strings(z.nodes)
	deps, err := z.target.Client.AppsV1().Deployments(z.ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return fmt.Errorf("zone loss: list the deployments in %s of cluster %s: %w", z.ns, z.target.Name, err)
	}
	var names []string
	for _, d := range deps.Items {
		ps, err := pods(ctx, z.target, z.ns, []appsv1.Deployment{d})
		if err != nil {
			return fmt.Errorf("zone loss: %w", err)
		}
		for _, p := range ps {
			if in[p.Spec.NodeName] {
				names = append(names, d.Name)
				break
			}
		}
	}
	if len(names) == 0 {
		return fmt.Errorf("zone loss: no Deployment in namespace %s of cluster %s has a pod on a node of locality %s (%s); check with `%s get pods -o wide`",
			z.ns, z.target.Name, z.locality, strings.Join(z.nodes, ", "), z.target.kubectl(z.ns))
	}
	sort.Strings(names)
	scales := make([]*Scale, 0, len(names))
	for _, name := range names {
		s, err := NewScale(z.target, ByName(z.ns, name), 0, z.opts...)
		if err != nil {
			return err
		}
		scales = append(scales, s)
	}
	z.scales = scales
	return nil
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

func (z *ZoneLoss) current() []*Scale {
	z.mu.Lock()
	defer z.mu.Unlock()
	return z.scales
}

// Undo finds the workloads and reads their replicas: the record of how to
// scale them back.
func (z *ZoneLoss) Undo(ctx context.Context) (event.Undo, error) {
	if err := z.resolve(ctx); err != nil {
		return event.Undo{}, err
	}
	u := event.Undo{Namespace: z.ns}
	for _, s := range z.current() {
		su, err := s.Undo(ctx)
		if err != nil {
			return event.Undo{}, fmt.Errorf("zone loss: %w", err)
		}
		u.Replicas = append(u.Replicas, su.Replicas...)
	}
	return u, nil
}

// Apply scales every workload of the locality to zero, one Deployment after
// the other as fast as the API server takes them.
func (z *ZoneLoss) Apply(ctx context.Context) error {
	if err := z.resolve(ctx); err != nil {
		return err
	}
	for _, s := range z.current() {
		if err := s.Apply(ctx); err != nil {
			return fmt.Errorf("zone loss %s of cluster %s: %w", z.locality, z.target.Name, err)
		}
	}
	return nil
}

// Revert scales each workload back to its own replicas, the last one taken
// first, carrying on past failures.
func (z *ZoneLoss) Revert(ctx context.Context) error {
	scales := z.current()
	var errs []error
	for i := len(scales) - 1; i >= 0; i-- {
		if err := scales[i].Revert(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Describe says what the fault does.
func (z *ZoneLoss) Describe() string {
	scales := z.current()
	z.mu.Lock()
	nodes := strings.Join(z.nodes, ", ")
	z.mu.Unlock()
	what := "every Deployment in namespace " + z.ns + " with a pod on its nodes"
	if len(scales) > 0 {
		names := make([]string, len(scales))
		for i, s := range scales {
			names[i] = s.sel.Deployment
		}
		what = fmt.Sprintf("%s (%s on %s)", what, strings.Join(names, ", "), nodes)
	}
	return fmt.Sprintf("take locality %s of cluster %s down: scale %s to 0", z.locality, z.target.Name, what)
}

// RestoreCommand scales every workload back by hand.
func (z *ZoneLoss) RestoreCommand() string {
	var cmds []string
	for _, s := range z.current() {
		if c := s.RestoreCommand(); c != "" {
			cmds = append(cmds, c)
		}
	}
	return strings.Join(cmds, " && ")
}

// Record is the change as an event payload: each Deployment with its replicas
// before and after, the nodes of the locality in the note.
func (z *ZoneLoss) Record() event.Fault {
	r := event.Fault{Kind: KindZoneLoss, Cluster: z.target.Name, Namespace: z.ns, Workload: "locality " + z.locality}
	var from, to int32
	for _, s := range z.current() {
		sr := s.Record()
		r.Deployments = append(r.Deployments, sr.Deployments...)
		if sr.From != nil {
			from += *sr.From
			to += *sr.To
		}
	}
	if len(r.Deployments) > 0 {
		r.From, r.To = &from, &to
	}
	z.mu.Lock()
	if len(z.nodes) > 0 {
		r.Note = "nodes " + strings.Join(z.nodes, ", ")
	}
	z.mu.Unlock()
	return r
}
