package translate

import (
	"fmt"
	"hash/fnv"
	"net"
	"slices"
	"strings"

	"google.golang.org/protobuf/types/known/structpb"
	networking "istio.io/api/networking/v1alpha3"
	networkingv1alpha3 "istio.io/client-go/pkg/apis/networking/v1alpha3"

	"github.com/meshdrill/drill/pkg/scenario"
)

// Strategy aggregate, Service Mesh Hub's design. For each failover service, in each
// cluster of its meshes:
//
//   - a ServiceEntry for the failover hostname, so that Istio routes to it and
//     builds its Envoy cluster outbound|PORT||HOSTNAME;
//   - an EnvoyFilter that replaces that Envoy cluster with an aggregate cluster
//     whose members are the backing services' Envoy clusters in priority order;
//   - for a backing service in this cluster, a DestinationRule subset holding only
//     this cluster's endpoints (outbound|PORT|CLUSTER|SVC.NS.svc.cluster.local);
//   - for a backing service in another cluster, a ServiceEntry for
//     SVC.NS.svc.CLUSTER.global with that cluster's address, and a DestinationRule
//     giving it Istio mTLS with the SNI the remote gateway routes on.
//
// For each traffic policy, in each cluster its destination.clusters names: outlier
// detection on the DestinationRule of every host of the service (local and remote
// members alike: each member of an aggregate cluster ejects its own endpoints),
// and a VirtualService carrying the traffic shift, retries and timeout.
func (t *translator) aggregate(p *policies) {
	shifted := map[string]bool{}
	for _, c := range t.clusterNames {
		for _, svc := range p.order[c] {
			e := p.get(c, svc)
			if !e.shift.set {
				continue
			}
			fs := e.shift.value
			shifted[fs.Name] = true
			if !slices.Contains(fs.Meshes, c) && t.once("shift|"+e.shift.field+"|"+c) {
				t.errf(e.shift.field, "sends the traffic of %s in %s to failover service %s, which is only defined in %s (its meshes); add %s to its meshes or leave %s out of destination.clusters",
					svc, c, fs.Name, strings.Join(fs.Meshes, ", "), c, c)
			}
		}
	}

	addrs := failoverAddresses(t.mesh.FailoverServices)
	hostnames := map[string]string{} // hostname → field of the failover service
	for i := range t.mesh.FailoverServices {
		fs := &t.mesh.FailoverServices[i]
		ff := fmt.Sprintf("%s.failoverServices[%d]", t.base, i)
		t.checkHostname(fs, ff, hostnames)
		for j, bs := range fs.BackingServices {
			t.checkRuns(svcKey{bs.Service, bs.Namespace}, bs.Cluster, fmt.Sprintf("%s.backingServices[%d]", ff, j))
		}
		if !shifted[fs.Name] {
			t.warnf(ff+".name", "no traffic policy shifts traffic to %s (trafficShift.failoverService), so only clients that call %s by name use it", fs.Name, fs.Hostname)
		}
		var meshes []string
		for _, m := range fs.Meshes {
			if !slices.Contains(meshes, m) {
				meshes = append(meshes, m)
				t.failoverIn(t.out[m], fs, ff, addrs[fs.Name], p)
			}
		}
	}

	for _, c := range t.clusterNames {
		b := t.out[c]
		for _, svc := range p.order[c] {
			e := p.get(c, svc)
			if e.outlier.set {
				host, name := t.names.localHost(svc)
				d := b.dr(svc, host, name)
				if e.locality.set {
					// A service that fails over by locality within its own host,
					// beside the ones shifted to failover services.
					d.lb = localityLB(e.locality.value)
					d.sources = addUnique(d.sources, e.locality.source)
				}
			}
			if e.shift.set || e.retries.set || e.timeout.set {
				// previous_priorities, the retry priority plugin that makes a retry
				// skip priority levels already tried (Istio's retryRemoteLocalities),
				// does not work through an aggregate cluster, whose load balancer
				// overrides the priority load (envoy docs:
				// intro/arch_overview/upstream/aggregate_cluster, "PriorityLoad Retry
				// Plugins"). A retry moves to the next member once outlier detection
				// has ejected the failed endpoints, so drill leaves it off here.
				t.virtualService(b, e, false)
			}
		}
	}
}

