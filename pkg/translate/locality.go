package translate

import (
	"fmt"

	"google.golang.org/protobuf/types/known/wrapperspb"
	networking "istio.io/api/networking/v1alpha3"

	"github.com/meshdrill/drill/pkg/scenario"
)

// Strategy locality, Istio-native: for meshes whose istiods discover each other's
// endpoints, so that a service's one host already holds the endpoints of every
// cluster. Per service, in each cluster a policy names, one DestinationRule with
// outlier detection and localityLbSetting; Envoy puts the endpoints in priority
// levels by how well their locality (or, with failoverPriority, their labels)
// matches the client, and moves traffic down the levels as endpoints are ejected.
// Istio applies locality failover only to hosts with outlier detection (istio.io
// docs: reference/config/networking/destination-rule, LocalityLoadBalancerSetting);
// the scenario validator insists on it.
//
// Retries and timeouts go on a VirtualService; retries there carry
// retryRemoteLocalities, so a retried request is sent to the next priority level
// rather than to the one that just failed.
func (t *translator) locality(p *policies) {
	if len(t.mesh.FailoverServices) > 0 {
		t.errf(t.base+".failoverServices", "failover services need strategy %s; with strategy %s, traffic fails over within each service's own host: remove failoverServices or set strategy: %s",
			scenario.StrategyAggregate, scenario.StrategyLocality, scenario.StrategyAggregate)
	}
	t.warnSingleCluster()

	for _, c := range t.clusterNames {
		b := t.out[c]
		for _, svc := range p.order[c] {
			e := p.get(c, svc)
			if e.outlier.set || e.locality.set {
				host, name := t.names.localHost(svc)
				d := b.dr(svc, host, name)
				d.lb = localityLB(e.locality.value)
				if e.locality.set {
					d.sources = addUnique(d.sources, e.locality.source)
				}
			}
			if e.retries.set || e.timeout.set {
				t.virtualService(b, e, true)
			}
		}
	}
}

// localityLB is the load balancer setting of the locality strategy. Enabled is
// written out although it is the mesh-wide default (meshConfig.localityLbSetting),
// so the drill does not depend on how the mesh was installed.
func localityLB(lf *scenario.LocalityFailover) *networking.LocalityLoadBalancerSetting {
	s := &networking.LocalityLoadBalancerSetting{Enabled: wrapperspb.Bool(true)}
	if lf == nil {
		return s
	}
	s.FailoverPriority = lf.FailoverPriority
	for _, r := range lf.Failover {
		s.Failover = append(s.Failover, &networking.LocalityLoadBalancerSetting_Failover{From: r.From, To: r.To})
	}
	return s
}

// warnSingleCluster warns about a locality policy for a service that drill knows to
// run in one cluster only: there is nowhere to fail over to.
func (t *translator) warnSingleCluster() {
policies:
	for i := range t.mesh.TrafficPolicies {
		tp := &t.mesh.TrafficPolicies[i]
		if tp.OutlierDetection == nil {
			continue
		}
		svc := svcKey{tp.Destination.Service, tp.Destination.Namespace}
		var where []string
		for _, c := range t.clusterNames {
			runs, known := t.runs(svc, c)
			if !known {
				continue policies // not drill's Bookinfo: trust the user
			}
			if runs {
				where = append(where, c)
			}
		}
		if len(where) < 2 && t.once("single|"+svc.String()) {
			t.warnf(fmt.Sprintf("%s.trafficPolicies[%d].destination.service", t.base, i),
				"%s runs in %d cluster(s) of the scenario, so locality failover has no other cluster to move its traffic to", svc, len(where))
		}
	}
}
