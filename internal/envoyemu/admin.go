package envoyemu

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/pprof"
	"regexp"
	"strconv"
	"strings"
	"time"

	adminv3 "github.com/envoyproxy/go-control-plane/envoy/admin/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// adminHandler is the proxy's admin endpoint, the subset of Envoy's that
// drill and an SRE use (envoy docs: operations/admin).
func (p *Proxy) adminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/stats/prometheus", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		_ = p.store.WritePrometheus(w)
	})
	mux.HandleFunc("/stats", func(w http.ResponseWriter, r *http.Request) {
		var filter *regexp.Regexp
		if f := r.URL.Query().Get("filter"); f != "" {
			re, err := regexp.Compile(f)
			if err != nil {
				http.Error(w, fmt.Sprintf("Invalid regex: %v", err), http.StatusBadRequest)
				return
			}
			filter = re
		}
		switch r.URL.Query().Get("format") {
		case "json":
			w.Header().Set("Content-Type", "application/json")
			_ = p.store.WriteJSON(w, filter)
		case "prometheus":
			w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
			_ = p.store.WritePrometheus(w)
		default:
			w.Header().Set("Content-Type", "text/plain; charset=UTF-8")
			_ = p.store.WriteText(w, filter)
		}
	})
	mux.HandleFunc("/ready", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=UTF-8")
		if p.Ready() {
			fmt.Fprintln(w, "LIVE")
			return
		}
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintln(w, "PRE_INITIALIZING")
	})
	mux.HandleFunc("/clusters", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("format") == "json" {
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write(p.clustersJSON())
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=UTF-8")
		_, _ = w.Write(p.clustersText())
	})
	mux.HandleFunc("/config_dump", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(p.configDump(r.URL.Query().Has("include_eds")))
	})
	mux.HandleFunc("/server_info", func(w http.ResponseWriter, r *http.Request) {
		state := "PRE_INITIALIZING"
		if p.Ready() {
			state = "LIVE"
		}
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", " ")
		_ = enc.Encode(map[string]any{
			"version":              "drill-emulated-envoy/" + IstioVersion,
			"state":                state,
			"uptime_current_epoch": fmt.Sprintf("%ds", int(time.Since(p.started).Seconds())),
			"node":                 map[string]any{"id": p.id.NodeID(), "cluster": p.node.GetCluster()},
			"xds":                  p.ads.status(),
		})
	})
	// Go's profiles of the emulation itself (not an Envoy endpoint: Envoy
	// has /cpuprofiler and /heapprofiler for its own): where the emulated
	// proxy spends its CPU and memory, e.g. `go tool pprof
	// http://127.0.0.1:15000/debug/pprof/profile?seconds=10` in the pod.
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	mux.HandleFunc("/quitquitquit", func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			http.Error(w, "This endpoint requires POST", http.StatusMethodNotAllowed)
			return
		}
		fmt.Fprintln(w, "OK")
		if p.opts.quit != nil {
			go p.opts.quit()
		}
	})
	mux.HandleFunc("/drain_listeners", func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			http.Error(w, "This endpoint requires POST", http.StatusMethodNotAllowed)
			return
		}
		// Envoy stops accepting on the drained listeners and lets open
		// connections finish; the emulation marks itself draining and
		// keeps serving what is open.
		p.store.Gauge("server.state").Set(1) // DRAINING
		p.store.Gauge("listener_manager.total_listeners_draining").Set(int64(len(p.routing.Load().listeners)))
		fmt.Fprintln(w, "OK")
	})
	mux.HandleFunc("/healthcheck/fail", func(w http.ResponseWriter, r *http.Request) {
		p.store.Gauge("server.state").Set(1)
		fmt.Fprintln(w, "OK")
	})
	mux.HandleFunc("/listeners", func(w http.ResponseWriter, r *http.Request) {
		rt := p.routing.Load()
		w.Header().Set("Content-Type", "text/plain; charset=UTF-8")
		for _, n := range sortedKeys(rt.listeners) {
			l := rt.listeners[n]
			fmt.Fprintf(w, "%s::%s\n", n, joinHostPort(l.addr.String(), l.port))
		}
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" {
			http.NotFound(w, r)
			return
		}
		fmt.Fprintln(w, "admin commands are:\n  /clusters\n  /config_dump\n  /debug/pprof/ (the emulation's own Go profiles)\n  /drain_listeners\n  /listeners\n  /quitquitquit\n  /ready\n  /server_info\n  /stats\n  /stats/prometheus")
	})
	return mux
}

// statusHandler serves the Istio agent's ports: /healthz/ready (15021) and
// the merged /stats/prometheus (15090).
func (p *Proxy) statusHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz/ready", func(w http.ResponseWriter, r *http.Request) {
		if !p.Ready() {
			http.Error(w, "Envoy proxy is NOT ready: config not received from XDS server", http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusOK)
	})
	mux.HandleFunc("/stats/prometheus", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		_ = p.store.WritePrometheus(w)
	})
	return mux
}

