package stats

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// JSONPath is the admin path of the JSON fallback. histogram_buckets=cumulative
// makes Envoy print histograms as buckets instead of quantiles (envoy docs:
// operations/admin, /stats?format=json&histogram_buckets=cumulative).
const JSONPath = "/stats?format=json&histogram_buckets=cumulative"

// ParseJSON reads Envoy's /stats?format=json output: {"stats": [{"name": …,
// "value": …}, …, {"histograms": …}]}. Names there are Envoy's own, untouched by
// tag extraction: cluster.<cluster>.upstream_rq_503, and Istio's
// reporter=.=source;.;…;.;istio_requests_total.
//
// Counters and gauges read alike; histograms are read from bucket form and skipped,
// with a warning, in quantile form. The JSON output carries no histogram sum and no
// +Inf bucket, so Histogram.Sum is 0 and Count is the last bucket's count.
func ParseJSON(data []byte) (*Snapshot, error) {
	var doc struct {
		Stats []struct {
			Name       string          `json:"name"`
			Value      json.RawMessage `json:"value"`
			Histograms json.RawMessage `json:"histograms"`
		} `json:"stats"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("parse Envoy JSON stats: %w", jsonError(data, err))
	}
	if doc.Stats == nil {
		return nil, errors.New(`parse Envoy JSON stats: no "stats" array; is the URL an Envoy /stats?format=json endpoint?`)
	}
	s := newSnapshot(FormatJSON)
	var warn warnings
	var seenRequests map[string]bool
	for i, st := range doc.Stats {
		if len(st.Histograms) > 0 {
			if err := jsonHistograms(s, st.Histograms, &warn); err != nil {
				return nil, fmt.Errorf("parse Envoy JSON stats: stats[%d].histograms: %w", i, err)
			}
			continue
		}
		v, ok := jsonNumber(st.Value)
		if !ok {
			continue // a text readout, or a stat without a value
		}
		if strings.HasPrefix(st.Name, "reporter=") {
			if seenRequests == nil {
				seenRequests = make(map[string]bool)
			}
			if seenRequests[st.Name] {
				warn.addf("stats[%d]: repeated stat %s ignored", i, st.Name)
				continue
			}
			seenRequests[st.Name] = true
			addTaggedRequests(s, st.Name, v)
			continue
		}
		addFlat(s, st.Name, v)
	}
	s.Warnings = warn.list()
	return s, nil
}

// jsonNumber reads a stat value: a JSON number; strings are text readouts.
func jsonNumber(raw json.RawMessage) (uint64, bool) {
	if len(raw) == 0 || raw[0] == '"' || raw[0] == 'n' {
		return 0, false
	}
	if u, err := strconv.ParseUint(string(raw), 10, 64); err == nil {
		return u, true
	}
	f, err := strconv.ParseFloat(string(raw), 64)
	if err != nil {
		return 0, false
	}
	return toUint(f), true
}

// addFlat files one untagged stat.
func addFlat(s *Snapshot, name string, v uint64) {
	switch name {
	case "cluster_manager.active_clusters":
		s.ActiveClusters = i64(v)
		return
	case "server.uptime":
		s.Uptime = i64(v)
		return
	}
	cluster, stat, ok := splitClusterStat(name)
	if !ok {
		return
	}
	switch kind, st, fixed := classifyStat(strings.ReplaceAll(stat, ".", "_")); kind {
	case kindValue:
		s.cluster(cluster).set(st, v)
	case kindCode:
		s.cluster(cluster).setCode(fixed, v)
	case kindClassOf:
		s.cluster(cluster).setClass(fixed, v)
	case kindRetryCode:
		s.cluster(cluster).setRetryCode(fixed, v)
	case kindRetryClassOf:
		s.cluster(cluster).setRetryClass(fixed, v)
	}
}

// jsonClusterStats are the stats tried as suffixes of a cluster.<name>.<stat> name,
// whose <name> may itself hold dots.
var jsonClusterStats = []string{
	"outlier_detection.ejections_enforced_total",
	"outlier_detection.ejections_active",
	"upstream_cx_connect_fail",
	"membership_healthy",
	"membership_total",
	"upstream_rq_total",
	"upstream_rq_retry",
	"upstream_rq_time",
}

// splitClusterStat splits cluster.<name>.<stat>. Istio ≥ 1.23 ends every cluster's
// stat name with ';' (alt_stat_name "outbound|…|host;", istio PR 51861) so that the
// boundary is plain; without it the stat is matched as a known suffix, and the
// sub-trees that sit between a cluster and its stats (internal., external.,
// canary., zone.<from>.<to>.) are left out.
func splitClusterStat(name string) (cluster, stat string, ok bool) {
	rest, ok := strings.CutPrefix(name, "cluster.")
	if !ok {
		return "", "", false
	}
	if i := strings.LastIndex(rest, ";."); i >= 0 {
		return rest[:i], rest[i+2:], rest[:i] != ""
	}
	for _, st := range jsonClusterStats {
		if c, ok := strings.CutSuffix(rest, "."+st); ok && c != "" {
			return c, st, notSubtree(c)
		}
	}
	// upstream_rq_503, upstream_rq_5xx, and the same under retry.
	i := strings.LastIndexByte(rest, '.')
	if i <= 0 {
		return "", "", false
	}
	if c, ok := strings.CutSuffix(rest[:i], ".retry"); ok && c != "" {
		return c, "retry." + rest[i+1:], notSubtree(c)
	}
	return rest[:i], rest[i+1:], notSubtree(rest[:i])
}

func notSubtree(cluster string) bool {
	for _, sub := range []string{".internal", ".external", ".canary"} {
		if strings.HasSuffix(cluster, sub) {
			return false
		}
	}
	return !strings.Contains(cluster, ".zone.")
}

// addTaggedRequests reads Istio's stats-plugin encoding of a tagged stat name:
// tag=.=value;.;tag=.=value;.;…;.;istio_requests_total, the form the sidecar
// bootstrap's extraStatTags regexes "(tag=\.=(.*?);\.;)" take apart for the
// Prometheus output.
func addTaggedRequests(s *Snapshot, name string, v uint64) {
	var k RequestKey
	metric := name
	for {
		i := strings.Index(metric, ";.;")
		if i < 0 {
			break
		}
		pair := metric[:i]
		metric = metric[i+3:]
		tag, val, ok := strings.Cut(pair, "=.=")
		if !ok {
			continue
		}
		switch tag {
		case "reporter":
			k.Reporter = val
		case "source_workload":
			k.SourceWorkload = val
		case "source_cluster":
			k.SourceCluster = val
		case "destination_service":
			k.DestinationService = val
		case "destination_workload":
			k.DestinationWorkload = val
		case "destination_version":
			k.DestinationVersion = val
		case "destination_cluster":
			k.DestinationCluster = val
		case "response_code":
			k.ResponseCode = val
		case "response_flags":
			k.ResponseFlags = val
		}
	}
	if metric == "istio_requests_total" {
		s.Requests[k] += v
	}
}

func jsonHistograms(s *Snapshot, raw json.RawMessage, warn *warnings) error {
	if t := bytes.TrimLeft(raw, " \t\r\n"); len(t) > 0 && t[0] != '[' {
		warn.addf("histograms are in quantile form; ask for %s to read upstream_rq_time", JSONPath)
		return nil
	}
	var hs []struct {
		Name    string `json:"name"`
		Buckets []struct {
			UpperBound float64 `json:"upper_bound"`
			Cumulative float64 `json:"cumulative"`
		} `json:"buckets"`
	}
	if err := json.Unmarshal(raw, &hs); err != nil {
		return err
	}
	for _, h := range hs {
		cluster, stat, ok := splitClusterStat(h.Name)
		if !ok || stat != "upstream_rq_time" || len(h.Buckets) == 0 {
			continue
		}
		hist := &Histogram{Counts: make([]uint64, 0, len(h.Buckets))}
		bounds := make([]float64, 0, len(h.Buckets))
		for _, b := range h.Buckets {
			if len(bounds) > 0 && b.UpperBound <= bounds[len(bounds)-1] {
				warn.addf("histogram %s: bucket upper_bound %g out of order, ignored", h.Name, b.UpperBound)
				continue
			}
			bounds = append(bounds, b.UpperBound)
			hist.Counts = append(hist.Counts, toUint(b.Cumulative))
		}
		hist.Bounds = internBounds(bounds)
		hist.Count = hist.Counts[len(hist.Counts)-1]
		s.cluster(cluster).RqTime = hist
	}
	return nil
}

// jsonError adds the line and column to a JSON decoding error.
func jsonError(data []byte, err error) error {
	var off int64 = -1
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		off = se.Offset
	case errors.As(err, &te):
		off = te.Offset
	}
	if off <= 0 || off > int64(len(data)) {
		return err
	}
	off-- // Offset counts the bytes read, the offending one included
	line := 1 + bytes.Count(data[:off], []byte("\n"))
	col := int(off) - bytes.LastIndexByte(data[:off], '\n')
	return fmt.Errorf("line %d, column %d: %w", line, col, err)
}
