package local

import (
	"net"
	"strconv"
	"testing"
)

func TestFreePortsDistinctAndBindable(t *testing.T) {
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
			l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
			if err != nil {
				t.Fatalf("port %d not free: %v", p, err)
			}
			l.Close()
		}
	}
}
