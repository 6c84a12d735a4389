package envoyemu

import (
	"encoding/base64"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
)

// Istio's standard metrics, as its stats filter names them (istio.io docs:
// reference/config/metrics).
const (
	requestsTotal   = "istio_requests_total"
	requestDuration = "istio_request_duration_milliseconds"
)

// requestLabels are istio_requests_total's labels in the order Istio's stats
// filter emits them.
var requestLabels = []string{
	"reporter",
	"source_workload", "source_canonical_service", "source_canonical_revision", "source_workload_namespace",
	"source_principal", "source_app", "source_version", "source_cluster",
	"destination_workload", "destination_workload_namespace", "destination_principal", "destination_app",
	"destination_version", "destination_service", "destination_canonical_service", "destination_canonical_revision",
	"destination_service_name", "destination_service_namespace", "destination_cluster",
	"request_protocol", "response_code", "grpc_response_status", "response_flags", "connection_security_policy",
}

type requestSeries struct {
	labels   []label
	count    *Counter
	duration *Histogram
}

// envoyName is the series' stat name in Envoy's own form, as /stats and
// /stats?format=json show it: reporter=.=source;.;…;.;istio_requests_total.
func (r *requestSeries) envoyName() string {
	var b strings.Builder
	for _, l := range r.labels {
		b.WriteString(l.name)
		b.WriteString("=.=")
		b.WriteString(l.value)
		b.WriteString(";.;")
	}
	b.WriteString(requestsTotal)
	return b.String()
}

type requestMetrics struct {
	mu     sync.Mutex
	series map[string]*requestSeries
}

func newRequestMetrics() *requestMetrics {
	return &requestMetrics{series: map[string]*requestSeries{}}
}

// record counts one request with the label values (in requestLabels order).
func (m *requestMetrics) record(values []string, d time.Duration) {
	key := strings.Join(values, "\x00")
	m.mu.Lock()
	s, ok := m.series[key]
	if !ok {
		s = &requestSeries{count: &Counter{}, duration: &Histogram{}}
		for i, n := range requestLabels {
			s.labels = append(s.labels, label{n, values[i]})
		}
		m.series[key] = s
	}
	m.mu.Unlock()
	s.count.Inc()
	s.duration.Record(float64(d.Milliseconds()))
}

func (m *requestMetrics) snapshot() []*requestSeries {
	m.mu.Lock()
	out := make([]*requestSeries, 0, len(m.series))
	for _, s := range m.series {
		out = append(out, s)
	}
	m.mu.Unlock()
	slices.SortFunc(out, func(a, b *requestSeries) int { return strings.Compare(a.envoyName(), b.envoyName()) })
	return out
}

// Headers of Istio's HTTP metadata exchange (istio proxy
// extensions/metadata_exchange): each side sends its node metadata, a
// base64 protobuf Struct, and its node id. Between emulated proxies they
// stand in for the peer certificate as well: see docs/proxy.md.
const (
	headerPeerMetadata   = "X-Envoy-Peer-Metadata"
	headerPeerMetadataID = "X-Envoy-Peer-Metadata-Id"
)

// peer is what a proxy learns of the other side from metadata exchange.
type peer struct {
	workload, namespace, cluster, serviceAccount string
	app, version                                 string
	canonicalService, canonicalRevision          string
	trustDomain                                  string
}

func (p *peer) principal() string {
	if p == nil || p.serviceAccount == "" {
		return "unknown"
	}
	td := p.trustDomain
	if td == "" {
		td = "cluster.local"
	}
	return "spiffe://" + td + "/ns/" + p.namespace + "/sa/" + p.serviceAccount
}

// selfPeer is this proxy as its peers see it.
func (id *Identity) selfPeer() *peer {
	return &peer{
		workload: id.WorkloadName, namespace: id.Namespace, cluster: id.Cluster, serviceAccount: id.ServiceAccount,
		app: id.Labels["app"], version: id.Labels["version"],
		canonicalService: id.canonicalService(), canonicalRevision: id.canonicalRevision(),
		trustDomain: id.trustDomain(),
	}
}