// clustersText is /clusters in Envoy's text form: per cluster its
// settings, then per host "cluster::address::stat::value" lines with
// health_flags, weight, locality and priority.
func (p *Proxy) clustersText() []byte {
	var b bytes.Buffer
	rt := p.routing.Load()
	for _, name := range sortedKeys(rt.clusters) {
		cl := rt.clusters[name]
		fmt.Fprintf(&b, "%s::observability_name::%s\n", name, strings.TrimSuffix(cl.statName, ";"))
		fmt.Fprintf(&b, "%s::default_priority::max_connections::%d\n", name, cl.maxConnections)
		fmt.Fprintf(&b, "%s::default_priority::max_pending_requests::%d\n", name, cl.maxPending)
		fmt.Fprintf(&b, "%s::default_priority::max_requests::%d\n", name, cl.maxRequests)
		fmt.Fprintf(&b, "%s::default_priority::max_retries::%d\n", name, cl.maxRetries)
		// The high priority thresholds: Envoy's defaults (Istio sets none).
		fmt.Fprintf(&b, "%s::high_priority::max_connections::1024\n", name)
		fmt.Fprintf(&b, "%s::high_priority::max_pending_requests::1024\n", name)
		fmt.Fprintf(&b, "%s::high_priority::max_requests::1024\n", name)
		fmt.Fprintf(&b, "%s::high_priority::max_retries::3\n", name)
		fmt.Fprintf(&b, "%s::added_via_api::true\n", name)
		cl.mu.RLock()
		hosts := append([]*host(nil), cl.hosts...)
		cl.mu.RUnlock()
		for _, h := range hosts {
			pre := name + "::" + h.addr + "::"
			fmt.Fprintf(&b, "%scx_active::%d\n", pre, h.cxActive.Load())
			fmt.Fprintf(&b, "%scx_connect_fail::%d\n", pre, h.cxConnectFail.Load())
			fmt.Fprintf(&b, "%scx_total::%d\n", pre, h.cxTotal.Load())
			fmt.Fprintf(&b, "%srq_active::%d\n", pre, h.active.Load())
			fmt.Fprintf(&b, "%srq_error::%d\n", pre, h.rqError.Load())
			fmt.Fprintf(&b, "%srq_success::%d\n", pre, h.rqSuccess.Load())
			fmt.Fprintf(&b, "%srq_timeout::%d\n", pre, h.rqTimeout.Load())
			fmt.Fprintf(&b, "%srq_total::%d\n", pre, h.rqTotal.Load())
			fmt.Fprintf(&b, "%shostname::\n", pre)
			fmt.Fprintf(&b, "%shealth_flags::%s\n", pre, healthFlags(h))
			a := h.attr()
			fmt.Fprintf(&b, "%sweight::%d\n", pre, a.weight)
			fmt.Fprintf(&b, "%sregion::%s\n", pre, a.locality.GetRegion())
			fmt.Fprintf(&b, "%szone::%s\n", pre, a.locality.GetZone())
			fmt.Fprintf(&b, "%ssub_zone::%s\n", pre, a.locality.GetSubZone())
			fmt.Fprintf(&b, "%scanary::false\n", pre)
			fmt.Fprintf(&b, "%spriority::%d\n", pre, h.priority.Load())
			fmt.Fprintf(&b, "%ssuccess_rate::-1\n", pre)
			fmt.Fprintf(&b, "%slocal_origin_success_rate::-1\n", pre)
		}
	}
	return b.Bytes()
}

// healthFlags is Envoy's health_flags text: "healthy", or the failed
// checks joined by '/' (e.g. "/failed_outlier_check", "/failed_eds_health").
func healthFlags(h *host) string {
	var f []string
	if h.ejected.Load() {
		f = append(f, "/failed_outlier_check")
	}
	if s := h.attr().health; !h.edsHealthy() && s != 0 {
		if s == 5 { // DEGRADED
			f = append(f, "/degraded_eds_health")
		} else {
			f = append(f, "/failed_eds_health")
		}
	}
	if len(f) == 0 {
		return "healthy"
	}
	return strings.Join(f, "")
}

