package local

import (
	"fmt"
	"net"
	"sync"
)

// handedOut remembers every port this process gave to a child. Ports are
// found by binding :0 and releasing, and the kernel may offer a just-released
// port again before the child that was promised it has bound it; clusters
// starting in parallel would then collide.
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
	// Hold every listener until all n are found so the kernel cannot hand the
	// same port out twice within one call.
	var held []net.Listener
	defer func() {
		for _, l := range held {
			l.Close()
		}
	}()
	var ports []int
	for tries := 0; len(ports) < n; tries++ {
		if tries > 100*n {
			return nil, fmt.Errorf("find %d free ports on 127.0.0.1: gave up after %d tries", n, tries)
		}
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("find a free port on 127.0.0.1: %w", err)
		}
		held = append(held, l)
		p := l.Addr().(*net.TCPAddr).Port
		if handedOut.ports[p] {
			continue
		}
		handedOut.ports[p] = true
		ports = append(ports, p)
	}
	return ports, nil
}
