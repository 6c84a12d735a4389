package envoyemu

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// HeaderSNI carries, between emulated proxies, the TLS server name an Envoy
// would send in its ClientHello: the SNI of the cluster's ISTIO_MUTUAL
// transport socket (outbound_.9080_._.reviews.default.svc.cluster.local).
// There is no TLS between emulated proxies; an east-west gateway routes on
// this header as Istio's AUTO_PASSTHROUGH gateway routes on SNI.
const HeaderSNI = "X-Drill-Sni"

// hopHeaders are the hop-by-hop headers a proxy must not forward (RFC 9110
// section 7.6.1).
var hopHeaders = []string{"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade"}

// serveOutbound is the sidecar's outbound listener. A workload's request
// arrives in proxy form (absolute URI); the destination port picks the
// listener and so the route configuration, as Envoy's virtual outbound
// listener does with the original destination after iptables redirection.
func (p *Proxy) serveOutbound(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodConnect {
		localReply(w, http.StatusMethodNotAllowed, "CONNECT is not supported by the emulated sidecar; send plain HTTP through it")
		return
	}
	hostport := r.URL.Host
	if od, ok := originalDstOf(r.Context()); ok {
		// Captured by iptables: the connection's original destination
		// picks the listener; the Host header picks the virtual host.
		hostport = od.String()
	} else if hostport == "" {
		hostport = r.Host
	}
	host, portStr, ok := cutPort(hostport)
	if !ok {
		portStr = "80"
	}
	port, _ := strconv.ParseUint(portStr, 10, 32)
	dst, _ := netip.ParseAddr(strings.Trim(host, "[]"))
	rt := p.routing.Load()
	li := rt.listenerFor(dst, uint32(port))
	if li == nil {
		// No listener for the port: Istio's virtual outbound listener sends
		// such traffic to PassthroughCluster (ALLOW_ANY) when it can.
		p.forwardTCPFallback(w, r, rt, hostport)
		return
	}
	chain := li.chooseHTTPChain(dst, uint32(port))
	if chain == nil {
		if tc := p.plainTCPChain(li); tc != "" {
			p.forwardToCluster(w, r, rt, tc, hostport, "outbound")
			return
		}
		p.noRoute(w, r, "outbound", nil)
		return
	}
	table := chain.inline
	if table == nil {
		table = rt.routes[chain.rds]
	}
	p.serveHTTP(w, r, rt, table, hostport, "outbound")
}

// plainTCPChain is the cluster of a listener's TCP proxy chain without TLS
// matching, for HTTP to a port istiod configured as TCP.
func (p *Proxy) plainTCPChain(li *listenerInfo) string {
	for _, c := range li.chains {
		if c.tcpCluster != "" && len(c.serverNames) == 0 && c.transport != "tls" {
			return c.tcpCluster
		}
	}
	return ""
}

func (p *Proxy) forwardTCPFallback(w http.ResponseWriter, r *http.Request, rt *routing, hostport string) {
	if rt.cluster("PassthroughCluster") != nil {
		p.forwardToCluster(w, r, rt, "PassthroughCluster", hostport, "outbound")
		return
	}
	p.noRoute(w, r, "outbound", nil)
}

// passthrough sends a request the mesh does not route (ORIGINAL_DST to a
// name) through the passthrough transport, as it was addressed.
func (p *Proxy) passthrough(w http.ResponseWriter, r *http.Request, cl *cluster, start time.Time) {
	ts := cl.stats.t()
	out := r.Clone(r.Context())
	out.RequestURI = ""
	if out.URL.Host == "" {
		out.URL.Host = r.Host
	}
	out.URL.Scheme = "http"
	for _, k := range hopHeaders {
		out.Header.Del(k)
	}
	ts.rqTotal.Inc()
	resp, err := p.opts.passthrough.RoundTrip(out)
	if err != nil {
		cl.stats.chargeCode(http.StatusServiceUnavailable)
		localReply(w, http.StatusServiceUnavailable, resetBody("remote connection failure", false))
		p.recordSource(nil, cl, nil, r, http.StatusServiceUnavailable, flagUF, time.Since(start))
		return
	}
	defer resp.Body.Close()
	ts.rqCompleted.Inc()
	cl.stats.chargeCode(resp.StatusCode)
	for k, vs := range resp.Header {
		w.Header()[k] = vs
	}
	for _, k := range hopHeaders {
		w.Header().Del(k)
	}
	w.WriteHeader(resp.StatusCode)
	_, _ = copyFlush(w, resp.Body)
	ts.rqTime.Record(float64(time.Since(start).Milliseconds()))
	p.recordSource(nil, cl, nil, r, resp.StatusCode, 0, time.Since(start))
}

