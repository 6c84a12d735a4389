package envoyemu

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/structpb"
)

// Bootstrap is what the emulated proxy takes from an Envoy v3 bootstrap
// (envoy docs: api-v3/config/bootstrap/v3/bootstrap.proto), the file
// pilot-agent renders from Istio's envoy_bootstrap.json template and hands
// Envoy with -c: who the proxy is, where its admin endpoint listens, how
// it reaches ADS and SDS (pilot-agent's unix sockets), and the static
// listeners and clusters Istio puts there (the merged Prometheus listener
// on 15090, the readiness listener on 15021 and their clusters).
type Bootstrap struct {
	// Path is the file the bootstrap was read from.
	Path string
	Node *corev3.Node
	// Admin is the admin endpoint's address.
	Admin netip.AddrPort
	// XDS and SDS are gRPC targets (unix:///abs/path or host:port) of the
	// ADS cluster and of the sds-grpc cluster ("" when there is none).
	XDS string
	SDS string
	// Listeners and Clusters are the static resources the emulation runs;
	// the clusters that carry ADS and SDS are not among them.
	Listeners []*listenerv3.Listener
	Clusters  []*clusterv3.Cluster
}

// sdsClusterName is the cluster Istio's bootstrap names for SDS.
const sdsClusterName = "sds-grpc"

// anyResolver resolves the typed configs of a bootstrap: the types drill
// links in as themselves, any other (Istio's and Envoy's extensions drill
// does not model) as an empty message whose fields are dropped, so that an
// extension the emulation ignores cannot make the whole file unreadable.
type anyResolver struct{}

func (anyResolver) FindMessageByName(name protoreflect.FullName) (protoreflect.MessageType, error) {
	return protoregistry.GlobalTypes.FindMessageByName(name)
}

func (anyResolver) FindMessageByURL(url string) (protoreflect.MessageType, error) {
	if mt, err := protoregistry.GlobalTypes.FindMessageByURL(url); err == nil {
		return mt, nil
	}
	return (&emptypb.Empty{}).ProtoReflect().Type(), nil
}

func (anyResolver) FindExtensionByName(field protoreflect.FullName) (protoreflect.ExtensionType, error) {
	return protoregistry.GlobalTypes.FindExtensionByName(field)
}

func (anyResolver) FindExtensionByNumber(message protoreflect.FullName, field protoreflect.FieldNumber) (protoreflect.ExtensionType, error) {
	return protoregistry.GlobalTypes.FindExtensionByNumber(message, field)
}

// LoadBootstrap reads a bootstrap file. Relative unix socket paths in it
// (pilot-agent writes ./etc/istio/proxy/XDS) are taken relative to the
// working directory, as Envoy takes them.
func LoadBootstrap(path string) (*Bootstrap, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("bootstrap: %w", err)
	}
	wd, err := os.Getwd()
	if err != nil {
		return nil, fmt.Errorf("bootstrap %s: %w", path, err)
	}
	b, err := ParseBootstrap(data, wd)
	if err != nil {
		return nil, fmt.Errorf("bootstrap %s: %w", path, err)
	}
	b.Path = path
	return b, nil
}

// ParseBootstrap reads a bootstrap in JSON (or YAML converted to JSON);
// dir resolves relative socket paths.
func ParseBootstrap(data []byte, dir string) (*Bootstrap, error) {
	var raw bootstrapv3.Bootstrap
	opts := protojson.UnmarshalOptions{DiscardUnknown: true, Resolver: anyResolver{}}
	if err := opts.Unmarshal(data, &raw); err != nil {
		return nil, fmt.Errorf("not an Envoy v3 bootstrap: %w", err)
	}
	b := &Bootstrap{Node: raw.GetNode()}
	if b.Node.GetId() == "" {
		return nil, errors.New("node.id is empty; istiod identifies a proxy by it")
	}
	if sa := raw.GetAdmin().GetAddress().GetSocketAddress(); sa != nil {
		ap, err := socketAddrPort(sa)
		if err != nil {
			return nil, fmt.Errorf("admin.address: %w", err)
		}
		b.Admin = ap
	} else {
		return nil, errors.New("admin.address is not a socket address; the emulation serves its admin endpoint on TCP only")
	}
	statics := map[string]*clusterv3.Cluster{}
	for _, c := range raw.GetStaticResources().GetClusters() {
		statics[c.GetName()] = c
	}
	ads := raw.GetDynamicResources().GetAdsConfig()
	if ads == nil {
		return nil, errors.New("dynamic_resources.ads_config is missing; the emulation takes its configuration over ADS only")
	}
	var adsCluster string
	for _, g := range ads.GetGrpcServices() {
		if eg := g.GetEnvoyGrpc(); eg != nil {
			adsCluster = eg.GetClusterName()
			break
		}
		if gg := g.GetGoogleGrpc(); gg != nil {
			b.XDS = gg.GetTargetUri()
			break
		}
	}
	if adsCluster != "" {
		target, err := grpcTarget(statics[adsCluster], dir)
		if err != nil {
			return nil, fmt.Errorf("dynamic_resources.ads_config: cluster %q: %w", adsCluster, err)
		}
		b.XDS = target
	}
	if b.XDS == "" {
		return nil, errors.New("dynamic_resources.ads_config names no gRPC service")
	}
	if c, ok := statics[sdsClusterName]; ok {
		target, err := grpcTarget(c, dir)
		if err != nil {
			return nil, fmt.Errorf("static_resources cluster %q: %w", sdsClusterName, err)
		}
		b.SDS = target
	}
	for _, c := range raw.GetStaticResources().GetClusters() {
		if c.GetName() == adsCluster || c.GetName() == sdsClusterName || hasPipe(c) {
			continue
		}
		b.Clusters = append(b.Clusters, c)
	}
	b.Listeners = raw.GetStaticResources().GetListeners()
	return b, nil
}

