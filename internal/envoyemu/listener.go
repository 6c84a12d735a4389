package envoyemu

import (
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"strings"

	udpatype "github.com/cncf/xds/go/udpa/type/v1"
	xdstype "github.com/cncf/xds/go/xds/type/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	tcpproxyv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/tcp_proxy/v3"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/structpb"
)

// listenerInfo is a compiled Listener: its address and filter chains, of
// which the proxy uses the HTTP connection manager (routes by RDS or
// inline) and the TCP proxy (a cluster, or the SNI as cluster for
// AUTO_PASSTHROUGH gateways).
type listenerInfo struct {
	name   string
	addr   netip.Addr
	port   uint32
	bind   bool
	chains []*chainInfo
	// fallback is the default_filter_chain.
	fallback *chainInfo
}

type chainInfo struct {
	name           string
	destPort       uint32
	prefixes       []netip.Prefix
	serverNames    []string
	transport      string
	appProtocols   []string
	http           bool
	rds            string
	inline         *routeTable
	tcpCluster     string
	sniCluster     bool           // envoy.filters.network.sni_cluster: the SNI names the cluster
	clusterRewrite *rewrite       // istio.filters.network.tcp_cluster_rewrite
	tls            *downstreamTLS // the chain's TLS transport socket; nil: plaintext
	fault          *faultFilter   // the HTTP connection manager's fault filter, if any
}

type rewrite struct {
	pattern     *regexp.Regexp
	replacement string
}

const (
	typeHCM      = "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"
	typeTCPProxy = "type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy"
)

func compileListener(l *listenerv3.Listener) (*listenerInfo, error) {
	li := &listenerInfo{name: l.GetName(), bind: l.GetBindToPort() == nil || l.GetBindToPort().GetValue()}
	if sa := l.GetAddress().GetSocketAddress(); sa != nil {
		a, err := netip.ParseAddr(sa.GetAddress())
		if err != nil {
			return nil, fmt.Errorf("listener %q: address %q: %w", l.GetName(), sa.GetAddress(), err)
		}
		li.addr, li.port = a, sa.GetPortValue()
	}
	for i, fc := range l.GetFilterChains() {
		ci, err := compileChain(fc)
		if err != nil {
			return nil, fmt.Errorf("listener %q: filter chain %d (%q): %w", l.GetName(), i, fc.GetName(), err)
		}
		li.chains = append(li.chains, ci)
	}
	if fc := l.GetDefaultFilterChain(); fc != nil {
		ci, err := compileChain(fc)
		if err != nil {
			return nil, fmt.Errorf("listener %q: default filter chain: %w", l.GetName(), err)
		}
		li.fallback = ci
	}
	return li, nil
}

func compileChain(fc *listenerv3.FilterChain) (*chainInfo, error) {
	ci := &chainInfo{name: fc.GetName()}
	if m := fc.GetFilterChainMatch(); m != nil {
		ci.destPort = m.GetDestinationPort().GetValue()
		for _, r := range m.GetPrefixRanges() {
			a, err := netip.ParseAddr(r.GetAddressPrefix())
			if err != nil {
				return nil, fmt.Errorf("prefix range %q: %w", r.GetAddressPrefix(), err)
			}
			bits := int(a.BitLen())
			if r.GetPrefixLen() != nil {
				bits = int(r.GetPrefixLen().GetValue())
			}
			p, err := a.Prefix(bits)
			if err != nil {
				return nil, fmt.Errorf("prefix range %s/%d: %w", a, bits, err)
			}
			ci.prefixes = append(ci.prefixes, p)
		}
		ci.serverNames = m.GetServerNames()
		ci.transport = m.GetTransportProtocol()
		ci.appProtocols = m.GetApplicationProtocols()
	}
	t, err := compileDownstreamTLS(fc.GetTransportSocket())
	if err != nil {
		return nil, err
	}
	ci.tls = t
	for _, f := range fc.GetFilters() {
		tc := f.GetTypedConfig()
		switch {
		case tc.GetTypeUrl() == typeHCM:
			hcm := &hcmv3.HttpConnectionManager{}
			if err := tc.UnmarshalTo(hcm); err != nil {
				return nil, fmt.Errorf("filter %q: %w", f.GetName(), err)
			}
			ci.http = true
			ff, err := compileFault(hcm)
			if err != nil {
				return nil, fmt.Errorf("filter %q: %w", f.GetName(), err)
			}
			ci.fault = ff
			switch rs := hcm.GetRouteSpecifier().(type) {
			case *hcmv3.HttpConnectionManager_Rds:
				ci.rds = rs.Rds.GetRouteConfigName()
			case *hcmv3.HttpConnectionManager_RouteConfig:
				t, err := compileRouteTable(rs.RouteConfig)
				if err != nil {
					return nil, fmt.Errorf("filter %q: %w", f.GetName(), err)
				}
				ci.inline = t
			default:
				return nil, fmt.Errorf("filter %q: HTTP connection manager without routes (%T)", f.GetName(), rs)
			}
		case tc.GetTypeUrl() == typeTCPProxy:
			tp := &tcpproxyv3.TcpProxy{}
			if err := tc.UnmarshalTo(tp); err != nil {
				return nil, fmt.Errorf("filter %q: %w", f.GetName(), err)
			}
			switch cs := tp.GetClusterSpecifier().(type) {
			case *tcpproxyv3.TcpProxy_Cluster:
				ci.tcpCluster = cs.Cluster
			case *tcpproxyv3.TcpProxy_WeightedClusters:
				if ws := cs.WeightedClusters.GetClusters(); len(ws) > 0 {
					ci.tcpCluster = ws[0].GetName()
				}
			}
		case f.GetName() == "envoy.filters.network.sni_cluster":
			ci.sniCluster = true
		case f.GetName() == "istio.filters.network.tcp_cluster_rewrite" || strings.HasSuffix(f.GetName(), "tcp_cluster_rewrite"):
			rw, err := clusterRewrite(tc)
			if err != nil {
				return nil, fmt.Errorf("filter %q: %w", f.GetName(), err)
			}
			ci.clusterRewrite = rw
		}
	}
	return ci, nil
}

