package envoyemu

import (
	"context"
	"fmt"
	"net/http"
	"time"

	faultv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/fault/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
)

// Envoy's HTTP fault filter (envoy.filters.http.fault; envoy docs:
// configuration/http/http_filters/fault_filter), as an EnvoyFilter puts it
// into a sidecar's inbound HTTP connection manager: a share of requests is
// delayed, a share answered with an HTTP status by the filter itself. The
// emulation runs it on the inbound side, before the application; header
// controlled faults, rate limits and gRPC aborts are not emulated.

const typeHTTPFault = "type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault"

// faultFilter is a compiled HTTPFault.
type faultFilter struct {
	abortStatus  int
	abortPerMil  uint64 // per million
	delay        time.Duration
	delayPerMil  uint64
	statPrefix   string // http.<stat_prefix>.
	hasAbort     bool
	hasDelayRule bool
}

// perMillion is a FractionalPercent over a million.
func perMillion(p *typev3.FractionalPercent) uint64 {
	if p == nil {
		return 0
	}
	n := uint64(p.GetNumerator())
	switch p.GetDenominator() {
	case typev3.FractionalPercent_HUNDRED:
		n *= 10000
	case typev3.FractionalPercent_TEN_THOUSAND:
		n *= 100
	}
	return min(n, 1000000)
}

// compileFault reads the fault filter among an HTTP connection manager's
// filters; nil when there is none.
func compileFault(hcm *hcmv3.HttpConnectionManager) (*faultFilter, error) {
	for _, f := range hcm.GetHttpFilters() {
		if f.GetTypedConfig().GetTypeUrl() != typeHTTPFault {
			continue
		}
		cfg := &faultv3.HTTPFault{}
		if err := f.GetTypedConfig().UnmarshalTo(cfg); err != nil {
			return nil, fmt.Errorf("http filter %q: %w", f.GetName(), err)
		}
		ff := &faultFilter{statPrefix: "http." + hcm.GetStatPrefix() + "."}
		if a := cfg.GetAbort(); a != nil && a.GetHttpStatus() != 0 {
			ff.hasAbort = true
			ff.abortStatus = int(a.GetHttpStatus())
			ff.abortPerMil = perMillion(a.GetPercentage())
		}
		if d := cfg.GetDelay(); d != nil && d.GetFixedDelay() != nil {
			ff.hasDelayRule = true
			ff.delay = d.GetFixedDelay().AsDuration()
			ff.delayPerMil = perMillion(d.GetPercentage())
		}
		if !ff.hasAbort && !ff.hasDelayRule {
			// Istio puts an empty fault filter in its HTTP connection
			// managers (for VirtualService faults, configured per route);
			// an EnvoyFilter's comes on top of it.
			continue
		}
		return ff, nil
	}
	return nil, nil
}

// apply runs the filter on a request: it may hold the request for the
// delay, then may answer it itself. It reports whether it answered, and
// the response flags to record (DI for a delay, FI for an abort).
func (ff *faultFilter) apply(ctx context.Context, w http.ResponseWriter, p *Proxy) (answered bool, flags responseFlags) {
	if ff.hasDelayRule && p.rnd()%1000000 < ff.delayPerMil {
		p.store.Counter(ff.statPrefix + "fault.delays_injected").Inc()
		flags |= flagDI
		t := time.NewTimer(ff.delay)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return true, flags
		}
	}
	if ff.hasAbort && p.rnd()%1000000 < ff.abortPerMil {
		p.store.Counter(ff.statPrefix + "fault.aborts_injected").Inc()
		localReply(w, ff.abortStatus, "fault filter abort")
		return true, flags | flagFI
	}
	return false, flags
}

// inboundFault is the fault filter of the inbound filter chain a request to
// port came through (over TLS or not), nil when that chain has none.
func (p *Proxy) inboundFault(port int, tls bool) *faultFilter {
	li := p.routing.Load().listeners[virtualInboundListener]
	if li == nil {
		return nil
	}
	transport := "raw_buffer"
	if tls {
		transport = "tls"
	}
	var byPort, portless []*chainInfo
	for _, c := range li.chains {
		if c.transport != "" && c.transport != transport {
			continue
		}
		switch {
		case c.destPort == uint32(port) && port != 0:
			byPort = append(byPort, c)
		case c.destPort == 0:
			portless = append(portless, c)
		}
	}
	if len(byPort) == 0 {
		byPort = portless
	}
	for _, c := range byPort {
		if c.fault != nil {
			return c.fault
		}
	}
	return nil
}
