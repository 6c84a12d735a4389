package envoyemu

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"sync"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
)

// configState holds the proxy's xDS configuration: the resources as
// received (for /config_dump) and their compiled forms. It implements
// resourceHandler; each apply either takes a whole response or, on error,
// none of it.
type configState struct {
	p  *Proxy
	mu sync.Mutex

	listenersRaw map[string]*listenerv3.Listener
	listeners    map[string]*listenerInfo
	routesRaw    map[string]*routev3.RouteConfiguration
	routes       map[string]*routeTable
	clustersRaw  map[string]*clusterv3.Cluster
	clusters     map[string]*cluster
	assignments  map[string]*endpointv3.ClusterLoadAssignment
	versions     map[string]string
	gotCDS       bool
	gotLDS       bool
	// staticListeners and staticClusters are the bootstrap's: always
	// there, never replaced by xDS (Envoy rejects a dynamic resource that
	// reuses a static one's name).
	staticListeners map[string]*listenerInfo
	staticClusters  map[string]*cluster
	// skipBind keeps a gateway's listeners unbound (tests of the
	// configuration alone).
	skipBind bool
}

func newConfigState(p *Proxy) *configState {
	return &configState{
		p:            p,
		listenersRaw: map[string]*listenerv3.Listener{},
		listeners:    map[string]*listenerInfo{},
		routesRaw:    map[string]*routev3.RouteConfiguration{},
		routes:       map[string]*routeTable{},
		clustersRaw:  map[string]*clusterv3.Cluster{},
		clusters:     map[string]*cluster{},
		assignments:  map[string]*endpointv3.ClusterLoadAssignment{},
		versions:     map[string]string{},
	}
}

func (c *configState) apply(typeURL, version string, resources []*anypb.Any) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	var err error
	switch typeURL {
	case TypeCluster:
		err = c.applyClusters(resources)
	case TypeEndpoint:
		err = c.applyEndpoints(resources)
	case TypeListener:
		err = c.applyListeners(resources)
	case TypeRoute:
		err = c.applyRoutes(resources)
	default:
		err = fmt.Errorf("resource type %s was not subscribed to", typeURL)
	}
	s := c.p.store
	prefix := map[string]string{TypeCluster: "cluster_manager.cds.", TypeListener: "listener_manager.lds.", TypeRoute: "http.rds.", TypeEndpoint: "cluster_manager.eds."}[typeURL]
	if err != nil {
		s.Counter(prefix + "update_rejected").Inc()
		return err
	}
	s.Counter(prefix + "update_success").Inc()
	c.versions[typeURL] = version
	c.publish()
	c.checkReady()
	return nil
}

func unpack[T proto.Message](resources []*anypb.Any, typeURL string, newT func() T) ([]T, error) {
	out := make([]T, 0, len(resources))
	for i, a := range resources {
		if a.GetTypeUrl() != typeURL {
			return nil, fmt.Errorf("resource %d is a %s, not a %s", i, a.GetTypeUrl(), typeURL)
		}
		m := newT()
		if err := a.UnmarshalTo(m); err != nil {
			return nil, fmt.Errorf("resource %d: %w", i, err)
		}
		out = append(out, m)
	}
	return out, nil
}

