package envoyemu

import (
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
)

// routeTable is a compiled RouteConfiguration: virtual hosts found by domain
// in Envoy's order — exact domains, then the longest "*.suffix", then the
// longest "prefix.*", then "*" (envoy api v3 route_components.proto,
// VirtualHost.domains).
type routeTable struct {
	name   string
	exact  map[string]*virtualHost
	suffix []domainEntry // "*.example.com": longest first
	prefix []domainEntry // "example.*": longest first
	star   *virtualHost
}

type domainEntry struct {
	part string // the domain without its '*'
	vh   *virtualHost
}

type virtualHost struct {
	name         string
	routes       []*route
	retry        *retryPolicy
	attemptCount bool
	// attemptCountResponse: include_attempt_count_in_response.
	attemptCountResponse bool
	reqAdd               []headerOp
	reqRemove            []string
	respAdd              []headerOp
	respRemove           []string
}

type routeKind int

const (
	routeCluster routeKind = iota
	routeWeighted
	routeClusterHeader
	routeDirect
	routeRedirect
)

type route struct {
	name  string
	match routeMatch
	kind  routeKind

	cluster       string
	clusterHeader string
	weighted      []weightedCluster
	totalWeight   uint64

	directStatus int
	directBody   string

	redirect *routev3.RedirectAction

	// timeout is the route's upstream timeout; 0 means none. Envoy's
	// default when a route sets none is 15 s; Istio always sets it (0 unless
	// the VirtualService has a timeout).
	timeout       time.Duration
	retry         *retryPolicy
	prefixRewrite string
	hostRewrite   string
	reqAdd        []headerOp
	reqRemove     []string
	respAdd       []headerOp
	respRemove    []string
	operation     string // decorator, sent as x-envoy-decorator-operation
}

type weightedCluster struct {
	name   string
	weight uint64
}

type headerOp struct {
	key, value string
	appendIt   bool
}

type routeMatch struct {
	prefix          string
	path            string
	regex           *regexp.Regexp
	separatedPrefix string
	caseSensitive   bool
	headers         []headerMatch
	query           []queryMatch
}

type headerMatch struct {
	name        string
	invert      bool
	missingOK   bool // treat_missing_header_as_empty
	present     *bool
	str         *stringMatch
	rangeLo     int64
	rangeHi     int64
	isRange     bool
	description string
}

type queryMatch struct {
	name    string
	present bool
	str     *stringMatch
}

type stringMatch struct {
	exact, prefix, suffix, contains *string
	regex                           *regexp.Regexp
	ignoreCase                      bool
}

func (m *stringMatch) match(v string) bool {
	if m.ignoreCase {
		v = strings.ToLower(v)
	}
	switch {
	case m.exact != nil:
		return v == *m.exact
	case m.prefix != nil:
		return strings.HasPrefix(v, *m.prefix)
	case m.suffix != nil:
		return strings.HasSuffix(v, *m.suffix)
	case m.contains != nil:
		return strings.Contains(v, *m.contains)
	case m.regex != nil:
		return m.regex.MatchString(v)
	}
	return false
}

// compileRegex compiles an Envoy safe_regex (RE2, which Go's regexp
// implements) for a full match, as Envoy's matchers require.
func compileRegex(re string) (*regexp.Regexp, error) {
	r, err := regexp.Compile(`^(?:` + re + `)$`)
	if err != nil {
		return nil, fmt.Errorf("regex %q: %w", re, err)
	}
	return r, nil
}

func compileStringMatcher(sm *matcherv3.StringMatcher) (*stringMatch, error) {
	m := &stringMatch{ignoreCase: sm.GetIgnoreCase()}
	low := func(s string) *string {
		if m.ignoreCase {
			s = strings.ToLower(s)
		}
		return &s
	}
	switch p := sm.GetMatchPattern().(type) {
	case *matcherv3.StringMatcher_Exact:
		m.exact = low(p.Exact)
	case *matcherv3.StringMatcher_Prefix:
		m.prefix = low(p.Prefix)
	case *matcherv3.StringMatcher_Suffix:
		m.suffix = low(p.Suffix)
	case *matcherv3.StringMatcher_Contains:
		m.contains = low(p.Contains)
	case *matcherv3.StringMatcher_SafeRegex:
		re, err := compileRegex(p.SafeRegex.GetRegex())
		if err != nil {
			return nil, err
		}
		m.regex = re
	default:
		return nil, fmt.Errorf("string matcher %T is not supported", p)
	}
	return m, nil
}

