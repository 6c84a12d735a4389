package envoyemu

import (
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	previouspriorities "github.com/envoyproxy/go-control-plane/envoy/extensions/retry/priority/previous_priorities/v3"
)

// retryOn is the set of retry conditions of Envoy's retry_on (envoy docs:
// configuration/http/http_filters/router_filter, x-envoy-retry-on).
type retryOn uint32

const (
	retry5xx retryOn = 1 << iota
	retryGatewayError
	retryConnectFailure
	retryRetriable4xx
	retryRefusedStream
	retryRetriableStatusCodes
	retryReset
	retryResetBeforeRequest
	retryEnvoyRateLimited
	retryHTTP3PostConnectFailure
	// gRPC conditions, read from grpc-status.
	retryCancelled
	retryDeadlineExceeded
	retryInternal
	retryResourceExhausted
	retryUnavailable
)

var retryOnNames = map[string]retryOn{
	"5xx":                        retry5xx,
	"gateway-error":              retryGatewayError,
	"connect-failure":            retryConnectFailure,
	"retriable-4xx":              retryRetriable4xx,
	"refused-stream":             retryRefusedStream,
	"retriable-status-codes":     retryRetriableStatusCodes,
	"reset":                      retryReset,
	"reset-before-request":       retryResetBeforeRequest,
	"envoy-ratelimited":          retryEnvoyRateLimited,
	"http3-post-connect-failure": retryHTTP3PostConnectFailure,
	"retriable-headers":          0, // needs retriable_headers; unsupported matchers are ignored
	"cancelled":                  retryCancelled,
	"deadline-exceeded":          retryDeadlineExceeded,
	"internal":                   retryInternal,
	"resource-exhausted":         retryResourceExhausted,
	"unavailable":                retryUnavailable,
}

// parseRetryOn reads a retry_on list. Envoy ignores names it does not know
// in the header form; in configuration they are errors.
func parseRetryOn(s string, strict bool) (retryOn, error) {
	var on retryOn
	for _, n := range strings.Split(s, ",") {
		n = strings.TrimSpace(n)
		if n == "" {
			continue
		}
		v, ok := retryOnNames[n]
		if !ok {
			if strict {
				return 0, fmt.Errorf("retry_on %q is not a retry condition Envoy knows", n)
			}
			continue
		}
		on |= v
	}
	return on, nil
}

type retryPolicy struct {
	on          retryOn
	numRetries  int
	perTry      time.Duration
	statusCodes []uint32
	// previousHosts is the envoy.retry_host_predicates.previous_hosts
	// predicate: a retry avoids hosts already tried, re-picking up to
	// hostSelectionMax times.
	previousHosts    bool
	hostSelectionMax int
	// previousPriorities is envoy.retry_priorities.previous_priorities: a
	// retry avoids the priority levels already tried, from the
	// updateFrequency-th attempted host on (lbContext.retryPriorityLoad).
	previousPriorities bool
	updateFrequency    int
	baseInterval       time.Duration
	maxInterval        time.Duration
}

const (
	defaultRetryBase = 25 * time.Millisecond
)

func compileRetryPolicy(p *routev3.RetryPolicy) (*retryPolicy, error) {
	on, err := parseRetryOn(p.GetRetryOn(), true)
	if err != nil {
		return nil, err
	}
	rp := &retryPolicy{
		on:          on,
		numRetries:  1, // Envoy's default when num_retries is unset
		perTry:      p.GetPerTryTimeout().AsDuration(),
		statusCodes: p.GetRetriableStatusCodes(),
		// Envoy's default: a retry picks a host once.
		hostSelectionMax: 1,
		baseInterval:     defaultRetryBase,
	}
	if p.GetNumRetries() != nil {
		rp.numRetries = int(p.GetNumRetries().GetValue())
	}
	if p.GetHostSelectionRetryMaxAttempts() > 0 {
		rp.hostSelectionMax = int(p.GetHostSelectionRetryMaxAttempts())
	}
	for _, hp := range p.GetRetryHostPredicate() {
		switch hp.GetName() {
		case "envoy.retry_host_predicates.previous_hosts":
			rp.previousHosts = true
		default:
			// Other predicates (omit_canary_hosts, omit_host_metadata) keep
			// every host here: the emulation has no canaries and no
			// host metadata to omit by.
		}
	}
	if pr := p.GetRetryPriority(); pr != nil {
		if pr.GetName() != "envoy.retry_priorities.previous_priorities" {
			return nil, fmt.Errorf("retry priority %q is not supported", pr.GetName())
		}
		rp.previousPriorities = true
		rp.updateFrequency = 1
		if tc := pr.GetTypedConfig(); tc != nil {
			cfg := &previouspriorities.PreviousPrioritiesConfig{}
			if err := tc.UnmarshalTo(cfg); err != nil {
				return nil, fmt.Errorf("retry priority %q: %w", pr.GetName(), err)
			}
			if cfg.GetUpdateFrequency() > 0 {
				rp.updateFrequency = int(cfg.GetUpdateFrequency())
			}
		}
	}
	if b := p.GetRetryBackOff(); b != nil {
		if b.GetBaseInterval() != nil {
			rp.baseInterval = b.GetBaseInterval().AsDuration()
		}
		if b.GetMaxInterval() != nil {
			rp.maxInterval = b.GetMaxInterval().AsDuration()
		}
	}
	if rp.maxInterval == 0 {
		// Envoy's default max interval is ten times the base.
		rp.maxInterval = 10 * rp.baseInterval
	}
	if rp.maxInterval < rp.baseInterval {
		return nil, fmt.Errorf("retry back-off max_interval %s is shorter than base_interval %s", rp.maxInterval, rp.baseInterval)
	}
	return rp, nil
}