// checkHostname refuses a failover hostname that another failover service has, or
// that drill uses for a remote service: both would define one Envoy cluster twice.
func (t *translator) checkHostname(fs *scenario.FailoverService, ff string, seen map[string]string) {
	if other, dup := seen[fs.Hostname]; dup {
		line, _ := t.s.Pos(other + ".hostname")
		t.errf(ff+".hostname", "%s is already the hostname of %s (line %d); give each failover service its own", fs.Hostname, other, line)
		return
	}
	seen[fs.Hostname] = ff
	for _, c := range t.clusterNames {
		if strings.HasSuffix(fs.Hostname, ".svc."+c+".global") {
			t.errf(ff+".hostname", "%s has the form drill gives the services of cluster %s (<service>.<namespace>.svc.%s.global); pick another, e.g. %s.%s.global",
				fs.Hostname, c, c, fs.Name, fs.Namespace)
			return
		}
	}
}

// failoverIn writes the objects that define failover service fs in one cluster.
func (t *translator) failoverIn(b *clusterBuild, fs *scenario.FailoverService, ff, addr string, p *policies) {
	port := uint32(fs.Port.Number)
	se := b.se(fs.Hostname, fs.Namespace, objectName(fs.Name), func(spec *networking.ServiceEntry) {
		spec.Hosts = []string{fs.Hostname}
		// An address of its own lets clients call the hostname directly (with
		// Istio's DNS proxy) and keeps a tcp port off the 0.0.0.0 listener that
		// every service on that port would share.
		spec.Addresses = []string{addr}
		spec.Ports = []*networking.ServicePort{servicePort(fs.Port, false)}
		// MESH_INTERNAL: the backing services are in the mesh and speak Istio mTLS.
		spec.Location = networking.ServiceEntry_MESH_INTERNAL
		// No endpoints of its own: the EnvoyFilter replaces its Envoy cluster. If
		// the filter ever failed to apply, STATIC with no endpoints answers 503 "no
		// healthy upstream" (UH) instead of resolving a name that does not exist.
		spec.Resolution = networking.ServiceEntry_STATIC
	})
	se.sources = addUnique(se.sources, fs.Name)

	aggregate := envoyCluster(port, "", fs.Hostname)
	var members []string
	var unprotected []string
	for j, bs := range fs.BackingServices {
		svc := svcKey{bs.Service, bs.Namespace}
		var member string
		if bs.Cluster == b.name {
			host, name := t.names.localHost(svc)
			d := b.dr(svc, host, name)
			// The local member is this cluster's endpoints only. Where the clusters'
			// istiods discover each other's endpoints, the service's own host also
			// holds the other clusters' endpoints, and the aggregate's priority order
			// would be lost inside its first member.
			d.subsets = addUnique(d.subsets, b.name)
			d.sources = addUnique(d.sources, fs.Name)
			member = envoyCluster(port, b.name, host)
		} else {
			t.remoteService(b, svc, bs.Cluster, fs, ff, j)
			member = t.names.remoteMember(svc, bs.Cluster, port)
		}
		if e := p.get(b.name, svc); (e == nil || !e.outlier.set) && j < len(fs.BackingServices)-1 {
			unprotected = append(unprotected, svc.name+" in "+bs.Cluster)
		}
		members = append(members, member)
		b.upstreams = append(b.upstreams, Upstream{
			FailoverService: fs.Name,
			Hostname:        fs.Hostname,
			Aggregate:       aggregate,
			Priority:        j,
			Service:         bs.Service,
			Namespace:       bs.Namespace,
			Cluster:         bs.Cluster,
			EnvoyCluster:    member,
		})
	}
	if len(unprotected) > 0 {
		t.warnf(ff+".meshes", "no traffic policy gives the clients in %s outlierDetection for %s: the aggregate cluster then moves on only when a member has no endpoints left (scaled to zero), not when its endpoints fail; add a policy with outlierDetection whose destination.clusters include %s",
			b.name, strings.Join(unprotected, ", "), b.name)
	}
	ef := aggregateFilter(objectName(fs.Name), t.opts.rootNamespace, aggregate, members)
	t.stamp(ef, []string{fs.Name})
	b.efs = append(b.efs, ef)
}

