package envoyemu

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"slices"
	"sync"
	"time"
)

// Listener-side TLS. Envoy's tls_inspector reads a connection's
// ClientHello before choosing a filter chain (transport protocol "tls",
// server names from SNI, application protocols from ALPN); a chain with a
// DownstreamTlsContext terminates TLS, a chain with a TCP proxy passes the
// bytes through untouched (an east-west gateway's AUTO_PASSTHROUGH). The
// emulation does the same before its HTTP server sees the connection.

// connRole says what a bound listener does with a connection.
type connRole int

const (
	// roleInbound: a sidecar's inbound port (or virtualInbound, 15006):
	// TLS is terminated with the chain's TLS context, plaintext is served
	// when a plaintext chain exists (PERMISSIVE) and closed when none does
	// (STRICT).
	roleInbound connRole = iota + 1
	// roleGateway: a gateway's listener: TLS is passed through to the
	// cluster its SNI names, plaintext is served as HTTP.
	roleGateway
)

// helloInfo is what tls_inspector reads from a ClientHello.
type helloInfo struct {
	sni  string
	alpn []string
}

var errHelloRead = errors.New("client hello read")

// recordingConn records what is read from a connection and discards what
// is written: crypto/tls parses a ClientHello through it without answering.
type recordingConn struct {
	net.Conn
	r   io.Reader
	buf bytes.Buffer
}

func (c *recordingConn) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	c.buf.Write(b[:n])
	return n, err
}

func (c *recordingConn) Write(b []byte) (int, error) { return len(b), nil }

// replayConn gives back the bytes classification read, then the rest of
// the connection.
type replayConn struct {
	net.Conn
	r io.Reader
}

func (c *replayConn) Read(b []byte) (int, error) { return c.r.Read(b) }

// NetConn is the connection underneath (for SO_ORIGINAL_DST).
func (c *replayConn) NetConn() net.Conn { return c.Conn }

// sniff reads the start of a connection: a TLS ClientHello (first byte
// 0x16, a handshake record) is parsed for SNI and ALPN; anything else is
// plaintext. The returned connection replays what was read.
func sniff(c net.Conn, timeout time.Duration) (net.Conn, *helloInfo, error) {
	_ = c.SetReadDeadline(time.Now().Add(timeout))
	defer c.SetReadDeadline(time.Time{})
	first := make([]byte, 1)
	if _, err := io.ReadFull(c, first); err != nil {
		return nil, nil, err
	}
	if first[0] != 0x16 {
		return &replayConn{Conn: c, r: io.MultiReader(bytes.NewReader(first), c)}, nil, nil
	}
	rc := &recordingConn{Conn: c, r: io.MultiReader(bytes.NewReader(first), c)}
	var hi *helloInfo
	srv := tls.Server(rc, &tls.Config{GetConfigForClient: func(h *tls.ClientHelloInfo) (*tls.Config, error) {
		hi = &helloInfo{sni: h.ServerName, alpn: slices.Clone(h.SupportedProtos)}
		return nil, errHelloRead
	}})
	_ = srv.Handshake()
	if hi == nil {
		return nil, nil, errors.New("not a TLS ClientHello")
	}
	return &replayConn{Conn: c, r: io.MultiReader(bytes.NewReader(rc.buf.Bytes()), c)}, hi, nil
}

// connListener is the net.Listener an http.Server serves: the connections
// classification handed to HTTP.
type connListener struct {
	ln     net.Listener // the bound listener, closed with this one
	addr   net.Addr
	ch     chan net.Conn
	done   chan struct{}
	closed sync.Once
}

func newConnListener(ln net.Listener) *connListener {
	return &connListener{ln: ln, addr: ln.Addr(), ch: make(chan net.Conn), done: make(chan struct{})}
}

func (l *connListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ch:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *connListener) Close() error {
	l.closed.Do(func() {
		close(l.done)
		l.ln.Close()
	})
	return nil
}

func (l *connListener) Addr() net.Addr { return l.addr }

func (l *connListener) push(c net.Conn) {
	select {
	case l.ch <- c:
	case <-l.done:
		c.Close()
	}
}

// demux accepts on ln and classifies each connection (in its own
// goroutine, so a slow client holds up no other), handing HTTP ones to hl.
func (p *Proxy) demux(ln net.Listener, hl *connListener, role connRole, listener string) {
	defer hl.Close()
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		if !p.track(c) {
			c.Close()
			return
		}
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			defer p.untrack(c)
			p.classify(c, hl, role, listener)
		}()
	}
}

