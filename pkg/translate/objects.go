package translate

import (
	"fmt"
	"slices"
	"strings"

	networking "istio.io/api/networking/v1alpha3"
	networkingv1 "istio.io/client-go/pkg/apis/networking/v1"
	networkingv1alpha3 "istio.io/client-go/pkg/apis/networking/v1alpha3"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/meshdrill/drill/pkg/scenario"
)

// Object is any Istio object drill produces: a *v1.ServiceEntry,
// *v1.DestinationRule, *v1.VirtualService or *v1alpha3.EnvoyFilter of
// istio.io/client-go. They are pointers because their Specs are protobuf messages,
// which must not be copied.
type Object interface {
	metav1.Object
	runtime.Object
}

// The API versions drill writes. networking.istio.io/v1 is served since Istio
// 1.22; EnvoyFilter exists only as v1alpha3.
var (
	typeServiceEntry    = metav1.TypeMeta{APIVersion: networkingv1.SchemeGroupVersion.String(), Kind: "ServiceEntry"}
	typeDestinationRule = metav1.TypeMeta{APIVersion: networkingv1.SchemeGroupVersion.String(), Kind: "DestinationRule"}
	typeVirtualService  = metav1.TypeMeta{APIVersion: networkingv1.SchemeGroupVersion.String(), Kind: "VirtualService"}
	typeEnvoyFilter     = metav1.TypeMeta{APIVersion: networkingv1alpha3.SchemeGroupVersion.String(), Kind: "EnvoyFilter"}
)

// clusterBuild gathers one cluster's objects while the policies are walked; finish
// turns it into ClusterObjects.
type clusterBuild struct {
	name      string
	ses       map[string]*seBuild // by host
	drs       map[string]*drBuild // by host
	efs       []*networkingv1alpha3.EnvoyFilter
	vss       []*networkingv1.VirtualService
	upstreams []Upstream
}

func newClusterBuild(name string) *clusterBuild {
	return &clusterBuild{name: name, ses: map[string]*seBuild{}, drs: map[string]*drBuild{}}
}

// seBuild is a ServiceEntry being built; remote hosts collect the ports of every
// failover service that uses them.
type seBuild struct {
	obj     *networkingv1.ServiceEntry
	sources []string
}

// drBuild is the one DestinationRule of a host in a cluster: the subsets failover
// services need, the TLS settings that reach a remote cluster, and the outlier
// detection and load balancing of the policies for the host's service.
type drBuild struct {
	svc       svcKey
	host      string
	name      string
	namespace string
	subsets   []string                  // clusters whose endpoints get a subset (aggregate members)
	remote    []*networking.ServicePort // ports of a remote host: each needs its SNI
	lb        *networking.LocalityLoadBalancerSetting
	sources   []string
}

// addUnique appends name unless it is empty or listed.
func addUnique(list []string, name string) []string {
	if name == "" || slices.Contains(list, name) {
		return list
	}
	return append(list, name)
}

// dr returns the DestinationRule of host, creating it.
func (b *clusterBuild) dr(svc svcKey, host, name string) *drBuild {
	d := b.drs[host]
	if d == nil {
		d = &drBuild{svc: svc, host: host, name: name, namespace: svc.namespace}
		b.drs[host] = d
	}
	return d
}

// se returns the ServiceEntry of host, creating it as namespace/name and filling
// its spec with fill. Keyed by host, so that two hosts whose derived names meet
// become two objects, which checkNames reports.
func (b *clusterBuild) se(host, namespace, name string, fill func(*networking.ServiceEntry)) *seBuild {
	s := b.ses[host]
	if s == nil {
		s = &seBuild{obj: &networkingv1.ServiceEntry{TypeMeta: typeServiceEntry}}
		s.obj.Name, s.obj.Namespace = name, namespace
		fill(&s.obj.Spec)
		b.ses[host] = s
	}
	return s
}

// stamp labels an object as drill's, for this scenario, and notes the policies it
// comes from.
func (t *translator) stamp(o Object, sources []string) {
	o.SetLabels(map[string]string{LabelManagedBy: ManagedBy, LabelScenario: t.s.Metadata.Name})
	if len(sources) == 0 {
		return
	}
	a := o.GetAnnotations()
	if a == nil {
		a = make(map[string]string, 1)
	}
	if len(sources) == 1 {
		a[AnnotationPolicies] = sources[0]
	} else {
		a[AnnotationPolicies] = strings.Join(t.inScenarioOrder(sources), ",")
	}
	o.SetAnnotations(a)
}

// finish builds the DestinationRules, stamps the ServiceEntries and
// DestinationRules (the other kinds are stamped when made) and sorts each kind by
// namespace and name.
func (b *clusterBuild) finish(t *translator, p *policies) *ClusterObjects {
	out := &ClusterObjects{
		Cluster:          b.name,
		Upstreams:        b.upstreams,
		ServiceEntries:   make([]*networkingv1.ServiceEntry, 0, len(b.ses)),
		DestinationRules: make([]*networkingv1.DestinationRule, 0, len(b.drs)),
		EnvoyFilters:     b.efs,
		VirtualServices:  b.vss,
	}
	for _, s := range b.ses {
		t.stamp(s.obj, s.sources)
		out.ServiceEntries = append(out.ServiceEntries, s.obj)
	}
	for _, d := range b.drs {
		e := p.get(b.name, d.svc)
		dr := d.build(e)
		sources := d.sources
		if e != nil && e.outlier.set && !slices.Contains(sources, e.outlier.source) {
			sources = append(slices.Clone(sources), e.outlier.source)
		}
		t.stamp(dr, sources)
		out.DestinationRules = append(out.DestinationRules, dr)
	}
	sortObjects(out.ServiceEntries)
	sortObjects(out.DestinationRules)
	sortObjects(out.EnvoyFilters)
	sortObjects(out.VirtualServices)
	checkNames(t, b.name, out.ServiceEntries)
	checkNames(t, b.name, out.DestinationRules)
	checkNames(t, b.name, out.EnvoyFilters)
	checkNames(t, b.name, out.VirtualServices)
	return out
}

