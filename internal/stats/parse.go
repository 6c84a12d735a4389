package stats

import (
	"bytes"
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// maxSkippedLines bounds how many unparseable lines ParseText steps over before it
// gives up: Envoy's known quirks cost a handful, a page that is not Envoy's costs
// every line, and each skip re-parses the page.
const maxSkippedLines = 16

// maxWarnings bounds Snapshot.Warnings; the last one says how many were left out.
const maxWarnings = 20

// Parse reads an Envoy admin stats page, Prometheus text or JSON: a page whose first
// non-blank byte is '{' is taken for /stats?format=json.
func Parse(data []byte) (*Snapshot, error) {
	if looksLikeJSON(data) {
		return ParseJSON(data)
	}
	return ParseText(data)
}

func looksLikeJSON(data []byte) bool {
	t := bytes.TrimLeft(data, " \t\r\n")
	return len(t) > 0 && t[0] == '{'
}

// ParseText reads Envoy's /stats/prometheus output with prometheus/common's text
// parser and keeps the stats drill reads.
//
// A sidecar prints about a hundred stats per Envoy cluster and drill reads a
// dozen, so the lines of other metric families are dropped before the text
// parser sees them: a few thousand lines parse several times faster, and a
// malformed line in a family drill never reads cannot fail the scrape.
//
// Envoy's output has broken that parser's strictness before: a metric name's
// samples split into two groups, each under its own "# TYPE" line (envoy issues
// 2597, 27173), and a name typed twice (envoy issue 10073). ParseText keeps the
// first TYPE line of a name and drops the repeats, then steps over at most
// maxSkippedLines other unparseable lines, naming each in Snapshot.Warnings. A page
// with more broken lines than that is not taken for an Envoy page: the error names
// the first bad line.
func ParseText(data []byte) (*Snapshot, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, errors.New("parse Envoy stats: the page is empty")
	}
	var warn warnings
	lines, numbers := keptLines(data, &warn)
	fams, err := parseLines(lines, numbers, &warn)
	if err != nil {
		return nil, err
	}
	if len(fams) == 0 {
		return nil, errors.New("parse Envoy stats: the page holds none of the Envoy stats drill reads " +
			"(cluster.*, server.uptime, istio_requests_total); is the URL an Envoy /stats/prometheus endpoint?")
	}
	s := newSnapshot(FormatPrometheus)
	fromFamilies(s, fams, &warn)
	s.Warnings = warn.list()
	return s, nil
}

// keptLines returns the lines of the page that belong to a family drill reads,
// with their line numbers (from 1), less the repeated TYPE and HELP lines.
func keptLines(data []byte, warn *warnings) (lines [][]byte, numbers []int) {
	wanted := make(map[string]bool)
	isWanted := func(name []byte) bool {
		if w, ok := wanted[string(name)]; ok {
			return w
		}
		w := wantedFamily(string(name))
		wanted[string(name)] = w
		return w
	}
	seen := make(map[string]bool)
	for n := 1; len(data) > 0; n++ {
		line := data
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			line, data = data[:i+1], data[i+1:]
		} else {
			data = nil
		}
		t := bytes.TrimLeft(line, " \t")
		if len(t) == 0 || t[0] == '\n' || t[0] == '\r' {
			continue
		}
		if t[0] == '#' {
			kind, name, ok := directive(t)
			if !ok || !isWanted([]byte(name)) {
				continue
			}
			key := kind + " " + name
			if seen[key] {
				warn.addf("line %d: repeated %s line for %s dropped (a known Envoy quirk)", n, kind, name)
				continue
			}
			seen[key] = true
		} else if !isWanted(sampleName(t)) {
			continue
		}
		lines = append(lines, line)
		numbers = append(numbers, n)
	}
	return lines, numbers
}

// sampleName is the metric name a sample line starts with.
func sampleName(line []byte) []byte {
	for i, b := range line {
		switch b {
		case '{', ' ', '\t', '\r', '\n':
			return line[:i]
		}
	}
	return line
}

// directive recognises "# TYPE name …" and "# HELP name …" lines.
func directive(line []byte) (kind, name string, ok bool) {
	rest, found := bytes.CutPrefix(bytes.TrimLeft(line, " \t"), []byte("#"))
	if !found {
		return "", "", false
	}
	f := bytes.Fields(rest)
	if len(f) < 2 || (string(f[0]) != "TYPE" && string(f[0]) != "HELP") {
		return "", "", false
	}
	return string(f[0]), string(f[1]), true
}

