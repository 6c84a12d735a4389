package translate

import (
	"slices"

	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"
	networking "istio.io/api/networking/v1alpha3"
	networkingv1 "istio.io/client-go/pkg/apis/networking/v1"
)

// virtualService writes the one VirtualService of a service in a cluster: where its
// traffic goes (the service itself, or a failover hostname) and with which retries
// and timeout. retryRemoteLocalities adds Istio's retryRemoteLocalities, Envoy's
// previous_priorities retry plugin (istio.io/istio pilot/pkg/networking/core/
// route/retry/retry.go), so that a retry goes to the next priority level.
func (t *translator) virtualService(b *clusterBuild, e *effective, retryRemoteLocalities bool) {
	svc := e.svc
	vs := &networkingv1.VirtualService{TypeMeta: typeVirtualService}
	host, name := t.names.localHost(svc)
	vs.Name, vs.Namespace = name, svc.namespace
	vs.Spec.Hosts = []string{host}

	dest := &networking.Destination{Host: host}
	protocol := "http"
	var from []string
	if e.shift.set {
		fs := e.shift.value
		dest = &networking.Destination{Host: fs.Hostname, Port: &networking.PortSelector{Number: uint32(fs.Port.Number)}}
		protocol = fs.Port.Protocol
		from = append(from, e.shift.source)
	}

	if protocol == "tcp" {
		for _, s := range []struct {
			set   bool
			field string
		}{{e.retries.set, e.retries.field}, {e.timeout.set, e.timeout.field}} {
			if s.set && t.once("tcp|"+s.field) {
				t.errf(s.field, "applies to HTTP requests, but %s's traffic goes to failover service %s, which carries tcp", svc, e.shift.value.Name)
			}
		}
		vs.Spec.Tcp = []*networking.TCPRoute{{Route: []*networking.RouteDestination{{Destination: dest}}}}
	} else {
		route := &networking.HTTPRoute{Route: []*networking.HTTPRouteDestination{{Destination: dest}}}
		if e.retries.set {
			route.Retries = httpRetry(e.retries.value)
			if retryRemoteLocalities {
				route.Retries.RetryRemoteLocalities = wrapperspb.Bool(true)
			}
			from = append(from, e.retries.source)
		}
		if e.timeout.set {
			route.Timeout = durationpb.New(e.timeout.value)
			from = append(from, e.timeout.source)
		}
		vs.Spec.Http = []*networking.HTTPRoute{route}
	}

	// The policies that shaped it, in scenario order.
	var sources []string
	for _, name := range e.sources {
		if slices.Contains(from, name) {
			sources = addUnique(sources, name)
		}
	}
	t.stamp(vs, sources)
	b.vss = append(b.vss, vs)
}
