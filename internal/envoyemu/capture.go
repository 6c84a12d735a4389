package envoyemu

import (
	"context"
	"errors"
	"net"
	"net/netip"
)

// Traffic capture. Inside a pod, istio-init's iptables rules (istio
// tools/istio-iptables) REDIRECT the pod's outbound TCP to 15001 and its
// inbound TCP to 15006; the address the connection was meant for survives
// as the socket's original destination (SO_ORIGINAL_DST), which Envoy's
// original_dst listener filter reads and drill's emulation reads the same
// way. These are the two listeners Istio names virtualOutbound and
// virtualInbound.
const (
	// InboundCapturePort is Istio's virtualInbound listener: inbound
	// traffic redirected by iptables.
	InboundCapturePort = 15006
	// InboundPassthroughSource is the source address Istio's inbound
	// clusters bind to (upstream_bind_config) when they connect to the
	// application at the pod's own address: iptables lets connections from
	// it through instead of capturing them again.
	InboundPassthroughSource = "127.0.0.6"
)

type origDstKey struct{}

// errNoOriginalDst says a connection was not redirected by iptables.
var errNoOriginalDst = errors.New("connection has no original destination (not redirected by iptables)")

// withOriginalDst is an http.Server ConnContext that records the original
// destination of a captured connection for the handler.
func withOriginalDst(ctx context.Context, c net.Conn) context.Context {
	dst, err := originalDstConn(c)
	if err != nil {
		return ctx
	}
	return context.WithValue(ctx, origDstKey{}, dst)
}

// originalDstConn is originalDst of the TCP connection under c (a TLS
// connection, or one that replays what classification read).
func originalDstConn(c net.Conn) (netip.AddrPort, error) {
	for {
		switch v := c.(type) {
		case *net.TCPConn:
			return originalDst(v)
		case interface{ NetConn() net.Conn }:
			c = v.NetConn()
		default:
			return netip.AddrPort{}, errNoOriginalDst
		}
	}
}

// closeWrite half-closes c's TCP connection (or closes c when it has
// none): the peer reads EOF and may still answer.
func closeWrite(c net.Conn) {
	for x := c; ; {
		switch v := x.(type) {
		case *net.TCPConn:
			_ = v.CloseWrite()
			return
		case interface{ NetConn() net.Conn }:
			x = v.NetConn()
		default:
			_ = c.Close()
			return
		}
	}
}

// originalDstOf is the original destination recorded for the request's
// connection.
func originalDstOf(ctx context.Context) (netip.AddrPort, bool) {
	v, ok := ctx.Value(origDstKey{}).(netip.AddrPort)
	return v, ok
}