// gatewayHandler serves one of a gateway's bound listeners. A request that
// carries an SNI (HeaderSNI) is passed through by the listener's server
// names, as an AUTO_PASSTHROUGH gateway routes TLS by SNI; any other is
// routed by the listener's HTTP connection manager.
func (p *Proxy) gatewayHandler(listener string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rt := p.routing.Load()
		li := rt.listeners[listener]
		if li == nil {
			p.noRoute(w, r, "gateway", nil)
			return
		}
		if sni := r.Header.Get(HeaderSNI); sni != "" {
			if c := li.chooseSNIChain(sni); c != nil && !c.http {
				r.Header.Del(HeaderSNI)
				// On the local provider's flat network istiod gives the
				// gateway every cluster's endpoints; on a multi-network mesh
				// it would give only its own, which is what the gateway
				// keeps to.
				f := &forward{p: p, rt: rt, clusterName: c.tcpTarget(sni), dir: "gateway", start: time.Now(), passthrough: true, onlyCluster: p.id.Cluster}
				f.serve(w, r)
				return
			}
		}
		dst := li.addr
		chain := li.chooseHTTPChain(dst, li.port)
		if chain == nil {
			p.noRoute(w, r, "gateway", nil)
			return
		}
		table := chain.inline
		if table == nil {
			table = rt.routes[chain.rds]
		}
		p.serveHTTP(w, r, rt, table, "", "gateway")
	})
}

// serveHTTP routes a request by a route table (Envoy's router filter).
func (p *Proxy) serveHTTP(w http.ResponseWriter, r *http.Request, rt *routing, table *routeTable, origDst, dir string) {
	start := time.Now()
	if table == nil {
		p.noRoute(w, r, dir, nil)
		return
	}
	vh := table.virtualHost(r.Host)
	if vh == nil {
		p.noRoute(w, r, dir, nil)
		return
	}
	route := vh.route(r)
	if route == nil {
		p.noRoute(w, r, dir, nil)
		return
	}
	switch route.kind {
	case routeDirect:
		hdr := w.Header()
		applyHeaderOps(hdr, append(route.respAdd, vh.respAdd...), append(route.respRemove, vh.respRemove...))
		localReply(w, route.directStatus, route.directBody)
		p.recordSource(rt, nil, nil, r, route.directStatus, 0, time.Since(start))
		return
	case routeRedirect:
		p.redirect(w, r, route)
		return
	}
	name := route.pickCluster(r, p.rnd())
	f := &forward{p: p, rt: rt, vh: vh, route: route, clusterName: name, origDst: origDst, dir: dir, start: start}
	f.serve(w, r)
}

// forwardToCluster sends a request straight to a cluster, as a TCP proxy
// filter chain would send its connection.
func (p *Proxy) forwardToCluster(w http.ResponseWriter, r *http.Request, rt *routing, cluster, origDst, dir string) {
	f := &forward{p: p, rt: rt, clusterName: cluster, origDst: origDst, dir: dir, start: time.Now(), passthrough: true}
	f.serve(w, r)
}

func (p *Proxy) noRoute(w http.ResponseWriter, r *http.Request, dir string, _ error) {
	p.store.Counter("http.no_route").Inc()
	localReply(w, http.StatusNotFound, "")
	if dir == "outbound" {
		p.recordSource(nil, nil, nil, r, http.StatusNotFound, flagNR, 0)
	}
}

