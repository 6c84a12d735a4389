package localcluster

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
)

// clusterDomain is the cluster's DNS domain (istiod runs with --domain=cluster.local).
const clusterDomain = "cluster.local"

// serviceProxy is the node's kube-proxy and cluster DNS in one: it turns a
// Service name (reviews, reviews.default, reviews.default.svc.cluster.local)
// or ClusterIP and port into one ready endpoint of the Service, taken from its
// EndpointSlices, round-robin, and dials that endpoint's loopback twin. A
// Service without ready endpoints refuses the connection, as kube-proxy's
// REJECT rule makes it; a name that is no Service fails as DNS would.
type serviceProxy struct {
	services   corelisters.ServiceLister
	serviceIdx cache.Indexer
	sliceIdx   cache.Indexer // EndpointSlices, indexed by sliceServiceIndex
	next       sync.Map      // service key and port → *atomic.Uint64
}

// sliceServiceIndex indexes EndpointSlices by the Service they belong to,
// namespace/name.
const sliceServiceIndex = "service"

func sliceServiceIndexFunc(obj any) ([]string, error) {
	s, ok := obj.(*discoveryv1.EndpointSlice)
	if !ok {
		return nil, nil
	}
	if name := s.Labels[discoveryv1.LabelServiceName]; name != "" {
		return []string{s.Namespace + "/" + name}, nil
	}
	return nil, nil
}

const clusterIPIndex = "clusterIP"

func clusterIPIndexFunc(obj any) ([]string, error) {
	svc, ok := obj.(*corev1.Service)
	if !ok {
		return nil, nil
	}
	var out []string
	for _, ip := range svc.Spec.ClusterIPs {
		if ip != "" && ip != corev1.ClusterIPNone {
			out = append(out, ip)
		}
	}
	return out, nil
}

// transport returns the HTTP transport of a pod in namespace whose address is
// src. It opens a connection per request, as Bookinfo's clients do (Python
// requests without a session, a new JAX-RS client per call), so that each
// call is balanced afresh and a stopped endpoint is not held on to.
func (p *serviceProxy) transport(namespace string, src netip.Addr) *http.Transport {
	return &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return p.dial(ctx, namespace, src, network, addr)
		},
		DisableKeepAlives:     true,
		ResponseHeaderTimeout: 0, // the caller's timeouts apply, as for the real workloads
		ExpectContinueTimeout: time.Second,
	}
}

// dial connects from src to what addr names, seen from a pod in namespace.
func (p *serviceProxy) dial(ctx context.Context, namespace string, src netip.Addr, network, addr string) (net.Conn, error) {
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, &net.OpError{Op: "dial", Net: network, Err: err}
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || port <= 0 || port > 65535 {
		return nil, &net.OpError{Op: "dial", Net: network, Err: fmt.Errorf("bad port %q", portStr)}
	}
	target, err := p.resolve(namespace, src, host, int32(port))
	if err != nil {
		return nil, &net.OpError{Op: "dial", Net: network, Addr: nameAddr(addr), Err: err}
	}
	d := net.Dialer{LocalAddr: tcpAddr(src, 0), Timeout: 10 * time.Second}
	return d.DialContext(ctx, "tcp", target.String())
}

// nameAddr is a dialled host:port as the caller named it, for errors.
type nameAddr string

func (a nameAddr) Network() string { return "tcp" }
func (a nameAddr) String() string  { return string(a) }

func tcpAddr(a netip.Addr, port uint16) *net.TCPAddr {
	if !a.IsValid() {
		return nil
	}
	return net.TCPAddrFromAddrPort(netip.AddrPortFrom(a, port))
}

var (
	errRefused     = os.NewSyscallError("connect", syscall.ECONNREFUSED)
	errUnreachable = os.NewSyscallError("connect", syscall.ENETUNREACH)
)