// remoteService makes backing service svc of cluster remote reachable from the
// clients of cluster b under svc.remoteHost(remote): a ServiceEntry with the remote
// cluster's address and a DestinationRule with its mTLS settings.
//
// ff is the field path of the failover service, j the index of the backing
// service, for messages.
func (t *translator) remoteService(b *clusterBuild, svc svcKey, remote string, fs *scenario.FailoverService, ff string, j int) {
	host, name := t.names.remoteHost(svc, remote)
	ep, known := t.remotes[remote]
	se := b.se(host, svc.namespace, name, func(spec *networking.ServiceEntry) {
		spec.Hosts = []string{host}
		spec.Location = networking.ServiceEntry_MESH_INTERNAL
		we := &networking.WorkloadEntry{Ports: map[string]uint32{}}
		if known {
			we.Address, we.Network = ep.Address, ep.Network
			spec.Resolution = networking.ServiceEntry_DNS
			if net.ParseIP(ep.Address) != nil {
				spec.Resolution = networking.ServiceEntry_STATIC
			}
		} else {
			// Placeholder: the remote hostname itself, resolved by DNS, on the
			// east-west gateway port. It works once DNS answers the name with the
			// remote cluster's gateway; until then requests to this member fail
			// and the aggregate cluster moves past it. Never a made-up address.
			we.Address = host
			spec.Resolution = networking.ServiceEntry_DNS
		}
		spec.Endpoints = []*networking.WorkloadEntry{we}
	})
	if !known {
		se.obj.Annotations = map[string]string{AnnotationRemoteAddress: fmt.Sprintf(
			"unknown at translation: %s is resolved by DNS on port %d; give the address of %s's east-west gateway (drill translate --remote %s=ADDRESS[:PORT])",
			host, DefaultGatewayPort, remote, remote)}
		if t.once("remote|" + remote) {
			t.warnf(fmt.Sprintf("%s.backingServices[%d].cluster", ff, j), "no address is known for cluster %s: its services are reached as %s-style DNS names on port %d, which resolve only if your DNS serves them; pass --remote %s=ADDRESS[:PORT] with the address of %s's east-west gateway",
				remote, host, DefaultGatewayPort, remote, remote)
		}
	}
	se.sources = addUnique(se.sources, fs.Name)

	number := uint32(fs.Port.Number)
	i := slices.IndexFunc(se.obj.Spec.Ports, func(p *networking.ServicePort) bool { return p.Number == number })
	switch {
	case i < 0:
		sp := servicePort(fs.Port, true)
		se.obj.Spec.Ports = append(se.obj.Spec.Ports, sp)
		gw := uint32(DefaultGatewayPort)
		if known {
			gw = ep.port()
		}
		// Every service port goes to the one gateway port: the gateway tells the
		// services and their ports apart by SNI.
		se.obj.Spec.Endpoints[0].Ports[sp.Name] = gw
		d := b.dr(svc, host, name)
		d.remote = append(d.remote, sp)
		d.sources = addUnique(d.sources, fs.Name)
	case se.obj.Spec.Ports[i].Protocol != istioProtocol(fs.Port.Protocol):
		t.errf(ff+".port.protocol",
			"%s on port %d is used with protocol %s by another failover service; one port has one protocol",
			svc, number, strings.ToLower(se.obj.Spec.Ports[i].Protocol))
	default:
		b.dr(svc, host, name).sources = addUnique(b.dr(svc, host, name).sources, fs.Name)
	}
}