func (p *Proxy) redirect(w http.ResponseWriter, r *http.Request, route *route) {
	rd := route.redirect
	u := *r.URL
	u.Scheme = "http"
	if s := rd.GetSchemeRedirect(); s != "" {
		u.Scheme = s
	} else if rd.GetHttpsRedirect() {
		u.Scheme = "https"
	}
	u.Host = r.Host
	if h := rd.GetHostRedirect(); h != "" {
		u.Host = h
	}
	if port := rd.GetPortRedirect(); port != 0 {
		h, _, _ := cutPort(u.Host)
		u.Host = joinHostPort(h, port)
	}
	if pr := rd.GetPathRedirect(); pr != "" {
		u.Path = pr
	} else if pr := rd.GetPrefixRewrite(); pr != "" && route.match.prefix != "" {
		u.Path = pr + strings.TrimPrefix(u.Path, route.match.prefix)
	}
	if rd.GetStripQuery() {
		u.RawQuery = ""
	}
	code := map[int32]int{0: 301, 1: 302, 2: 303, 3: 307, 4: 308}[int32(rd.GetResponseCode())]
	w.Header().Set("Location", u.String())
	localReply(w, code, "")
}

// forward is one request through the router: host selection, attempts,
// retries, timeouts, stats.
type forward struct {
	p           *Proxy
	rt          *routing
	vh          *virtualHost
	route       *route
	clusterName string
	origDst     string
	dir         string
	start       time.Time
	passthrough bool
	onlyCluster string
}

// attemptResult is how one upstream attempt ended.
type attemptResult struct {
	resp    *http.Response
	fail    failure
	err     error
	host    *host
	cluster *cluster
	cancel  context.CancelFunc
	elapsed time.Duration // from the attempt's start to its response headers
}

func (f *forward) serve(w http.ResponseWriter, r *http.Request) {
	p := f.p
	cl := f.rt.cluster(f.clusterName)
	if cl == nil {
		// Envoy's cluster_not_found_response_code defaults to 503.
		localReply(w, http.StatusServiceUnavailable, "")
		p.recordSource(f.rt, nil, nil, r, http.StatusServiceUnavailable, flagNC, time.Since(f.start))
		return
	}
	if cl.typ == clusterOriginalDst && p.opts.passthrough != nil {
		if _, err := p.addr.hostPort(f.origDst); err != nil {
			p.passthrough(w, r, cl, f.start)
			return
		}
	}
	// The request body is kept for retries, as Envoy buffers it.
	var body []byte
	if r.Body != nil && r.Body != http.NoBody {
		var err error
		body, err = io.ReadAll(r.Body)
		if err != nil {
			localReply(w, http.StatusBadRequest, "")
			return
		}
	}
	var policy *retryPolicy
	timeout := time.Duration(0)
	if f.route != nil {
		policy = f.route.retry.withHeaders(r.Header)
		timeout = f.route.timeout
		if v := r.Header.Get("x-envoy-upstream-rq-timeout-ms"); v != "" {
			if ms, err := strconv.Atoi(v); err == nil && ms >= 0 {
				timeout = time.Duration(ms) * time.Millisecond
			}
		}
	}
	ctx := r.Context()
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	requestID := r.Header.Get("X-Request-Id")
	if requestID == "" {
		requestID = newRequestID()
	}

	lbctx := &lbContext{policy: policy, origDst: f.origDst, onlyCluster: f.onlyCluster}
	retries := 0
	var flags responseFlags
	var last attemptResult
	for attempt := 1; ; attempt++ {
		pk, ok := f.choose(cl, lbctx)
		if !ok {
			flags |= flagUH
			cl.stats.t().cxNoneHealthy.Inc()
			cl.stats.chargeCode(http.StatusServiceUnavailable)
			localReply(w, http.StatusServiceUnavailable, bodyNoHealthyUpstream)
			p.recordSource(f.rt, cl, nil, r, http.StatusServiceUnavailable, flags, time.Since(f.start))
			return
		}
		member := pk.cluster
		if member.overflow() {
			member.stats.t().rqPendingOverflow.Inc()
			flags |= flagUO
			w.Header().Set("X-Envoy-Overloaded", "true")
			localReply(w, http.StatusServiceUnavailable, resetBody("overflow", retries > 0))
			cl.stats.chargeCode(http.StatusServiceUnavailable)
			p.recordSource(f.rt, cl, pk.host, r, http.StatusServiceUnavailable, flags, time.Since(f.start))
			return
		}
		lbctx.attempted = append(lbctx.attempted, pk.host)
		for len(lbctx.attemptedLevels) <= pk.level {
			lbctx.attemptedLevels = append(lbctx.attemptedLevels, false)
		}
		lbctx.attemptedLevels[pk.level] = true

		last = f.attempt(ctx, r, body, pk, cl, policy, timeout, attempt, requestID)
		res := result{local: last.fail}
		if last.resp != nil {
			res.code = last.resp.StatusCode
		}
		if member.outlier != nil {
			member.outlier.report(pk.host, res)
		}

		retriable := false
		switch {
		case last.resp != nil:
			retriable = policy.retriableResponse(last.resp.StatusCode, last.resp.Header.Get("grpc-status"))
		case ctx.Err() != nil:
			// The global timeout: no retry outlives it.
			retriable = false
		default:
			retriable = policy.retriableFailure(last.fail)
		}
		if !retriable {
			break
		}
		// Retries are the router's: counted, and limited by the max_retries
		// circuit breaker, on the route's cluster (an aggregate's own,
		// Envoy's defaults unless the EnvoyFilter sets thresholds).
		rts := cl.stats.t()
		if retries >= policy.numRetries {
			rts.rqRetryLimitExceeded.Inc()
			flags |= flagURX
			break
		}
		if cl.activeRetries.Load() >= cl.maxRetries {
			rts.rqRetryOverflow.Inc()
			break
		}
		// The failed attempt's response is dropped, charged only under
		// retry. (envoy router.cc: chargeBasicResponseStat with the retry
		// stat name); back off, then retry.
		if last.resp != nil {
			cl.stats.chargeRetryCode(last.resp.StatusCode)
			io.Copy(io.Discard, io.LimitReader(last.resp.Body, 64<<10))
			last.resp.Body.Close()
		}
		if last.cancel != nil {
			last.cancel()
		}
		retries++
		rts.rqRetry.Inc()
		cl.activeRetries.Add(1)
		wait := policy.backoff(retries, p.rnd())
		select {
		case <-ctx.Done():
		case <-time.After(wait):
		}
		cl.activeRetries.Add(-1)
		if ctx.Err() != nil {
			last = attemptResult{fail: perTryTimeout, host: pk.host, cluster: member}
			break
		}
	}
	if last.cancel != nil {
		defer last.cancel()
	}
	if last.resp != nil {
		// The final answer: the plain code and class counters,
		// upstream_rq_completed and upstream_rq_time (CodeStats'
		// chargeResponseStat).
		ts := cl.stats.t()
		ts.rqCompleted.Inc()
		cl.stats.chargeCode(last.resp.StatusCode)
		ts.rqTime.Record(float64(last.elapsed.Milliseconds()))
	}
	f.finish(w, r, cl, last, flags, retries, ctx)
}

