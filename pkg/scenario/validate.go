package scenario

import (
	"fmt"
	"maps"
	"math"
	"regexp"
	"slices"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/validation"
)

// validator checks a decoded, defaulted scenario: required fields, one-of choices,
// ranges, and every cross reference (clusters, steps, failover services), reporting
// each problem at the line of the field.
type validator struct {
	*collector
	s        *Scenario
	clusters map[string]*Cluster
	steps    map[string]*Step
}

func validate(s *Scenario, c *collector, decodeErrs int) {
	c.bad = map[string]bool{}
	for _, e := range c.errs[:decodeErrs] {
		c.bad[e.Field] = true
	}
	v := &validator{collector: c, s: s, clusters: map[string]*Cluster{}, steps: map[string]*Step{}}
	v.header()
	v.topology()
	v.mesh(&s.Spec.Mesh, "spec.mesh")
	v.load()
	v.observe()
	v.steps_()
	v.abort()
	v.steadyState()
	v.expectations()
}

// loadConditions are the conditions on the load's answers that guards and
// the steady state share.
type loadConditions struct {
	errorRatio, degradedRatio, failedRatio *float64
	latency                                *GuardLatency
}

// conditions checks the conditions written under field and returns how many
// are set. A guard trips above its share, so its share must be below 1
// (belowOne); the steady state holds up to its own, 1 included.
func (v *validator) conditions(field string, c loadConditions, belowOne bool, latencyExample string) int {
	n := 0
	for _, r := range []struct {
		field string
		v     *float64
	}{{"errorRatio", c.errorRatio}, {"degradedRatio", c.degradedRatio}, {"failedRatio", c.failedRatio}} {
		if r.v == nil {
			continue
		}
		n++
		switch {
		case belowOne && (*r.v < 0 || *r.v >= 1 || math.IsNaN(*r.v)):
			v.errf(field+"."+r.field, "must be a share from 0 to below 1 (0.5: more than half of the answers), got %g", *r.v)
		case !belowOne && (*r.v < 0 || *r.v > 1 || math.IsNaN(*r.v)):
			v.errf(field+"."+r.field, "must be a share from 0 to 1 (0.01: at most 1 %% of the answers), got %g", *r.v)
		}
	}
	if c.degradedRatio != nil && v.s.Spec.Load.DegradedWhen == nil {
		v.errf(field+".degradedRatio", "counts degraded answers, but spec.load.degradedWhen does not say what one is")
	}
	if l := c.latency; l != nil {
		n++
		set := 0
		for _, d := range []Duration{l.P50, l.P90, l.P99} {
			if d > 0 {
				set++
			}
			if d < 0 {
				v.errf(field+".latency", "bounds must be above zero")
			}
		}
		if set != 1 {
			v.errf(field+".latency", "set exactly one of p50, p90 and p99, e.g. %s", latencyExample)
		}
	}
	return n
}

// steadyState checks the steady-state section.
func (v *validator) steadyState() {
	ss := v.s.Spec.SteadyState
	if ss == nil {
		return
	}
	const f = "spec.steadyState"
	if ss.Over.D() < time.Second {
		v.errf(f+".over", "must be at least 1s (one load window), got %s", ss.Over)
	} else if l := v.s.Spec.Load.Duration; l > 0 && ss.Over > l {
		v.errf(f+".over", "%s is longer than the load (%s)", ss.Over, l)
	}
	n := v.conditions(f, loadConditions{ss.ErrorRatio, ss.DegradedRatio, ss.FailedRatio, ss.Latency}, false, "{p99: 500ms}")
	if n == 0 {
		v.errf(f, "set at least one condition: errorRatio, degradedRatio, failedRatio or latency")
	}
	// A fault at a fixed time must leave the span before it.
	for i, st := range v.s.Spec.Steps {
		if st.Fault != nil && st.At != nil && *st.At < ss.Over {
			v.errf(fmt.Sprintf("spec.steps[%d].at", i), "the fault comes at %s, before %s of load can show the steady state (spec.steadyState.over)", *st.At, ss.Over)
		}
	}
}

// abort checks the guards.
func (v *validator) abort() {
	a := v.s.Spec.Abort
	if a == nil {
		return
	}
	const f = "spec.abort"
	if len(a.When) == 0 {
		v.errf(f+".when", "needs at least one guard, e.g. {name: too-many-errors, errorRatio: 0.5}")
	}
	if a.Tail < 0 {
		v.errf(f+".tail", "must not be negative")
	}
	names := map[string]bool{}
	for i := range a.When {
		g := &a.When[i]
		gf := fmt.Sprintf("%s.when[%d]", f, i)
		if v.name(gf+".name", g.Name) {
			if names[g.Name] {
				v.errf(gf+".name", "guard %q is named twice", g.Name)
			}
			names[g.Name] = true
		}
		if g.Over.D() < 100*time.Millisecond {
			v.errf(gf+".over", "must be at least 100ms, got %s", g.Over)
		} else if l := v.s.Spec.Load.Duration; l > 0 && g.Over > l {
			v.errf(gf+".over", "%s is longer than the load (%s)", g.Over, l)
		}
		if g.MinRequests != nil && *g.MinRequests < 0 {
			v.errf(gf+".minRequests", "must not be negative")
		}
		n := v.conditions(gf, loadConditions{g.ErrorRatio, g.DegradedRatio, g.FailedRatio, g.Latency}, true, "{p99: 2s}")
		if u := g.Upstream5xx; u != nil {
			n++
			uf := gf + ".upstream5xx"
			v.envoyPath(uf, u.EnvoyPath)
			switch {
			case u.Ratio == nil:
				v.errf(uf+".ratio", "required: the share of 5xx answers above which the guard trips, e.g. 0.5")
			case *u.Ratio < 0 || *u.Ratio >= 1 || math.IsNaN(*u.Ratio):
				v.errf(uf+".ratio", "must be a share from 0 to below 1 (0.5: more than half of the answers), got %g", *u.Ratio)
			}
		}
		switch {
		case n == 0:
			v.errf(gf, "set one condition: errorRatio, degradedRatio, failedRatio, latency or upstream5xx")
		case n > 1:
			v.errf(gf, "set only one condition of errorRatio, degradedRatio, failedRatio, latency and upstream5xx; write another guard for another")
		}
	}
}

