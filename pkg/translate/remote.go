package translate

import (
	"fmt"
	"net"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
)

// DefaultGatewayPort is the port of Istio's east-west gateway for cross-network
// mTLS traffic: the Gateway "cross-network-gateway" listens on 15443 in
// AUTO_PASSTHROUGH mode and routes by SNI (istio.io docs:
// setup/install/multicluster/multi-primary_multi-network, samples/multicluster/
// expose-services.yaml).
const DefaultGatewayPort = 15443

// Endpoint is where the clients of other clusters reach a cluster's services: its
// east-west gateway (kind, existing clusters) or, on a flat network, a workload or
// gateway address the other clusters can route to (the local provider).
type Endpoint struct {
	// Address is an IP address or a DNS name. A name makes the ServiceEntry resolve
	// it with DNS; an IP makes it STATIC.
	Address string
	// Port is the port at Address that takes the mTLS traffic. Zero means
	// DefaultGatewayPort.
	Port int
	// Network is the Istio network of Address, written on the ServiceEntry's
	// endpoint. Leave it empty for a gateway address the clients reach directly:
	// istiod only routes an endpoint through a network gateway when the endpoint's
	// network differs from the client's, and drops it when it knows no gateway for
	// that network.
	Network string
}

func (e Endpoint) port() uint32 {
	if e.Port == 0 {
		return DefaultGatewayPort
	}
	return uint32(e.Port)
}

func (e Endpoint) String() string {
	return net.JoinHostPort(e.Address, strconv.Itoa(int(e.port())))
}

// validate reports what is wrong with an endpoint, in words for the user.
func (e Endpoint) validate() error {
	if e.Address == "" {
		return fmt.Errorf("address is empty")
	}
	if net.ParseIP(e.Address) == nil {
		if errs := validation.IsDNS1123Subdomain(e.Address); len(errs) > 0 {
			return fmt.Errorf("%q is neither an IP address nor a DNS name: %s", e.Address, errs[0])
		}
	}
	if e.Port < 0 || e.Port > 65535 {
		return fmt.Errorf("port %d is not a port (1-65535)", e.Port)
	}
	if e.Network != "" {
		if errs := validation.IsDNS1123Label(e.Network); len(errs) > 0 {
			return fmt.Errorf("network %q is not a valid name: %s", e.Network, errs[0])
		}
	}
	return nil
}

// ParseRemote reads the command line form of a cluster's remote endpoint,
// CLUSTER=HOST[:PORT], e.g. cluster2=172.18.0.12:15443 or
// cluster2=[fd00::12]:15443. The port defaults to DefaultGatewayPort.
func ParseRemote(s string) (cluster string, ep Endpoint, err error) {
	cluster, addr, ok := strings.Cut(s, "=")
	cluster = strings.TrimSpace(cluster)
	addr = strings.TrimSpace(addr)
	if !ok || cluster == "" || addr == "" {
		return "", Endpoint{}, fmt.Errorf("%q: write CLUSTER=ADDRESS[:PORT], e.g. cluster2=172.18.0.12:15443", s)
	}
	if errs := validation.IsDNS1123Label(cluster); len(errs) > 0 {
		return "", Endpoint{}, fmt.Errorf("%q: %q is not a cluster name: %s", s, cluster, errs[0])
	}
	host, port := addr, 0
	if h, p, splitErr := net.SplitHostPort(addr); splitErr == nil {
		n, convErr := strconv.Atoi(p)
		if convErr != nil || n < 1 || n > 65535 {
			return "", Endpoint{}, fmt.Errorf("%q: port %q is not a port (1-65535)", s, p)
		}
		host, port = h, n
	} else if strings.HasPrefix(addr, "[") && strings.HasSuffix(addr, "]") {
		host = addr[1 : len(addr)-1]
	}
	ep = Endpoint{Address: host, Port: port}
	if err := ep.validate(); err != nil {
		return "", Endpoint{}, fmt.Errorf("%q: %v", s, err)
	}
	return cluster, ep, nil
}