// clusterRewrite reads Istio's tcp_cluster_rewrite config, sent as a
// TypedStruct: {cluster_pattern, cluster_replacement}.
func clusterRewrite(tc *anypb.Any) (*rewrite, error) {
	var v *structpb.Struct
	switch tc.GetTypeUrl() {
	case "type.googleapis.com/xds.type.v3.TypedStruct":
		ts := &xdstype.TypedStruct{}
		if err := tc.UnmarshalTo(ts); err != nil {
			return nil, err
		}
		v = ts.GetValue()
	case "type.googleapis.com/udpa.type.v1.TypedStruct":
		ts := &udpatype.TypedStruct{}
		if err := tc.UnmarshalTo(ts); err != nil {
			return nil, err
		}
		v = ts.GetValue()
	default:
		return nil, nil
	}
	pat := v.GetFields()["cluster_pattern"].GetStringValue()
	if pat == "" {
		return nil, nil
	}
	re, err := regexp.Compile(pat)
	if err != nil {
		return nil, fmt.Errorf("cluster_pattern %q: %w", pat, err)
	}
	return &rewrite{pattern: re, replacement: v.GetFields()["cluster_replacement"].GetStringValue()}, nil
}

// chooseHTTPChain picks the filter chain for a plaintext HTTP connection to
// dst:port, as Envoy's filter chain match would for what iptables
// redirected: destination port, then the most specific destination prefix,
// then the plain-HTTP chain (transport raw_buffer, no TLS server names).
func (li *listenerInfo) chooseHTTPChain(dst netip.Addr, port uint32) *chainInfo {
	var best *chainInfo
	bestBits := -1
	for _, c := range li.chains {
		if !c.http || len(c.serverNames) > 0 || c.transport == "tls" {
			continue
		}
		if c.destPort != 0 && c.destPort != port {
			continue
		}
		bits := 0
		if len(c.prefixes) > 0 {
			bits = -1
			for _, p := range c.prefixes {
				if dst.IsValid() && p.Contains(dst) && p.Bits() > bits {
					bits = p.Bits()
				}
			}
			if bits < 0 {
				continue
			}
		}
		if c.destPort != 0 {
			bits += 1000 // a port match is more specific than any prefix
		}
		if bits > bestBits {
			best, bestBits = c, bits
		}
	}
	if best == nil && li.fallback != nil && li.fallback.http {
		return li.fallback
	}
	return best
}

// chooseSNIChain picks the filter chain whose server names match sni
// (exact first, then the longest "*.suffix"), as a TLS passthrough gateway
// does.
func (li *listenerInfo) chooseSNIChain(sni string) *chainInfo {
	var wild *chainInfo
	wildLen := -1
	for _, c := range li.chains {
		for _, n := range c.serverNames {
			if strings.EqualFold(n, sni) {
				return c
			}
			if strings.HasPrefix(n, "*.") && strings.HasSuffix(strings.ToLower(sni), strings.ToLower(n[1:])) && len(n) > wildLen {
				wild, wildLen = c, len(n)
			}
		}
	}
	if wild != nil {
		return wild
	}
	// A chain without server names that is not plain HTTP takes any SNI.
	for _, c := range li.chains {
		if len(c.serverNames) == 0 && !c.http && (c.tcpCluster != "" || c.sniCluster) {
			return c
		}
	}
	return nil
}

// tcpTarget is the cluster a passthrough chain sends a connection with this
// SNI to.
func (c *chainInfo) tcpTarget(sni string) string {
	name := c.tcpCluster
	if c.sniCluster && sni != "" {
		name = sni
	}
	if c.clusterRewrite != nil {
		name = c.clusterRewrite.pattern.ReplaceAllString(name, c.clusterRewrite.replacement)
	}
	return name
}

// routeNames are the RDS names a set of listeners needs, sorted.
func routeNames(ls map[string]*listenerInfo) []string {
	seen := map[string]bool{}
	for _, l := range ls {
		for _, c := range append(slices.Clone(l.chains), l.fallback) {
			if c != nil && c.rds != "" {
				seen[c.rds] = true
			}
		}
	}
	out := make([]string, 0, len(seen))
	for n := range seen {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}
