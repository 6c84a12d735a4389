package envoyemu

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Counter, Gauge and Histogram are Envoy's three stat types. A stat the stats
// matcher excludes is a nil pointer, and every method of a nil stat does
// nothing: Envoy likewise hands out null stats for excluded names, so the
// code that charges them needs no check.
type Counter struct{ v atomic.Uint64 }

// Inc adds one.
func (c *Counter) Inc() {
	if c != nil {
		c.v.Add(1)
	}
}

// Add adds n.
func (c *Counter) Add(n uint64) {
	if c != nil {
		c.v.Add(n)
	}
}

// Value is the counter's value (0 for an excluded stat).
func (c *Counter) Value() uint64 {
	if c == nil {
		return 0
	}
	return c.v.Load()
}

// Gauge is a value that goes up and down.
type Gauge struct{ v atomic.Int64 }

// Set sets the gauge.
func (g *Gauge) Set(v int64) {
	if g != nil {
		g.v.Store(v)
	}
}

// Add adds d (which may be negative).
func (g *Gauge) Add(d int64) {
	if g != nil {
		g.v.Add(d)
	}
}

// Value is the gauge's value (0 for an excluded stat).
func (g *Gauge) Value() int64 {
	if g == nil {
		return 0
	}
	return g.v.Load()
}

// DefaultBuckets are Envoy's default histogram bucket bounds
// (envoy source/common/stats/histogram_impl.h, HistogramSettingsImpl::
// defaultBuckets), in the unit of the histogram: milliseconds for
// upstream_rq_time.
var DefaultBuckets = []float64{0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000, 600000, 1800000, 3600000}

// Histogram counts recorded values into DefaultBuckets. Like Envoy's, what
// the admin endpoint shows is the histogram as of the last stats flush
// (Envoy merges its per-thread histograms at each flush, every 5 s in an
// Istio sidecar): a value recorded now appears at the next flush.
type Histogram struct {
	mu     sync.Mutex
	counts []uint64 // per bucket, not cumulative; the last is +Inf
	count  uint64
	sum    float64
	// flushed is the state at the last flush.
	flushedCounts []uint64
	flushedCount  uint64
	flushedSum    float64
}

// Record adds one value.
func (h *Histogram) Record(v float64) {
	if h == nil {
		return
	}
	i := sort.SearchFloat64s(DefaultBuckets, v) // first bound >= v: buckets are "le"
	h.mu.Lock()
	if h.counts == nil {
		h.counts = make([]uint64, len(DefaultBuckets)+1)
	}
	h.counts[i]++
	h.count++
	h.sum += v
	h.mu.Unlock()
}

