package local

import (
	"math/rand/v2"
	"testing"

	"github.com/meshdrill/drill/internal/localcluster"
)

func TestGatewayAddrInReservedRange(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 3 {
		cidr, err := localcluster.PodCIDRFor(i)
		if err != nil {
			t.Fatal(err)
		}
		reserved := localcluster.ReservedRange(cidr)
		seen := map[string]bool{}
		for range 1000 {
			a, err := gatewayAddr(i, rng)
			if err != nil {
				t.Fatal(err)
			}
			if !reserved.Contains(a) || a == reserved.Addr() {
				t.Fatalf("cluster %d: gateway address %s outside %s or its network address", i, a, reserved)
			}
			seen[a.String()] = true
		}
		// 1000 uniform picks of 4094 addresses give about 887 distinct ones.
		if len(seen) < 850 {
			t.Errorf("cluster %d: only %d distinct addresses in 1000 picks; concurrent drills would collide", i, len(seen))
		}
	}
}