func (v *validator) header() {
	s := v.s
	switch {
	case s.APIVersion == "":
		v.errf("apiVersion", "required; set it to %s", APIVersion)
	case s.APIVersion != APIVersion:
		v.errf("apiVersion", "unsupported version %q; this drill reads %s", s.APIVersion, APIVersion)
	}
	switch {
	case s.Kind == "":
		v.errf("kind", "required; set it to %s", Kind)
	case s.Kind != Kind:
		v.errf("kind", "must be %s, got %q", Kind, s.Kind)
	}
	v.name("metadata.name", s.Metadata.Name)
	if s.Spec.Namespace != "" {
		if errs := validation.IsDNS1123Label(s.Spec.Namespace); len(errs) > 0 {
			v.errf("spec.namespace", "%q is not a valid namespace: %s", s.Spec.Namespace, errs[0])
		}
	}
}

func (v *validator) name(field, name string) bool {
	if name == "" {
		v.errf(field, "required")
		return false
	}
	if !nameRE.MatchString(name) || len(name) > 63 {
		v.errf(field, "%q is not a valid name: use lowercase letters, digits and '-', starting and ending with a letter or digit, at most 63 characters", name)
		return false
	}
	return true
}

var (
	versionRE  = regexp.MustCompile(`^v[0-9]+$`)
	localityRE = regexp.MustCompile(`^[^/\s]+(/[^/\s]+){0,2}$`)
)

// bookinfoVersions are the versions of each Bookinfo service drill can run.
var bookinfoVersions = map[string][]string{
	"productpage": {"v1"},
	"details":     {"v1"},
	"reviews":     {"v1", "v2", "v3"},
	"ratings":     {"v1"},
}

func (v *validator) topology() {
	cs := v.s.Spec.Clusters
	if len(cs) == 0 {
		v.errf("spec.clusters", "at least one cluster is required")
	}
	for i := range cs {
		c := &cs[i]
		f := fmt.Sprintf("spec.clusters[%d]", i)
		if !v.name(f+".name", c.Name) {
			continue
		}
		if _, dup := v.clusters[c.Name]; dup {
			v.errf(f+".name", "cluster %q is listed twice", c.Name)
			continue
		}
		v.clusters[c.Name] = c
		if c.Locality != "" && !localityRE.MatchString(c.Locality) {
			v.errf(f+".locality", "%q is not a locality; write region, region/zone or region/zone/subzone", c.Locality)
		}
		if b := c.Bookinfo; b != nil {
			for _, svc := range []struct {
				name string
				vs   []string
			}{{"productpage", b.Productpage}, {"details", b.Details}, {"reviews", b.Reviews}, {"ratings", b.Ratings}} {
				seen := map[string]bool{}
				for j, ver := range svc.vs {
					vf := fmt.Sprintf("%s.bookinfo.%s[%d]", f, svc.name, j)
					switch {
					case !versionRE.MatchString(ver) || !slices.Contains(bookinfoVersions[svc.name], ver):
						v.errf(vf, "Bookinfo's %s has no version %q (it has %s)", svc.name, ver, strings.Join(bookinfoVersions[svc.name], ", "))
					case seen[ver]:
						v.errf(vf, "version %q is listed twice", ver)
					}
					seen[ver] = true
				}
			}
			if b.Replicas < 0 {
				v.errf(f+".bookinfo.replicas", "must not be negative")
			}
		}
	}
}

// cluster checks a reference to a cluster of the topology.
func (v *validator) cluster(field, name string) bool {
	if name == "" {
		if names := v.clusterNames(); len(names) > 0 {
			v.errf(field, "required: name a cluster (%s)", strings.Join(names, ", "))
		} else {
			v.errf(field, "required: name a cluster")
		}
		return false
	}
	if _, ok := v.clusters[name]; !ok {
		v.errf(field, "unknown cluster %q; clusters in spec.clusters: %s", name, strings.Join(v.clusterNames(), ", "))
		return false
	}
	return true
}

func (v *validator) clusterNames() []string {
	var names []string
	for _, c := range v.s.Spec.Clusters {
		if c.Name != "" && !slices.Contains(names, c.Name) {
			names = append(names, c.Name)
		}
	}
	return names
}

