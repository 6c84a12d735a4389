package translate

import (
	"fmt"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"
	networking "istio.io/api/networking/v1alpha3"

	"github.com/meshdrill/drill/pkg/scenario"
)

// setting is one field of the effective policy of a service in a cluster, with the
// scenario field it came from, so that a second policy setting it again can be
// reported against the first.
type setting[T any] struct {
	value  T
	set    bool
	field  string // e.g. spec.mesh.trafficPolicies[0].outlierDetection
	source string // name of the policy
}

// effective is everything the traffic policies say about calls to one service from
// the clients of one cluster. Istio takes one DestinationRule and one VirtualService
// per host (later ones for the same host are merged only partly, or ignored), so
// drill merges the policies itself and refuses two that set the same thing.
type effective struct {
	svc      svcKey
	outlier  setting[*scenario.OutlierDetection]
	shift    setting[*scenario.FailoverService]
	retries  setting[*scenario.Retries]
	timeout  setting[time.Duration]
	locality setting[*scenario.LocalityFailover]
	sources  []string // policy names, in scenario order
}

// policies is the effective policy of every service, per client cluster.
type policies struct {
	byCluster map[string]map[svcKey]*effective
	// order lists, per cluster, the services in the order policies first named
	// them, so output never depends on map iteration.
	order map[string][]svcKey
}

func (p *policies) get(cluster string, svc svcKey) *effective {
	return p.byCluster[cluster][svc]
}

// resolvePolicies merges the traffic policies into one effective policy per client
// cluster and service, reporting conflicts and settings Istio cannot express.
func (t *translator) resolvePolicies() *policies {
	p := &policies{byCluster: map[string]map[svcKey]*effective{}, order: map[string][]svcKey{}}
	fos := map[string]*scenario.FailoverService{}
	for i := range t.mesh.FailoverServices {
		fs := &t.mesh.FailoverServices[i]
		fos[fs.Name] = fs
	}
	for i := range t.mesh.TrafficPolicies {
		tp := &t.mesh.TrafficPolicies[i]
		pf := fmt.Sprintf("%s.trafficPolicies[%d]", t.base, i)
		svc := svcKey{tp.Destination.Service, tp.Destination.Namespace}

		if od := tp.OutlierDetection; od != nil && od.MaxEjectionPercent != nil && *od.MaxEjectionPercent == 0 {
			// max_ejection_percent is a plain int32 in Istio's OutlierDetection: 0 is
			// indistinguishable from unset and means Istio's default, 10 %.
			t.errf(pf+".outlierDetection.maxEjectionPercent",
				"0 cannot be expressed in Istio: it reads 0 as unset and ejects up to 10%% of endpoints; to never eject, remove outlierDetection from the policy, else set 1-100")
		}

		for _, c := range t.clientClusters(tp.Destination.Clusters) {
			m := p.byCluster[c]
			if m == nil {
				m = map[svcKey]*effective{}
				p.byCluster[c] = m
			}
			e := m[svc]
			if e == nil {
				e = &effective{svc: svc}
				m[svc] = e
				p.order[c] = append(p.order[c], svc)
			}
			e.sources = append(e.sources, tp.Name)
			if tp.OutlierDetection != nil {
				set(t, &e.outlier, tp.OutlierDetection, pf+".outlierDetection", "outlierDetection", tp.Name, svc, c)
			}
			if tp.TrafficShift != nil {
				if fs := fos[tp.TrafficShift.FailoverService]; fs != nil {
					set(t, &e.shift, fs, pf+".trafficShift", "trafficShift", tp.Name, svc, c)
				}
			}
			if tp.Retries != nil {
				set(t, &e.retries, tp.Retries, pf+".retries", "retries", tp.Name, svc, c)
			}
			if tp.Timeout > 0 {
				set(t, &e.timeout, tp.Timeout.D(), pf+".timeout", "timeout", tp.Name, svc, c)
			}
			if tp.LocalityFailover != nil {
				set(t, &e.locality, tp.LocalityFailover, pf+".localityFailover", "localityFailover", tp.Name, svc, c)
			}
		}
	}
	return p
}

// set records a setting, or reports that another policy already made it.
func set[T any](t *translator, s *setting[T], v T, field, what, source string, svc svcKey, cluster string) {
	if s.set {
		if !t.once("conflict|" + field + "|" + s.field) {
			return // reported for another cluster already
		}
		line, _ := t.s.Pos(s.field)
		t.errf(field, "conflicts with %s (line %d), which also sets %s for %s in %s; Istio takes one rule per host, so put the setting in one policy or split destination.clusters",
			policyOf(s.field), line, what, svc, cluster)
		return
	}
	*s = setting[T]{value: v, set: true, field: field, source: source}
}

// policyOf turns spec.mesh.trafficPolicies[0].outlierDetection into
// spec.mesh.trafficPolicies[0], for messages.
func policyOf(field string) string {
	if i := strings.LastIndex(field, "]."); i >= 0 {
		return field[:i+1]
	}
	return field
}

// outlierDetection converts a policy's outlier detection to Istio's.
func outlierDetection(od *scenario.OutlierDetection) *networking.OutlierDetection {
	if od == nil {
		return nil
	}
	out := &networking.OutlierDetection{}
	if od.ConsecutiveErrors != nil {
		// consecutiveErrors counts every 5xx and local-origin failure, Envoy's
		// consecutive_5xx. Istio's own field of that name is deprecated and counted
		// only 502/503/504 (istio.io/api networking/v1alpha3/destination_rule.proto,
		// OutlierDetection.consecutive_errors), so drill maps to consecutive5xxErrors.
		out.Consecutive_5XxErrors = wrapperspb.UInt32(uint32(*od.ConsecutiveErrors))
	}
	if od.ConsecutiveGatewayErrors != nil {
		out.ConsecutiveGatewayErrors = wrapperspb.UInt32(uint32(*od.ConsecutiveGatewayErrors))
	}
	if od.Interval > 0 {
		out.Interval = durationpb.New(od.Interval.D())
	}
	if od.BaseEjectionTime > 0 {
		out.BaseEjectionTime = durationpb.New(od.BaseEjectionTime.D())
	}
	if od.MaxEjectionPercent != nil {
		// Defaulted to 100 by the scenario loader: Istio's default of 10 % lets no
		// endpoint be ejected while a service has fewer than ten, so failover would
		// be silently partial (scenario.DefaultMaxEjectionPercent).
		out.MaxEjectionPercent = int32(*od.MaxEjectionPercent)
	}
	if od.MinHealthPercent != nil {
		out.MinHealthPercent = int32(*od.MinHealthPercent)
	}
	return out
}

// httpRetry converts a policy's retries to Istio's.
func httpRetry(r *scenario.Retries) *networking.HTTPRetry {
	if r == nil {
		return nil
	}
	out := &networking.HTTPRetry{Attempts: int32(r.Attempts), RetryOn: r.RetryOn}
	if r.PerTryTimeout > 0 {
		out.PerTryTimeout = durationpb.New(r.PerTryTimeout.D())
	}
	return out
}