// choose selects a host, through the aggregate's members when the cluster
// is an aggregate.
func (f *forward) choose(cl *cluster, ctx *lbContext) (pick, bool) {
	switch {
	case cl.typ == clusterAggregate:
		return cl.chooseAggregate(ctx, f.rt.cluster)
	case ctx.onlyCluster != "":
		return cl.chooseOwn(ctx)
	}
	return cl.chooseHost(ctx)
}

// attempt sends the request to one host. Stats fall where Envoy puts them:
// the connection pool's (upstream_rq_total, _active, _pending_*, and the
// connection stats) on the cluster the host belongs to; the router's
// (response codes, upstream_rq_completed, _time, _per_try_timeout) on the
// route's cluster, rc. They differ only through an aggregate cluster.
func (f *forward) attempt(ctx context.Context, in *http.Request, body []byte, pk pick, rc *cluster, policy *retryPolicy, timeout time.Duration, n int, requestID string) attemptResult {
	p := f.p
	h := pk.host
	member := pk.cluster
	mts, rts := member.stats.t(), rc.stats.t()
	actx := ctx
	cancel := context.CancelFunc(func() {})
	perTry := time.Duration(0)
	if policy != nil && policy.perTry > 0 {
		perTry = policy.perTry
		actx, cancel = context.WithTimeout(ctx, perTry)
	}
	out := in.Clone(actx)
	out.RequestURI = ""
	out.URL = &url.URL{Scheme: "http", Host: h.dial, Path: in.URL.Path, RawPath: in.URL.RawPath, RawQuery: in.URL.RawQuery}
	out.Host = in.Host
	if f.route != nil {
		f.route.rewritePath(out.URL)
		if f.route.hostRewrite != "" {
			out.Host = f.route.hostRewrite
		}
	}
	if body != nil {
		out.Body = io.NopCloser(bytes.NewReader(body))
		out.ContentLength = int64(len(body))
	} else {
		out.Body = nil
		out.ContentLength = 0
	}
	for _, k := range hopHeaders {
		out.Header.Del(k)
	}
	hdr := out.Header
	hdr.Set("X-Request-Id", requestID)
	hdr.Set("X-Forwarded-Proto", "http")
	if f.route != nil {
		applyHeaderOps(hdr, append(f.route.reqAdd, f.vh.reqAdd...), append(f.route.reqRemove, f.vh.reqRemove...))
		expected := timeout
		if perTry > 0 && (expected == 0 || perTry < expected) {
			expected = perTry
		}
		if expected > 0 {
			hdr.Set("X-Envoy-Expected-Rq-Timeout-Ms", strconv.FormatInt(expected.Milliseconds(), 10))
		}
		if f.vh.attemptCount {
			hdr.Set("X-Envoy-Attempt-Count", strconv.Itoa(n))
		}
		for _, k := range []string{"x-envoy-retry-on", "x-envoy-retry-grpc-on", "x-envoy-max-retries", "x-envoy-upstream-rq-timeout-ms", "x-envoy-upstream-rq-per-try-timeout-ms", "x-envoy-retriable-status-codes"} {
			hdr.Del(k)
		}
	}
	if !f.passthrough {
		// Istio's metadata exchange: the client's identity travels with the
		// request, as its certificate would under mTLS.
		hdr.Set(headerPeerMetadata, p.peerMeta)
		hdr.Set(headerPeerMetadataID, p.id.NodeID())
	}
	hdr.Del(HeaderSNI)
	if sock := member.socketFor(h); sock != nil {
		if p.secrets != nil {
			// Envoy's TLS transport socket: the dialer makes the
			// connection TLS with this socket's SNI, ALPN and identities.
			out.URL.Scheme = "https"
			out = out.WithContext(withUpstreamTLS(out.Context(), sock))
		} else if sock.sni != "" {
			hdr.Set(HeaderSNI, sock.sni)
		}
	}

	// The pool counts a request once it has a connection, and as pending
	// while it waits for a new one (envoy conn_pool_base.cc).
	var onConn bool
	out = out.WithContext(httptrace.WithClientTrace(out.Context(), &httptrace.ClientTrace{
		GotConn: func(info httptrace.GotConnInfo) {
			onConn = true
			mts.rqTotal.Inc()
			mts.rqActive.Add(1)
			h.rqTotal.Add(1)
		},
		GetConn: func(string) { mts.rqPendingTotal.Inc() },
	}))
	member.activeRq.Add(1)
	h.active.Add(1)
	attemptStart := time.Now()
	resp, err := p.transportFor(member).RoundTrip(out)
	h.active.Add(-1)
	member.activeRq.Add(-1)
	if onConn {
		mts.rqActive.Add(-1)
	}
	if err == nil {
		// The response is charged by serve: under retry. when the router
		// retries it, as the final answer when not.
		if resp.StatusCode >= 500 {
			h.rqError.Add(1)
		} else {
			h.rqSuccess.Add(1)
		}
		return attemptResult{resp: resp, host: h, cluster: member, cancel: cancel, elapsed: time.Since(attemptStart)}
	}
	defer cancel()
	var de *dialError
	switch {
	case errors.As(err, &de):
		h.cxConnectFail.Add(1)
		h.rqError.Add(1)
		mts.rqPendingFailureEject.Inc()
		return attemptResult{fail: connectFailure, err: err, host: h, cluster: member}
	case actx.Err() != nil && ctx.Err() == nil:
		rts.rqPerTryTimeout.Inc()
		h.rqTimeout.Add(1)
		return attemptResult{fail: perTryTimeout, err: err, host: h, cluster: member}
	case ctx.Err() != nil:
		h.rqTimeout.Add(1)
		return attemptResult{fail: perTryTimeout, err: err, host: h, cluster: member}
	default:
		h.rqError.Add(1)
		return attemptResult{fail: resetFailure, err: err, host: h, cluster: member}
	}
}

