package stats

import (
	"bytes"
	"fmt"
	"sort"
	"strings"
	"testing"
)

// Envoy's per-cluster stats as a sidecar with cluster.outbound included prints
// them (envoy docs: configuration/upstream/cluster_manager/cluster_stats).
var (
	benchCounters = strings.Fields(`assignment_stale assignment_timeout_received assignment_use_cached bind_errors
		default_total_match_count lb_healthy_panic lb_local_cluster_not_ok lb_recalculate_zone_structures
		lb_subsets_created lb_subsets_fallback lb_subsets_fallback_panic lb_subsets_removed lb_subsets_selected
		lb_zone_cluster_too_small lb_zone_no_capacity_left lb_zone_number_differs lb_zone_routing_all_directly
		lb_zone_routing_cross_zone lb_zone_routing_sampled membership_change original_dst_host_invalid
		outlier_detection_ejections_consecutive_5xx outlier_detection_ejections_detected_consecutive_5xx
		outlier_detection_ejections_detected_consecutive_gateway_failure
		outlier_detection_ejections_detected_consecutive_local_origin_failure
		outlier_detection_ejections_detected_failure_percentage outlier_detection_ejections_detected_success_rate
		outlier_detection_ejections_enforced_consecutive_5xx outlier_detection_ejections_enforced_consecutive_gateway_failure
		outlier_detection_ejections_enforced_failure_percentage outlier_detection_ejections_enforced_success_rate
		outlier_detection_ejections_enforced_total outlier_detection_ejections_overflow outlier_detection_ejections_total
		retry_or_shadow_abandoned update_attempt update_empty update_failure update_no_rebuild update_success
		upstream_cx_close_notify upstream_cx_connect_attempts_exceeded upstream_cx_connect_fail upstream_cx_connect_timeout
		upstream_cx_destroy upstream_cx_destroy_local upstream_cx_destroy_local_with_active_rq upstream_cx_destroy_remote
		upstream_cx_destroy_remote_with_active_rq upstream_cx_destroy_with_active_rq upstream_cx_http1_total
		upstream_cx_http2_total upstream_cx_http3_total upstream_cx_idle_timeout upstream_cx_max_duration_reached
		upstream_cx_max_requests upstream_cx_none_healthy upstream_cx_overflow upstream_cx_pool_overflow
		upstream_cx_protocol_error upstream_cx_rx_bytes_total upstream_cx_total upstream_cx_tx_bytes_total
		upstream_flow_control_backed_up_total upstream_flow_control_drained_total upstream_flow_control_paused_reading_total
		upstream_flow_control_resumed_reading_total upstream_http3_broken upstream_internal_redirect_failed_total
		upstream_internal_redirect_succeeded_total upstream_rq_0rtt upstream_rq_cancelled upstream_rq_completed
		upstream_rq_maintenance_mode upstream_rq_max_duration_reached upstream_rq_pending_failure_eject
		upstream_rq_pending_overflow upstream_rq_pending_total upstream_rq_per_try_idle_timeout upstream_rq_per_try_timeout
		upstream_rq_retry upstream_rq_retry_backoff_exponential upstream_rq_retry_backoff_ratelimited
		upstream_rq_retry_limit_exceeded upstream_rq_retry_overflow upstream_rq_retry_success upstream_rq_rx_reset
		upstream_rq_timeout upstream_rq_total upstream_rq_tx_reset`)
	benchGauges = strings.Fields(`circuit_breakers_default_cx_open circuit_breakers_default_cx_pool_open
		circuit_breakers_default_rq_open circuit_breakers_default_rq_pending_open circuit_breakers_default_rq_retry_open
		circuit_breakers_high_cx_open circuit_breakers_high_cx_pool_open circuit_breakers_high_rq_open
		circuit_breakers_high_rq_pending_open circuit_breakers_high_rq_retry_open lb_subsets_active max_host_weight
		membership_degraded membership_excluded membership_healthy membership_total outlier_detection_ejections_active
		upstream_cx_active upstream_cx_rx_bytes_buffered upstream_cx_tx_bytes_buffered upstream_rq_active
		upstream_rq_pending_active version`)
	benchHistograms = []string{"upstream_cx_connect_ms", "upstream_cx_length_ms", "upstream_rq_time"}
)

