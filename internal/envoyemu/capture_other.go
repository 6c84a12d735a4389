//go:build !linux

package envoyemu

import (
	"net"
	"net/netip"
)

// originalDst needs Linux's netfilter; elsewhere no connection is captured.
func originalDst(*net.TCPConn) (netip.AddrPort, error) {
	return netip.AddrPort{}, errNoOriginalDst
}