// finish writes the outcome of the last attempt downstream.
func (f *forward) finish(w http.ResponseWriter, in *http.Request, cl *cluster, last attemptResult, flags responseFlags, retries int, ctx context.Context) {
	p := f.p
	ts := cl.stats.t()
	if last.resp == nil {
		code := http.StatusServiceUnavailable
		var body string
		switch last.fail {
		case connectFailure:
			flags |= flagUF
			body = resetBody("remote connection failure, transport failure reason: delayed connect error: Connection refused", retries > 0)
		case perTryTimeout:
			flags |= flagUT
			code = http.StatusGatewayTimeout
			body = bodyTimeout
			if ctx.Err() != nil {
				ts.rqTimeout.Inc()
			}
		default:
			flags |= flagUC
			body = resetBody("connection termination", retries > 0)
		}
		cl.stats.chargeCode(code)
		localReply(w, code, body)
		p.recordSource(f.rt, cl, last.host, in, code, flags, time.Since(f.start))
		return
	}
	resp := last.resp
	defer resp.Body.Close()
	if retries > 0 && resp.StatusCode < 500 {
		ts.rqRetrySuccess.Inc()
	}
	dest := parsePeer(resp.Header)
	hdr := w.Header()
	for k, vs := range resp.Header {
		hdr[k] = vs
	}
	for _, k := range hopHeaders {
		hdr.Del(k)
	}
	if !f.passthrough {
		// The exchange headers stop at the client's proxy.
		hdr.Del(headerPeerMetadata)
		hdr.Del(headerPeerMetadataID)
	}
	if f.route != nil {
		applyHeaderOps(hdr, append(f.route.respAdd, f.vh.respAdd...), append(f.route.respRemove, f.vh.respRemove...))
	}
	hdr.Set("X-Envoy-Upstream-Service-Time", strconv.FormatInt(time.Since(f.start).Milliseconds(), 10))
	if f.vh != nil && f.vh.attemptCountResponse {
		hdr.Set("X-Envoy-Attempt-Count", strconv.Itoa(retries+1))
	}
	w.WriteHeader(resp.StatusCode)
	var copyErr error
	if resp.ContentLength >= 0 && resp.ContentLength <= 64<<10 {
		// A small body of known length goes out in one write with the
		// headers; flushing per chunk is for streamed answers.
		_, copyErr = copyPlain(w, resp.Body)
	} else {
		_, copyErr = copyFlush(w, resp.Body)
	}
	if copyErr != nil && ctx.Err() != nil {
		ts.rqTimeout.Inc()
		flags |= flagUT
	}
	p.recordSourcePeer(f.rt, cl, last.host, in, resp.StatusCode, flags, time.Since(f.start), dest)
}