// compileRouteTable validates and compiles a RouteConfiguration. An error
// NACKs the whole RDS response, as Envoy rejects a route configuration it
// cannot build.
func compileRouteTable(rc *routev3.RouteConfiguration) (*routeTable, error) {
	t := &routeTable{name: rc.GetName(), exact: map[string]*virtualHost{}}
	for _, v := range rc.GetVirtualHosts() {
		vh, err := compileVirtualHost(v)
		if err != nil {
			return nil, fmt.Errorf("route configuration %q: virtual host %q: %w", rc.GetName(), v.GetName(), err)
		}
		for _, d := range v.GetDomains() {
			d = strings.ToLower(d)
			switch {
			case d == "*":
				if t.star != nil {
					return nil, fmt.Errorf("route configuration %q: only a single wildcard domain is permitted (virtual host %q)", rc.GetName(), v.GetName())
				}
				t.star = vh
			case strings.HasPrefix(d, "*"):
				t.suffix = append(t.suffix, domainEntry{d[1:], vh})
			case strings.HasSuffix(d, "*"):
				t.prefix = append(t.prefix, domainEntry{d[:len(d)-1], vh})
			default:
				if _, dup := t.exact[d]; dup {
					// Envoy rejects duplicate domains across virtual hosts.
					return nil, fmt.Errorf("route configuration %q: duplicate domain %q", rc.GetName(), d)
				}
				t.exact[d] = vh
			}
		}
	}
	longestFirst := func(a, b domainEntry) int { return len(b.part) - len(a.part) }
	slices.SortStableFunc(t.suffix, longestFirst)
	slices.SortStableFunc(t.prefix, longestFirst)
	return t, nil
}

// virtualHost finds the virtual host for a Host header. Envoy matches the
// host with its port first and, failing that (Istio's HCM strips the port
// for matching, strip_any_host_port), without it.
func (t *routeTable) virtualHost(host string) *virtualHost {
	host = strings.ToLower(host)
	if vh := t.lookup(host); vh != nil {
		return vh
	}
	if h, _, ok := cutPort(host); ok {
		if vh := t.lookup(h); vh != nil {
			return vh
		}
	}
	return t.star
}

func (t *routeTable) lookup(host string) *virtualHost {
	if vh, ok := t.exact[host]; ok {
		return vh
	}
	for _, e := range t.suffix {
		if strings.HasSuffix(host, e.part) && len(host) > len(e.part) {
			return e.vh
		}
	}
	for _, e := range t.prefix {
		if strings.HasPrefix(host, e.part) && len(host) > len(e.part) {
			return e.vh
		}
	}
	return nil
}

// cutPort splits "host:port"; IPv6 literals keep their brackets.
func cutPort(hostport string) (host, port string, ok bool) {
	i := strings.LastIndexByte(hostport, ':')
	if i < 0 || strings.HasSuffix(hostport, "]") {
		return hostport, "", false
	}
	if _, err := strconv.Atoi(hostport[i+1:]); err != nil {
		return hostport, "", false
	}
	return hostport[:i], hostport[i+1:], true
}

func compileVirtualHost(v *routev3.VirtualHost) (*virtualHost, error) {
	vh := &virtualHost{
		name:                 v.GetName(),
		attemptCount:         v.GetIncludeRequestAttemptCount(),
		attemptCountResponse: v.GetIncludeAttemptCountInResponse(),
		reqAdd:               headerOps(v.GetRequestHeadersToAdd()),
		reqRemove:            v.GetRequestHeadersToRemove(),
		respAdd:              headerOps(v.GetResponseHeadersToAdd()),
		respRemove:           v.GetResponseHeadersToRemove(),
	}
	if v.GetRetryPolicy() != nil {
		rp, err := compileRetryPolicy(v.GetRetryPolicy())
		if err != nil {
			return nil, err
		}
		vh.retry = rp
	}
	for i, r := range v.GetRoutes() {
		cr, err := compileRoute(r, vh)
		if err != nil {
			return nil, fmt.Errorf("route %d (%q): %w", i, r.GetName(), err)
		}
		vh.routes = append(vh.routes, cr)
	}
	return vh, nil
}