// wantedFamily reports whether a metric name (or one of its histogram series)
// belongs to a family fromFamilies reads.
func wantedFamily(name string) bool {
	switch name {
	case "istio_requests_total", "envoy_cluster_manager_active_clusters", "envoy_server_uptime":
		return true
	}
	stat, ok := strings.CutPrefix(name, "envoy_cluster_")
	if !ok {
		return false
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		if base, ok := strings.CutSuffix(stat, suffix); ok && strings.HasSuffix(base, "upstream_rq_time") {
			stat = base
			break
		}
	}
	if kind, _, _ := classifyStat(stat); kind != kindNone {
		return true
	}
	for _, suffix := range legacyStats {
		if strings.HasSuffix(stat, "_"+suffix) {
			return true
		}
	}
	return false
}

// parseLines hands the kept lines to the text parser, stepping over the lines
// it cannot read.
func parseLines(lines [][]byte, numbers []int, warn *warnings) (map[string]*dto.MetricFamily, error) {
	size := 0
	for _, l := range lines {
		size += len(l) + 1
	}
	buf := make([]byte, 0, size)
	var firstSkip error
	for skipped := 0; ; skipped++ {
		buf = buf[:0]
		for _, l := range lines {
			buf = append(buf, l...)
			if buf[len(buf)-1] != '\n' {
				// The text parser wants every line terminated; a body cut
				// short is caught by the HTTP reader, not here.
				buf = append(buf, '\n')
			}
		}
		fams, err := parseFamilies(buf)
		if err == nil {
			return fams, nil
		}
		var pe expfmt.ParseError
		if !errors.As(err, &pe) || pe.Line < 1 || pe.Line > len(lines) {
			return nil, fmt.Errorf("parse Envoy stats: %w", err)
		}
		n := numbers[pe.Line-1]
		if firstSkip == nil {
			firstSkip = fmt.Errorf("line %d: %s", n, pe.Msg)
		}
		if skipped == maxSkippedLines {
			return nil, fmt.Errorf("parse Envoy stats: %w (and more than %d other broken lines); is the URL an Envoy /stats/prometheus endpoint?", firstSkip, maxSkippedLines)
		}
		lines = slices.Delete(lines, pe.Line-1, pe.Line)
		numbers = slices.Delete(numbers, pe.Line-1, pe.Line)
		warn.addf("line %d skipped: %s", n, pe.Msg)
	}
}

func parseFamilies(data []byte) (map[string]*dto.MetricFamily, error) {
	// A zero TextParser panics in prometheus/common ≥ 0.66 ("Invalid name
	// validation scheme requested: unset"). UTF-8 validation accepts every name
	// Envoy writes; Envoy itself restricts names to [a-zA-Z0-9_].
	p := expfmt.NewTextParser(model.UTF8Validation)
	return p.TextToMetricFamilies(bytes.NewReader(data))
}

// Label names. Envoy's default tag extractors name them envoy_cluster_name,
// envoy_response_code and envoy_response_code_class (envoy
// source/common/config/well_known_names.cc). An Istio sidecar's bootstrap turns the
// defaults off and names its own cluster_name, response_code and
// response_code_class (istio tools/packaging/common/envoy_bootstrap.json,
// stats_config.stats_tags), so both spellings are read.
var (
	clusterLabels = []string{"cluster_name", "envoy_cluster_name"}
	codeLabels    = []string{"response_code", "envoy_response_code"}
	classLabels   = []string{"response_code_class", "envoy_response_code_class"}
)

// statKind says how a per-cluster metric family is read.
type statKind uint8

const (
	kindNone    statKind = iota
	kindValue            // one Stat
	kindRq               // upstream_rq: a code or a class, by label
	kindClass            // upstream_rq_xx: a class by label (Envoy's default tags)
	kindCode             // upstream_rq_503 as its own name: no response_code tag extracted
	kindClassOf          // upstream_rq_5xx as its own name
	kindRqTime           // upstream_rq_time histogram
	// The same four under retry.: the answers of retried attempts.
	kindRetryRq
	kindRetryClass
	kindRetryCode
	kindRetryClassOf
)

var valueStats = map[string]Stat{
	"upstream_rq_total":        StatRqTotal,
	"upstream_cx_connect_fail": StatCxConnectFail,
	"upstream_rq_retry":        StatRqRetry,
	"membership_healthy":       StatMembershipHealthy,
	"membership_total":         StatMembershipTotal,
	// outlier_detection.ejections_active: the '.' becomes '_' in Prometheus names.
	"outlier_detection_ejections_active":         StatEjectionsActive,
	"outlier_detection_ejections_enforced_total": StatEjectionsEnforced,
}