// peerHeaders encodes this proxy's metadata for the exchange headers, once.
func (id *Identity) peerHeaders() (string, error) {
	labels := map[string]any{}
	for k, v := range id.Labels {
		labels[k] = v
	}
	labels["service.istio.io/canonical-name"] = id.canonicalService()
	labels["service.istio.io/canonical-revision"] = id.canonicalRevision()
	st, err := structpb.NewStruct(map[string]any{
		"NAME":            id.Pod,
		"NAMESPACE":       id.Namespace,
		"CLUSTER_ID":      id.Cluster,
		"WORKLOAD_NAME":   id.WorkloadName,
		"SERVICE_ACCOUNT": id.ServiceAccount,
		"MESH_ID":         id.MeshID,
		"LABELS":          labels,
		"TRUST_DOMAIN":    id.trustDomain(),
	})
	if err != nil {
		return "", err
	}
	b, err := proto.Marshal(st)
	if err != nil {
		return "", err
	}
	return base64.StdEncoding.EncodeToString(b), nil
}

// peerCache remembers decoded exchange headers: a proxy sees the same few
// peers over and over, and decoding costs more than the lookup.
var peerCache struct {
	sync.Mutex
	m map[string]*peer
}

// parsePeer reads the exchange headers; nil when absent or unreadable.
func parsePeer(h http.Header) *peer {
	v := h.Get(headerPeerMetadata)
	if v == "" {
		return nil
	}
	peerCache.Lock()
	p, ok := peerCache.m[v]
	peerCache.Unlock()
	if ok {
		return p
	}
	p = decodePeer(v)
	peerCache.Lock()
	if peerCache.m == nil || len(peerCache.m) >= 1024 {
		peerCache.m = map[string]*peer{}
	}
	peerCache.m[v] = p
	peerCache.Unlock()
	return p
}

func decodePeer(v string) *peer {
	b, err := base64.StdEncoding.DecodeString(v)
	if err != nil {
		return nil
	}
	st := &structpb.Struct{}
	if err := proto.Unmarshal(b, st); err != nil {
		return nil
	}
	f := st.GetFields()
	labels := f["LABELS"].GetStructValue().GetFields()
	p := &peer{
		workload:          f["WORKLOAD_NAME"].GetStringValue(),
		namespace:         f["NAMESPACE"].GetStringValue(),
		cluster:           f["CLUSTER_ID"].GetStringValue(),
		serviceAccount:    f["SERVICE_ACCOUNT"].GetStringValue(),
		trustDomain:       f["TRUST_DOMAIN"].GetStringValue(),
		app:               labels["app"].GetStringValue(),
		version:           labels["version"].GetStringValue(),
		canonicalService:  labels["service.istio.io/canonical-name"].GetStringValue(),
		canonicalRevision: labels["service.istio.io/canonical-revision"].GetStringValue(),
	}
	return p
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

// requestRecord is one request as Istio's stats filter sees it.
type requestRecord struct {
	reporter    string // "source" or "destination"
	source      *peer
	dest        *peer
	destService string // host, e.g. reviews.default.svc.cluster.local
	code        int
	flags       responseFlags
	mtls        bool
	duration    time.Duration
}

func (r *requestRecord) values() []string {
	src, dst := r.source, r.dest
	if src == nil {
		src = &peer{}
	}
	if dst == nil {
		dst = &peer{}
	}
	svcName, svcNS := "unknown", "unknown"
	if parts := strings.Split(r.destService, "."); len(parts) >= 2 {
		svcName, svcNS = parts[0], parts[1]
	} else if r.destService != "" {
		svcName = r.destService
	}
	dstCanon, dstRev := dst.canonicalService, dst.canonicalRevision
	if dstCanon == "" {
		dstCanon, dstRev = svcName, "latest"
	}
	security := "unknown"
	if r.reporter == "destination" {
		security = "none"
		if r.mtls {
			security = "mutual_tls"
		}
	}
	srcPrincipal, dstPrincipal := r.source.principal(), r.dest.principal()
	return []string{
		r.reporter,
		orUnknown(src.workload), orUnknown(src.canonicalService), orUnknown(src.canonicalRevision), orUnknown(src.namespace),
		srcPrincipal, orUnknown(src.app), orUnknown(src.version), orUnknown(src.cluster),
		orUnknown(dst.workload), orUnknown(dst.namespace), dstPrincipal, orUnknown(dst.app),
		orUnknown(dst.version), orUnknown(r.destService), orUnknown(dstCanon), orUnknown(dstRev),
		svcName, svcNS, orUnknown(dst.cluster),
		"http", strconv.Itoa(r.code), "", r.flags.String(), security,
	}
}
