package scenario

import "time"

// Defaults, in one place. Where drill differs from an upstream default the comment
// says which and why.
const (
	DefaultNamespace = "default"
	// DefaultPort is the port every Bookinfo service listens on.
	DefaultPort     = 9080
	DefaultProtocol = "http"
	// DefaultMaxEjectionPercent: Istio's DestinationRule defaults maxEjectionPercent to
	// 10 % (istio.io/api networking/v1alpha3/destination_rule.proto, OutlierDetection),
	// so with fewer than ten endpoints no host can be ejected and failover is silently
	// partial or absent. Service Mesh Hub set 100 % when unset, and so does drill.
	DefaultMaxEjectionPercent = 100
	DefaultPath               = "/productpage"
	DefaultMethod             = "GET"
	// DefaultTimeout is shorter than vegeta's 30 s: a drill wants a hung request to
	// show up as an error within the window it belongs to.
	DefaultTimeout     = 10 * time.Second
	DefaultConnections = 10000 // vegeta's DefaultConnections
	DefaultWorkers     = 10    // vegeta's DefaultWorkers
	DefaultWindow      = time.Second
	DefaultScrapeEvery = time.Second
	DefaultWaitTimeout = 2 * time.Minute
	DefaultReplicas    = 1
	// DefaultObservedWorkload is the Bookinfo workload whose sidecar shows the seed's
	// story: its upstream stats toward reviews.
	DefaultObservedWorkload = "productpage"
	// Guards: a 5 s window of answers, at least 10 of them, and 15 s of load
	// after a trip to see the recovery.
	DefaultGuardOver        = 5 * time.Second
	DefaultGuardMinRequests = 10
	DefaultAbortTail        = 15 * time.Second
	// DefaultSteadyOver: ten 1 s windows, 500 answers at the seed's rate.
	DefaultSteadyOver = 10 * time.Second
)

// DefaultBookinfo is what runs in a cluster whose bookinfo field is left out.
var DefaultBookinfo = Bookinfo{
	Productpage: []string{"v1"},
	Details:     []string{"v1"},
	Reviews:     []string{"v1", "v2", "v3"},
	Ratings:     []string{"v1"},
	Replicas:    DefaultReplicas,
}

func applyDefaults(s *Scenario) {
	sp := &s.Spec
	if sp.Namespace == "" {
		sp.Namespace = DefaultNamespace
	}
	for i := range sp.Clusters {
		defaultCluster(&sp.Clusters[i])
	}
	defaultMesh(&sp.Mesh, sp.Namespace)
	defaultLoad(sp)
	if len(sp.Observe.Envoy) == 0 && sp.Load.Target.Cluster != "" {
		sp.Observe.Envoy = []EnvoyTarget{{Cluster: sp.Load.Target.Cluster, Workload: DefaultObservedWorkload}}
	}
	for i := range sp.Observe.Envoy {
		if sp.Observe.Envoy[i].Every == 0 {
			sp.Observe.Envoy[i].Every = Duration(DefaultScrapeEvery)
		}
	}
	for i := range sp.Steps {
		defaultStep(&sp.Steps[i], sp.Namespace)
	}
	// A zone loss without a locality takes the cluster's own.
	for i := range sp.Steps {
		if f := sp.Steps[i].Fault; f != nil && f.ZoneLoss != nil && f.ZoneLoss.Locality == "" {
			for _, c := range sp.Clusters {
				if c.Name == f.ZoneLoss.Cluster {
					f.ZoneLoss.Locality = c.Locality
				}
			}
		}
	}
	if ss := sp.SteadyState; ss != nil && ss.Over == 0 {
		ss.Over = Duration(DefaultSteadyOver)
	}
	if a := sp.Abort; a != nil {
		if a.Tail == 0 {
			a.Tail = Duration(DefaultAbortTail)
		}
		for i := range a.When {
			g := &a.When[i]
			if g.Over == 0 {
				g.Over = Duration(DefaultGuardOver)
			}
			if g.MinRequests == nil {
				n := DefaultGuardMinRequests
				g.MinRequests = &n
			}
		}
	}
}

// defaultCluster fills in a cluster's Bookinfo, network and locality.
func defaultCluster(c *Cluster) {
	if c.Bookinfo == nil {
		b := DefaultBookinfo
		c.Bookinfo = &b
	}
	b := c.Bookinfo
	if b.Install == nil {
		t := true
		b.Install = &t
	}
	// nil means left out (defaults); an explicit [] means "not here".
	if b.Productpage == nil {
		b.Productpage = DefaultBookinfo.Productpage
	}
	if b.Details == nil {
		b.Details = DefaultBookinfo.Details
	}
	if b.Reviews == nil {
		b.Reviews = DefaultBookinfo.Reviews
	}
	if b.Ratings == nil {
		b.Ratings = DefaultBookinfo.Ratings
	}
	if b.Replicas == 0 {
		b.Replicas = DefaultReplicas
	}
	if c.Network == "" && c.Name != "" {
		c.Network = "network-" + c.Name
	}
	if c.Locality == "" && c.Name != "" {
		c.Locality = c.Name
	}
}