// classifyStat reads the stat part of a per-cluster name: the metric name less
// "envoy_cluster_" in Prometheus text, the name less "cluster.<name>." in JSON (with
// '.' already turned to '_'). fixed is the code or class a kindCode or kindClassOf
// name carries.
func classifyStat(stat string) (kind statKind, s Stat, fixed string) {
	if rest, ok := strings.CutPrefix(stat, "retry_"); ok {
		k, _, fixed := classifyStat(rest)
		switch k {
		case kindRq:
			return kindRetryRq, 0, ""
		case kindClass:
			return kindRetryClass, 0, ""
		case kindCode:
			return kindRetryCode, 0, fixed
		case kindClassOf:
			return kindRetryClassOf, 0, fixed
		}
		return kindNone, 0, ""
	}
	if v, ok := valueStats[stat]; ok {
		return kindValue, v, ""
	}
	switch stat {
	case "upstream_rq":
		return kindRq, 0, ""
	case "upstream_rq_xx":
		return kindClass, 0, ""
	case "upstream_rq_time":
		return kindRqTime, 0, ""
	}
	// Some Istio releases shipped a response_code tag regex that never matched
	// ("_rq(_(\\.d{3}))$"), leaving the code in the name: upstream_rq_503.
	if rest, ok := strings.CutPrefix(stat, "upstream_rq_"); ok && len(rest) == 3 && isDigit(rest[0]) {
		if isDigit(rest[1]) && isDigit(rest[2]) {
			return kindCode, 0, rest
		}
		if rest[1:] == "xx" {
			return kindClassOf, 0, rest
		}
	}
	return kindNone, 0, ""
}

func isDigit(b byte) bool { return b >= '0' && b <= '9' }

// legacyStats are the stat names tried as suffixes of a family name whose cluster
// name Istio's old tag regex truncated (see legacyCluster), longest first so that
// upstream_rq_total is not read as upstream_rq.
var legacyStats = func() []string {
	names := []string{"upstream_rq", "upstream_rq_xx", "upstream_rq_time"}
	for n := range valueStats {
		names = append(names, n)
	}
	sort.Slice(names, func(i, j int) bool {
		if len(names[i]) != len(names[j]) {
			return len(names[i]) > len(names[j])
		}
		return names[i] < names[j]
	})
	return names
}()

// normClass turns Envoy's "5" (default tags) and Istio's "5xx" into "5xx".
func normClass(c string) string {
	if len(c) == 1 {
		return c + "xx"
	}
	return c
}

func fromFamilies(s *Snapshot, fams map[string]*dto.MetricFamily, warn *warnings) {
	names := make([]string, 0, len(fams))
	for n := range fams {
		names = append(names, n)
	}
	// Sorted so that warnings and the order of overlapping writes do not depend
	// on map iteration.
	sort.Strings(names)
	var seenRequests map[uint64]bool
	for _, name := range names {
		mf := fams[name]
		switch {
		case name == "envoy_cluster_manager_active_clusters":
			if m := mf.GetMetric(); len(m) > 0 {
				s.ActiveClusters = i64(toUint(metricValue(m[0])))
			}
		case name == "envoy_server_uptime":
			if m := mf.GetMetric(); len(m) > 0 {
				s.Uptime = i64(toUint(metricValue(m[0])))
			}
		case name == "istio_requests_total":
			if seenRequests == nil {
				seenRequests = make(map[uint64]bool)
			}
			for _, m := range mf.GetMetric() {
				addRequests(s, m, seenRequests, warn)
			}
		case strings.HasPrefix(name, "envoy_cluster_"):
			stat := name[len("envoy_cluster_"):]
			kind, st, fixed := classifyStat(stat)
			if kind != kindNone {
				for _, m := range mf.GetMetric() {
					if cl := label(m, clusterLabels); cl != "" {
						addClusterStat(s.cluster(cl), kind, st, fixed, m, warn)
					}
				}
				continue
			}
			fromLegacyFamily(s, stat, mf, warn)
		}
	}
}