// aggregateFilter is the EnvoyFilter that replaces the Envoy cluster of a failover
// hostname with an aggregate cluster of its members.
//
// Istio applies only MERGE, ADD and REMOVE to clusters; REPLACE is valid for
// HTTP_FILTER and NETWORK_FILTER alone (istio.io/api networking/v1alpha3/
// envoy_filter.proto, Patch.Operation; istio.io/istio pilot/pkg/networking/core/
// envoyfilter/cluster_patch.go). MERGE would keep what Istio generated for the
// hostname (EDS config, transport sockets) under an aggregate cluster type, so the
// cluster is removed and added anew, as Service Mesh Hub's failover translator did.
// ADD ignores the cluster match; it is kept to say what the patch is for.
func aggregateFilter(name, namespace, aggregate string, members []string) *networkingv1alpha3.EnvoyFilter {
	clusters := make([]*structpb.Value, len(members))
	for i, m := range members {
		clusters[i] = structpb.NewStringValue(m)
	}
	object := func(fields map[string]*structpb.Value) *structpb.Value {
		return structpb.NewStructValue(&structpb.Struct{Fields: fields})
	}
	// envoy api v3 config/cluster/v3/cluster.proto with the aggregate cluster
	// extension (envoy docs: intro/arch_overview/upstream/aggregate_cluster): the
	// members in priority order; the load balancer must be CLUSTER_PROVIDED.
	value := &structpb.Struct{Fields: map[string]*structpb.Value{
		"name": structpb.NewStringValue(aggregate),
		// Istio gives the clusters it generates an alt_stat_name ending in ';' so
		// that its stats tag extractor takes the whole name as cluster_name (Istio
		// 1.23 and later, istio/istio PR 51861). A cluster an EnvoyFilter adds gets
		// none, and Envoy's router charges response codes to the route's cluster —
		// this aggregate, not its members — so without it the failover hostname's
		// 503s would carry no cluster_name and no dashboard or drill could read them.
		"alt_stat_name": structpb.NewStringValue(aggregate + ";"),
		// Unused by an aggregate cluster (its members connect); Istio's default
		// connect timeout (meshConfig.connectTimeout, 10s) for consistency.
		"connect_timeout": structpb.NewStringValue("10s"),
		"lb_policy":       structpb.NewStringValue("CLUSTER_PROVIDED"),
		"cluster_type": object(map[string]*structpb.Value{
			"name": structpb.NewStringValue("envoy.clusters.aggregate"),
			"typed_config": object(map[string]*structpb.Value{
				"@type":    structpb.NewStringValue("type.googleapis.com/envoy.extensions.clusters.aggregate.v3.ClusterConfig"),
				"clusters": structpb.NewListValue(&structpb.ListValue{Values: clusters}),
			}),
		}),
	}}
	match := func() *networking.EnvoyFilter_EnvoyConfigObjectMatch {
		return &networking.EnvoyFilter_EnvoyConfigObjectMatch{
			Context: networking.EnvoyFilter_SIDECAR_OUTBOUND,
			ObjectTypes: &networking.EnvoyFilter_EnvoyConfigObjectMatch_Cluster{
				Cluster: &networking.EnvoyFilter_ClusterMatch{Name: aggregate},
			},
		}
	}
	ef := &networkingv1alpha3.EnvoyFilter{TypeMeta: typeEnvoyFilter}
	ef.Name, ef.Namespace = name, namespace
	ef.Spec.ConfigPatches = []*networking.EnvoyFilter_EnvoyConfigObjectPatch{
		{
			ApplyTo: networking.EnvoyFilter_CLUSTER,
			Match:   match(),
			Patch:   &networking.EnvoyFilter_Patch{Operation: networking.EnvoyFilter_Patch_REMOVE},
		},
		{
			ApplyTo: networking.EnvoyFilter_CLUSTER,
			Match:   match(),
			Patch:   &networking.EnvoyFilter_Patch{Operation: networking.EnvoyFilter_Patch_ADD, Value: value},
		},
	}
	return ef
}

// failoverAddresses gives each failover service a stable address of its own in
// 240.241.0.0/16: class E, never routed, and apart from 240.240.0.0/16, where
// Istio's DNS proxy allocates addresses automatically (istio.io docs:
// ops/configuration/traffic-management/dns-proxy). The address is a hash of the
// namespace and name; collisions move to the next free address in scenario order.
func failoverAddresses(fss []scenario.FailoverService) map[string]string {
	out := make(map[string]string, len(fss))
	used := map[uint16]bool{0: true}
	for _, fs := range fss {
		h := fnv.New32a()
		h.Write([]byte(fs.Namespace + "/" + fs.Name))
		n := uint16(h.Sum32())
		for used[n] {
			n++
		}
		used[n] = true
		out[fs.Name] = fmt.Sprintf("240.241.%d.%d", n>>8, n&0xff)
	}
	return out
}