// resolve maps host:port, as a pod in namespace with address src names it,
// to the loopback address and port to dial.
func (p *serviceProxy) resolve(namespace string, src netip.Addr, host string, port int32) (netip.AddrPort, error) {
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	if host == "localhost" {
		return netip.AddrPortFrom(src, uint16(port)), nil
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		return p.resolveIP(src, ip.Unmap(), port)
	}
	name, ns, ok := serviceName(host, namespace)
	if !ok {
		return netip.AddrPort{}, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	svc, err := p.services.Services(ns).Get(name)
	if apierrors.IsNotFound(err) {
		return netip.AddrPort{}, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	} else if err != nil {
		return netip.AddrPort{}, err
	}
	return p.endpoint(svc, port)
}

func (p *serviceProxy) resolveIP(src, ip netip.Addr, port int32) (netip.AddrPort, error) {
	switch {
	case ip.IsLoopback():
		// A pod's localhost is its own: its loopback twin.
		if ip == netip.MustParseAddr("127.0.0.1") || ip == netip.IPv6Loopback() {
			return netip.AddrPortFrom(src, uint16(port)), nil
		}
		return netip.AddrPortFrom(ip, uint16(port)), nil
	case ip.Is4():
		if objs, _ := p.serviceIdx.ByIndex(clusterIPIndex, ip.String()); len(objs) > 0 {
			return p.endpoint(objs[0].(*corev1.Service), port)
		}
		if lo, ok := loopbackAddr(ip); ok {
			return netip.AddrPortFrom(lo, uint16(port)), nil
		}
	}
	// Anything else would leave the machine; the local provider has no
	// network but loopback.
	return netip.AddrPort{}, errUnreachable
}

// serviceName splits a name a pod resolves through the cluster's DNS search
// path (<ns>.svc.cluster.local, svc.cluster.local, cluster.local) into a
// Service name and namespace.
func serviceName(host, podNamespace string) (name, namespace string, ok bool) {
	host = strings.TrimSuffix(host, "."+clusterDomain)
	host = strings.TrimSuffix(host, ".svc")
	parts := strings.Split(host, ".")
	switch len(parts) {
	case 1:
		return parts[0], podNamespace, parts[0] != ""
	case 2:
		return parts[0], parts[1], parts[0] != "" && parts[1] != ""
	}
	return "", "", false
}

// endpoint picks the next ready endpoint of svc for the Service port port.
func (p *serviceProxy) endpoint(svc *corev1.Service, port int32) (netip.AddrPort, error) {
	var sp *corev1.ServicePort
	for i := range svc.Spec.Ports {
		if svc.Spec.Ports[i].Port == port && (svc.Spec.Ports[i].Protocol == "" || svc.Spec.Ports[i].Protocol == corev1.ProtocolTCP) {
			sp = &svc.Spec.Ports[i]
			break
		}
	}
	if sp == nil {
		return netip.AddrPort{}, errRefused
	}
	list, err := p.sliceIdx.ByIndex(sliceServiceIndex, svc.Namespace+"/"+svc.Name)
	if err != nil {
		return netip.AddrPort{}, err
	}
	var ready []netip.AddrPort
	for _, o := range list {
		s := o.(*discoveryv1.EndpointSlice)
		if s.AddressType != discoveryv1.AddressTypeIPv4 {
			continue
		}
		var num int32 = -1
		for _, ep := range s.Ports {
			name := ""
			if ep.Name != nil {
				name = *ep.Name
			}
			if name == sp.Name && ep.Port != nil {
				num = *ep.Port
			}
		}
		if num < 0 {
			continue
		}
		for _, e := range s.Endpoints {
			if e.Conditions.Ready != nil && !*e.Conditions.Ready {
				continue
			}
			for _, a := range e.Addresses {
				if ip, err := netip.ParseAddr(a); err == nil {
					if lo, ok := loopbackAddr(ip); ok {
						ready = append(ready, netip.AddrPortFrom(lo, uint16(num)))
					}
				}
			}
		}
	}
	if len(ready) == 0 {
		return netip.AddrPort{}, errRefused
	}
	// The lister returns slices in no particular order; sorted, successive
	// calls walk the endpoints in turn.
	slices.SortFunc(ready, func(a, b netip.AddrPort) int { return a.Compare(b) })
	key := svc.Namespace + "/" + svc.Name + ":" + strconv.Itoa(int(port))
	c, _ := p.next.LoadOrStore(key, new(atomic.Uint64))
	i := c.(*atomic.Uint64).Add(1) - 1
	return ready[i%uint64(len(ready))], nil
}