// sidecarPage writes the /stats/prometheus page of a sidecar that knows n outbound
// clusters, every one with traffic, in Envoy's layout: counters, gauges, then
// histograms, one TYPE line per name, samples sorted by cluster.
func sidecarPage(n int) []byte {
	clusters := make([]string, n)
	for i := range clusters {
		clusters[i] = fmt.Sprintf("outbound|9080||svc-%03d.ns-%d.svc.cluster.local", i, i%7)
	}
	clusters = append(clusters, "xds-grpc")
	sort.Strings(clusters)
	var b bytes.Buffer
	counter := func(stat string, value func(i int) int) {
		fmt.Fprintf(&b, "# TYPE envoy_cluster_%s counter\n", stat)
		for i, c := range clusters {
			fmt.Fprintf(&b, "envoy_cluster_%s{cluster_name=%q} %d\n", stat, c, value(i))
		}
		b.WriteString("\n")
	}
	for _, stat := range benchCounters {
		counter(stat, func(i int) int { return (i * 37) % 1000 })
		if stat == "upstream_internal_redirect_succeeded_total" {
			// envoy_cluster_upstream_rq sorts here: codes and classes.
			b.WriteString("# TYPE envoy_cluster_upstream_rq counter\n")
			for i, c := range clusters {
				fmt.Fprintf(&b, "envoy_cluster_upstream_rq{response_code=\"200\",cluster_name=%q} %d\n", c, 1000+i)
				fmt.Fprintf(&b, "envoy_cluster_upstream_rq{response_code_class=\"2xx\",cluster_name=%q} %d\n", c, 1000+i)
				if i%5 == 0 {
					fmt.Fprintf(&b, "envoy_cluster_upstream_rq{response_code=\"503\",cluster_name=%q} %d\n", c, i)
					fmt.Fprintf(&b, "envoy_cluster_upstream_rq{response_code_class=\"5xx\",cluster_name=%q} %d\n", c, i)
				}
			}
			b.WriteString("\n")
		}
	}
	for _, name := range []string{"cluster_manager_cds_update_success", "cluster_manager_cluster_added", "listener_manager_listener_added", "server_envoy_bug_failures"} {
		fmt.Fprintf(&b, "# TYPE envoy_%s counter\nenvoy_%s{} 7\n\n", name, name)
	}
	b.WriteString("# TYPE istio_requests_total counter\n")
	for i := 0; i < n; i++ {
		for _, code := range []string{"200", "503"} {
			fmt.Fprintf(&b, "istio_requests_total{reporter=\"source\",source_workload=\"productpage-v1\",source_canonical_service=\"productpage\","+
				"source_canonical_revision=\"v1\",source_workload_namespace=\"default\",source_principal=\"spiffe://cluster.local/ns/default/sa/bookinfo-productpage\","+
				"source_app=\"productpage\",source_version=\"v1\",source_cluster=\"cluster1\",destination_workload=\"svc-%03d-v1\",destination_workload_namespace=\"ns-%d\","+
				"destination_principal=\"spiffe://cluster.local/ns/ns-%d/sa/svc-%03d\",destination_app=\"svc-%03d\",destination_version=\"v1\","+
				"destination_service=\"svc-%03d.ns-%d.svc.cluster.local\",destination_canonical_service=\"svc-%03d\",destination_canonical_revision=\"v1\","+
				"destination_service_name=\"svc-%03d\",destination_service_namespace=\"ns-%d\",destination_cluster=\"cluster%d\",request_protocol=\"http\","+
				"response_code=\"%s\",grpc_response_status=\"\",response_flags=\"-\",connection_security_policy=\"unknown\"} %d\n",
				i, i%7, i%7, i, i, i, i%7, i, i, i%7, 1+i%2, code, 100+i)
		}
	}
	b.WriteString("\n")
	for _, stat := range benchGauges {
		fmt.Fprintf(&b, "# TYPE envoy_cluster_%s gauge\n", stat)
		for _, c := range clusters {
			fmt.Fprintf(&b, "envoy_cluster_%s{cluster_name=%q} 1\n", stat, c)
		}
		b.WriteString("\n")
	}
	fmt.Fprintf(&b, "# TYPE envoy_cluster_manager_active_clusters gauge\nenvoy_cluster_manager_active_clusters{} %d\n\n", n+8)
	b.WriteString("# TYPE envoy_server_uptime gauge\nenvoy_server_uptime{} 3600\n\n")
	for _, stat := range benchHistograms {
		fmt.Fprintf(&b, "# TYPE envoy_cluster_%s histogram\n", stat)
		for i, c := range clusters {
			total := 1000 + i
			for j, ub := range defaultBounds {
				fmt.Fprintf(&b, "envoy_cluster_%s_bucket{cluster_name=%q,le=\"%g\"} %d\n", stat, c, ub, min(total, total*(j+1)/6))
			}
			fmt.Fprintf(&b, "envoy_cluster_%s_bucket{cluster_name=%q,le=\"+Inf\"} %d\n", stat, c, total)
			fmt.Fprintf(&b, "envoy_cluster_%s_sum{cluster_name=%q} %d.0500000000000000444089209850063\n", stat, c, total*9)
			fmt.Fprintf(&b, "envoy_cluster_%s_count{cluster_name=%q} %d\n", stat, c, total)
		}
		b.WriteString("\n")
	}
	return b.Bytes()
}

func TestSidecarPageParses(t *testing.T) {
	page := sidecarPage(20)
	s, err := Parse(page)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Warnings) != 0 || len(s.Clusters) != 21 || len(s.Requests) != 40 || s.ActiveClusters != 28 {
		t.Fatalf("warnings %q, %d clusters, %d istio series, %d active", s.Warnings, len(s.Clusters), len(s.Requests), s.ActiveClusters)
	}
	c := s.Clusters["outbound|9080||svc-005.ns-5.svc.cluster.local"]
	if c.Codes["503"] != 5 || c.RqTime == nil || c.RqTime.Count != 1005 || c.Get(StatMembershipTotal) != 1 {
		t.Errorf("svc-005 = %+v", c)
	}
	if lines := bytes.Count(page, []byte("\n")); lines < 3000 {
		t.Errorf("the page has %d lines; a full sidecar page has thousands", lines)
	}
}

// BenchmarkParse parses a full sidecar page: 20 outbound clusters (about 4,500
// lines, the seed's Bookinfo sidecar with room to spare) and 200 (a sidecar that
// knows a larger mesh).
func BenchmarkParse(b *testing.B) {
	for _, n := range []int{20, 200} {
		page := sidecarPage(n)
		b.Run(fmt.Sprintf("clusters=%d/lines=%d", n, bytes.Count(page, []byte("\n"))), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(page)))
			for b.Loop() {
				if _, err := Parse(page); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkDiff is the per-scrape work after parsing.
func BenchmarkDiff(b *testing.B) {
	prev, err := Parse(sidecarPage(200))
	if err != nil {
		b.Fatal(err)
	}
	cur, _ := Parse(sidecarPage(200))
	b.ReportAllocs()
	for b.Loop() {
		diff(prev, cur, false)
	}
}
