package envoyemu

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"
)

// LoopbackTwin is where the local provider serves a pod address. The
// Kubernetes API rejects loopback addresses in EndpointSlices, so a pod is
// known to the API (and to istiod, and so in EDS) as 10.A.B.C, and listens on
// 127.A.B.C. Every address the proxy dials goes through LoopbackTwin: a
// 10.0.0.0/8 address maps to its twin, a loopback address is kept, and any
// other address is refused, so the emulated data plane never sends a packet
// off the machine.
func LoopbackTwin(a netip.Addr) (netip.Addr, error) {
	a = a.Unmap()
	switch {
	case a.IsLoopback() && a.Is4():
		return a, nil
	case a.Is4() && a.As4()[0] == 10:
		b := a.As4()
		b[0] = 127
		return netip.AddrFrom4(b), nil
	case a == netip.IPv6Loopback():
		return a, nil
	}
	return netip.Addr{}, fmt.Errorf("address %s is neither a pod address (10.0.0.0/8) nor loopback: the local provider's data plane reaches only loopback", a)
}

// APIAddress is the inverse of LoopbackTwin for 127.A.B.C: the pod address
// the Kubernetes API knows, 10.A.B.C. Other addresses are returned as they
// are.
func APIAddress(a netip.Addr) netip.Addr {
	a = a.Unmap()
	if a.Is4() && a.IsLoopback() {
		b := a.As4()
		b[0] = 10
		return netip.AddrFrom4(b)
	}
	return a
}

// addressing is how a proxy reaches the addresses istiod names. On the
// local provider (twin) every pod address maps to its loopback twin and
// nothing else may be dialled; inside a real pod (podNetwork) addresses are
// dialled as they are, on the pod's own network.
type addressing struct {
	podNetwork bool
}

// mapAddr is the address to dial for a.
func (m addressing) mapAddr(a netip.Addr) (netip.Addr, error) {
	if m.podNetwork {
		if !a.IsValid() {
			return a, fmt.Errorf("no address")
		}
		return a.Unmap(), nil
	}
	return LoopbackTwin(a)
}

// hostPort maps "ip:port" for dialing: the address through mapAddr, the
// port as it is. A name is refused: the emulated proxy resolves none.
func (m addressing) hostPort(hostport string) (string, error) {
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		return "", fmt.Errorf("address %q: %w", hostport, err)
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return "", fmt.Errorf("address %q: not an IP address (the emulated proxy resolves no names)", hostport)
	}
	t, err := m.mapAddr(a)
	if err != nil {
		return "", err
	}
	return net.JoinHostPort(t.String(), port), nil
}

func joinHostPort(host string, port uint32) string {
	return net.JoinHostPort(host, strconv.FormatUint(uint64(port), 10))
}
