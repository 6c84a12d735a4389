package localcluster

import (
	"net"
	"net/netip"
	"testing"
)

func TestLoopbackFor(t *testing.T) {
	tests := []struct{ in, loopback string }{
		{"10.10.0.5", "127.10.0.5"},
		{"10.11.255.254", "127.11.255.254"},
		{"10.96.0.1", "127.96.0.1"},
		{"192.168.1.1", ""},
		{"127.10.0.5", ""},
		{"fd00::1", ""},
	}
	for _, tc := range tests {
		got := LoopbackFor(net.ParseIP(tc.in))
		if (got == nil && tc.loopback != "") || (got != nil && got.String() != tc.loopback) {
			t.Errorf("LoopbackFor(%s) = %v, want %q", tc.in, got, tc.loopback)
		}
		if got != nil {
			if back := PodIPFor(got); !back.Equal(net.ParseIP(tc.in)) {
				t.Errorf("PodIPFor(LoopbackFor(%s)) = %v", tc.in, back)
			}
			if !got.IsLoopback() {
				t.Errorf("LoopbackFor(%s) = %v is not a loopback address", tc.in, got)
			}
		}
	}
	if PodIPFor(net.ParseIP("10.1.2.3")) != nil {
		t.Error("PodIPFor of a non-loopback address must be nil")
	}
}

func TestPodCIDRFor(t *testing.T) {
	services := netip.MustParsePrefix("10.96.0.0/12") // where StartClusters' service ranges live
	seen := map[netip.Prefix]bool{}
	for i := range maxPodRanges {
		p, err := PodCIDRFor(i)
		if err != nil {
			t.Fatal(err)
		}
		if seen[p] || p.Overlaps(services) || p.Bits() != 16 {
			t.Fatalf("PodCIDRFor(%d) = %s: overlaps another range or the service ranges", i, p)
		}
		seen[p] = true
	}
	if p, _ := PodCIDRFor(1); p.String() != "10.11.0.0/16" {
		t.Errorf("PodCIDRFor(1) = %s, want 10.11.0.0/16", p)
	}
	for _, i := range []int{-1, maxPodRanges} {
		if _, err := PodCIDRFor(i); err == nil {
			t.Errorf("PodCIDRFor(%d): want an error", i)
		}
	}
}

func TestPodAllocator(t *testing.T) {
	a := newPodAllocator(netip.MustParsePrefix("10.10.0.0/29"), false) // .0 net, .1 node, .2–.6 pods, .7 broadcast
	if got := a.nodeAddr().String(); got != "10.10.0.1" {
		t.Fatalf("node address %s, want 10.10.0.1", got)
	}
	var got []string
	for range 5 {
		ip, err := a.allocate("p")
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, ip.String())
	}
	want := []string{"10.10.0.2", "10.10.0.3", "10.10.0.4", "10.10.0.5", "10.10.0.6"}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("allocated %v, want %v", got, want)
		}
	}
	if _, err := a.allocate("p"); err == nil {
		t.Fatal("a full range must fail")
	}
	// A released address is handed out again only after the others.
	a.release(netip.MustParseAddr("10.10.0.3"))
	a.release(netip.MustParseAddr("10.10.0.5"))
	if ip, _ := a.allocate("p"); ip.String() != "10.10.0.3" {
		t.Errorf("after wrapping got %s, want 10.10.0.3", ip)
	}
	if ip, _ := a.allocate("p"); ip.String() != "10.10.0.5" {
		t.Errorf("next got %s, want 10.10.0.5", ip)
	}
}

func TestPodAllocatorRandomStart(t *testing.T) {
	p := netip.MustParsePrefix("10.10.0.0/16")
	starts := map[netip.Addr]bool{}
	for range 20 {
		a := newPodAllocator(p, true)
		ip, err := a.allocate("p")
		if err != nil {
			t.Fatal(err)
		}
		if !p.Contains(ip) || ip == a.nodeAddr() || ip == p.Addr() || ReservedRange(p).Contains(ip) {
			t.Fatalf("allocated %s: not a pod address of %s", ip, p)
		}
		starts[ip] = true
	}
	if len(starts) < 10 {
		t.Errorf("20 allocators began at only %d addresses; want them spread over the range", len(starts))
	}
	// A small range still hands out every address.
	a := newPodAllocator(netip.MustParsePrefix("10.10.0.0/29"), true)
	seen := map[netip.Addr]bool{}
	for range 5 {
		ip, err := a.allocate("p")
		if err != nil {
			t.Fatal(err)
		}
		seen[ip] = true
	}
	if len(seen) != 5 {
		t.Errorf("got %d distinct addresses of 5", len(seen))
	}
}

func TestReservedRange(t *testing.T) {
	tests := []struct{ in, want string }{
		{"10.10.0.0/16", "10.10.240.0/20"},
		{"10.11.0.0/16", "10.11.240.0/20"},
		{"10.0.0.0/8", "10.240.0.0/12"},
		{"10.10.0.0/20", "10.10.15.0/24"},
		{"10.10.0.0/24", "invalid Prefix"},
	}
	for _, tc := range tests {
		if got := ReservedRange(netip.MustParsePrefix(tc.in)).String(); got != tc.want {
			t.Errorf("ReservedRange(%s) = %s, want %s", tc.in, got, tc.want)
		}
	}
	// A /20 with its last /24 reserved: every other address but the
	// network's and the node's goes to pods, and none of the reserved.
	p := netip.MustParsePrefix("10.10.0.0/20")
	a := newPodAllocator(p, true)
	n := 0
	for {
		ip, err := a.allocate("p")
		if err != nil {
			break
		}
		if ReservedRange(p).Contains(ip) {
			t.Fatalf("allocated %s from the reserved range", ip)
		}
		n++
	}
	if want := 4096 - 256 - 2; n != want {
		t.Errorf("allocated %d addresses, want %d", n, want)
	}
}