func (v *validator) mesh(m *Mesh, f string) {
	switch m.Strategy {
	case StrategyAggregate, StrategyLocality:
	default:
		v.errf(f+".strategy", "unknown strategy %q; use %s or %s", m.Strategy, StrategyAggregate, StrategyLocality)
	}
	fos := map[string]bool{}
	for i := range m.FailoverServices {
		fs := &m.FailoverServices[i]
		v.failoverService(fs, fmt.Sprintf("%s.failoverServices[%d]", f, i), fos)
	}
	names := map[string]bool{}
	for i := range m.TrafficPolicies {
		p := &m.TrafficPolicies[i]
		v.trafficPolicy(p, fmt.Sprintf("%s.trafficPolicies[%d]", f, i), m.Strategy, fos, names)
	}
}

// failoverService checks one failover service at field ff; fos collects the
// names defined so far.
func (v *validator) failoverService(fs *FailoverService, ff string, fos map[string]bool) {
	if v.name(ff+".name", fs.Name) {
		if fos[fs.Name] {
			v.errf(ff+".name", "failover service %q is defined twice", fs.Name)
		}
		fos[fs.Name] = true
	}
	if fs.Hostname == "" {
		v.errf(ff+".hostname", "required, e.g. %s.%s.global", orDefault(fs.Name, "reviews-failover"), orDefault(fs.Namespace, DefaultNamespace))
	} else if errs := validation.IsDNS1123Subdomain(fs.Hostname); len(errs) > 0 {
		v.errf(ff+".hostname", "%q is not a valid hostname: %s", fs.Hostname, errs[0])
	} else if strings.HasSuffix(fs.Hostname, ".svc.cluster.local") {
		v.errf(ff+".hostname", "%q would shadow a Kubernetes service; use a name of its own, e.g. %s.%s.global", fs.Hostname, orDefault(fs.Name, "reviews-failover"), fs.Namespace)
	}
	if fs.Port.Number < 1 || fs.Port.Number > 65535 {
		v.errf(ff+".port.number", "must be 1-65535, got %d", fs.Port.Number)
	}
	switch fs.Port.Protocol {
	case "http", "http2", "grpc", "tcp":
	default:
		v.errf(ff+".port.protocol", "unknown protocol %q; use http, http2, grpc or tcp", fs.Port.Protocol)
	}
	for j, mc := range fs.Meshes {
		v.cluster(fmt.Sprintf("%s.meshes[%d]", ff, j), mc)
	}
	if len(fs.BackingServices) == 0 {
		v.errf(ff+".backingServices", "at least one backing service is required, highest priority first")
	}
	seen := map[string]bool{}
	for j, bs := range fs.BackingServices {
		bf := fmt.Sprintf("%s.backingServices[%d]", ff, j)
		if bs.Service == "" {
			v.errf(bf+".service", "required")
		}
		v.cluster(bf+".cluster", bs.Cluster)
		key := bs.Service + "/" + bs.Namespace + "@" + bs.Cluster
		if seen[key] {
			v.errf(bf, "%s in %s is listed twice", bs.Service, bs.Cluster)
		}
		seen[key] = true
	}
}

// trafficPolicy checks one traffic policy at field pf under the mesh's
// strategy; fos are the failover services defined, names collects the
// policies' names so far.
func (v *validator) trafficPolicy(p *TrafficPolicy, pf string, strategy Strategy, fos, names map[string]bool) {
	if v.name(pf+".name", p.Name) {
		if names[p.Name] {
			v.errf(pf+".name", "traffic policy %q is defined twice", p.Name)
		}
		names[p.Name] = true
	}
	if p.Destination.Service == "" {
		v.errf(pf+".destination.service", "required, e.g. reviews")
	}
	for j, c := range p.Destination.Clusters {
		v.cluster(fmt.Sprintf("%s.destination.clusters[%d]", pf, j), c)
	}
	if p.OutlierDetection == nil && p.TrafficShift == nil && p.Retries == nil && p.Timeout == 0 && p.LocalityFailover == nil {
		v.errf(pf, "the policy does nothing: set outlierDetection, trafficShift, retries, timeout or localityFailover")
	}
	if od := p.OutlierDetection; od != nil {
		of := pf + ".outlierDetection"
		if od.ConsecutiveErrors != nil && *od.ConsecutiveErrors < 1 {
			v.errf(of+".consecutiveErrors", "must be at least 1")
		}
		if od.ConsecutiveGatewayErrors != nil && *od.ConsecutiveGatewayErrors < 1 {
			v.errf(of+".consecutiveGatewayErrors", "must be at least 1")
		}
		percent(v, of+".maxEjectionPercent", od.MaxEjectionPercent)
		percent(v, of+".minHealthPercent", od.MinHealthPercent)
	}
	if ts := p.TrafficShift; ts != nil {
		tf := pf + ".trafficShift"
		switch {
		case strategy == StrategyLocality:
			v.errf(tf, "needs strategy %s; with strategy %s traffic fails over within the service's own host (use localityFailover)", StrategyAggregate, StrategyLocality)
		case ts.FailoverService == "":
			v.errf(tf+".failoverService", "required: name a failover service")
		case !fos[ts.FailoverService]:
			v.errf(tf+".failoverService", "unknown failover service %q; define it under failoverServices", ts.FailoverService)
		}
	}
	if r := p.Retries; r != nil && r.Attempts < 1 {
		v.errf(pf+".retries.attempts", "must be at least 1")
	}
	if lf := p.LocalityFailover; lf != nil {
		lff := pf + ".localityFailover"
		if strategy != StrategyLocality && p.TrafficShift != nil {
			// With the aggregate strategy a service fails over either through a
			// failover service (trafficShift) or within its own host by locality
			// (a service without one, e.g. to keep a gateway's traffic home).
			v.errf(lff, "cannot be combined with trafficShift: a shifted service fails over through its failover service; use localityFailover for services without one, or strategy %s", StrategyLocality)
		}
		if p.OutlierDetection == nil {
			// Istio applies locality failover only to hosts with outlier detection
			// (istio.io docs, DestinationRule LocalityLoadBalancerSetting).
			v.errf(lff, "has no effect without outlierDetection on the same policy: Istio only fails over between localities when outlier detection can eject endpoints")
		}
		if len(lf.FailoverPriority) > 0 && len(lf.Failover) > 0 {
			v.errf(lff, "set failoverPriority or failover, not both")
		}
		for j, r := range lf.Failover {
			if r.From == "" || r.To == "" || r.From == r.To {
				v.errf(fmt.Sprintf("%s.failover[%d]", lff, j), "needs two different regions in from and to")
			}
		}
	}
}