// withHeaders applies the x-envoy-retry-on, x-envoy-retry-grpc-on,
// x-envoy-max-retries and x-envoy-upstream-rq-per-try-timeout-ms headers
// Envoy honours on requests from inside the mesh.
func (rp *retryPolicy) withHeaders(h http.Header) *retryPolicy {
	on := h.Get("x-envoy-retry-on")
	grpcOn := h.Get("x-envoy-retry-grpc-on")
	max := h.Get("x-envoy-max-retries")
	perTry := h.Get("x-envoy-upstream-rq-per-try-timeout-ms")
	if on == "" && grpcOn == "" && max == "" && perTry == "" {
		return rp
	}
	out := &retryPolicy{numRetries: 1, hostSelectionMax: 1, baseInterval: defaultRetryBase, maxInterval: 10 * defaultRetryBase}
	if rp != nil {
		c := *rp
		c.statusCodes = slices.Clone(rp.statusCodes)
		out = &c
	}
	if on != "" || grpcOn != "" {
		v, _ := parseRetryOn(on+","+grpcOn, false)
		out.on |= v
	}
	if n, err := strconv.Atoi(max); err == nil && n >= 0 {
		out.numRetries = n
	}
	if ms, err := strconv.Atoi(perTry); err == nil && ms > 0 {
		out.perTry = time.Duration(ms) * time.Millisecond
	}
	if codes := h.Get("x-envoy-retriable-status-codes"); codes != "" {
		for _, c := range strings.Split(codes, ",") {
			if n, err := strconv.Atoi(strings.TrimSpace(c)); err == nil {
				out.statusCodes = append(out.statusCodes, uint32(n))
			}
		}
	}
	return out
}

// failure is how an attempt ended when it did not end with a response.
type failure int

const (
	noFailure      failure = iota
	connectFailure         // connection refused or connect timeout: UF
	resetFailure           // connection reset or closed before a response: UC
	perTryTimeout          // per_try_timeout expired: UT
)

// retriableResponse says whether a response with this status (and gRPC
// status, when present) may be retried under the policy (envoy
// source/common/router/retry_state_impl.cc, wouldRetryFromHeaders).
func (rp *retryPolicy) retriableResponse(code int, grpcStatus string) bool {
	if rp == nil {
		return false
	}
	if rp.on&retry5xx != 0 && code >= 500 && code < 600 {
		return true
	}
	if rp.on&retryGatewayError != 0 && (code == 502 || code == 503 || code == 504) {
		return true
	}
	if rp.on&retryRetriable4xx != 0 && code == 409 {
		return true
	}
	if rp.on&retryRetriableStatusCodes != 0 && slices.Contains(rp.statusCodes, uint32(code)) {
		return true
	}
	switch grpcStatus {
	case "1":
		return rp.on&retryCancelled != 0
	case "4":
		return rp.on&retryDeadlineExceeded != 0
	case "8":
		return rp.on&retryResourceExhausted != 0
	case "13":
		return rp.on&retryInternal != 0
	case "14":
		return rp.on&retryUnavailable != 0
	}
	return false
}

// retriableFailure says whether an attempt that ended without a response may
// be retried (retry_state_impl.cc, wouldRetryFromReset): a connect failure
// with connect-failure, any reset or per-try timeout with 5xx,
// gateway-error or reset.
func (rp *retryPolicy) retriableFailure(f failure) bool {
	if rp == nil || f == noFailure {
		return false
	}
	if f == connectFailure && rp.on&retryConnectFailure != 0 {
		return true
	}
	return rp.on&(retry5xx|retryGatewayError|retryReset) != 0
}

// backoff is Envoy's jittered exponential back-off before retry n (from 1):
// a random duration in [0, min(max, base × (2^n − 1))] (envoy
// source/common/common/backoff_strategy.cc, JitteredExponentialBackOffStrategy).
func (rp *retryPolicy) backoff(n int, rnd uint64) time.Duration {
	ceiling := rp.baseInterval
	for i := 1; i < n && ceiling < rp.maxInterval; i++ {
		ceiling = 2*ceiling + rp.baseInterval
	}
	ceiling = min(ceiling, rp.maxInterval)
	if ceiling <= 0 {
		return 0
	}
	return time.Duration(rnd % uint64(ceiling))
}