// copyFlush streams a response body, flushing as it goes so a slow
// upstream's bytes are not held back.
func copyFlush(w http.ResponseWriter, r io.Reader) (int64, error) {
	fl, _ := w.(http.Flusher)
	bp := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(bp)
	buf := *bp
	var n int64
	for {
		k, err := r.Read(buf)
		if k > 0 {
			if _, werr := w.Write(buf[:k]); werr != nil {
				return n, werr
			}
			n += int64(k)
			if fl != nil {
				fl.Flush()
			}
		}
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return n, err
		}
	}
}

// copyBufs are the body copy buffers, reused: a fresh 32 KiB per request
// is most of what a proxied request would allocate.
var copyBufs = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

func copyPlain(w io.Writer, r io.Reader) (int64, error) {
	bp := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(bp)
	return io.CopyBuffer(w, r, *bp)
}

// recordSource counts a request the sidecar sent out (reporter=source) when
// no peer answered.
func (p *Proxy) recordSource(rt *routing, cl *cluster, h *host, r *http.Request, code int, flags responseFlags, d time.Duration) {
	p.recordSourcePeer(rt, cl, h, r, code, flags, d, nil)
}

func (p *Proxy) recordSourcePeer(rt *routing, cl *cluster, h *host, r *http.Request, code int, flags responseFlags, d time.Duration, dest *peer) {
	if r.Context().Value(noIstioStatsKey{}) != nil {
		return
	}
	if p.id.Kind != Sidecar && p.id.Labels["istio"] != "ingressgateway" {
		// East-west gateways in passthrough report no request metrics.
		return
	}
	reporter := "source"
	rec := &requestRecord{reporter: reporter, source: p.self, dest: dest, code: code, flags: flags, duration: d}
	rec.destService = destinationService(cl, h, rt, r, p.id.Namespace)
	p.store.requests.record(rec.values(), d)
}