// applyClusters takes a CDS response, the full set of clusters. A cluster
// whose configuration did not change keeps its runtime state (endpoints,
// outlier ejections); a changed one is rebuilt and gets the last endpoints
// EDS sent for it, as Envoy re-warms a modified cluster.
func (c *configState) applyClusters(resources []*anypb.Any) error {
	cs, err := unpack(resources, TypeCluster, func() *clusterv3.Cluster { return &clusterv3.Cluster{} })
	if err != nil {
		return err
	}
	raw := make(map[string]*clusterv3.Cluster, len(cs))
	built := make(map[string]*cluster, len(cs))
	var errs []error
	for _, cfg := range cs {
		if _, dup := raw[cfg.GetName()]; dup {
			errs = append(errs, fmt.Errorf("cluster %q sent twice", cfg.GetName()))
			continue
		}
		raw[cfg.GetName()] = cfg
		if old, ok := c.clusters[cfg.GetName()]; ok && proto.Equal(old.cfg, cfg) {
			built[cfg.GetName()] = old
			continue
		}
		cl, err := newCluster(cfg, c.p.deps())
		if err != nil {
			errs = append(errs, err)
			continue
		}
		built[cfg.GetName()] = cl
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	s := c.p.store
	for name, cl := range built {
		old, ok := c.clusters[name]
		switch {
		case !ok:
			s.Counter("cluster_manager.cluster_added").Inc()
		case old != cl:
			s.Counter("cluster_manager.cluster_modified").Inc()
			c.p.dropTransport(name)
		}
		if cl.typ == clusterEDS && (!ok || old != cl) {
			if la, ok := c.assignments[cl.edsName]; ok {
				_ = cl.setAssignment(la)
			}
		}
	}
	for name := range c.clusters {
		if _, ok := built[name]; !ok {
			s.Counter("cluster_manager.cluster_removed").Inc()
			c.p.dropTransport(name)
		}
	}
	c.clustersRaw, c.clusters = raw, built
	s.Gauge("cluster_manager.active_clusters").Set(int64(len(built)))
	s.Gauge("cluster_manager.warming_clusters").Set(0)
	// Endpoints of clusters that are gone are forgotten.
	keep := map[string]bool{}
	for _, cl := range built {
		if cl.typ == clusterEDS {
			keep[cl.edsName] = true
		}
	}
	for n := range c.assignments {
		if !keep[n] {
			delete(c.assignments, n)
		}
	}
	c.gotCDS = true
	return nil
}

// applyEndpoints takes an EDS response. In state-of-the-world EDS a
// response need not carry every subscribed assignment: the ones it carries
// replace theirs, the others stay.
func (c *configState) applyEndpoints(resources []*anypb.Any) error {
	las, err := unpack(resources, TypeEndpoint, func() *endpointv3.ClusterLoadAssignment { return &endpointv3.ClusterLoadAssignment{} })
	if err != nil {
		return err
	}
	for _, la := range las {
		if la.GetClusterName() == "" {
			return fmt.Errorf("cluster load assignment without a cluster_name")
		}
	}
	for _, la := range las {
		c.assignments[la.GetClusterName()] = la
		for _, cl := range c.clusters {
			if cl.typ == clusterEDS && cl.edsName == la.GetClusterName() {
				if err := cl.setAssignment(la); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// applyListeners takes an LDS response, the full set of listeners. A
// gateway binds the listeners that bind to a port; a sidecar's are
// virtual (reached through its outbound listener by port).
func (c *configState) applyListeners(resources []*anypb.Any) error {
	ls, err := unpack(resources, TypeListener, func() *listenerv3.Listener { return &listenerv3.Listener{} })
	if err != nil {
		return err
	}
	raw := make(map[string]*listenerv3.Listener, len(ls))
	compiled := make(map[string]*listenerInfo, len(ls))
	var errs []error
	for _, l := range ls {
		li, err := compileListener(l)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		raw[l.GetName()], compiled[l.GetName()] = l, li
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if c.p.id.Kind == Router && !c.skipBind {
		if err := c.p.bindGatewayListeners(c.listeners, compiled); err != nil {
			return err
		}
	}
	s := c.p.store
	for name := range compiled {
		if _, ok := c.listeners[name]; !ok {
			s.Counter("listener_manager.listener_added").Inc()
		} else if !proto.Equal(c.listenersRaw[name], raw[name]) {
			s.Counter("listener_manager.listener_modified").Inc()
		}
	}
	for name := range c.listeners {
		if _, ok := compiled[name]; !ok {
			s.Counter("listener_manager.listener_removed").Inc()
		}
	}
	c.listenersRaw, c.listeners = raw, compiled
	s.Gauge("listener_manager.total_listeners_active").Set(int64(len(compiled)))
	// Route configurations no listener names any more are dropped.
	want := routeNames(compiled)
	for n := range c.routes {
		if !slices.Contains(want, n) {
			delete(c.routes, n)
			delete(c.routesRaw, n)
		}
	}
	c.gotLDS = true
	return nil
}

// applyRoutes takes an RDS response: the route configurations it carries
// replace theirs.
func (c *configState) applyRoutes(resources []*anypb.Any) error {
	rcs, err := unpack(resources, TypeRoute, func() *routev3.RouteConfiguration { return &routev3.RouteConfiguration{} })
	if err != nil {
		return err
	}
	compiled := make(map[string]*routeTable, len(rcs))
	for _, rc := range rcs {
		t, err := compileRouteTable(rc)
		if err != nil {
			return err
		}
		compiled[rc.GetName()] = t
	}
	for _, rc := range rcs {
		c.routesRaw[rc.GetName()] = rc
		c.routes[rc.GetName()] = compiled[rc.GetName()]
	}
	return nil
}

// subscriptions are the EDS and RDS names the configuration calls for.
func (c *configState) subscriptions() map[string][]string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var eds []string
	for _, cl := range c.clusters {
		if cl.typ == clusterEDS && !slices.Contains(eds, cl.edsName) {
			eds = append(eds, cl.edsName)
		}
	}
	slices.Sort(eds)
	out := map[string][]string{TypeEndpoint: eds}
	if c.gotLDS {
		out[TypeRoute] = routeNames(c.listeners)
	}
	return out
}

// setStatic takes the bootstrap's static listeners and clusters.
func (c *configState) setStatic(ls []*listenerv3.Listener, cs []*clusterv3.Cluster) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.staticListeners = map[string]*listenerInfo{}
	c.staticClusters = map[string]*cluster{}
	var errs []error
	for _, l := range ls {
		li, err := compileListener(l)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		c.staticListeners[l.GetName()] = li
	}
	for _, cfg := range cs {
		cl, err := newCluster(cfg, c.p.deps())
		if err != nil {
			errs = append(errs, err)
			continue
		}
		c.staticClusters[cfg.GetName()] = cl
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	c.publish()
	return nil
}

// publish swaps in a new routing view for the data path.
func (c *configState) publish() {
	r := &routing{
		listeners: make(map[string]*listenerInfo, len(c.listeners)+len(c.staticListeners)),
		byPort:    map[uint32][]*listenerInfo{},
		routes:    make(map[string]*routeTable, len(c.routes)),
		clusters:  make(map[string]*cluster, len(c.clusters)+len(c.staticClusters)),
	}
	for k, l := range c.listeners {
		r.listeners[k] = l
		r.byPort[l.port] = append(r.byPort[l.port], l)
	}
	for k, v := range c.staticListeners {
		r.listeners[k] = v
	}
	for k, v := range c.routes {
		r.routes[k] = v
	}
	for k, v := range c.clusters {
		r.clusters[k] = v
	}
	for k, v := range c.staticClusters {
		r.clusters[k] = v
	}
	c.p.routing.Store(r)
}

// recheckReady is checkReady after a secret arrived.
func (c *configState) recheckReady() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.checkReady()
}

// checkReady marks the proxy ready once CDS and LDS are in and everything
// they named has arrived, and, with mutual TLS, the workload certificate
// and the roots (Envoy warms listeners and clusters until their SDS
// secrets arrive).
func (c *configState) checkReady() {
	if !c.gotCDS || !c.gotLDS {
		return
	}
	if s := c.p.secrets; s != nil && !s.has([]string{SecretWorkload}, []string{SecretRoots}) {
		return
	}
	for _, cl := range c.clusters {
		if cl.typ == clusterEDS {
			if _, ok := c.assignments[cl.edsName]; !ok {
				return
			}
		}
	}
	for _, n := range routeNames(c.listeners) {
		if _, ok := c.routes[n]; !ok {
			return
		}
	}
	c.p.markReady()
}

func (p *Proxy) dropTransport(cluster string) {
	if v, ok := p.upstreams.LoadAndDelete(cluster); ok {
		v.(*http.Transport).CloseIdleConnections()
	}
}

// bindGatewayListeners makes a gateway's bound listeners follow LDS: new
// ports are bound on the gateway's address, ports no listener wants any
// more are closed.
func (p *Proxy) bindGatewayListeners(old, nu map[string]*listenerInfo) error {
	p.mu.Lock()
	paused := p.paused
	p.mu.Unlock()
	if paused {
		return nil
	}
	for name, li := range nu {
		if !li.bind || li.port == 0 {
			continue
		}
		if o, ok := old[name]; ok && o.port == li.port && p.hasServer("lds_"+name) {
			continue
		}
		p.unlisten("lds_" + name)
		if err := p.listen("lds_"+name, int(li.port), p.gatewayHandler(name), roleGateway); err != nil {
			return err
		}
	}
	for name := range old {
		if li, ok := nu[name]; !ok || !li.bind {
			p.unlisten("lds_" + name)
		}
	}
	return nil
}

func (p *Proxy) hasServer(name string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	_, ok := p.servers[name]
	return ok
}

func portString(port uint32) string { return strconv.FormatUint(uint64(port), 10) }