func headerOps(hs []*corev3.HeaderValueOption) []headerOp {
	var out []headerOp
	for _, h := range hs {
		appendIt := h.GetAppendAction() == corev3.HeaderValueOption_APPEND_IF_EXISTS_OR_ADD
		if h.GetAppend() != nil {
			appendIt = h.GetAppend().GetValue()
		}
		out = append(out, headerOp{key: h.GetHeader().GetKey(), value: h.GetHeader().GetValue(), appendIt: appendIt})
	}
	return out
}

func applyHeaderOps(h http.Header, ops []headerOp, remove []string) {
	for _, k := range remove {
		h.Del(k)
	}
	for _, op := range ops {
		if strings.HasPrefix(op.key, ":") {
			continue // pseudo-headers are Envoy's own
		}
		if op.appendIt {
			h.Add(op.key, op.value)
		} else {
			h.Set(op.key, op.value)
		}
	}
}

func compileRoute(r *routev3.Route, vh *virtualHost) (*route, error) {
	cr := &route{
		name:       r.GetName(),
		reqAdd:     headerOps(r.GetRequestHeadersToAdd()),
		reqRemove:  r.GetRequestHeadersToRemove(),
		respAdd:    headerOps(r.GetResponseHeadersToAdd()),
		respRemove: r.GetResponseHeadersToRemove(),
		operation:  r.GetDecorator().GetOperation(),
	}
	m := r.GetMatch()
	if m == nil {
		return nil, fmt.Errorf("route has no match")
	}
	cr.match.caseSensitive = m.GetCaseSensitive() == nil || m.GetCaseSensitive().GetValue()
	switch p := m.GetPathSpecifier().(type) {
	case *routev3.RouteMatch_Prefix:
		cr.match.prefix = p.Prefix
		if cr.match.prefix == "" {
			cr.match.prefix = "/"
		}
	case *routev3.RouteMatch_Path:
		cr.match.path = p.Path
	case *routev3.RouteMatch_SafeRegex:
		re, err := compileRegex(p.SafeRegex.GetRegex())
		if err != nil {
			return nil, err
		}
		cr.match.regex = re
	case *routev3.RouteMatch_PathSeparatedPrefix:
		cr.match.separatedPrefix = p.PathSeparatedPrefix
	default:
		return nil, fmt.Errorf("path specifier %T is not supported", p)
	}
	if !cr.match.caseSensitive {
		cr.match.prefix = strings.ToLower(cr.match.prefix)
		cr.match.path = strings.ToLower(cr.match.path)
		cr.match.separatedPrefix = strings.ToLower(cr.match.separatedPrefix)
	}
	for _, h := range m.GetHeaders() {
		hm, err := compileHeaderMatcher(h)
		if err != nil {
			return nil, err
		}
		cr.match.headers = append(cr.match.headers, hm)
	}
	for _, q := range m.GetQueryParameters() {
		qm := queryMatch{name: q.GetName()}
		switch s := q.GetQueryParameterMatchSpecifier().(type) {
		case *routev3.QueryParameterMatcher_PresentMatch:
			qm.present = s.PresentMatch
		case *routev3.QueryParameterMatcher_StringMatch:
			sm, err := compileStringMatcher(s.StringMatch)
			if err != nil {
				return nil, fmt.Errorf("query parameter %q: %w", q.GetName(), err)
			}
			qm.str = sm
		default:
			qm.present = true
		}
		cr.match.query = append(cr.match.query, qm)
	}

	switch a := r.GetAction().(type) {
	case *routev3.Route_Route:
		ra := a.Route
		switch cs := ra.GetClusterSpecifier().(type) {
		case *routev3.RouteAction_Cluster:
			cr.kind, cr.cluster = routeCluster, cs.Cluster
		case *routev3.RouteAction_ClusterHeader:
			cr.kind, cr.clusterHeader = routeClusterHeader, cs.ClusterHeader
		case *routev3.RouteAction_WeightedClusters:
			cr.kind = routeWeighted
			for _, wc := range cs.WeightedClusters.GetClusters() {
				if wc.GetName() == "" {
					return nil, fmt.Errorf("weighted cluster without a name (cluster_header in weighted clusters is not supported)")
				}
				w := uint64(wc.GetWeight().GetValue())
				cr.weighted = append(cr.weighted, weightedCluster{wc.GetName(), w})
				cr.totalWeight += w
			}
			if cr.totalWeight == 0 {
				return nil, fmt.Errorf("weighted clusters with a total weight of 0")
			}
		default:
			return nil, fmt.Errorf("cluster specifier %T is not supported", cs)
		}
		cr.timeout = 15 * time.Second
		if ra.GetTimeout() != nil {
			cr.timeout = ra.GetTimeout().AsDuration()
		}
		cr.prefixRewrite = ra.GetPrefixRewrite()
		if hr, ok := ra.GetHostRewriteSpecifier().(*routev3.RouteAction_HostRewriteLiteral); ok {
			cr.hostRewrite = hr.HostRewriteLiteral
		}
		cr.retry = vh.retry
		if ra.GetRetryPolicy() != nil {
			rp, err := compileRetryPolicy(ra.GetRetryPolicy())
			if err != nil {
				return nil, err
			}
			cr.retry = rp
		}
	case *routev3.Route_DirectResponse:
		cr.kind = routeDirect
		cr.directStatus = int(a.DirectResponse.GetStatus())
		if b := a.DirectResponse.GetBody(); b != nil {
			switch s := b.GetSpecifier().(type) {
			case *corev3.DataSource_InlineString:
				cr.directBody = s.InlineString
			case *corev3.DataSource_InlineBytes:
				cr.directBody = string(s.InlineBytes)
			}
		}
	case *routev3.Route_Redirect:
		cr.kind, cr.redirect = routeRedirect, a.Redirect
	case *routev3.Route_NonForwardingAction:
		cr.kind, cr.directStatus = routeDirect, http.StatusNotFound
	default:
		return nil, fmt.Errorf("route action %T is not supported", a)
	}
	return cr, nil
}