// fromLegacyFamily reads a family whose name still holds part of an Envoy cluster
// name. Istio before 1.23 extracted cluster_name with
// "^cluster\.((.+?(\..+?\.svc\.cluster\.local)?)\.)", which stops at the first '.'
// of any host not under .svc.cluster.local: the stats of
// outbound|9080||reviews.default.svc.cluster2.global came out as
// envoy_cluster_default_svc_cluster2_global_upstream_rq{cluster_name="outbound|9080||reviews"}
// (istio issues 39143, 51761; fixed behind ENABLE_DELIMITED_STATS_TAG_REGEX, on by
// default since 1.23). Those are exactly drill's .global failover hosts, so the
// name is rebuilt rather than lost.
func fromLegacyFamily(s *Snapshot, stat string, mf *dto.MetricFamily, warn *warnings) {
	for _, suffix := range legacyStats {
		junk, ok := strings.CutSuffix(stat, "_"+suffix)
		if !ok || junk == "" {
			continue
		}
		kind, st, fixed := classifyStat(suffix)
		for _, m := range mf.GetMetric() {
			truncated := label(m, clusterLabels)
			full, ok := legacyCluster(truncated, junk)
			if !ok {
				return
			}
			warn.addf("Envoy cluster name %q was cut short by Istio's pre-1.23 cluster_name tag regex; read as %q", truncated, full)
			addClusterStat(s.cluster(full), kind, st, fixed, m, warn)
		}
		return
	}
}

// legacyCluster rebuilds an Envoy cluster name from the truncated cluster_name
// label and the sanitized rest of the host found in the metric name. Prometheus
// sanitizing made every '.' and '-' of that rest a '_'; Kubernetes names hold no
// '_', and a namespace or a cluster name holds no '.', which settles the two
// .global forms drill uses. Other hosts get '.' for every '_'.
func legacyCluster(truncated, junk string) (string, bool) {
	// Only Istio names (direction|port|subset|host) whose host was cut at its
	// first dot qualify; the zone, internal, external and canary sub-trees of a
	// cluster's stats also put words between the cluster and the stat.
	bar := strings.LastIndexByte(truncated, '|')
	if bar < 0 || strings.Contains(truncated[bar+1:], ".") {
		return "", false
	}
	switch {
	case junk == "internal", junk == "external", junk == "canary",
		strings.HasSuffix(junk, "_internal"), strings.HasSuffix(junk, "_external"),
		strings.HasSuffix(junk, "_canary"), strings.HasPrefix(junk, "zone_"),
		strings.Contains(junk, "_zone_"):
		return "", false
	}
	dash := func(s string) string { return strings.ReplaceAll(s, "_", "-") }
	var rest string
	if r, ok := strings.CutSuffix(junk, "_global"); ok {
		if ns, cl, ok := strings.Cut(r, "_svc_"); ok {
			rest = dash(ns) + ".svc." + dash(cl) + ".global"
		} else {
			rest = dash(r) + ".global"
		}
	} else {
		rest = strings.ReplaceAll(junk, "_", ".")
	}
	return truncated + "." + rest, true
}

func addClusterStat(c *ClusterStats, kind statKind, st Stat, fixed string, m *dto.Metric, warn *warnings) {
	switch kind {
	case kindValue:
		c.set(st, toUint(metricValue(m)))
	case kindRq:
		if code := label(m, codeLabels); code != "" {
			c.setCode(code, toUint(metricValue(m)))
		} else if class := label(m, classLabels); class != "" {
			c.setClass(normClass(class), toUint(metricValue(m)))
		}
	case kindClass:
		if class := label(m, classLabels); class != "" {
			c.setClass(normClass(class), toUint(metricValue(m)))
		}
	case kindCode:
		c.setCode(fixed, toUint(metricValue(m)))
	case kindClassOf:
		c.setClass(fixed, toUint(metricValue(m)))
	case kindRqTime:
		if h := histogramOf(m, warn); h != nil {
			c.RqTime = h
		}
	case kindRetryRq:
		if code := label(m, codeLabels); code != "" {
			c.setRetryCode(code, toUint(metricValue(m)))
		} else if class := label(m, classLabels); class != "" {
			c.setRetryClass(normClass(class), toUint(metricValue(m)))
		}
	case kindRetryClass:
		if class := label(m, classLabels); class != "" {
			c.setRetryClass(normClass(class), toUint(metricValue(m)))
		}
	case kindRetryCode:
		c.setRetryCode(fixed, toUint(metricValue(m)))
	case kindRetryClassOf:
		c.setRetryClass(fixed, toUint(metricValue(m)))
	}
}