func percent(v *validator, field string, p *int) {
	if p != nil && (*p < 0 || *p > 100) {
		v.errf(field, "must be a percentage, 0-100, got %d", *p)
	}
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

var methodRE = regexp.MustCompile(`^[A-Z]+$`)

func (v *validator) load() {
	l := &v.s.Spec.Load
	const f = "spec.load"
	if c, ok := v.clusters[l.Target.Cluster]; v.cluster(f+".target.cluster", l.Target.Cluster) && ok && !c.Ingress {
		v.errf(f+".target.cluster", "cluster %q has no ingress gateway; set ingress: true on it", l.Target.Cluster)
	}
	if !strings.HasPrefix(l.Target.Path, "/") {
		v.errf(f+".target.path", "must start with /, got %q", l.Target.Path)
	}
	if !methodRE.MatchString(l.Target.Method) {
		v.errf(f+".target.method", "%q is not an HTTP method", l.Target.Method)
	}
	r := l.Rate
	n := 0
	if r.Constant != nil {
		n++
	}
	if r.Ramp != nil {
		n++
		if r.Ramp.From.Freq == 0 && r.Ramp.To.Freq == 0 {
			v.errf(f+".rate.ramp", "needs from and to, e.g. {from: 10/s, to: 100/s}")
		}
	}
	if r.Steps != nil {
		n++
		if len(r.Steps) == 0 {
			v.errf(f+".rate.steps", "needs at least one step")
		}
		for i, st := range r.Steps {
			sf := fmt.Sprintf("%s.rate.steps[%d]", f, i)
			if st.Rate.Freq == 0 {
				v.errf(sf+".rate", "required, e.g. 50/s")
			}
			if st.For == 0 && i < len(r.Steps)-1 {
				v.errf(sf+".for", "required: how long this rate is held")
			}
		}
	}
	switch {
	case n == 0:
		v.errf(f+".rate", "required, e.g. 50/s")
	case n > 1:
		v.errf(f+".rate", "set one of constant, ramp or steps")
	}
	if l.Duration == 0 {
		v.errf(f+".duration", "required, e.g. 150s")
	}
	if l.Connections < 0 {
		v.errf(f+".connections", "must not be negative")
	}
	if l.Workers < 0 {
		v.errf(f+".workers", "must not be negative")
	}
	if l.MaxWorkers < 0 {
		v.errf(f+".maxWorkers", "must not be negative")
	}
	if d := l.DegradedWhen; d != nil {
		if d.BodyContains == "" && d.BodyMatches == "" {
			v.errf(f+".degradedWhen", "set bodyContains or bodyMatches")
		}
		if d.BodyMatches != "" {
			if _, err := regexp.Compile(d.BodyMatches); err != nil {
				v.errf(f+".degradedWhen.bodyMatches", "not a valid regular expression: %v", err)
			}
		}
	}
}

func (v *validator) observe() {
	for i, e := range v.s.Spec.Observe.Envoy {
		f := fmt.Sprintf("spec.observe.envoy[%d]", i)
		v.cluster(f+".cluster", e.Cluster)
		if e.Workload == "" {
			v.errf(f+".workload", "required, e.g. productpage")
		}
	}
}

func (v *validator) steps_() {
	steps := v.s.Spec.Steps
	for i := range steps {
		st := &steps[i]
		f := fmt.Sprintf("spec.steps[%d]", i)
		if !v.name(f+".name", st.Name) {
			continue
		}
		if st.Name == AnchorStart || st.Name == AnchorEnd {
			v.errf(f+".name", "%q is reserved for the start or end of load; pick another name", st.Name)
			continue
		}
		if _, dup := v.steps[st.Name]; dup {
			v.errf(f+".name", "step %q is defined twice", st.Name)
			continue
		}
		v.steps[st.Name] = st
	}
	loadDur := v.s.Spec.Load.Duration.D()
	reverted := map[string]string{}
	for i := range steps {
		st := &steps[i]
		f := fmt.Sprintf("spec.steps[%d]", i)
		triggers := 0
		if st.At != nil {
			triggers++
			if loadDur > 0 && st.At.D() >= loadDur {
				v.errf(f+".at", "%s is not before the end of load (%s)", st.At, loadDur)
			}
		}
		if st.After != nil {
			triggers++
			v.instant(f+".after", *st.After, st.Name)
			if st.After.Anchor == AnchorEnd {
				v.errf(f+".after", "steps run while load runs; 'end' is past the last moment")
			}
		}
		if st.When != nil {
			triggers++
			if !slices.Contains(triggerEvents, st.When.Event) {
				v.errf(f+".when", "unknown event %q; steps can wait for %s", st.When.Event, strings.Join(triggerEvents, ", "))
			}
			if st.When.After != "" {
				v.stepRef(f+".when", st.When.After, st.Name)
			}
		}
		if triggers != 1 {
			v.errf(f, "needs exactly one trigger: at, after or when (has %d)", triggers)
		}

		actions := 0
		if st.Fault != nil {
			actions++
			v.fault(f+".fault", st.Fault)
		}
		if st.Revert != "" {
			actions++
			if target, ok := v.stepRef(f+".revert", st.Revert, st.Name); ok {
				if target.Fault == nil {
					v.errf(f+".revert", "step %q has no fault to revert", st.Revert)
				} else if prev, dup := reverted[st.Revert]; dup {
					v.errf(f+".revert", "step %q is already reverted by step %q", st.Revert, prev)
				}
				reverted[st.Revert] = st.Name
			}
		}
		if st.Wait != nil {
			actions++
			w := st.Wait
			switch {
			case (w.For == 0) == (w.Ready == nil):
				v.errf(f+".wait", "set a duration (wait: 20s) or ready: {cluster, workload}, not both")
			case w.Ready != nil:
				v.workloadRef(f+".wait.ready", w.Ready)
			}
		}
		if st.Apply != nil {
			actions++
			if st.Apply.Mesh == nil {
				v.errf(f+".apply", "set mesh: the new mesh policy")
			} else {
				v.mesh(st.Apply.Mesh, f+".apply.mesh")
			}
		}
		if actions != 1 {
			v.errf(f, "needs exactly one action: fault, revert, wait or apply (has %d)", actions)
		}
		if st.Keep && st.Fault == nil {
			v.errf(f+".keep", "only a step with a fault can keep it")
		}
	}
	v.cycles()
}

// stepRef checks a reference from step `from` (empty for expectations) to a step.
func (v *validator) stepRef(field, name, from string) (*Step, bool) {
	if name == from && from != "" {
		v.errf(field, "step %q cannot refer to itself", name)
		return nil, false
	}
	st, ok := v.steps[name]
	if !ok {
		names := make([]string, 0, len(v.steps))
		for _, s := range v.s.Spec.Steps {
			if s.Name != "" && !slices.Contains(names, s.Name) {
				names = append(names, s.Name)
			}
		}
		msg := fmt.Sprintf("unknown step %q", name)
		if s := suggest(name, names); s != "" {
			msg += fmt.Sprintf(" (did you mean %q?)", s)
		} else if len(names) > 0 {
			msg += fmt.Sprintf("; steps: %s", strings.Join(names, ", "))
		} else {
			msg += "; the scenario has no steps"
		}
		v.errf(field, "%s", msg)
	}
	return st, ok
}

func (v *validator) instant(field string, in Instant, from string) {
	if in.IsStep() {
		v.stepRef(field, in.Anchor, from)
	}
}

func (v *validator) workloadRef(f string, r *WorkloadRef) {
	v.cluster(f+".cluster", r.Cluster)
	n := 0
	for _, s := range []string{r.Workload, r.Deployment, r.Selector} {
		if s != "" {
			n++
		}
	}
	if n != 1 {
		v.errf(f, "name the target with exactly one of workload (app label), deployment or selector")
	}
	if r.Selector != "" {
		if _, err := labels.Parse(r.Selector); err != nil {
			v.errf(f+".selector", "not a label selector: %v", err)
		}
	}
	if errs := validation.IsDNS1123Label(r.Namespace); r.Namespace != "" && len(errs) > 0 {
		v.errf(f+".namespace", "%q is not a valid namespace", r.Namespace)
	}
}

func (v *validator) fault(f string, ft *Fault) {
	n := 0
	if s := ft.Scale; s != nil {
		n++
		v.workloadRef(f+".scale", &s.WorkloadRef)
		switch {
		case s.Replicas == nil:
			v.errf(f+".scale.replicas", "required, e.g. 0")
		case *s.Replicas < 0:
			v.errf(f+".scale.replicas", "must not be negative")
		}
	}
	if d := ft.DeletePods; d != nil {
		n++
		v.workloadRef(f+".deletePods", &d.WorkloadRef)
		if d.Count != nil && d.Percent != nil {
			v.errf(f+".deletePods", "set count or percent, not both")
		}
		if d.Count != nil && *d.Count < 1 {
			v.errf(f+".deletePods.count", "must be at least 1")
		}
		if d.Percent != nil && (*d.Percent < 1 || *d.Percent > 100) {
			v.errf(f+".deletePods.percent", "must be 1-100")
		}
	}
	if h := ft.HTTPFault; h != nil {
		n++
		hf := f + ".httpFault"
		v.workloadRef(hf, &h.WorkloadRef)
		if h.Deployment != "" {
			v.errf(hf+".deployment", "an httpFault selects pods by labels: give workload or selector")
		}
		if h.Abort == nil && h.Delay == nil {
			v.errf(hf, "set abort, delay or both")
		}
		pct := func(field string, p *float64) {
			if p != nil && (*p < 0 || *p > 100) {
				v.errf(field, "must be 0-100")
			}
		}
		if a := h.Abort; a != nil {
			if a.Status < 200 || a.Status > 599 {
				v.errf(hf+".abort.status", "must be an HTTP status 200-599, e.g. 503")
			}
			pct(hf+".abort.percent", a.Percent)
		}
		if d := h.Delay; d != nil {
			if d.Fixed == nil || d.Fixed.D() <= 0 {
				v.errf(hf+".delay.fixed", "required, a positive duration, e.g. 2s")
			}
			pct(hf+".delay.percent", d.Percent)
		}
	}
	if g := ft.GatewayLoss; g != nil {
		n++
		v.cluster(f+".gatewayLoss.cluster", g.Cluster)
		if g.Gateway != "" && g.Gateway != "eastwest" && g.Gateway != "ingress" {
			v.errf(f+".gatewayLoss.gateway", "must be eastwest or ingress, not %q", g.Gateway)
		}
	}
	if c := ft.ControlPlaneLoss; c != nil {
		n++
		v.cluster(f+".controlPlaneLoss.cluster", c.Cluster)
	}
	if pt := ft.Partition; pt != nil {
		n++
		pf := f + ".partition"
		v.cluster(pf+".cluster", pt.Cluster)
		seen := map[string]bool{}
		for i, peer := range pt.Peers {
			field := fmt.Sprintf("%s.peers[%d]", pf, i)
			v.cluster(field, peer)
			switch {
			case peer != "" && peer == pt.Cluster:
				v.errf(field, "%q is the cluster being cut off; name the clusters on the other side", peer)
			case seen[peer]:
				v.errf(field, "%q is named twice", peer)
			}
			seen[peer] = true
		}
		if len(pt.Peers) == 0 && len(v.s.Spec.Clusters) < 2 {
			v.errf(pf, "a partition needs another cluster; the scenario has one")
		}
	}
	if z := ft.ZoneLoss; z != nil {
		n++
		zf := f + ".zoneLoss"
		if v.cluster(zf+".cluster", z.Cluster) {
			c := v.clusters[z.Cluster]
			switch {
			case z.Locality == "":
			case !localityRE.MatchString(z.Locality):
				v.errf(zf+".locality", "%q is not a locality; write region, region/zone or region/zone/subzone", z.Locality)
			case c.Locality != "" && c.Locality != z.Locality && !strings.HasPrefix(c.Locality, z.Locality+"/"):
				v.errf(zf+".locality", "cluster %s's workloads are in locality %s (its locality in spec.clusters): a loss of %s would take none of them", z.Cluster, c.Locality, z.Locality)
			}
		}
		if errs := validation.IsDNS1123Label(z.Namespace); z.Namespace != "" && len(errs) > 0 {
			v.errf(zf+".namespace", "%q is not a valid namespace", z.Namespace)
		}
	}
	if n != 1 {
		v.errf(f, "set exactly one fault: scale, deletePods, httpFault, gatewayLoss, controlPlaneLoss, partition or zoneLoss")
	}
}

// cycles finds steps that wait on each other through after, when…after or revert.
func (v *validator) cycles() {
	deps := func(st *Step) []string {
		var d []string
		if st.After != nil && st.After.IsStep() {
			d = append(d, st.After.Anchor)
		}
		if st.When != nil && st.When.After != "" {
			d = append(d, st.When.After)
		}
		if st.Revert != "" {
			d = append(d, st.Revert)
		}
		return d
	}
	const (
		unseen = iota
		active
		done
	)
	state := map[string]int{}
	var stack []string
	var visit func(name string) bool
	visit = func(name string) bool {
		st, ok := v.steps[name]
		if !ok {
			return false
		}
		switch state[name] {
		case active:
			i := slices.Index(stack, name)
			cycle := append(slices.Clone(stack[i:]), name)
			idx := slices.IndexFunc(v.s.Spec.Steps, func(s Step) bool { return s.Name == name })
			v.errf(fmt.Sprintf("spec.steps[%d]", idx), "steps wait on each other and would never run: %s", strings.Join(cycle, " → "))
			return true
		case done:
			return false
		}
		state[name] = active
		stack = append(stack, name)
		for _, d := range deps(st) {
			if d != name && visit(d) {
				return true
			}
		}
		stack = stack[:len(stack)-1]
		state[name] = done
		return false
	}
	for _, st := range v.s.Spec.Steps {
		if state[st.Name] == unseen {
			stack = stack[:0]
			if visit(st.Name) {
				return // one cycle is enough to explain; the rest usually share it
			}
		}
	}
}

func (v *validator) expectations() {
	names := map[string]bool{}
	for i := range v.s.Spec.Expect {
		e := &v.s.Spec.Expect[i]
		f := fmt.Sprintf("spec.expect[%d]", i)
		if v.name(f+".name", e.Name) {
			if names[e.Name] {
				v.errf(f+".name", "expectation %q is defined twice", e.Name)
			}
			names[e.Name] = true
		}
		n := 0
		if u := e.Upstream5xx; u != nil {
			n++
			uf := f + ".upstream5xx"
			v.envoyPath(uf, u.EnvoyPath)
			v.bounds(uf, u.Max, u.Min)
			v.window(uf, u.Window)
			if r := u.Retried; r != nil {
				v.bounds(uf+".retried", r.Max, r.Min)
			}
		}
		if c := e.Errors; c != nil {
			n++
			v.bounds(f+".errors", c.Max, c.Min)
			v.window(f+".errors", c.Window)
		}
		if c := e.Degraded; c != nil {
			n++
			v.bounds(f+".degraded", c.Max, c.Min)
			v.window(f+".degraded", c.Window)
			if v.s.Spec.Load.DegradedWhen == nil {
				v.errf(f+".degraded", "needs spec.load.degradedWhen to tell a degraded answer")
			}
		}
		if l := e.Latency; l != nil {
			n++
			if l.P50 == 0 && l.P90 == 0 && l.P99 == 0 && l.Max == 0 {
				v.errf(f+".latency", "set at least one of p50, p90, p99 or max")
			}
			v.window(f+".latency", l.Window)
		}
		if fo := e.Failover; fo != nil {
			n++
			ff := f + ".failover"
			if fo.Service == "" {
				v.errf(ff+".service", "required, e.g. reviews")
			}
			okFrom := v.cluster(ff+".from", fo.From)
			okTo := v.cluster(ff+".to", fo.To)
			if okFrom && okTo && fo.From == fo.To {
				v.errf(ff+".to", "must differ from from (%s)", fo.From)
			}
			if fo.Within == 0 {
				v.errf(ff+".within", "required: how soon after the step traffic must move, e.g. 10s")
			}
			if fo.After == "" {
				v.errf(ff+".after", "required: the step the clock starts at")
			} else {
				v.stepRef(ff+".after", fo.After, "")
			}
		}
		if fb := e.Failback; fb != nil {
			n++
			ff := f + ".failback"
			if fb.Service == "" {
				v.errf(ff+".service", "required, e.g. reviews")
			}
			v.cluster(ff+".to", fb.To)
			if fb.Within == 0 {
				v.errf(ff+".within", "required: how soon after the step traffic must return, e.g. 30s")
			}
			if fb.After == "" {
				v.errf(ff+".after", "required: the step the clock starts at (usually the revert)")
			} else {
				v.stepRef(ff+".after", fb.After, "")
			}
		}
		if r := e.Recovery; r != nil {
			n++
			rf := f + ".recovery"
			if r.Within <= 0 {
				v.errf(rf+".within", "required: how soon after the step the load must be back, e.g. 15s")
			}
			if r.After == "" {
				v.errf(rf+".after", "required: the fault or revert step whose dip is judged")
			} else if st, ok := v.stepRef(rf+".after", r.After, ""); ok && st.Fault == nil && st.Revert == "" {
				v.errf(rf+".after", "step %q neither injects nor reverts a fault: it has no dip to recover from", r.After)
			}
		}
		if j := e.Ejection; j != nil {
			n++
			jf := f + ".ejection"
			v.observedEnvoy(jf, j.From, j.Cluster)
			if j.Service == "" {
				v.errf(jf+".service", "required: the service whose host is ejected, e.g. reviews")
			}
			if j.Within <= 0 {
				v.errf(jf+".within", "required: how soon after the step a host must be ejected, e.g. 5s")
			}
			if j.After == "" {
				v.errf(jf+".after", "required: the step the clock starts at (usually the fault)")
			} else {
				v.stepRef(jf+".after", j.After, "")
			}
		}
		if a := e.Availability; a != nil {
			n++
			af := f + ".availability"
			switch {
			case a.Min == nil:
				v.errf(af+".min", "required: the lowest success ratio a window may have, e.g. 0.9")
			case *a.Min < 0 || *a.Min > 1 || math.IsNaN(*a.Min):
				v.errf(af+".min", "must be a share from 0 to 1, got %g", *a.Min)
			}
			v.window(af, a.Window)
		}
		if r := e.Regression; r != nil {
			n++
			v.regression(f+".regression", r)
		}
		if sh := e.Share; sh != nil {
			n++
			v.share(f+".share", sh)
		}
		if n != 1 {
			v.errf(f, "set exactly one check: upstream5xx, errors, degraded, latency, failover, failback, recovery, availability, ejection, regression or share")
		}
	}
}

// observedEnvoy checks an expectation's from and cluster at field f: a
// workload in a cluster whose Envoy spec.observe.envoy scrapes.
func (v *validator) observedEnvoy(f, from, cluster string) {
	if from == "" {
		v.errf(f+".from", "required: the workload whose Envoy is read, e.g. productpage")
	}
	if v.cluster(f+".cluster", cluster) && from != "" && !v.observed(cluster, from) {
		v.errf(f+".from", "%s in %s is not observed; add {cluster: %s, workload: %s} to spec.observe.envoy", from, cluster, cluster, from)
	}
}

// envoyPath checks what an observed Envoy got from a service: the Envoy is
// observed, the service named.
func (v *validator) envoyPath(f string, p EnvoyPath) {
	v.observedEnvoy(f, p.From, p.Cluster)
	if p.To == "" {
		v.errf(f+".to", "required: the destination service, e.g. reviews")
	}
}

func (v *validator) observed(cluster, workload string) bool {
	for _, e := range v.s.Spec.Observe.Envoy {
		if e.Cluster == cluster && e.Workload == workload {
			return true
		}
	}
	return false
}

func (v *validator) bounds(f string, max, min *int) {
	if max == nil && min == nil {
		v.errf(f, "set max, min or both")
	}
	if max != nil && *max < 0 {
		v.errf(f+".max", "must not be negative")
	}
	if min != nil && *min < 0 {
		v.errf(f+".min", "must not be negative")
	}
	if max != nil && min != nil && *min > *max {
		v.errf(f+".min", "is larger than max (%d > %d)", *min, *max)
	}
}

func (v *validator) window(f string, w Window) {
	if w.From != nil {
		v.instant(f+".from", *w.From, "")
	}
	if w.Until != nil {
		v.instant(f+".until", *w.Until, "")
	}
	if w.From != nil && w.Until != nil && w.From.Anchor == w.Until.Anchor && w.From.Offset >= w.Until.Offset {
		v.errf(f+".until", "the window is empty: %s is not after %s", w.Until, w.From)
	}
}

// LoadFigures are the figures of the load a regression expectation may judge
// besides the scenario's own expectations, with their units.
var LoadFigures = map[string]string{
	"load.p50":    "seconds",
	"load.p90":    "seconds",
	"load.p99":    "seconds",
	"load.max":    "seconds",
	"load.errors": "requests",
	"run.seconds": "seconds",
}

// FigureUnit is the unit of the figure a regression expectation names in s:
// "seconds", "requests" or "" when the figure names nothing s measures, with
// the reason.
func FigureUnit(s *Scenario, figure string) (string, error) {
	if u, ok := LoadFigures[figure]; ok {
		return u, nil
	}
	name, measure, hasMeasure := strings.Cut(figure, ".")
	var x *Expectation
	var names []string
	for i := range s.Spec.Expect {
		e := &s.Spec.Expect[i]
		if e.Regression == nil {
			names = append(names, e.Name)
		}
		if e.Name == name {
			x = e
		}
	}
	if x == nil {
		known := slices.Sorted(maps.Keys(LoadFigures))
		return "", fmt.Errorf("%q names no expectation of the scenario (%s) and no figure of the load (%s)",
			figure, orNone(strings.Join(names, ", ")), strings.Join(known, ", "))
	}
	switch {
	case x.Regression != nil:
		return "", fmt.Errorf("%q is a regression expectation: it has no figure of its own to judge", name)
	case x.Availability != nil:
		return "", fmt.Errorf("%q is an availability expectation, whose figure gets better as it grows; a regression judges figures that get worse as they grow (a time, a count)", name)
	case x.Share != nil:
		return "", fmt.Errorf("%q is a share expectation, whose figure is neither better nor worse as it grows; a regression judges figures that get worse as they grow (a time, a count)", name)
	case hasMeasure && x.Latency == nil:
		return "", fmt.Errorf("%q: only a latency expectation has measures to choose from (p50, p90, p99, max); write the name alone, %q", figure, name)
	case hasMeasure:
		set := map[string]bool{"p50": x.Latency.P50 != 0, "p90": x.Latency.P90 != 0, "p99": x.Latency.P99 != 0, "max": x.Latency.Max != 0}
		if !set[measure] {
			return "", fmt.Errorf("%q: latency expectation %s bounds no %q; it bounds %s", figure, name, measure, latencyBounds(x.Latency))
		}
		return "seconds", nil
	case x.Latency != nil, x.Failover != nil, x.Failback != nil, x.Recovery != nil:
		return "seconds", nil
	}
	return "requests", nil
}

func latencyBounds(l *LatencyExpect) string {
	var out []string
	for _, b := range []struct {
		name string
		d    Duration
	}{{"p50", l.P50}, {"p90", l.P90}, {"p99", l.P99}, {"max", l.Max}} {
		if b.d != 0 {
			out = append(out, b.name)
		}
	}
	return orNone(strings.Join(out, ", "))
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// share checks a share expectation at field f.
func (v *validator) share(f string, sh *ShareExpect) {
	if sh.Service == "" {
		v.errf(f+".service", "required: the service whose answers are counted, e.g. reviews")
	}
	v.cluster(f+".cluster", sh.Cluster)
	if sh.Min == nil && sh.Max == nil {
		v.errf(f, "set min, max or both, e.g. {min: 22%%, max: 38%%}")
	}
	for _, b := range []struct {
		field string
		p     *Percent
	}{{"min", sh.Min}, {"max", sh.Max}} {
		if b.p != nil && b.p.Share() > 1 {
			v.errf(f+"."+b.field, "%s is more than every answer: a share is 0%% to 100%%", b.p)
		}
	}
	if sh.Min != nil && sh.Max != nil && *sh.Min > *sh.Max {
		v.errf(f+".min", "is larger than max (%s > %s)", sh.Min, sh.Max)
	}
	v.window(f, sh.Window)
}

func (v *validator) regression(f string, r *RegressionExpect) {
	if r.Figure == "" {
		v.errf(f+".figure", "required: the figure judged, e.g. the name of a failover expectation, or load.p99")
	} else if unit, err := FigureUnit(v.s, r.Figure); err != nil {
		v.errf(f+".figure", "%v", err)
	} else if a := r.MaxIncreaseBy; a != nil {
		switch {
		case unit == "seconds" && !a.IsDuration && a.Value != 0:
			v.errf(f+".maxIncreaseBy", "%s is a time: write the increase as a duration, e.g. %gs or 500ms", r.Figure, a.Value)
		case unit != "seconds" && a.IsDuration:
			v.errf(f+".maxIncreaseBy", "%s is a count of requests: write the increase as a number, e.g. 20", r.Figure)
		}
	}
	if r.Last < 0 {
		v.errf(f+".last", "must not be negative")
	}
	if r.MinRuns < 0 {
		v.errf(f+".minRuns", "must not be negative")
	}
	if r.Last > 0 && r.MinRuns > r.Last {
		v.errf(f+".minRuns", "is larger than last (%d > %d): there would never be enough runs to judge", r.MinRuns, r.Last)
	}
	if r.MaxIncrease == nil && r.MaxIncreaseBy == nil {
		v.errf(f, "set maxIncrease (e.g. 50%%), maxIncreaseBy (e.g. 500ms) or both")
	}
}
