package stats

import (
	"errors"
	"fmt"
	"net"
	"sort"
	"strconv"
	"strings"

	adminv3 "github.com/envoyproxy/go-control-plane/envoy/admin/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/meshdrill/drill/pkg/event"
)

// ClustersPath is Envoy's admin page of every cluster's hosts as JSON: the
// envoy.admin.v3.Clusters message (Envoy docs, operations/admin, /clusters with
// ?format=json), with each host's address, priority, locality, weight and
// health flags.
const ClustersPath = "/clusters?format=json"

// Host is one upstream host of an Envoy cluster as /clusters reports it.
type Host struct {
	Priority int
	Locality string // region/zone/subzone, as far as set
	Weight   uint32
	// Ejected is health_status.failed_outlier_check: outlier detection has
	// ejected the host.
	Ejected bool
	// Unhealthy is any other reason the host takes no traffic: an EDS health
	// status other than HEALTHY or UNKNOWN (Envoy's docs: UNKNOWN counts as
	// healthy), or a failed active health check.
	Unhealthy bool
}

// Available says whether the host can take traffic.
func (h Host) Available() bool { return !h.Ejected && !h.Unhealthy }

// Hosts is one /clusters page: per Envoy cluster, its hosts by address
// ("ip:port").
type Hosts map[string]map[string]Host

// internalCluster says whether an Envoy cluster is one of Istio's own
// (inbound, the xDS and SDS connections, the stats and agent listeners'
// backends, pass-through and black hole): their hosts say nothing about
// failover, and drill leaves them out.
func internalCluster(name string) bool {
	switch name {
	case "BlackHoleCluster", "PassthroughCluster", "InboundPassthroughCluster", "InboundPassthroughClusterIpv4",
		"InboundPassthroughClusterIpv6", "xds-grpc", "sds-grpc", "prometheus_stats", "agent", "zipkin", "envoy_accesslog_service":
		return true
	}
	return strings.HasPrefix(name, "inbound|")
}

// ParseClusters reads Envoy's /clusters?format=json. Envoy writes the proto's
// field names (cluster_statuses, host_statuses); the JSON names protojson
// writes (clusterStatuses) are read too, and unknown fields are ignored, so
// that newer Envoys' pages still read. Istio's internal clusters are left
// out.
func ParseClusters(body []byte) (Hosts, error) {
	var msg adminv3.Clusters
	if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(body, &msg); err != nil {
		return nil, fmt.Errorf("parse Envoy /clusters JSON: %w; is the URL an Envoy %s endpoint?", err, ClustersPath)
	}
	if len(body) > 0 && len(msg.GetClusterStatuses()) == 0 && !strings.Contains(string(body), "cluster_statuses") && !strings.Contains(string(body), "clusterStatuses") {
		return nil, errors.New(`parse Envoy /clusters JSON: no "cluster_statuses"; is the URL an Envoy /clusters?format=json endpoint?`)
	}
	out := Hosts{}
	for _, cs := range msg.GetClusterStatuses() {
		if internalCluster(cs.GetName()) {
			continue
		}
		hosts := map[string]Host{}
		for _, hs := range cs.GetHostStatuses() {
			addr := hostAddress(hs.GetAddress())
			if addr == "" {
				continue
			}
			hh := hs.GetHealthStatus()
			eds := hh.GetEdsHealthStatus()
			hosts[addr] = Host{
				Priority: int(hs.GetPriority()),
				Locality: localityOf(hs.GetLocality()),
				Weight:   hs.GetWeight(),
				Ejected:  hh.GetFailedOutlierCheck(),
				Unhealthy: hh.GetFailedActiveHealthCheck() || hh.GetFailedActiveDegradedCheck() || hh.GetPendingActiveHc() ||
					(eds != corev3.HealthStatus_HEALTHY && eds != corev3.HealthStatus_UNKNOWN),
			}
		}
		out[cs.GetName()] = hosts
	}
	return out, nil
}

func hostAddress(a *corev3.Address) string {
	if sa := a.GetSocketAddress(); sa != nil {
		return net.JoinHostPort(sa.GetAddress(), strconv.FormatUint(uint64(sa.GetPortValue()), 10))
	}
	if p := a.GetPipe(); p != nil {
		return "unix:" + p.GetPath()
	}
	return ""
}

func localityOf(l *corev3.Locality) string {
	parts := []string{l.GetRegion(), l.GetZone(), l.GetSubZone()}
	for len(parts) > 0 && parts[len(parts)-1] == "" {
		parts = parts[:len(parts)-1]
	}
	return strings.Join(parts, "/")
}

// ServingPriority is the highest priority level (lowest number) of an Envoy
// cluster with an available host, or -1 when no host is available. Envoy sends
// a level's traffic on to the next only as the level's healthy share falls
// below 1/1.4 (the overprovisioning factor), so this is where the cluster's
// traffic goes first, not the whole split.
func ServingPriority(hosts map[string]Host) int {
	best := -1
	for _, h := range hosts {
		if h.Available() && (best < 0 || h.Priority < best) {
			best = h.Priority
		}
	}
	return best
}

// HostChanges lists what changed from prev to cur, as events of workload's
// Envoy: each host that was not ejected and now is (HostEjected), each that
// was and no longer is while still there (HostReturned), and each Envoy
// cluster whose serving priority changed (PriorityChanged). A host that
// appears or disappears (EDS) is neither ejected nor returned. Ordered by
// Envoy cluster, then host.
func HostChanges(prev, cur Hosts) []HostEvent {
	var out []HostEvent
	names := make([]string, 0, len(cur))
	for n := range cur {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		now, before := cur[name], prev[name]
		addrs := make([]string, 0, len(now))
		for a := range now {
			addrs = append(addrs, a)
		}
		sort.Strings(addrs)
		for _, a := range addrs {
			h := now[a]
			old, ok := before[a]
			if !ok {
				continue
			}
			switch {
			case h.Ejected && !old.Ejected:
				out = append(out, HostEvent{Type: event.HostEjected, Change: event.HostChange{EnvoyCluster: name, Host: a, Priority: h.Priority, Locality: h.Locality}})
			case !h.Ejected && old.Ejected:
				out = append(out, HostEvent{Type: event.HostReturned, Change: event.HostChange{EnvoyCluster: name, Host: a, Priority: h.Priority, Locality: h.Locality}})
			}
		}
		if _, known := prev[name]; !known {
			continue
		}
		if from, to := ServingPriority(before), ServingPriority(now); from != to {
			out = append(out, HostEvent{Type: event.PriorityChanged, Change: event.HostChange{EnvoyCluster: name, From: from, To: to, Priority: to}})
		}
	}
	return out
}

// HostEvent is one change HostChanges found.
type HostEvent struct {
	Type   event.Type
	Change event.HostChange
}
