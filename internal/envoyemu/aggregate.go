package envoyemu

// flatLevel is one priority level of an aggregate cluster: a member's level.
type flatLevel struct {
	member *cluster
	level  int
	health levelHealth
	panic  bool // the member's own panic state for that level
}

// flatten lays out an aggregate cluster's members' priority levels one after
// another, in member order, as Envoy's aggregate cluster does (envoy docs:
// intro/arch_overview/upstream/aggregate_cluster; source/extensions/clusters/
// aggregate/cluster.cc, linearizePrioritySet). A member that has no host at
// all still counts as one empty level, as in Envoy, where every cluster has
// a priority 0. Members that are not (yet) known, and nested aggregates,
// are left out.
func flatten(members []string, lookup func(string) *cluster) []flatLevel {
	var out []flatLevel
	for _, name := range members {
		m := lookup(name)
		if m == nil || m.typ == clusterAggregate {
			continue
		}
		health, load := m.levelsView()
		if len(health) == 0 {
			m.mu.RLock()
			op := m.overprov
			m.mu.RUnlock()
			out = append(out, flatLevel{member: m, level: 0, health: levelHealth{overprov: op}, panic: true})
			continue
		}
		for i, h := range health {
			out = append(out, flatLevel{member: m, level: i, health: h, panic: load.panic[i]})
		}
	}
	return out
}

// chooseAggregate picks a host for an aggregate cluster: the priority load
// is computed over the flattened levels, with each member's
// overprovisioning factor, so a member whose hosts are all ejected or gone
// gives its traffic to the next; the chosen member then picks a host within
// its own level, by its own load balancer and panic state
// (AggregateClusterLoadBalancer::LoadBalancerImpl::chooseHost).
func (cl *cluster) chooseAggregate(ctx *lbContext, lookup func(string) *cluster) (pick, bool) {
	levels := flatten(cl.members, lookup)
	if len(levels) == 0 {
		return pick{}, false
	}
	health := make([]levelHealth, len(levels))
	for i, l := range levels {
		health[i] = l.health
	}
	// A previous_priorities retry plugin has no effect here: "PriorityLoad
	// retry plugins won't work for aggregate cluster because the aggregate
	// load balancer will override the PriorityLoad" (envoy docs:
	// intro/arch_overview/upstream/aggregate_cluster).
	load := computePriorityLoad(health, cl.panicThreshold)
	i, _ := choosePriority(cl.rnd(), load.healthy, load.degraded)
	l := levels[i]
	// The aggregate's own panic threshold only chooses the level: in its
	// total panic, load follows the members' host counts. The host is then
	// chosen by the member's load balancer, given nothing but the level
	// (AggregateLoadBalancerContext re-assigns the priority load, nothing
	// else), so whether it may pick an unhealthy host is the member's own
	// panic state. A member with Istio's outlier detection has a panic
	// threshold of 0 (cluster_traffic_policy.go applyOutlierDetection):
	// never in panic, so with its hosts ejected it picks none, and the
	// request gets a 503 with UH, no healthy upstream.
	p, ok := l.member.chooseInLevel(l.level, l.panic, ctx)
	p.level = i
	return p, ok
}