// clustersJSON is /clusters?format=json: Envoy's own envoy.admin.v3.Clusters
// message, marshalled as Envoy marshals it (proto JSON with the proto's
// field names: 64-bit counters as strings, enums by name).
func (p *Proxy) clustersJSON() []byte {
	rt := p.routing.Load()
	out := &adminv3.Clusters{}
	for _, name := range sortedKeys(rt.clusters) {
		cl := rt.clusters[name]
		cl.mu.RLock()
		hosts := append([]*host(nil), cl.hosts...)
		cl.mu.RUnlock()
		cs := &adminv3.ClusterStatus{Name: name, ObservabilityName: strings.TrimSuffix(cl.statName, ";"), AddedViaApi: true}
		for _, h := range hosts {
			addr, port, _ := cutPort(h.addr)
			pn, _ := strconv.ParseUint(port, 10, 32)
			a := h.attr()
			counter := func(n string, v uint64) *adminv3.SimpleMetric {
				return &adminv3.SimpleMetric{Type: adminv3.SimpleMetric_COUNTER, Name: n, Value: v}
			}
			cs.HostStatuses = append(cs.HostStatuses, &adminv3.HostStatus{
				Address: &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
					Address: addr, PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: uint32(pn)}}}},
				Stats: []*adminv3.SimpleMetric{
					{Type: adminv3.SimpleMetric_GAUGE, Name: "cx_active", Value: uint64(max(h.cxActive.Load(), 0))},
					counter("cx_connect_fail", h.cxConnectFail.Load()),
					counter("cx_total", h.cxTotal.Load()),
					counter("rq_error", h.rqError.Load()),
					counter("rq_success", h.rqSuccess.Load()),
					counter("rq_timeout", h.rqTimeout.Load()),
					counter("rq_total", h.rqTotal.Load()),
					{Type: adminv3.SimpleMetric_GAUGE, Name: "rq_active", Value: uint64(max(h.active.Load(), 0))},
				},
				HealthStatus: &adminv3.HostHealthStatus{FailedOutlierCheck: h.ejected.Load(), EdsHealthStatus: a.health},
				Weight:       a.weight,
				Priority:     uint32(h.priority.Load()),
				Locality:     a.locality,
			})
		}
		out.ClusterStatuses = append(out.ClusterStatuses, cs)
	}
	b, err := protojson.MarshalOptions{UseProtoNames: true, Multiline: true}.Marshal(out)
	if err != nil {
		return []byte("{}")
	}
	return b
}

// configDump is /config_dump: per xDS type the accepted version and the
// resources, each as Envoy's JSON when its types are known here, else by
// name only.
func (p *Proxy) configDump(withEDS bool) []byte {
	c := p.cfg
	c.mu.Lock()
	type entry struct {
		Name     string          `json:"name"`
		Resource json.RawMessage `json:"resource,omitempty"`
		Error    string          `json:"error,omitempty"`
	}
	dump := func(names []string, get func(string) proto.Message) []entry {
		out := make([]entry, 0, len(names))
		for _, n := range names {
			e := entry{Name: n}
			if b, err := (protojson.MarshalOptions{UseProtoNames: true}).Marshal(get(n)); err == nil {
				e.Resource = b
			} else {
				// A typed config of a type drill does not link (an Istio
				// filter's own proto) cannot be rendered; the summary has it.
				e.Error = err.Error()
			}
			out = append(out, e)
		}
		return out
	}
	doc := map[string]any{
		"node": map[string]any{"id": p.id.NodeID(), "cluster": p.node.GetCluster()},
		"clusters": map[string]any{
			"version_info":            c.versions[TypeCluster],
			"dynamic_active_clusters": dump(sortedKeys(c.clustersRaw), func(n string) proto.Message { return c.clustersRaw[n] }),
		},
		"listeners": map[string]any{
			"version_info":      c.versions[TypeListener],
			"dynamic_listeners": dump(sortedKeys(c.listenersRaw), func(n string) proto.Message { return c.listenersRaw[n] }),
		},
		"routes": map[string]any{
			"version_info":          c.versions[TypeRoute],
			"dynamic_route_configs": dump(sortedKeys(c.routesRaw), func(n string) proto.Message { return c.routesRaw[n] }),
		},
	}
	if withEDS {
		doc["endpoints"] = map[string]any{
			"version_info":             c.versions[TypeEndpoint],
			"dynamic_endpoint_configs": dump(sortedKeys(c.assignments), func(n string) proto.Message { return c.assignments[n] }),
		}
	}
	var chains []map[string]any
	for _, n := range sortedKeys(c.listeners) {
		li := c.listeners[n]
		for _, ch := range append(append([]*chainInfo(nil), li.chains...), li.fallback) {
			if ch == nil {
				continue
			}
			m := map[string]any{
				"listener": n, "chain": ch.name, "destination_port": ch.destPort, "server_names": ch.serverNames,
				"transport_protocol": ch.transport, "application_protocols": ch.appProtocols, "http": ch.http,
				"rds": ch.rds, "tcp_cluster": ch.tcpCluster, "sni_cluster": ch.sniCluster,
			}
			if ch.fault != nil {
				m["http_fault"] = map[string]any{"abort_status": ch.fault.abortStatus, "abort_per_million": ch.fault.abortPerMil,
					"delay": ch.fault.delay.String(), "delay_per_million": ch.fault.delayPerMil}
			}
			chains = append(chains, m)
		}
	}
	doc["filter_chains"] = chains
	c.mu.Unlock()
	doc["xds"] = p.ads.status()
	b, err := json.MarshalIndent(doc, "", " ")
	if err != nil {
		return []byte(fmt.Sprintf(`{"error": %q}`, err.Error()))
	}
	return b
}