func socketAddrPort(sa *corev3.SocketAddress) (netip.AddrPort, error) {
	a, err := netip.ParseAddr(sa.GetAddress())
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("%q is not an IP address", sa.GetAddress())
	}
	if sa.GetPortValue() == 0 || sa.GetPortValue() > 65535 {
		return netip.AddrPort{}, fmt.Errorf("port %d out of range", sa.GetPortValue())
	}
	return netip.AddrPortFrom(a, uint16(sa.GetPortValue())), nil
}

// grpcTarget is the gRPC target of a static cluster's one endpoint: a unix
// socket (Envoy's pipe address) or an IP address and port.
func grpcTarget(c *clusterv3.Cluster, dir string) (string, error) {
	if c == nil {
		return "", errors.New("no such static cluster")
	}
	for _, lle := range c.GetLoadAssignment().GetEndpoints() {
		for _, lbe := range lle.GetLbEndpoints() {
			addr := lbe.GetEndpoint().GetAddress()
			if pipe := addr.GetPipe(); pipe != nil {
				p := pipe.GetPath()
				if strings.HasPrefix(p, "@") {
					return "unix-abstract:" + p[1:], nil
				}
				if !filepath.IsAbs(p) {
					p = filepath.Join(dir, p)
				}
				return "unix://" + p, nil
			}
			if sa := addr.GetSocketAddress(); sa != nil {
				return sa.GetAddress() + ":" + strconv.FormatUint(uint64(sa.GetPortValue()), 10), nil
			}
		}
	}
	return "", errors.New("has no endpoint address")
}

func hasPipe(c *clusterv3.Cluster) bool {
	for _, lle := range c.GetLoadAssignment().GetEndpoints() {
		for _, lbe := range lle.GetLbEndpoints() {
			if lbe.GetEndpoint().GetAddress().GetPipe() != nil {
				return true
			}
		}
	}
	return false
}

// Identity is who the bootstrap's node says the proxy is: the node id
// (TYPE~IP~POD.NAMESPACE~NAMESPACE.svc.cluster.local) and the metadata
// pilot-agent fills from the pod (istio pkg/model/proxy.go NodeMetadata).
func (b *Bootstrap) Identity() (Identity, error) {
	parts := strings.Split(b.Node.GetId(), "~")
	if len(parts) != 4 {
		return Identity{}, fmt.Errorf("node.id %q is not Istio's TYPE~IP~POD.NAMESPACE~DOMAIN", b.Node.GetId())
	}
	id := Identity{Kind: Kind(parts[0])}
	ip, err := netip.ParseAddr(parts[1])
	if err != nil {
		return Identity{}, fmt.Errorf("node.id %q: %q is not an IP address", b.Node.GetId(), parts[1])
	}
	id.IP = ip
	pod, ns, _ := strings.Cut(parts[2], ".")
	id.Pod, id.Namespace = pod, ns
	md := b.Node.GetMetadata().GetFields()
	str := func(k string) string { return md[k].GetStringValue() }
	if v := str("NAME"); v != "" {
		id.Pod = v
	}
	if v := str("NAMESPACE"); v != "" {
		id.Namespace = v
	}
	id.Labels = structStrings(md["LABELS"].GetStructValue())
	id.Annotations = structStrings(md["ANNOTATIONS"].GetStructValue())
	id.WorkloadName = str("WORKLOAD_NAME")
	id.ServiceAccount = str("SERVICE_ACCOUNT")
	id.Cluster = str("CLUSTER_ID")
	id.Network = str("NETWORK")
	id.MeshID = str("MESH_ID")
	id.Node = str("NODE_NAME")
	if pc := md["PROXY_CONFIG"].GetStructValue().GetFields(); pc != nil {
		if id.MeshID == "" {
			id.MeshID = pc["meshId"].GetStringValue()
		}
	}
	if err := id.validate(); err != nil {
		return Identity{}, fmt.Errorf("node %q: %w", b.Node.GetId(), err)
	}
	return id, nil
}

func structStrings(s *structpb.Struct) map[string]string {
	if s == nil {
		return nil
	}
	out := make(map[string]string, len(s.GetFields()))
	for k, v := range s.GetFields() {
		out[k] = v.GetStringValue()
	}
	return out
}