// inScenarioOrder sorts policy and failover service names as the scenario lists
// them: traffic policies first, then failover services.
func (t *translator) inScenarioOrder(names []string) []string {
	if t.rank == nil {
		t.rank = map[string]int{}
		for i := range t.mesh.TrafficPolicies {
			t.rank[t.mesh.TrafficPolicies[i].Name] = i
		}
		for i := range t.mesh.FailoverServices {
			t.rank[t.mesh.FailoverServices[i].Name] = len(t.mesh.TrafficPolicies) + i
		}
	}
	out := slices.Clone(names)
	slices.SortStableFunc(out, func(a, b string) int { return t.rank[a] - t.rank[b] })
	return out
}

func sortObjects[T Object](objs []T) {
	slices.SortFunc(objs, func(a, b T) int {
		if c := strings.Compare(a.GetNamespace(), b.GetNamespace()); c != 0 {
			return c
		}
		return strings.Compare(a.GetName(), b.GetName())
	})
}

// checkNames reports two objects of a kind with one name, in a list sorted by
// namespace and name: the names drill derives met (a service called a-b in
// cluster c and a service a in cluster b-c, say).
func checkNames[T Object](t *translator, cluster string, objs []T) {
	for i := 1; i < len(objs); i++ {
		a, b := objs[i-1], objs[i]
		if a.GetName() != b.GetName() || a.GetNamespace() != b.GetNamespace() {
			continue
		}
		if key := describe(b); t.once("name|" + key) {
			t.errf(t.base, "two objects for cluster %s would both be %s: the names drill derives from services, clusters and failover services collided; rename one of them", cluster, key)
		}
	}
}

// build turns the gathered settings into the DestinationRule.
func (d *drBuild) build(e *effective) *networkingv1.DestinationRule {
	dr := &networkingv1.DestinationRule{TypeMeta: typeDestinationRule}
	dr.Name, dr.Namespace = d.name, d.namespace
	dr.Spec.Host = d.host

	var od *networking.OutlierDetection
	if e != nil && e.outlier.set {
		od = outlierDetection(e.outlier.value)
	}
	tp := &networking.TrafficPolicy{OutlierDetection: od}
	if d.lb != nil {
		tp.LoadBalancer = &networking.LoadBalancerSettings{LocalityLbSetting: d.lb}
	}
	switch len(d.remote) {
	case 0:
	case 1:
		tp.Tls = remoteTLS(d.svc, d.remote[0])
	default:
		// Each port of a remote host needs its own SNI. Port-level settings replace
		// the host-level ones whole, defaults filling what they omit (istio.io docs:
		// DestinationRule TrafficPolicy.portLevelSettings), so each carries the
		// outlier detection again.
		tp.Tls = &networking.ClientTLSSettings{Mode: networking.ClientTLSSettings_ISTIO_MUTUAL}
		for _, port := range d.remote {
			tp.PortLevelSettings = append(tp.PortLevelSettings, &networking.TrafficPolicy_PortTrafficPolicy{
				Port:             &networking.PortSelector{Number: port.Number},
				OutlierDetection: outlierDetection(outlierOf(e)),
				Tls:              remoteTLS(d.svc, port),
			})
		}
	}
	if tp.OutlierDetection != nil || tp.LoadBalancer != nil || tp.Tls != nil {
		dr.Spec.TrafficPolicy = tp
	}
	for _, c := range d.subsets {
		dr.Spec.Subsets = append(dr.Spec.Subsets, &networking.Subset{
			Name: c,
			// topology.istio.io/cluster is a label Istio puts on every endpoint,
			// valued with the cluster ID of its cluster; subsets may select on it
			// (istio.io docs: ops/configuration/traffic-management/multicluster,
			// "Partitioning Services").
			Labels: map[string]string{"topology.istio.io/cluster": c},
		})
	}
	return dr
}

func outlierOf(e *effective) *scenario.OutlierDetection {
	if e == nil || !e.outlier.set {
		return nil
	}
	return e.outlier.value
}

// remoteTLS is the client TLS of a remote host: Istio mTLS, presenting the SNI
// under which the remote cluster's east-west gateway knows the service.
// ISTIO_MUTUAL uses the sni given here instead of the Envoy cluster's own name
// (istio.io/istio pilot/pkg/networking/core/cluster_tls.go).
func remoteTLS(svc svcKey, port *networking.ServicePort) *networking.ClientTLSSettings {
	return &networking.ClientTLSSettings{
		Mode: networking.ClientTLSSettings_ISTIO_MUTUAL,
		Sni:  sni(port.Number, "", svc.localHost()),
	}
}

// servicePort is the ServiceEntry port of a failover service's port.
func servicePort(p scenario.Port, withNumber bool) *networking.ServicePort {
	name := p.Protocol
	if withNumber {
		name = fmt.Sprintf("%s-%d", p.Protocol, p.Number)
	}
	return &networking.ServicePort{Number: uint32(p.Number), Protocol: istioProtocol(p.Protocol), Name: name}
}

// istioProtocol maps the scenario's protocol names to Istio's.
func istioProtocol(p string) string {
	switch p {
	case "http2":
		return "HTTP2"
	case "grpc":
		return "GRPC"
	case "tcp":
		return "TCP"
	}
	return "HTTP"
}
