package load

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"time"
)

// newClient builds the HTTP client an attack hands to vegeta (vegeta.Client). It is
// set up as vegeta.NewAttacker and `vegeta attack` set up theirs — same dialer
// keep-alive, proxy from the environment, idle and per-host connection limits, HTTP/2
// and keep-alive switches — with one addition: every request is also cancelled when
// abort is. vegeta's Attacker.Stop stops sending but lets requests in flight run to
// their timeout (30 s by default), and vegeta builds requests without a context, so a
// drill aborted by Ctrl-C against a hung gateway would otherwise hang as long.
func newClient(c *config, abort context.Context) *http.Client {
	dialer := &net.Dialer{KeepAlive: 30 * time.Second}
	tr := &http.Transport{
		Proxy:               http.ProxyFromEnvironment,
		DialContext:         dialer.DialContext,
		MaxIdleConnsPerHost: c.connections,
		MaxConnsPerHost:     c.maxConnections,
		DisableKeepAlives:   !c.keepAlive,
		TLSClientConfig:     c.tls.Clone(),
		// With a custom dialer net/http only tries HTTP/2 when asked; vegeta asks
		// through golang.org/x/net/http2.ConfigureTransport, which amounts to this.
		ForceAttemptHTTP2: c.http2,
	}
	if !c.keepAlive {
		dialer.KeepAlive = 0 // as vegeta.KeepAlive(false)
	}
	if !c.http2 {
		// An empty, non-nil TLSNextProto is net/http's documented way to disable
		// HTTP/2; it is what vegeta.HTTP2(false) does.
		tr.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
	}
	// The timeout is applied by abortable rather than http.Client.Timeout: for a
	// RoundTripper it does not know, http.Client enforces Timeout with a goroutine and
	// a timer per request, a cost vegeta's own client does not pay.
	return &http.Client{Transport: &abortable{
		abort:   abort,
		timeout: c.timeout,
		cause:   fmt.Errorf("request timeout %s exceeded", c.timeout),
		rt:      tr,
	}}
}

// abortable bounds a request, body included, by timeout and cancels it when abort is
// done.
type abortable struct {
	abort   context.Context
	timeout time.Duration
	cause   error // of a timeout, for the result's error text
	rt      *http.Transport
}

func (a *abortable) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx, cancel := context.WithTimeoutCause(req.Context(), a.timeout, a.cause)
	stop := context.AfterFunc(a.abort, cancel)
	release := func() {
		stop()
		cancel()
	}
	resp, err := a.rt.RoundTrip(req.WithContext(ctx))
	if err != nil {
		release()
		return nil, err
	}
	// The body is read after RoundTrip returns, so the context lives until it is
	// closed.
	resp.Body = &releaseOnClose{ReadCloser: resp.Body, release: release}
	return resp, nil
}

// CloseIdleConnections lets http.Client.CloseIdleConnections reach the transport.
func (a *abortable) CloseIdleConnections() { a.rt.CloseIdleConnections() }

type releaseOnClose struct {
	io.ReadCloser
	once    sync.Once
	release func()
}

func (r *releaseOnClose) Close() error {
	err := r.ReadCloser.Close()
	r.once.Do(r.release)
	return err
}
