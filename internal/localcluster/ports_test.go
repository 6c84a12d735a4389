package localcluster

import (
	"net"
	"strconv"
	"testing"
)

func TestFreePortsDistinctAndBindable(t *testing.T) {
	lo, hi := portRange()
	if lo == 0 {
		t.Skip("ephemeral port range leaves no room below it")
	}
	seen := map[int]bool{}
	for range 5 {
		ports, err := freePorts(8)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range ports {
			if seen[p] {
				t.Fatalf("port %d handed out twice", p)
			}
			seen[p] = true
			// Outside the ephemeral range, where outgoing connections
			// cannot take the port before the child binds it.
			if p < lo || p > hi {
				t.Errorf("port %d outside %d-%d", p, lo, hi)
			}
			l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
			if err != nil {
				t.Fatalf("port %d not free: %v", p, err)
			}
			l.Close()
		}
	}
}