// destinationService is the service a request went to, as Istio's stats
// filter names it: from the metadata of the cluster the host belongs to,
// else of the routed cluster, else from the Host header.
func destinationService(cl *cluster, h *host, rt *routing, r *http.Request, ns string) string {
	if cl != nil && cl.typ == clusterAggregate && h != nil && rt != nil {
		for _, m := range cl.members {
			if mc := rt.cluster(m); mc != nil && mc.has(h) && len(mc.services) > 0 {
				return mc.services[0].host
			}
		}
	}
	if cl != nil && len(cl.services) > 0 {
		return cl.services[0].host
	}
	return serviceFromHost(r.Host, ns)
}

func (cl *cluster) has(h *host) bool {
	cl.mu.RLock()
	defer cl.mu.RUnlock()
	for _, x := range cl.hosts {
		if x == h {
			return true
		}
	}
	return false
}

// serviceFromHost expands a Host header to a service's full name the way
// Kubernetes DNS search paths would from namespace ns.
func serviceFromHost(hostport, ns string) string {
	host, _, _ := cutPort(hostport)
	if host == "" {
		return ""
	}
	if _, err := netip.ParseAddr(strings.Trim(host, "[]")); err == nil {
		// An address names no service; Istio reports it unknown.
		return ""
	}
	switch strings.Count(host, ".") {
	case 0:
		return host + "." + ns + ".svc.cluster.local"
	case 1:
		return host + ".svc.cluster.local"
	}
	if strings.HasSuffix(host, ".svc") {
		return host + ".cluster.local"
	}
	return host
}

// inboundHandler serves one of the pod's ports: the destination side of the
// metadata exchange and of istio_requests_total.
func (p *Proxy) inboundHandler(in Inbound) (http.Handler, error) {
	var app http.Handler
	switch {
	case in.Handler != nil:
		app = in.Handler
	case in.Target != "":
		if _, err := p.addr.hostPort(in.Target); err != nil {
			return nil, fmt.Errorf("proxy %s: inbound port %d: target %q: %w", p.id.NodeID(), in.Port, in.Target, err)
		}
		app = p.appProxy(in.Target)
	default:
		return nil, fmt.Errorf("proxy %s: inbound port %d has neither a handler nor a target", p.id.NodeID(), in.Port)
	}
	prefix := "cluster.inbound|" + strconv.Itoa(in.Port) + "||;."
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		if !p.Ready() {
			// Before its configuration a sidecar has no inbound listener:
			// the connection would be refused.
			localReply(w, http.StatusServiceUnavailable, resetBody("remote connection failure", false))
			return
		}
		src := parsePeer(r.Header)
		r.Header.Del(headerPeerMetadata)
		r.Header.Del(headerPeerMetadataID)
		r.Header.Del(HeaderSNI)
		if xff := r.Header.Get("X-Forwarded-For"); xff == "" {
			if h, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
				a := netip.MustParseAddr(h)
				if !p.addr.podNetwork {
					a = APIAddress(a)
				}
				r.Header.Set("X-Forwarded-For", a.String())
			}
		}
		if r.Header.Get("X-Request-Id") == "" {
			r.Header.Set("X-Request-Id", newRequestID())
		}
		rec := &statusRecorder{ResponseWriter: w, code: http.StatusOK}
		// The destination's metadata goes back with the response.
		w.Header().Set(headerPeerMetadata, p.peerMeta)
		w.Header().Set(headerPeerMetadataID, p.id.NodeID())
		// The inbound HTTP filters before the router: a fault filter an
		// EnvoyFilter inserted may delay the request or answer it.
		answered := false
		port := in.Port
		if a, ok := r.Context().Value(http.LocalAddrContextKey).(*net.TCPAddr); ok && port == 0 {
			port = a.Port // a port bound as 0: the one the kernel gave
		}
		if ff := p.inboundFault(port, r.TLS != nil); ff != nil {
			answered, rec.flags = ff.apply(r.Context(), rec, p)
		}
		if !answered {
			app.ServeHTTP(rec, r)
		}
		p.store.Counter(prefix + "upstream_rq_total").Inc()
		p.store.Counter(prefix + "upstream_rq_" + strconv.Itoa(rec.code)).Inc()
		svc := p.inboundService(in.Port)
		if svc == "" {
			svc = serviceFromHost(r.Host, p.id.Namespace)
		}
		out := &requestRecord{
			reporter: "destination", source: src, dest: p.self, code: rec.code, flags: rec.flags,
			destService: svc, mtls: r.TLS != nil || (p.secrets == nil && src != nil), duration: time.Since(start),
		}
		p.store.requests.record(out.values(), out.duration)
	}), nil
}

