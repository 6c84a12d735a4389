package stats

import (
	"bytes"
	"errors"
	"fmt"
	"strings"

	"go.yaml.in/yaml/v3"
)

// An Istio sidecar records only a few stats unless its pod asks for more: the
// bootstrap's stats matcher includes the prefixes cluster_manager,
// listener_manager, server, cluster.xds-grpc and wasm (istio
// pkg/bootstrap/config.go, requiredEnvoyStatsMatcherInclusionPrefixes) plus Istio's
// own istio_* metrics. Without cluster.outbound… in that list Envoy never creates
// upstream_rq_503 for reviews, and a drill would see no failure at all. The pod
// adds prefixes with the proxy.istio.io/config annotation (ProxyConfig
// proxyStatsMatcher: inclusionPrefixes, inclusionSuffixes, inclusionRegexps) or
// the older sidecar.istio.io/statsInclusionPrefixes (deprecated in istio.io/api
// annotation). Both are read when the sidecar starts: changing them takes a new
// pod (istio docs: ops/configuration/telemetry/envoy-stats).
const (
	// ProxyConfigAnnotation carries per-pod ProxyConfig overrides, in YAML.
	ProxyConfigAnnotation = "proxy.istio.io/config"
	// LegacyInclusionAnnotation is the deprecated comma-separated prefix list.
	LegacyInclusionAnnotation = "sidecar.istio.io/statsInclusionPrefixes"
	// OutboundStatsPrefix is the stat-name prefix of every outbound cluster's
	// stats (cluster.outbound|9080||reviews.default.svc.cluster.local.upstream_rq_total).
	OutboundStatsPrefix = "cluster.outbound"
)

// ErrNoOutboundStats is wrapped by CheckOutboundStats when a proxy shows no stats
// of any outbound cluster.
var ErrNoOutboundStats = errors.New("Envoy exposes no outbound cluster stats")

// HasOutboundStats reports whether the snapshot holds stats of at least one
// outbound Envoy cluster. Envoy creates a cluster's membership and outlier gauges
// with the cluster, so an included cluster shows before it carries any traffic,
// even with deferred stats creation.
func HasOutboundStats(s *Snapshot) bool {
	for name := range s.Clusters {
		if strings.HasPrefix(name, "outbound|") || strings.HasPrefix(name, "outbound_.") {
			return true
		}
	}
	return false
}

// CheckOutboundStats fails early, with the fix, when the Envoy of workload hides
// its outbound cluster stats. Call it on a scrape taken once the sidecar has its
// configuration from istiod (its pod is ready): a proxy with no outbound cluster
// at all fails too, and the error then says so.
func CheckOutboundStats(s *Snapshot, workload string) error {
	if HasOutboundStats(s) {
		return nil
	}
	has := ""
	if s.ActiveClusters >= 0 {
		has = fmt.Sprintf(" although it has %d active clusters", s.ActiveClusters)
	}
	return fmt.Errorf("%w: the sidecar of %s shows no %s… stats%s, so drill cannot see its upstream requests. "+
		"Istio's sidecar records only cluster_manager, listener_manager, server and cluster.xds-grpc stats unless the pod asks for more. "+
		"Add to the pod template of %s the annotation %s: 'proxyStatsMatcher: {inclusionPrefixes: [%s]}' "+
		"(proxyStatsMatcher.inclusionRegexps works too, as does the deprecated %s: %s), then let the pods restart: "+
		"the sidecar reads it at startup. If the pod has only just started, wait until it is ready and scrape again",
		ErrNoOutboundStats, workload, OutboundStatsPrefix, has, workload, ProxyConfigAnnotation, OutboundStatsPrefix,
		LegacyInclusionAnnotation, OutboundStatsPrefix)
}

// StatsAnnotation is the pod annotation drill sets on the workloads it observes so
// that their sidecars record outbound cluster stats. The prefix form is Istio's
// own example (samples/httpbin/sample-client/fortio-deploy.yaml) and is cheaper
// for Envoy than a regex matched against every stat name. A pod that already has
// the annotation should get MergeStatsInclusion of its value instead.
func StatsAnnotation() (key, value string) {
	return ProxyConfigAnnotation, "proxyStatsMatcher:\n  inclusionPrefixes:\n  - " + OutboundStatsPrefix + "\n"
}

// MergeStatsInclusion returns the proxy.istio.io/config value existing with
// cluster.outbound added to proxyStatsMatcher.inclusionPrefixes, keeping every
// other setting (holdApplicationUntilProxyStarts, tracing, ...) as it was. changed
// is false when a prefix already covers it.
func MergeStatsInclusion(existing string) (value string, changed bool, err error) {
	if strings.TrimSpace(existing) == "" {
		_, v := StatsAnnotation()
		return v, true, nil
	}
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(existing), &doc); err != nil {
		return "", false, fmt.Errorf("annotation %s: %w; fix its YAML before drill adds %s to it", ProxyConfigAnnotation, err, OutboundStatsPrefix)
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 || doc.Content[0].Kind != yaml.MappingNode {
		return "", false, fmt.Errorf("annotation %s is not a YAML mapping of ProxyConfig fields; fix it before drill adds %s to it", ProxyConfigAnnotation, OutboundStatsPrefix)
	}
	matcher, err := mappingChild(doc.Content[0], "proxyStatsMatcher", yaml.MappingNode)
	if err != nil {
		return "", false, err
	}
	prefixes, err := mappingChild(matcher, "inclusionPrefixes", yaml.SequenceNode)
	if err != nil {
		return "", false, err
	}
	for _, p := range prefixes.Content {
		if p.Kind == yaml.ScalarNode && strings.HasPrefix(OutboundStatsPrefix, p.Value) {
			return existing, false, nil
		}
	}
	prefixes.Content = append(prefixes.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: OutboundStatsPrefix})
	prefixes.Style = 0 // block style, whatever the original used
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(&doc); err != nil {
		return "", false, fmt.Errorf("annotation %s: %w", ProxyConfigAnnotation, err)
	}
	return buf.String(), true, nil
}

// mappingChild finds key in mapping m, adding an empty node of kind when missing.
func mappingChild(m *yaml.Node, key string, kind yaml.Kind) (*yaml.Node, error) {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value != key {
			continue
		}
		v := m.Content[i+1]
		if v.Kind == yaml.ScalarNode && (v.Tag == "!!null" || v.Value == "") {
			v.Kind, v.Tag, v.Value = kind, "", ""
		}
		if v.Kind != kind {
			return nil, fmt.Errorf("annotation %s: %s has the wrong shape (line %d); fix it before drill adds %s to it", ProxyConfigAnnotation, key, v.Line, OutboundStatsPrefix)
		}
		return v, nil
	}
	v := &yaml.Node{Kind: kind}
	m.Content = append(m.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: key}, v)
	return v, nil
}
