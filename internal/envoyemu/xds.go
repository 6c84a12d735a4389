package envoyemu

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/anypb"
)

// The xDS resource types the proxy subscribes to (envoy api v3).
const (
	TypeListener = "type.googleapis.com/envoy.config.listener.v3.Listener"
	TypeRoute    = "type.googleapis.com/envoy.config.route.v3.RouteConfiguration"
	TypeCluster  = "type.googleapis.com/envoy.config.cluster.v3.Cluster"
	TypeEndpoint = "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment"
)

// resourceHandler applies the resources of one xDS response. It returns an
// error, which NACKs the response, when the proxy cannot use them; it then
// keeps the configuration it had. After a successful apply, subscriptions
// says which resources of each type the proxy now wants (CDS and LDS are
// wildcard subscriptions and are not in it).
type resourceHandler interface {
	apply(typeURL, version string, resources []*anypb.Any) error
	subscriptions() map[string][]string
}

// adsClient speaks Envoy's Aggregated Discovery Service to istiod over one
// gRPC stream, in state-of-the-world form, as Istio's sidecars do.
//
// Envoy's order is kept: CDS and LDS first (wildcard), then EDS for the
// clusters CDS named and RDS for the route configurations the listeners
// named. Every response is answered: an ACK carries its version and nonce;
// a NACK carries the nonce, the last accepted version and an error_detail
// saying why, as the xDS protocol specifies (envoy docs: api-docs/xds_protocol,
// "ACK and NACK semantics").
type adsClient struct {
	addr    string
	node    *corev3.Node
	handler resourceHandler
	log     *slog.Logger
	// record, when set, receives every response before it is applied.
	record func(*discoveryv3.DiscoveryResponse)

	mu       sync.Mutex
	accepted map[string]string   // last ACKed version per type
	nonces   map[string]string   // last nonce received per type
	names    map[string][]string // subscribed names per type (EDS, RDS)
	acks     map[string]int      // ACKs sent per type
	nacks    map[string]int      // NACKs sent per type
	lastNack map[string]string   // last NACK reason per type
	sent     map[string]bool     // EDS, RDS names sent on the current stream
	connects int
	connSt   bool
}

func newADSClient(addr string, node *corev3.Node, h resourceHandler, log *slog.Logger) *adsClient {
	return &adsClient{
		addr: addr, node: node, handler: h, log: log,
		accepted: map[string]string{}, nonces: map[string]string{}, names: map[string][]string{},
		acks: map[string]int{}, nacks: map[string]int{}, lastNack: map[string]string{},
	}
}