func compileHeaderMatcher(h *routev3.HeaderMatcher) (headerMatch, error) {
	hm := headerMatch{name: h.GetName(), invert: h.GetInvertMatch(), missingOK: h.GetTreatMissingHeaderAsEmpty()}
	var err error
	switch s := h.GetHeaderMatchSpecifier().(type) {
	case nil:
		t := true
		hm.present = &t
	case *routev3.HeaderMatcher_PresentMatch:
		v := s.PresentMatch
		hm.present = &v
	case *routev3.HeaderMatcher_ExactMatch:
		v := s.ExactMatch
		hm.str = &stringMatch{exact: &v}
	case *routev3.HeaderMatcher_PrefixMatch:
		v := s.PrefixMatch
		hm.str = &stringMatch{prefix: &v}
	case *routev3.HeaderMatcher_SuffixMatch:
		v := s.SuffixMatch
		hm.str = &stringMatch{suffix: &v}
	case *routev3.HeaderMatcher_ContainsMatch:
		v := s.ContainsMatch
		hm.str = &stringMatch{contains: &v}
	case *routev3.HeaderMatcher_SafeRegexMatch:
		re, rerr := compileRegex(s.SafeRegexMatch.GetRegex())
		if rerr != nil {
			return hm, fmt.Errorf("header %q: %w", h.GetName(), rerr)
		}
		hm.str = &stringMatch{regex: re}
	case *routev3.HeaderMatcher_StringMatch:
		hm.str, err = compileStringMatcher(s.StringMatch)
		if err != nil {
			return hm, fmt.Errorf("header %q: %w", h.GetName(), err)
		}
	case *routev3.HeaderMatcher_RangeMatch:
		hm.isRange, hm.rangeLo, hm.rangeHi = true, s.RangeMatch.GetStart(), s.RangeMatch.GetEnd()
	default:
		return hm, fmt.Errorf("header %q: matcher %T is not supported", h.GetName(), s)
	}
	return hm, nil
}

