package localcluster

import (
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
)

// The address scheme of the emulated node.
//
// Every pod reports an address from its cluster's pod range, 10.A.B.C, and
// listens on its loopback twin 127.A.B.C: Linux routes all of 127.0.0.0/8 to
// the loopback interface, so each pod gets an address of its own without any
// network configuration. The reported address is not loopback because the API
// server rejects loopback addresses in Endpoints and EndpointSlices (kubernetes
// pkg/apis/core/validation, ValidateEndpointIP: "may not be in the loopback
// range"): with 127.x pod IPs the EndpointSlice controller could publish no
// endpoint and istiod would see none. Whatever drill runs — workloads, the
// emulated sidecar — dials LoopbackFor(the 10.x address); no packet is ever
// sent to a 10.x address.

// Cluster i's pod range is 10.(10+i).0.0/16. The ranges stay below
// 10.96.0.0/12, where StartClusters puts the clusters' service ranges
// (10.96+i.0.0/16), so pod and service addresses never meet.
const (
	podCIDRBase  = 10
	maxPodRanges = 96 - podCIDRBase
)

// PodCIDRFor is the pod range of the cluster with index i (its position in
// the scenario, from 0): 10.(10+i).0.0/16.
func PodCIDRFor(i int) (netip.Prefix, error) {
	if i < 0 || i >= maxPodRanges {
		return netip.Prefix{}, fmt.Errorf("cluster index %d: the local provider has pod ranges for clusters 0 to %d", i, maxPodRanges-1)
	}
	return netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(podCIDRBase + i), 0, 0}), 16), nil
}

// LoopbackFor returns the loopback twin of a pod address, 10.A.B.C →
// 127.A.B.C: where the pod with that address listens. It returns nil for an
// address that is not an IPv4 address in 10.0.0.0/8.
func LoopbackFor(podIP net.IP) net.IP {
	ip4 := podIP.To4()
	if ip4 == nil || ip4[0] != 10 {
		return nil
	}
	return net.IPv4(127, ip4[1], ip4[2], ip4[3]).To4()
}

// PodIPFor is the inverse of LoopbackFor, 127.A.B.C → 10.A.B.C: the address
// the pod listening on a loopback twin reports. It returns nil for an address
// that is not in 127.0.0.0/8.
func PodIPFor(loopback net.IP) net.IP {
	ip4 := loopback.To4()
	if ip4 == nil || ip4[0] != 127 {
		return nil
	}
	return net.IPv4(10, ip4[1], ip4[2], ip4[3]).To4()
}

// loopbackAddr and podAddr are LoopbackFor and PodIPFor on netip.Addr.
func loopbackAddr(a netip.Addr) (netip.Addr, bool) {
	if !a.Is4() {
		return netip.Addr{}, false
	}
	b := a.As4()
	if b[0] != 10 {
		return netip.Addr{}, false
	}
	b[0] = 127
	return netip.AddrFrom4(b), true
}

// ReservedRange is the part of a pod range the node never gives to pods: its
// last sixteenth (10.A.240.0/20 of a /16), for addresses drill assigns to
// what runs beside the pods rather than as pods (the emulated gateways). It
// is the zero Prefix for a range smaller than a /20, which keeps nothing back.
func ReservedRange(podCIDR netip.Prefix) netip.Prefix {
	p := podCIDR.Masked()
	if !p.Addr().Is4() || p.Bits() > 20 {
		return netip.Prefix{}
	}
	size := uint32(1) << (32 - p.Bits())
	return netip.PrefixFrom(u32Addr(addrU32(p.Addr())+size-size/16), p.Bits()+4)
}

// podAllocator hands out the pod addresses of one node's range the way the
// host-local IPAM plugin does: the next free address after the last one
// handed out, wrapping around, so a deleted pod's address is not given to
// the next pod at once (clients and proxies may still hold it). The node
// has the range's first host address; ReservedRange and the broadcast
// address are never handed out.
//
// Unlike host-local it starts at a random point of the range: the loopback
// twins are shared by every process on the machine, and two drills (or two
// test runs) with a cluster of the same index would otherwise give their
// first pods the same addresses. A pod whose ports turn out to be taken all
// the same gets another address (see podWorker.run).
type podAllocator struct {
	mu     sync.Mutex
	prefix netip.Prefix
	lo, hi uint32 // pods get [lo, hi)
	last   uint32 // last address handed out
	inUse  map[netip.Addr]string
}

func newPodAllocator(prefix netip.Prefix, random bool) *podAllocator {
	prefix = prefix.Masked()
	network := addrU32(prefix.Addr())
	size := uint32(1) << (32 - prefix.Bits())
	a := &podAllocator{prefix: prefix, lo: network + 2, hi: network + size - 1, inUse: map[netip.Addr]string{}}
	if r := ReservedRange(prefix); r.IsValid() {
		a.hi = addrU32(r.Addr())
	}
	a.last = a.lo - 1
	if random && a.hi > a.lo {
		a.last = a.lo - 1 + rand.Uint32N(a.hi-a.lo)
	}
	return a
}

func addrU32(a netip.Addr) uint32 {
	b := a.As4()
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

func u32Addr(v uint32) netip.Addr {
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// reserve marks addr as taken by something outside the node.
func (a *podAllocator) reserve(addr netip.Addr, by string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.inUse[addr] = by
}

// nodeAddr is the node's own address in its range: the first host address.
func (a *podAllocator) nodeAddr() netip.Addr { return a.prefix.Addr().Next() }

// allocate returns a free address for owner (a pod's namespace/name).
func (a *podAllocator) allocate(owner string) (netip.Addr, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	cur := a.last
	for range a.hi - a.lo {
		cur++
		if cur >= a.hi || cur < a.lo {
			cur = a.lo
		}
		addr := u32Addr(cur)
		if _, taken := a.inUse[addr]; !taken {
			a.inUse[addr] = owner
			a.last = cur
			return addr, nil
		}
	}
	return netip.Addr{}, fmt.Errorf("pod range %s is full (%d addresses in use)", a.prefix, len(a.inUse))
}

func (a *podAllocator) release(addr netip.Addr) {
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.inUse, addr)
}