// run keeps a stream to istiod open until ctx ends, reconnecting with
// backoff when the stream breaks, as Envoy does.
func (c *adsClient) run(ctx context.Context) error {
	conn, err := grpc.NewClient(c.addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		// istiod's largest pushes (CDS of a big mesh) exceed gRPC's 4 MiB default.
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(64<<20)))
	if err != nil {
		return fmt.Errorf("xDS client for %s: %w", c.addr, err)
	}
	defer conn.Close()
	backoff := 100 * time.Millisecond
	for {
		start := time.Now()
		err := c.stream(ctx, discoveryv3.NewAggregatedDiscoveryServiceClient(conn))
		c.setConnected(false)
		if ctx.Err() != nil {
			return nil
		}
		if time.Since(start) > 10*time.Second {
			backoff = 100 * time.Millisecond
		}
		c.log.Warn("xDS stream to istiod broke; reconnecting", "istiod", c.addr, "err", err, "in", backoff)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

func (c *adsClient) setConnected(v bool) {
	c.mu.Lock()
	c.connSt = v
	if v {
		c.connects++
	}
	c.mu.Unlock()
}

func (c *adsClient) stream(ctx context.Context, client discoveryv3.AggregatedDiscoveryServiceClient) error {
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	st, err := client.StreamAggregatedResources(sctx)
	if err != nil {
		return fmt.Errorf("open ADS stream to %s: %w", c.addr, err)
	}
	c.setConnected(true)
	// A new stream starts afresh: the server has no state of ours.
	c.mu.Lock()
	c.nonces = map[string]string{}
	c.sent = map[string]bool{}
	c.mu.Unlock()
	first := true
	send := func(req *discoveryv3.DiscoveryRequest) error {
		if first {
			// The node goes with the first request of a stream only.
			req.Node = c.node
			first = false
		}
		return st.Send(req)
	}
	for _, t := range []string{TypeCluster, TypeListener} {
		c.mu.Lock()
		v := c.accepted[t]
		c.mu.Unlock()
		if err := send(&discoveryv3.DiscoveryRequest{TypeUrl: t, VersionInfo: v}); err != nil {
			return fmt.Errorf("send %s request: %w", shortType(t), err)
		}
	}
	for {
		resp, err := st.Recv()
		if err != nil {
			return fmt.Errorf("receive from %s: %w", c.addr, err)
		}
		if c.record != nil {
			c.record(resp)
		}
		reqs := c.handle(resp)
		for _, r := range reqs {
			if err := send(r); err != nil {
				return fmt.Errorf("send %s request: %w", shortType(r.TypeUrl), err)
			}
		}
	}
}

// handle applies one response and returns the requests to send: its ACK or
// NACK, and new subscriptions that the applied resources call for.
func (c *adsClient) handle(resp *discoveryv3.DiscoveryResponse) []*discoveryv3.DiscoveryRequest {
	t := resp.TypeUrl
	c.mu.Lock()
	c.nonces[t] = resp.Nonce
	c.mu.Unlock()

	var reqs []*discoveryv3.DiscoveryRequest
	err := c.handler.apply(t, resp.VersionInfo, resp.Resources)
	c.mu.Lock()
	if err != nil {
		c.nacks[t]++
		c.lastNack[t] = err.Error()
		c.log.Error("NACK: configuration from istiod rejected", "type", shortType(t), "version", resp.VersionInfo, "nonce", resp.Nonce, "reason", err)
		reqs = append(reqs, &discoveryv3.DiscoveryRequest{
			TypeUrl:       t,
			VersionInfo:   c.accepted[t],
			ResponseNonce: resp.Nonce,
			ResourceNames: c.names[t],
			ErrorDetail:   nackStatus(err),
		})
		c.mu.Unlock()
		return reqs
	}
	c.acks[t]++
	c.accepted[t] = resp.VersionInfo
	reqs = append(reqs, &discoveryv3.DiscoveryRequest{
		TypeUrl:       t,
		VersionInfo:   resp.VersionInfo,
		ResponseNonce: resp.Nonce,
		ResourceNames: c.names[t],
	})
	c.mu.Unlock()

	// A CDS or LDS update may change what EDS and RDS should watch.
	if t == TypeCluster || t == TypeListener {
		subs := c.handler.subscriptions()
		for _, st := range []string{TypeEndpoint, TypeRoute} {
			want, ok := subs[st]
			if !ok {
				continue
			}
			c.mu.Lock()
			if !slices.Equal(want, c.names[st]) || (len(want) > 0 && !c.sent[st]) {
				c.names[st] = want
				c.sent[st] = true
				reqs = append(reqs, &discoveryv3.DiscoveryRequest{
					TypeUrl:       st,
					VersionInfo:   c.accepted[st],
					ResponseNonce: c.nonces[st],
					ResourceNames: want,
				})
			}
			c.mu.Unlock()
		}
	}
	return reqs
}

// xdsStatus is what the admin endpoint reports of the xDS stream.
type xdsStatus struct {
	Connected bool
	Connects  int
	Accepted  map[string]string
	ACKs      map[string]int
	NACKs     map[string]int
	LastNACK  map[string]string
}

func (c *adsClient) status() xdsStatus {
	c.mu.Lock()
	defer c.mu.Unlock()
	cp := func(m map[string]string) map[string]string {
		out := make(map[string]string, len(m))
		for k, v := range m {
			out[shortType(k)] = v
		}
		return out
	}
	cpi := func(m map[string]int) map[string]int {
		out := make(map[string]int, len(m))
		for k, v := range m {
			out[shortType(k)] = v
		}
		return out
	}
	return xdsStatus{Connected: c.connSt, Connects: c.connects, Accepted: cp(c.accepted), ACKs: cpi(c.acks), NACKs: cpi(c.nacks), LastNACK: cp(c.lastNack)}
}

func shortType(t string) string {
	switch t {
	case TypeListener:
		return "LDS"
	case TypeRoute:
		return "RDS"
	case TypeCluster:
		return "CDS"
	case TypeEndpoint:
		return "EDS"
	}
	return t
}