// flush makes what was recorded visible.
func (h *Histogram) flush() {
	if h == nil {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.counts == nil {
		return
	}
	h.flushedCounts = append(h.flushedCounts[:0], h.counts...)
	h.flushedCount, h.flushedSum = h.count, h.sum
}

// snapshot returns, as of the last flush, cumulative bucket counts
// (len(DefaultBuckets)+1, the last being +Inf), the count and the sum.
func (h *Histogram) snapshot() (cum []uint64, count uint64, sum float64) {
	cum = make([]uint64, len(DefaultBuckets)+1)
	if h == nil {
		return cum, 0, 0
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	var run uint64
	for i := range cum {
		if h.flushedCounts != nil {
			run += h.flushedCounts[i]
		}
		cum[i] = run
	}
	return cum, h.flushedCount, h.flushedSum
}

type statType int

const (
	typeCounter statType = iota
	typeGauge
	typeHistogram
)

func (t statType) String() string {
	switch t {
	case typeCounter:
		return "counter"
	case typeGauge:
		return "gauge"
	}
	return "histogram"
}

// stat is one named stat of the store.
type stat struct {
	name string // Envoy's full name, e.g. cluster.outbound|9080||x;.upstream_rq_200
	typ  statType
	c    *Counter
	g    *Gauge
	h    *Histogram
	// tagged is the Prometheus form: metric name and labels (in output order).
	metric string
	labels []label
	// key is the tag-extracted Envoy name (cluster.upstream_rq), by which
	// Envoy orders the metric families.
	key string
}

type label struct{ name, value string }

// Store holds a proxy's stats under Envoy's names and renders them as the
// admin endpoint does. Its matcher decides, once per name, whether a stat
// exists at all, as Envoy's stats_config.stats_matcher does.
type Store struct {
	matcher *statsMatcher
	mu      sync.RWMutex
	stats   map[string]*stat
	// requests are Istio's istio_requests_total series, by label values.
	requests *requestMetrics
}

// newStore returns an empty store whose stats are limited by m (nil: every
// stat is kept).
func newStore(m *statsMatcher) *Store {
	return &Store{matcher: m, stats: map[string]*stat{}, requests: newRequestMetrics()}
}

func (s *Store) lookup(name string, typ statType) *stat {
	s.mu.RLock()
	st, ok := s.stats[name]
	s.mu.RUnlock()
	if ok {
		return st
	}
	if s.matcher != nil && !s.matcher.match(name) {
		// Remembered as excluded so the matcher runs once per name.
		s.mu.Lock()
		if st, ok = s.stats[name]; !ok {
			s.stats[name] = nil
		}
		s.mu.Unlock()
		return st
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if st, ok = s.stats[name]; ok {
		return st
	}
	st = &stat{name: name, typ: typ}
	switch typ {
	case typeCounter:
		st.c = &Counter{}
	case typeGauge:
		st.g = &Gauge{}
	case typeHistogram:
		st.h = &Histogram{}
	}
	st.key, st.metric, st.labels = extractTags(name)
	s.stats[name] = st
	return st
}

// Counter returns the counter called name, or nil when the matcher excludes
// it.
func (s *Store) Counter(name string) *Counter {
	if st := s.lookup(name, typeCounter); st != nil && st.typ == typeCounter {
		return st.c
	}
	return nil
}

// Gauge returns the gauge called name, or nil when excluded.
func (s *Store) Gauge(name string) *Gauge {
	if st := s.lookup(name, typeGauge); st != nil && st.typ == typeGauge {
		return st.g
	}
	return nil
}

// Histogram returns the histogram called name, or nil when excluded.
func (s *Store) Histogram(name string) *Histogram {
	if st := s.lookup(name, typeHistogram); st != nil && st.typ == typeHistogram {
		return st.h
	}
	return nil
}

// DefaultFlushInterval is Istio's stats flush interval
// (sidecar.istio.io/statsFlushInterval, default 5 s).
const DefaultFlushInterval = 5 * time.Second

// Flush publishes the histograms' recorded values, as Envoy's stats flush
// does; the proxy calls it every flush interval.
func (s *Store) Flush() {
	for _, st := range s.all() {
		if st.typ == typeHistogram {
			st.h.flush()
		}
	}
	for _, r := range s.requests.snapshot() {
		r.duration.flush()
	}
}

func (s *Store) all() []*stat {
	s.mu.RLock()
	out := make([]*stat, 0, len(s.stats))
	for _, st := range s.stats {
		if st != nil {
			out = append(out, st)
		}
	}
	s.mu.RUnlock()
	slices.SortFunc(out, func(a, b *stat) int { return strings.Compare(a.name, b.name) })
	return out
}

// tagRule is one of the tag extractors of Istio's Envoy bootstrap
// (istio tools/packaging/common/envoy_bootstrap.json, stats_config.stats_tags,
// with use_all_default_tags false): the regex's first group is cut from the
// name, its second is the tag's value.
type tagRule struct {
	name string
	re   *regexp.Regexp
}

var tagRules = []tagRule{
	{"cluster_name", regexp.MustCompile(`^cluster(\.(.+);)`)},
	{"http_conn_manager_prefix", regexp.MustCompile(`^http\.(((?:[_.[:digit:]\w]*|[_\[\]aAbBcCdDeEfF[:digit:]\w\:]*));\.)`)},
	{"tcp_prefix", regexp.MustCompile(`^tcp\.((.*?)\.)\w+?$`)},
	{"response_code", regexp.MustCompile(`_rq(_(\d{3}))$`)},
	{"response_code_class", regexp.MustCompile(`_rq(_(\dxx))$`)},
	{"listener_address", regexp.MustCompile(`^listener\.(((?:[_.[:digit:]]*|[_\[\]aAbBcCdDeEfF[:digit:]]*))\.)`)},
}

// extractTags turns an Envoy stat name into its Prometheus metric name and
// labels the way Envoy does with Istio's tag extractors: each matching rule
// cuts its first group out of the name and makes its second a label; the
// rest, with every character outside [a-zA-Z0-9_] turned into '_', is
// prefixed with envoy_. A cluster added without Istio's "name;" alt stat
// name (an EnvoyFilter's aggregate cluster) has no ';' and so no
// cluster_name label: its name stays in the metric name, as in Envoy.
//
// Envoy prints the labels of the suffix rules (response_code) before
// cluster_name, as real Istio sidecars show:
// envoy_cluster_upstream_rq{response_code="200",cluster_name="outbound|…"}.
func extractTags(name string) (key, metric string, labels []label) {
	rest := name
	for _, r := range tagRules {
		m := r.re.FindStringSubmatchIndex(rest)
		if m == nil || m[2] < 0 || m[4] < 0 {
			continue
		}
		labels = append(labels, label{r.name, rest[m[4]:m[5]]})
		rest = rest[:m[2]] + rest[m[3]:]
	}
	slices.Reverse(labels)
	return rest, "envoy_" + sanitizeMetric(rest), labels
}

func sanitizeMetric(s string) string {
	b := []byte(s)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_') {
			b[i] = '_'
		}
	}
	return string(b)
}

// family groups the stats of one Prometheus metric.
type family struct {
	key    string // tag-extracted Envoy name, which orders the families
	metric string
	typ    statType
	stats  []*stat
}

// WritePrometheus writes the stats as Envoy's /stats/prometheus does:
// counters, then gauges, then histograms; within each, one "# TYPE" line per
// metric, families ordered by their tag-extracted name, samples by the full
// stat name, a blank line after each family; histograms in cumulative
// buckets with Envoy's default bounds, then _sum and _count.
func (s *Store) WritePrometheus(w io.Writer) error {
	var buf bytes.Buffer
	fams := map[statType]map[string]*family{typeCounter: {}, typeGauge: {}, typeHistogram: {}}
	for _, st := range s.all() {
		f := fams[st.typ][st.metric]
		if f == nil {
			f = &family{key: st.key, metric: st.metric, typ: st.typ}
			fams[st.typ][st.metric] = f
		}
		f.stats = append(f.stats, st)
	}
	reqs := s.requests.snapshot()
	for _, typ := range []statType{typeCounter, typeGauge, typeHistogram} {
		list := make([]*family, 0, len(fams[typ]))
		for _, f := range fams[typ] {
			list = append(list, f)
		}
		if typ == typeCounter && len(reqs) > 0 {
			list = append(list, &family{key: requestsTotal, metric: requestsTotal, typ: typeCounter})
		}
		if typ == typeHistogram && len(reqs) > 0 {
			list = append(list, &family{key: requestDuration, metric: requestDuration, typ: typeHistogram})
		}
		slices.SortFunc(list, func(a, b *family) int { return strings.Compare(a.key, b.key) })
		for _, f := range list {
			fmt.Fprintf(&buf, "# TYPE %s %s\n", f.metric, f.typ)
			switch f.metric {
			case requestsTotal:
				for _, r := range reqs {
					fmt.Fprintf(&buf, "%s{%s} %d\n", requestsTotal, formatLabels(r.labels), r.count.Value())
				}
			case requestDuration:
				for _, r := range reqs {
					writeHistogram(&buf, requestDuration, r.labels, r.duration)
				}
			default:
				for _, st := range f.stats {
					switch typ {
					case typeCounter:
						fmt.Fprintf(&buf, "%s{%s} %d\n", st.metric, formatLabels(st.labels), st.c.Value())
					case typeGauge:
						fmt.Fprintf(&buf, "%s{%s} %d\n", st.metric, formatLabels(st.labels), st.g.Value())
					case typeHistogram:
						writeHistogram(&buf, st.metric, st.labels, st.h)
					}
				}
			}
			buf.WriteByte('\n')
		}
	}
	_, err := w.Write(buf.Bytes())
	return err
}

func writeHistogram(buf *bytes.Buffer, metric string, labels []label, h *Histogram) {
	cum, count, sum := h.snapshot()
	base := formatLabels(labels)
	sep := ""
	if base != "" {
		sep = ","
	}
	for i, c := range cum {
		le := "+Inf"
		if i < len(DefaultBuckets) {
			le = strconv.FormatFloat(DefaultBuckets[i], 'f', -1, 64)
		}
		fmt.Fprintf(buf, "%s_bucket{%s%sle=\"%s\"} %d\n", metric, base, sep, le, c)
	}
	fmt.Fprintf(buf, "%s_sum{%s} %s\n", metric, base, formatFloat(sum))
	fmt.Fprintf(buf, "%s_count{%s} %d\n", metric, base, count)
}

func formatFloat(f float64) string {
	if f == math.Trunc(f) && math.Abs(f) < 1e15 {
		return strconv.FormatFloat(f, 'f', -1, 64)
	}
	return strconv.FormatFloat(f, 'g', -1, 64)
}

// formatLabels writes labels as Envoy does, escaping values as the
// Prometheus text format requires.
func formatLabels(ls []label) string {
	var b strings.Builder
	for i, l := range ls {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(l.name)
		b.WriteString(`="`)
		for _, r := range l.value {
			switch r {
			case '\\':
				b.WriteString(`\\`)
			case '"':
				b.WriteString(`\"`)
			case '\n':
				b.WriteString(`\n`)
			default:
				b.WriteRune(r)
			}
		}
		b.WriteByte('"')
	}
	return b.String()
}

// WriteText writes the stats as Envoy's /stats does: "name: value" lines in
// name order, histograms summarised by quantiles. filter, when not nil,
// keeps the names it matches (the admin's ?filter=).
func (s *Store) WriteText(w io.Writer, filter *regexp.Regexp) error {
	var buf bytes.Buffer
	type line struct{ name, value string }
	var lines []line
	for _, st := range s.all() {
		if filter != nil && !filter.MatchString(st.name) {
			continue
		}
		switch st.typ {
		case typeCounter:
			lines = append(lines, line{st.name, strconv.FormatUint(st.c.Value(), 10)})
		case typeGauge:
			lines = append(lines, line{st.name, strconv.FormatInt(st.g.Value(), 10)})
		case typeHistogram:
			lines = append(lines, line{st.name, quantileSummary(st.h)})
		}
	}
	for _, r := range s.requests.snapshot() {
		name := r.envoyName()
		if filter != nil && !filter.MatchString(name) {
			continue
		}
		lines = append(lines, line{name, strconv.FormatUint(r.count.Value(), 10)})
	}
	slices.SortFunc(lines, func(a, b line) int { return strings.Compare(a.name, b.name) })
	for _, l := range lines {
		fmt.Fprintf(&buf, "%s: %s\n", l.name, l.value)
	}
	_, err := w.Write(buf.Bytes())
	return err
}

// quantileSummary renders a histogram as Envoy's /stats text does, with
// quantiles interpolated from the buckets (Envoy's own are exact; these are
// an estimate): "P0(nan,v) P25(nan,v) …" — the first of each pair is the
// last flush interval's, which the emulation does not keep.
func quantileSummary(h *Histogram) string {
	cum, count, _ := h.snapshot()
	qs := []float64{0, 25, 50, 75, 90, 95, 99, 99.5, 99.9, 100}
	parts := make([]string, len(qs))
	for i, q := range qs {
		v := "nan"
		if count > 0 {
			v = formatFloat(bucketQuantile(cum, count, q/100))
		}
		parts[i] = fmt.Sprintf("P%s(nan,%s)", strconv.FormatFloat(q, 'f', -1, 64), v)
	}
	return strings.Join(parts, " ")
}

func bucketQuantile(cum []uint64, count uint64, q float64) float64 {
	rank := q * float64(count)
	for i, c := range cum {
		if float64(c) >= rank {
			if i >= len(DefaultBuckets) {
				return DefaultBuckets[len(DefaultBuckets)-1]
			}
			lo, loCount := 0.0, uint64(0)
			if i > 0 {
				lo, loCount = DefaultBuckets[i-1], cum[i-1]
			}
			hi := DefaultBuckets[i]
			if c == loCount {
				return hi
			}
			return lo + (hi-lo)*(rank-float64(loCount))/float64(c-loCount)
		}
	}
	return DefaultBuckets[len(DefaultBuckets)-1]
}

// WriteJSON writes the stats as Envoy's /stats?format=json does, histograms
// in the cumulative bucket form of histogram_buckets=cumulative.
func (s *Store) WriteJSON(w io.Writer, filter *regexp.Regexp) error {
	type bucket struct {
		UpperBound float64 `json:"upper_bound"`
		Interval   uint64  `json:"interval"`
		Cumulative uint64  `json:"cumulative"`
	}
	type hist struct {
		Name    string   `json:"name"`
		Buckets []bucket `json:"buckets"`
	}
	var out []any
	var hists []hist
	for _, st := range s.all() {
		if filter != nil && !filter.MatchString(st.name) {
			continue
		}
		switch st.typ {
		case typeCounter:
			out = append(out, map[string]any{"name": st.name, "value": st.c.Value()})
		case typeGauge:
			out = append(out, map[string]any{"name": st.name, "value": st.g.Value()})
		case typeHistogram:
			cum, _, _ := st.h.snapshot()
			h := hist{Name: st.name}
			for i, b := range DefaultBuckets {
				h.Buckets = append(h.Buckets, bucket{UpperBound: b, Cumulative: cum[i]})
			}
			hists = append(hists, h)
		}
	}
	for _, r := range s.requests.snapshot() {
		if filter != nil && !filter.MatchString(r.envoyName()) {
			continue
		}
		out = append(out, map[string]any{"name": r.envoyName(), "value": r.count.Value()})
	}
	if hists != nil {
		out = append(out, map[string]any{"histograms": hists})
	}
	if out == nil {
		out = []any{}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", " ")
	return enc.Encode(map[string]any{"stats": out})
}

// statsMatcher is Envoy's stats_config.stats_matcher inclusion list as
// Istio's bootstrap builds it (istio pkg/bootstrap/config.go getStatsOptions
// and tools/packaging/common/envoy_bootstrap.json): the pod's prefixes,
// suffixes and regexps (annotation or ProxyConfig proxyStatsMatcher), plus
// the ones Istio always adds.
type statsMatcher struct {
	prefixes []string
	suffixes []string
	regexps  []*regexp.Regexp
}

const (
	// requiredPrefixes are always included: Istio's readiness checks read them
	// (istio pkg/bootstrap/config.go requiredEnvoyStatsMatcherInclusionPrefixes).
	requiredPrefixes = "cluster_manager,listener_manager,server,cluster.xds-grpc,wasm"
	// requiredSuffixes, as Istio adds them for a pod that does not exit on
	// zero connections (rbacEnvoyStatsMatcherInclusionSuffix).
	requiredSuffixes = "rbac.allowed,rbac.denied,shadow_allowed,shadow_denied"
	// requiredRegexps is for VirtualService stat_prefix route stats.
	requiredRegexps = `vhost\..*\.route\..*`
)

// newStatsMatcher builds the matcher of a pod from its annotations and
// ProxyConfig. The sidecar.istio.io/statsInclusion* annotation, when set,
// wins over the ProxyConfig field, as in Istio.
func newStatsMatcher(id *Identity, pc *proxyConfig) (*statsMatcher, error) {
	pick := func(anno string, fromConfig []string, required string) []string {
		var out []string
		if v := id.Annotations[anno]; v != "" {
			out = strings.Split(v, ",")
		} else {
			out = append(out, fromConfig...)
		}
		out = append(out, strings.Split(required, ",")...)
		for i, p := range out {
			out[i] = strings.ReplaceAll(p, "{pod_ip}", id.IP.String())
		}
		return out
	}
	var cfgPrefixes, cfgSuffixes, cfgRegexps []string
	if pc != nil && pc.ProxyStatsMatcher != nil {
		cfgPrefixes = pc.ProxyStatsMatcher.InclusionPrefixes
		cfgSuffixes = pc.ProxyStatsMatcher.InclusionSuffixes
		cfgRegexps = pc.ProxyStatsMatcher.InclusionRegexps
	}
	m := &statsMatcher{
		// "reporter=" keeps Istio's standard metrics, "component" and
		// "istio" its build and custom ones (the bootstrap template adds
		// them to every pod's list).
		prefixes: append([]string{"reporter="}, append(pick(annotationStatsInclusionPrefixes, cfgPrefixes, requiredPrefixes), "component", "istio")...),
		suffixes: pick(annotationStatsInclusionSuffixes, cfgSuffixes, requiredSuffixes),
	}
	for _, r := range pick(annotationStatsInclusionRegexps, cfgRegexps, requiredRegexps) {
		if r == "" {
			continue
		}
		// Envoy's safe_regex matches the whole name (RE2 full match).
		re, err := regexp.Compile(`^(?:` + r + `)$`)
		if err != nil {
			return nil, fmt.Errorf("pod %s/%s: stats inclusion regexp %q: %w", id.Namespace, id.Pod, r, err)
		}
		m.regexps = append(m.regexps, re)
	}
	return m, nil
}

func (m *statsMatcher) match(name string) bool {
	for _, p := range m.prefixes {
		if p != "" && strings.HasPrefix(name, p) {
			return true
		}
	}
	for _, s := range m.suffixes {
		if s != "" && strings.HasSuffix(name, s) {
			return true
		}
	}
	for _, re := range m.regexps {
		if re.MatchString(name) {
			return true
		}
	}
	return false
}
