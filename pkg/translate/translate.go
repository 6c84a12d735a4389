package translate

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	networkingv1 "istio.io/client-go/pkg/apis/networking/v1"
	networkingv1alpha3 "istio.io/client-go/pkg/apis/networking/v1alpha3"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/meshdrill/drill/pkg/scenario"
)

// DefaultRootNamespace is Istio's default root configuration namespace
// (meshConfig.rootNamespace): an EnvoyFilter there applies to every workload of
// the mesh, one elsewhere only to its own namespace (istio.io docs:
// reference/config/networking/envoy-filter).
const DefaultRootNamespace = "istio-system"

// Input is everything a translation depends on.
type Input struct {
	// Scenario is a loaded scenario: validated, defaults filled (scenario.Load).
	Scenario *scenario.Scenario
	// Remotes gives, per cluster name, where the other clusters reach that
	// cluster's services (strategy aggregate). A cluster missing here gets a
	// placeholder ServiceEntry resolved by DNS, and a warning; see Endpoint.
	Remotes map[string]Endpoint
}

// Option tunes a translation.
type Option func(*options)

type options struct {
	step          string
	rootNamespace string
}

// WithStep translates the mesh policy of the named step's apply action (a policy
// change mid-drill) instead of spec.mesh. Errors then point into that step.
func WithStep(name string) Option { return func(o *options) { o.step = name } }

// WithRootNamespace sets Istio's root configuration namespace, where the
// EnvoyFilters go so that they apply to every workload. Default: istio-system.
func WithRootNamespace(ns string) Option { return func(o *options) { o.rootNamespace = ns } }

// Result is the Istio configuration of every cluster of a scenario.
type Result struct {
	Scenario string
	Strategy scenario.Strategy
	// Clusters holds one entry per scenario cluster, in scenario order, even when a
	// cluster needs no object.
	Clusters []*ClusterObjects
	// Warnings are things that translate but probably do not do what the scenario
	// means, located in the scenario file like errors.
	Warnings []*scenario.FieldError
}

// Cluster returns the objects of the named cluster, or nil.
func (r *Result) Cluster(name string) *ClusterObjects {
	for _, c := range r.Clusters {
		if c.Cluster == name {
			return c
		}
	}
	return nil
}

// ClusterObjects are the Istio objects one cluster needs, each kind sorted by
// namespace and name.
type ClusterObjects struct {
	Cluster          string
	ServiceEntries   []*networkingv1.ServiceEntry
	DestinationRules []*networkingv1.DestinationRule
	EnvoyFilters     []*networkingv1alpha3.EnvoyFilter
	VirtualServices  []*networkingv1.VirtualService
	// Upstreams describes the aggregate clusters of the failover services defined
	// in this cluster: which Envoy cluster reaches which backing service, in
	// priority order. The engine reads failover from their Envoy stats.
	Upstreams []Upstream
}

// Objects returns every object in the order to apply them: ServiceEntries and
// DestinationRules first, so that hosts and their policies exist before the
// EnvoyFilter that points at them and the VirtualServices that send traffic there.
func (c *ClusterObjects) Objects() []Object {
	objs := make([]Object, 0, c.Len())
	for _, o := range c.ServiceEntries {
		objs = append(objs, o)
	}
	for _, o := range c.DestinationRules {
		objs = append(objs, o)
	}
	for _, o := range c.EnvoyFilters {
		objs = append(objs, o)
	}
	for _, o := range c.VirtualServices {
		objs = append(objs, o)
	}
	return objs
}

// Len is the number of objects.
func (c *ClusterObjects) Len() int {
	return len(c.ServiceEntries) + len(c.DestinationRules) + len(c.EnvoyFilters) + len(c.VirtualServices)
}

// Upstream is one member of a failover service's aggregate cluster as a client
// sidecar in one cluster sees it.
type Upstream struct {
	FailoverService string // name of the failover service
	Hostname        string // its hostname
	Aggregate       string // Envoy cluster of the hostname, made an aggregate cluster
	Priority        int    // 0 is tried first
	Service         string
	Namespace       string
	Cluster         string // the cluster whose endpoints this member reaches
	EnvoyCluster    string // outbound|PORT|SUBSET|HOST: envoy_cluster_name in stats
}

