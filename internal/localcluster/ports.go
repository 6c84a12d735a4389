package localcluster

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
)

// Ports are picked below the kernel's ephemeral range. A port from bind(:0)
// lies inside that range, and so does the local port of every outgoing
// connection: between the moment drill releases a port and the moment the
// child binds it, the API server's own connections to etcd can take it
// ("bind: address already in use"). Below the range only listeners compete.
const (
	lowestPort   = 10000
	ephemeralEnv = "/proc/sys/net/ipv4/ip_local_port_range"
)

// handedOut remembers every port this process gave to a child, so clusters
// starting in parallel never get the same one, even before either has bound it.
var handedOut struct {
	sync.Mutex
	ports map[int]bool
}

// freePorts returns n distinct TCP ports on 127.0.0.1 that were free a moment
// ago and that this process has not handed out before.
func freePorts(n int) ([]int, error) {
	handedOut.Lock()
	defer handedOut.Unlock()
	if handedOut.ports == nil {
		handedOut.ports = map[int]bool{}
	}
	lo, hi := portRange()
	// Hold every listener until all n are found so none is counted twice.
	var held []net.Listener
	defer func() {
		for _, l := range held {
			l.Close()
		}
	}()
	var ports []int
	for tries := 0; len(ports) < n; tries++ {
		if tries > 100*n {
			return nil, fmt.Errorf("find %d free ports on 127.0.0.1 in %d-%d: gave up after %d tries", n, lo, hi, tries)
		}
		p := lo + rand.IntN(hi-lo+1)
		if lo == 0 {
			p = 0 // no range below the ephemeral one: let the kernel choose
		}
		if p != 0 && handedOut.ports[p] {
			continue
		}
		l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
		if err != nil {
			continue
		}
		held = append(held, l)
		p = l.Addr().(*net.TCPAddr).Port
		if handedOut.ports[p] {
			continue
		}
		handedOut.ports[p] = true
		ports = append(ports, p)
	}
	return ports, nil
}

// portRange is the range to pick from: lowestPort up to just below the
// ephemeral range, or (0, 0) when the ephemeral range leaves too little room.
func portRange() (lo, hi int) {
	ephemeralLow := 32768 // Linux's default ip_local_port_range starts here
	if b, err := os.ReadFile(ephemeralEnv); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if v, err := strconv.Atoi(f[0]); err == nil {
				ephemeralLow = v
			}
		}
	}
	if ephemeralLow-lowestPort < 1000 {
		return 0, 0
	}
	return lowestPort, ephemeralLow - 1
}