// defaultBounds are Envoy's default histogram buckets in milliseconds (envoy
// api-v3 config/metrics/v3/stats.proto, histogram_bucket_settings; also what
// /stats/prometheus prints). Histograms that use them share this slice.
var defaultBounds = []float64{0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000, 600000, 1800000, 3600000}

func histogramOf(m *dto.Metric, warn *warnings) *Histogram {
	dh := m.GetHistogram()
	if dh == nil {
		return nil
	}
	buckets := dh.GetBucket()
	h := &Histogram{Sum: dh.GetSampleSum(), Count: dh.GetSampleCount()}
	if h.Count == 0 && dh.GetSampleCountFloat() > 0 {
		h.Count = toUint(dh.GetSampleCountFloat())
	}
	bounds := make([]float64, 0, len(buckets))
	h.Counts = make([]uint64, 0, len(buckets))
	last := math.Inf(-1)
	for _, b := range buckets {
		ub := b.GetUpperBound()
		if math.IsInf(ub, +1) {
			continue // the +Inf bucket is Count
		}
		if ub <= last {
			// The text parser appends the buckets of a repeated series to the
			// first one; keep the first copy.
			warn.addf("histogram %s: repeated bucket le=%g ignored", label(m, clusterLabels), ub)
			continue
		}
		last = ub
		cnt := b.GetCumulativeCount()
		if cnt == 0 && b.GetCumulativeCountFloat() > 0 {
			cnt = toUint(b.GetCumulativeCountFloat())
		}
		bounds = append(bounds, ub)
		h.Counts = append(h.Counts, cnt)
	}
	h.Bounds = internBounds(bounds)
	return h
}

func internBounds(b []float64) []float64 {
	if len(b) != len(defaultBounds) {
		return b
	}
	for i := range b {
		if b[i] != defaultBounds[i] {
			return b
		}
	}
	return defaultBounds
}

func addRequests(s *Snapshot, m *dto.Metric, seen map[uint64]bool, warn *warnings) {
	// Envoy has been seen printing one istio series twice (istio issues 52221,
	// 54986); summing both would double the count.
	h := fnv.New64a()
	var k RequestKey
	for _, lp := range m.GetLabel() {
		n, v := lp.GetName(), lp.GetValue()
		h.Write([]byte(n))
		h.Write([]byte{0})
		h.Write([]byte(v))
		h.Write([]byte{0})
		switch n {
		case "reporter":
			k.Reporter = v
		case "source_workload":
			k.SourceWorkload = v
		case "source_cluster":
			k.SourceCluster = v
		case "destination_service":
			k.DestinationService = v
		case "destination_workload":
			k.DestinationWorkload = v
		case "destination_version":
			k.DestinationVersion = v
		case "destination_cluster":
			k.DestinationCluster = v
		case "response_code":
			k.ResponseCode = v
		case "response_flags":
			k.ResponseFlags = v
		}
	}
	sig := h.Sum64()
	if seen[sig] {
		warn.addf("istio_requests_total: repeated series for %s from %s ignored", k.DestinationService, k.DestinationCluster)
		return
	}
	seen[sig] = true
	s.Requests[k] += toUint(metricValue(m))
}

func label(m *dto.Metric, names []string) string {
	for _, lp := range m.GetLabel() {
		for _, n := range names {
			if lp.GetName() == n {
				return lp.GetValue()
			}
		}
	}
	return ""
}

// metricValue reads a counter, gauge or untyped sample alike: a TYPE line Envoy
// repeated with another type, or dropped, must not lose the value.
func metricValue(m *dto.Metric) float64 {
	switch {
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	case m.Untyped != nil:
		return m.Untyped.GetValue()
	}
	return 0
}

// toUint clamps a sample value into Envoy's uint64 counters and gauges.
func toUint(v float64) uint64 {
	switch {
	case math.IsNaN(v) || v <= 0:
		return 0
	case v >= math.MaxUint64:
		return math.MaxUint64
	}
	return uint64(v)
}

// warnings collects parse warnings, deduplicated and bounded.
type warnings struct {
	seen    map[string]bool
	items   []string
	dropped int
}

func (w *warnings) addf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if w.seen[msg] {
		return
	}
	if w.seen == nil {
		w.seen = make(map[string]bool)
	}
	w.seen[msg] = true
	if len(w.items) >= maxWarnings {
		w.dropped++
		return
	}
	w.items = append(w.items, msg)
}

func (w *warnings) list() []string {
	if w.dropped > 0 {
		return append(w.items, strconv.Itoa(w.dropped)+" more warnings left out")
	}
	return w.items
}