// inboundService is the service a request to the pod's port belongs to:
// the service whose endpoints (in EDS) include this pod at that port, as
// Istio's inbound listener knows it from the pod's services.
func (p *Proxy) inboundService(port int) string {
	rt := p.routing.Load()
	want := joinHostPort(p.id.IP.String(), uint32(port))
	best := ""
	for name, cl := range rt.clusters {
		if len(cl.services) == 0 || !strings.HasPrefix(name, "outbound|") {
			continue
		}
		cl.mu.RLock()
		for _, h := range cl.hosts {
			if h.addr == want && (best == "" || cl.services[0].host < best) {
				best = cl.services[0].host
			}
		}
		cl.mu.RUnlock()
	}
	return best
}

type statusRecorder struct {
	http.ResponseWriter
	code  int
	wrote bool
	flags responseFlags
}

func (s *statusRecorder) WriteHeader(code int) {
	if !s.wrote {
		s.code, s.wrote = code, true
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	s.wrote = true
	return s.ResponseWriter.Write(b)
}

func (s *statusRecorder) Flush() {
	if f, ok := s.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// serveCapturedInbound is Istio's virtualInbound listener (15006): a
// connection iptables redirected from the pod's port P is served as the
// pod's inbound port P, and its requests go on to the application at the
// original destination.
func (p *Proxy) serveCapturedInbound(w http.ResponseWriter, r *http.Request) {
	od, ok := originalDstOf(r.Context())
	if !ok {
		localReply(w, http.StatusNotFound, "")
		return
	}
	port := int(od.Port())
	if h, ok := p.inbound.Load(port); ok {
		h.(http.Handler).ServeHTTP(w, r)
		return
	}
	h, err := p.inboundHandler(Inbound{Port: port, Target: od.String()})
	if err != nil {
		p.log.Error("inbound", "port", port, "err", err)
		localReply(w, http.StatusServiceUnavailable, resetBody("remote connection failure", false))
		return
	}
	v, _ := p.inbound.LoadOrStore(port, h)
	v.(http.Handler).ServeHTTP(w, r)
}

// appProxy forwards inbound requests to the application at target, like
// Istio's inbound cluster to 127.0.0.1:<port>. Inside a pod it connects to
// the pod's own address from 127.0.0.6, as Istio's inbound clusters do, so
// iptables lets the connection through.
func (p *Proxy) appProxy(target string) http.Handler {
	dial, _ := p.addr.hostPort(target)
	tr := &http.Transport{MaxIdleConnsPerHost: 64, DisableCompression: true, IdleConnTimeout: time.Hour}
	if p.addr.podNetwork {
		d := &net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(InboundPassthroughSource)}}
		tr.DialContext = d.DialContext
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		out := r.Clone(r.Context())
		out.RequestURI = ""
		out.URL = &url.URL{Scheme: "http", Host: dial, Path: r.URL.Path, RawPath: r.URL.RawPath, RawQuery: r.URL.RawQuery}
		for _, k := range hopHeaders {
			out.Header.Del(k)
		}
		resp, err := tr.RoundTrip(out)
		if err != nil {
			sr, _ := w.(*statusRecorder)
			if sr != nil {
				sr.flags |= flagUF
			}
			localReply(w, http.StatusServiceUnavailable, resetBody("remote connection failure, transport failure reason: delayed connect error: Connection refused", false))
			return
		}
		defer resp.Body.Close()
		for k, vs := range resp.Header {
			w.Header()[k] = vs
		}
		for _, k := range hopHeaders {
			w.Header().Del(k)
		}
		w.WriteHeader(resp.StatusCode)
		if resp.ContentLength >= 0 && resp.ContentLength <= 64<<10 {
			_, _ = copyPlain(w, resp.Body)
		} else {
			_, _ = copyFlush(w, resp.Body)
		}
	})
}

// newRequestID is a random UUID (version 4) for x-request-id, which Envoy's
// connection manager generates when a request has none.
func newRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