// track records a connection being classified or passed through, so that
// Stop can close it; false when the proxy is stopping.
func (p *Proxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stopped {
		return false
	}
	if p.conns == nil {
		p.conns = map[net.Conn]struct{}{}
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *Proxy) untrack(c net.Conn) {
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
}

// closeTracked closes the connections being classified or passed through.
func (p *Proxy) closeTracked() {
	p.mu.Lock()
	cs := make([]net.Conn, 0, len(p.conns))
	for c := range p.conns {
		cs = append(cs, c)
	}
	p.mu.Unlock()
	for _, c := range cs {
		c.Close()
	}
}

// sniffTimeout bounds the wait for a connection's first bytes (Envoy's
// listener filter timeout is 15 s).
const sniffTimeout = 15 * time.Second

func (p *Proxy) classify(raw net.Conn, hl *connListener, role connRole, listener string) {
	c, hello, err := sniff(raw, sniffTimeout)
	if err != nil {
		raw.Close()
		return
	}
	port := uint32(0)
	if od, err := originalDstConn(raw); err == nil {
		port = uint32(od.Port())
	} else if a, ok := raw.LocalAddr().(*net.TCPAddr); ok {
		port = uint32(a.Port)
	}
	rt := p.routing.Load()
	switch role {
	case roleGateway:
		if hello == nil {
			hl.push(c)
			return
		}
		li := rt.listeners[listener]
		var ch *chainInfo
		if li != nil {
			ch = li.chooseSNIChain(hello.sni)
		}
		if ch == nil || ch.http {
			// No filter chain matches: Envoy closes the connection.
			p.store.Counter("listener." + listener + ".no_filter_chain_match").Inc()
			c.Close()
			return
		}
		p.tcpProxy(c, rt, ch.tcpTarget(hello.sni))
	case roleInbound:
		li := rt.listeners[virtualInboundListener]
		if li == nil {
			// No inbound listener (yet): plaintext is served as the pod's
			// port (with a 503 before the configuration), TLS has nothing
			// to terminate it.
			if hello == nil {
				hl.push(c)
				return
			}
			c.Close()
			return
		}
		if hello == nil {
			if p.secrets != nil && li.chooseInboundChain(port, "raw_buffer", nil) == nil {
				// STRICT: no plaintext chain for the port.
				p.store.Counter("listener." + virtualInboundListener + ".no_filter_chain_match").Inc()
				c.Close()
				return
			}
			hl.push(c)
			return
		}
		ch := li.chooseInboundChain(port, "tls", hello.alpn)
		if ch == nil || ch.tls == nil || p.secrets == nil {
			p.store.Counter("listener." + virtualInboundListener + ".no_filter_chain_match").Inc()
			c.Close()
			return
		}
		cfg, err := ch.tls.serverConfig(p.secrets, hello.alpn)
		if err != nil {
			p.log.Warn("inbound TLS", "err", err)
			c.Close()
			return
		}
		hl.push(tls.Server(c, cfg))
	default:
		hl.push(c)
	}
}

// virtualInboundListener is the name of Istio's inbound listener, whose
// filter chains say per port which transports a sidecar accepts.
const virtualInboundListener = "virtualInbound"

// chooseInboundChain picks a filter chain as Envoy's filter chain match
// does for what a sidecar's inbound listener receives: the chains of the
// destination port if any, else the port-less ones; of those, the ones of
// the transport; of those, one whose application protocols the client
// offered (or that names none).
func (li *listenerInfo) chooseInboundChain(port uint32, transport string, alpn []string) *chainInfo {
	var byPort []*chainInfo
	for _, c := range li.chains {
		if c.destPort == port && port != 0 {
			byPort = append(byPort, c)
		}
	}
	if len(byPort) == 0 {
		for _, c := range li.chains {
			if c.destPort == 0 {
				byPort = append(byPort, c)
			}
		}
	}
	var fallback *chainInfo
	for _, c := range byPort {
		if c.transport != "" && c.transport != transport {
			continue
		}
		if len(c.appProtocols) == 0 {
			if fallback == nil {
				fallback = c
			}
			continue
		}
		if transport == "raw_buffer" && alpn == nil {
			// Envoy's http_inspector would find http/1.1.
			if slices.Contains(c.appProtocols, "http/1.1") {
				return c
			}
			continue
		}
		for _, a := range alpn {
			if slices.Contains(c.appProtocols, a) {
				return c
			}
		}
	}
	return fallback
}

// tcpProxy is Envoy's TCP proxy filter: it picks a host of the cluster,
// connects and copies bytes both ways until either side closes. An
// east-west gateway passes mTLS through this way, by SNI.
func (p *Proxy) tcpProxy(down net.Conn, rt *routing, clusterName string) {
	defer down.Close()
	cl := rt.cluster(clusterName)
	if cl == nil {
		p.store.Counter("cluster_manager.cluster_not_found").Inc()
		return
	}
	ctx := &lbContext{}
	if p.id.Kind == Router {
		// An east-west gateway serves its own cluster's endpoints.
		ctx.onlyCluster = p.id.Cluster
	}
	var pk pick
	var ok bool
	if ctx.onlyCluster != "" {
		pk, ok = cl.chooseOwn(ctx)
	} else {
		pk, ok = cl.chooseHost(ctx)
	}
	if !ok {
		cl.stats.t().cxNoneHealthy.Inc()
		return
	}
	dctx, cancel := context.WithTimeout(context.Background(), cl.connectTimeout)
	up, err := p.dialer(cl)(dctx, "tcp", pk.host.dial)
	cancel()
	if err != nil {
		pk.host.cxConnectFail.Add(1)
		if cl.outlier != nil {
			cl.outlier.report(pk.host, result{local: connectFailure})
		}
		return
	}
	defer up.Close()
	pk.host.active.Add(1)
	defer pk.host.active.Add(-1)
	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn) {
		_, _ = copyPlain(dst, src)
		closeWrite(dst)
		done <- struct{}{}
	}
	go pipe(up, down)
	go pipe(down, up)
	<-done
	<-done
}
