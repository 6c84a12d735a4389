package translate

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"strings"
)

// Labels and annotations drill puts on every object it produces. The engine finds
// what it applied for a scenario with Selector and removes exactly that.
const (
	// LabelManagedBy is the Kubernetes recommended label for the tool that manages
	// an object (kubernetes.io docs: concepts/overview/working-with-objects/common-labels).
	LabelManagedBy = "app.kubernetes.io/managed-by"
	// ManagedBy is LabelManagedBy's value on drill's objects.
	ManagedBy = "drill"
	// LabelScenario names the scenario (metadata.name) an object was translated from.
	LabelScenario = "drill.meshdrill.io/scenario"
	// AnnotationPolicies lists, comma-separated in scenario order, the traffic
	// policies and failover services an object was made from. One object can come
	// from several (one DestinationRule per host carries every policy for that
	// host), which is why this is an annotation and not a label.
	AnnotationPolicies = "drill.meshdrill.io/policies"
	// AnnotationRemoteAddress is set on a ServiceEntry for a remote cluster whose
	// address was not known at translation time; its value says what to do.
	AnnotationRemoteAddress = "drill.meshdrill.io/remote-address"
)

// Selector is the label selector matching every object drill applies for the
// named scenario.
func Selector(scenarioName string) string {
	return LabelManagedBy + "=" + ManagedBy + "," + LabelScenario + "=" + scenarioName
}

// clusterDomain is the Kubernetes cluster domain drill assumes in every cluster:
// the Kubernetes default, which Istio assumes too (Helm value
// global.proxy.clusterDomain).
const clusterDomain = "cluster.local"

// svcKey names a Kubernetes service independently of the cluster it runs in:
// Istio's namespace sameness (istio.io docs: ops/deployment/deployment-models).
type svcKey struct{ name, namespace string }

func (k svcKey) String() string { return k.name + "." + k.namespace }

// localHost is the service's hostname in the cluster it runs in.
func (k svcKey) localHost() string {
	return k.name + "." + k.namespace + ".svc." + clusterDomain
}

// remoteHost is the hostname under which drill makes the service as run in
// cluster reachable from the other clusters: Service Mesh Hub's
// <service>.<namespace>.svc.<cluster>.global.
func (k svcKey) remoteHost(cluster string) string {
	return k.name + "." + k.namespace + ".svc." + cluster + ".global"
}

// envoyCluster is the name Istio gives the outbound Envoy cluster of a host, port
// and subset: outbound|PORT|SUBSET|HOST (istio.io/istio pilot/pkg/model
// BuildSubsetKey), the names Envoy's stats carry as envoy_cluster_name.
func envoyCluster(port uint32, subset, host string) string {
	return "outbound|" + strconv.FormatUint(uint64(port), 10) + "|" + subset + "|" + host
}

// sni is the TLS server name Istio's sidecars present for a host, port and subset
// under ISTIO_MUTUAL (outbound_.PORT_.SUBSET_.HOST, istio.io/istio pilot/pkg/model
// BuildDNSSrvSubsetKey). An east-west gateway in AUTO_PASSTHROUGH mode routes on
// it, so a client reaching a remote service through that gateway must present the
// name of the service as the remote cluster knows it.
func sni(port uint32, subset, host string) string {
	return "outbound_." + strconv.FormatUint(uint64(port), 10) + "_." + subset + "_." + host
}

// names memoizes the strings derived from services and clusters. Strings are
// immutable, so every object can share them; a large policy derives the same ones
// thousands of times.
type names struct {
	local  map[svcKey][2]string    // local host, object name
	remote map[svcRemote][2]string // remote host, object name
	member map[memberKey]string    // Envoy cluster of a remote member
}

type svcRemote struct {
	svc     svcKey
	cluster string
}

type memberKey struct {
	svcRemote
	port uint32
}

// localHost returns the service's local hostname and the name of drill's objects
// for it.
func (n *names) localHost(svc svcKey) (host, name string) {
	if n.local == nil {
		n.local = map[svcKey][2]string{}
	}
	v, ok := n.local[svc]
	if !ok {
		v = [2]string{svc.localHost(), objectName(svc.name)}
		n.local[svc] = v
	}
	return v[0], v[1]
}

// remoteHost returns the hostname of the service as run in cluster and the name of
// drill's objects for it.
func (n *names) remoteHost(svc svcKey, cluster string) (host, name string) {
	if n.remote == nil {
		n.remote = map[svcRemote][2]string{}
	}
	k := svcRemote{svc, cluster}
	v, ok := n.remote[k]
	if !ok {
		v = [2]string{svc.remoteHost(cluster), objectName(svc.name, cluster)}
		n.remote[k] = v
	}
	return v[0], v[1]
}

// remoteMember returns the Envoy cluster of the service as run in cluster.
func (n *names) remoteMember(svc svcKey, cluster string, port uint32) string {
	if n.member == nil {
		n.member = map[memberKey]string{}
	}
	k := memberKey{svcRemote{svc, cluster}, port}
	v, ok := n.member[k]
	if !ok {
		host, _ := n.remoteHost(svc, cluster)
		v = envoyCluster(port, "", host)
		n.member[k] = v
	}
	return v
}

// maxNameLen keeps object names within a DNS label, the strictest rule any tool
// applies to the names of Istio objects.
const maxNameLen = 63

// objectName joins parts into a stable, valid object name, prefixed with drill- so
// that drill's objects never take the name of a user's (Bookinfo's samples name
// theirs after the service). Names longer than a DNS label are cut and suffixed
// with a hash of the full name, so they stay unique and the same run after run.
func objectName(parts ...string) string {
	name := "drill-" + strings.Join(parts, "-")
	if len(name) <= maxNameLen {
		return name
	}
	sum := sha256.Sum256([]byte(name))
	suffix := hex.EncodeToString(sum[:])[:10]
	head := strings.TrimRight(name[:maxNameLen-len(suffix)-1], "-.")
	return head + "-" + suffix
}