// defaultLoad fills in the load: its target cluster follows the clusters'
// ingress marks (and marks one when none is), then vegeta's knobs.
func defaultLoad(sp *Spec) {
	l := &sp.Load
	if l.Target.Cluster == "" {
		for _, c := range sp.Clusters {
			if c.Ingress {
				l.Target.Cluster = c.Name
				break
			}
		}
	}
	// With no cluster marked ingress, the load target's cluster (or the first) is.
	if !anyIngress(sp.Clusters) && len(sp.Clusters) > 0 {
		i := 0
		for j, c := range sp.Clusters {
			if c.Name == l.Target.Cluster {
				i = j
			}
		}
		sp.Clusters[i].Ingress = true
		if l.Target.Cluster == "" {
			l.Target.Cluster = sp.Clusters[i].Name
		}
	}
	if l.Target.Path == "" {
		l.Target.Path = DefaultPath
	}
	if l.Target.Method == "" {
		l.Target.Method = DefaultMethod
	}
	if l.Timeout == 0 {
		l.Timeout = Duration(DefaultTimeout)
	}
	if l.Connections == 0 {
		l.Connections = DefaultConnections
	}
	if l.Workers == 0 {
		l.Workers = DefaultWorkers
	}
	if l.KeepAlive == nil {
		t := true
		l.KeepAlive = &t
	}
	if l.Window == 0 {
		l.Window = Duration(DefaultWindow)
	}
}

// defaultStep fills in the namespaces a step's fault or wait names and the
// mesh an apply step replaces.
func defaultStep(st *Step, ns string) {
	if st.Fault != nil {
		if f := st.Fault.Scale; f != nil {
			defaultRef(&f.WorkloadRef, ns)
		}
		if f := st.Fault.DeletePods; f != nil {
			defaultRef(&f.WorkloadRef, ns)
		}
		if f := st.Fault.GatewayLoss; f != nil && f.Gateway == "" {
			f.Gateway = "eastwest"
		}
		if f := st.Fault.ZoneLoss; f != nil && f.Namespace == "" {
			f.Namespace = ns
		}
		if f := st.Fault.HTTPFault; f != nil {
			defaultRef(&f.WorkloadRef, ns)
			hundred := 100.0
			if f.Abort != nil && f.Abort.Percent == nil {
				f.Abort.Percent = &hundred
			}
			if f.Delay != nil && f.Delay.Percent == nil {
				f.Delay.Percent = &hundred
			}
		}
	}
	if st.Wait != nil && st.Wait.Ready != nil {
		defaultRef(st.Wait.Ready, ns)
		if st.Wait.Timeout == 0 {
			st.Wait.Timeout = Duration(DefaultWaitTimeout)
		}
	}
	if st.Apply != nil && st.Apply.Mesh != nil {
		defaultMesh(st.Apply.Mesh, ns)
	}
}

func defaultMesh(m *Mesh, ns string) {
	if m.Strategy == "" {
		m.Strategy = StrategyAggregate
	}
	for i := range m.TrafficPolicies {
		p := &m.TrafficPolicies[i]
		if p.Destination.Namespace == "" {
			p.Destination.Namespace = ns
		}
		if od := p.OutlierDetection; od != nil && od.MaxEjectionPercent == nil {
			v := DefaultMaxEjectionPercent
			od.MaxEjectionPercent = &v
		}
	}
	for i := range m.FailoverServices {
		f := &m.FailoverServices[i]
		if f.Namespace == "" {
			f.Namespace = ns
		}
		if f.Port.Number == 0 {
			f.Port.Number = DefaultPort
		}
		if f.Port.Protocol == "" {
			f.Port.Protocol = DefaultProtocol
		}
		for j := range f.BackingServices {
			if f.BackingServices[j].Namespace == "" {
				f.BackingServices[j].Namespace = ns
			}
		}
		if len(f.Meshes) == 0 && len(f.BackingServices) > 0 && f.BackingServices[0].Cluster != "" {
			f.Meshes = []string{f.BackingServices[0].Cluster}
		}
	}
}

func defaultRef(r *WorkloadRef, ns string) {
	if r.Namespace == "" {
		r.Namespace = ns
	}
}

func anyIngress(cs []Cluster) bool {
	for _, c := range cs {
		if c.Ingress {
			return true
		}
	}
	return false
}