// Translate turns a scenario's mesh policy into the Istio objects each cluster
// needs. It is a pure function of its input: no cluster access, the same output
// for the same input. An invalid policy yields a scenario.ErrorList naming the
// file, line and field of every problem.
func Translate(in Input, opts ...Option) (*Result, error) {
	o := options{rootNamespace: DefaultRootNamespace}
	for _, opt := range opts {
		opt(&o)
	}
	s := in.Scenario
	if s == nil {
		return nil, errors.New("translate: no scenario; load one with scenario.Load")
	}
	if errs := validation.IsDNS1123Label(o.rootNamespace); len(errs) > 0 {
		return nil, fmt.Errorf("translate: root namespace %q: %s", o.rootNamespace, errs[0])
	}
	mesh, base, err := selectMesh(s, o.step)
	if err != nil {
		return nil, err
	}
	t := &translator{
		s:        s,
		mesh:     mesh,
		base:     base,
		opts:     o,
		remotes:  in.Remotes,
		clusters: map[string]*scenario.Cluster{},
		clusterI: map[string]int{},
		out:      map[string]*clusterBuild{},
	}
	for i := range s.Spec.Clusters {
		c := &s.Spec.Clusters[i]
		t.clusters[c.Name] = c
		t.clusterI[c.Name] = i
		t.clusterNames = append(t.clusterNames, c.Name)
		t.out[c.Name] = newClusterBuild(c.Name)
	}
	if err := t.checkRemotes(); err != nil {
		return nil, err
	}

	p := t.resolvePolicies()
	switch mesh.Strategy {
	case scenario.StrategyLocality:
		t.locality(p)
	default:
		t.aggregate(p)
	}
	res := &Result{Scenario: s.Metadata.Name, Strategy: mesh.Strategy, Warnings: t.warns}
	for _, name := range t.clusterNames {
		res.Clusters = append(res.Clusters, t.out[name].finish(t, p))
	}
	if len(t.errs) > 0 {
		sort.SliceStable(t.errs, func(i, j int) bool {
			if t.errs[i].Line != t.errs[j].Line {
				return t.errs[i].Line < t.errs[j].Line
			}
			return t.errs[i].Column < t.errs[j].Column
		})
		return nil, t.errs
	}
	return res, nil
}

// selectMesh finds the mesh policy to translate and the field path it lives at.
func selectMesh(s *scenario.Scenario, step string) (*scenario.Mesh, string, error) {
	if step == "" {
		return &s.Spec.Mesh, "spec.mesh", nil
	}
	for i := range s.Spec.Steps {
		st := &s.Spec.Steps[i]
		if st.Name != step {
			continue
		}
		if st.Apply == nil || st.Apply.Mesh == nil {
			return nil, "", fmt.Errorf("translate: step %q of %s changes no mesh policy (it has no apply.mesh)", step, s.File)
		}
		return st.Apply.Mesh, fmt.Sprintf("spec.steps[%d].apply.mesh", i), nil
	}
	return nil, "", fmt.Errorf("translate: %s has no step %q", s.File, step)
}

// translator holds one translation's state.
type translator struct {
	s            *scenario.Scenario
	mesh         *scenario.Mesh
	base         string // field path of the mesh: spec.mesh or spec.steps[i].apply.mesh
	opts         options
	remotes      map[string]Endpoint
	clusters     map[string]*scenario.Cluster
	clusterI     map[string]int
	clusterNames []string
	out          map[string]*clusterBuild
	errs         scenario.ErrorList
	warns        []*scenario.FieldError
	reported     map[string]bool
	rank         map[string]int // position of each policy and failover service
	names        names
}

// once reports whether key is new, so a problem found once per cluster is told
// once.
func (t *translator) once(key string) bool {
	if t.reported == nil {
		t.reported = map[string]bool{}
	}
	if t.reported[key] {
		return false
	}
	t.reported[key] = true
	return true
}

func (t *translator) fieldError(field, format string, args ...any) *scenario.FieldError {
	line, col := t.s.Pos(field)
	return &scenario.FieldError{File: t.s.File, Line: line, Column: col, Field: field, Msg: fmt.Sprintf(format, args...)}
}

func (t *translator) errf(field, format string, args ...any) {
	t.errs = append(t.errs, t.fieldError(field, format, args...))
}

func (t *translator) warnf(field, format string, args ...any) {
	t.warns = append(t.warns, t.fieldError(field, format, args...))
}

// clientClusters are the clusters a policy's destination.clusters names, each
// once, or every cluster when it names none.
func (t *translator) clientClusters(named []string) []string {
	if len(named) == 0 {
		return t.clusterNames
	}
	var out []string
	for _, c := range named {
		if _, ok := t.clusters[c]; ok && !slices.Contains(out, c) {
			out = append(out, c)
		}
	}
	return out
}

// checkRemotes rejects remote endpoints for clusters the scenario does not have
// and endpoints that are not addresses.
func (t *translator) checkRemotes() error {
	names := make([]string, 0, len(t.remotes))
	for name := range t.remotes {
		names = append(names, name)
	}
	sort.Strings(names)
	var errs []error
	for _, name := range names {
		if _, ok := t.clusters[name]; !ok {
			errs = append(errs, fmt.Errorf("remote address for %q: %s has no such cluster (it has %s)", name, t.s.File, strings.Join(t.clusterNames, ", ")))
			continue
		}
		if err := t.remotes[name].validate(); err != nil {
			errs = append(errs, fmt.Errorf("remote address for %s: %w", name, err))
		}
	}
	return errors.Join(errs...)
}