// headerValue reads a header as Envoy sees it: ":authority" is the Host,
// ":path" the request target, ":method" the method; several values of a
// header are joined with commas.
func headerValue(r *http.Request, name string) (string, bool) {
	switch strings.ToLower(name) {
	case ":authority", "host":
		return r.Host, true
	case ":path":
		return r.URL.RequestURI(), true
	case ":method":
		return r.Method, true
	case ":scheme":
		return "http", true
	}
	vs, ok := r.Header[http.CanonicalHeaderKey(name)]
	if !ok {
		return "", false
	}
	return strings.Join(vs, ","), true
}

func (hm *headerMatch) matches(r *http.Request) bool {
	v, ok := headerValue(r, hm.name)
	var res bool
	switch {
	case hm.present != nil:
		res = ok == *hm.present
	case !ok && !hm.missingOK:
		res = false
	case hm.isRange:
		n, err := strconv.ParseInt(v, 10, 64)
		res = err == nil && n >= hm.rangeLo && n < hm.rangeHi
	default:
		res = hm.str.match(v)
	}
	if hm.invert {
		return !res
	}
	return res
}

// matches applies the route's match to a request. pathWithQuery is the
// :path header (path and query), as Envoy's prefix match sees it.
func (m *routeMatch) matches(r *http.Request) bool {
	full := r.URL.RequestURI()
	path := r.URL.EscapedPath()
	if path == "" {
		path = "/"
	}
	if !m.caseSensitive {
		full, path = strings.ToLower(full), strings.ToLower(path)
	}
	switch {
	case m.prefix != "":
		if !strings.HasPrefix(full, m.prefix) {
			return false
		}
	case m.path != "":
		if path != m.path {
			return false
		}
	case m.regex != nil:
		if !m.regex.MatchString(path) {
			return false
		}
	case m.separatedPrefix != "":
		if path != m.separatedPrefix && !strings.HasPrefix(path, m.separatedPrefix+"/") {
			return false
		}
	}
	for i := range m.headers {
		if !m.headers[i].matches(r) {
			return false
		}
	}
	if len(m.query) > 0 {
		q := r.URL.Query()
		for _, qm := range m.query {
			vs, ok := q[qm.name]
			if !ok {
				return false
			}
			if qm.str != nil && (len(vs) == 0 || !qm.str.match(vs[0])) {
				return false
			}
		}
	}
	return true
}

// route returns the first route of the virtual host matching r.
func (vh *virtualHost) route(r *http.Request) *route {
	for _, rt := range vh.routes {
		if rt.match.matches(r) {
			return rt
		}
	}
	return nil
}

// pickCluster chooses the upstream cluster of a forwarding route; rnd is a
// uniform random number for weighted clusters.
func (rt *route) pickCluster(r *http.Request, rnd uint64) string {
	switch rt.kind {
	case routeCluster:
		return rt.cluster
	case routeClusterHeader:
		return r.Header.Get(rt.clusterHeader)
	case routeWeighted:
		// Envoy picks the first cluster whose running weight exceeds
		// random % total (router/config_impl.cc, WeightedClusterEntry).
		x := rnd % rt.totalWeight
		var run uint64
		for _, wc := range rt.weighted {
			run += wc.weight
			if x < run {
				return wc.name
			}
		}
		return rt.weighted[len(rt.weighted)-1].name
	}
	return ""
}

// rewritePath applies prefix_rewrite to a request URL.
func (rt *route) rewritePath(u *url.URL) {
	if rt.prefixRewrite == "" || rt.match.prefix == "" {
		return
	}
	p := u.Path
	if len(p) >= len(rt.match.prefix) {
		u.Path = rt.prefixRewrite + p[len(rt.match.prefix):]
		u.RawPath = ""
	}
}
