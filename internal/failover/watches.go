package failover

import (
	"slices"

	"github.com/meshdrill/drill/internal/stats"
	"github.com/meshdrill/drill/pkg/scenario"
)

// Watches are the failovers a scenario's expectations are about, as the Detector
// watches them: one per failover expectation (with the failback of the same service
// back to the same cluster, when one is expected), and one per failback expectation
// that no failover expectation covers. The engine runs a Detector for each on the
// Bus; Build judges the expectations with the same ones, so both see the same
// failovers.
func Watches(s *scenario.Scenario) []Watch {
	var ws []Watch
	used := map[int]bool{}
	for _, x := range s.Spec.Expect {
		fo := x.Failover
		if fo == nil {
			continue
		}
		w := Watch{Service: fo.Service, Namespace: s.Spec.Namespace, From: fo.From, To: fo.To,
			Hosts: Hosts(s, fo.Service), Clients: clientClusters(s, fo.From), FailoverAfter: fo.After}
		for j, y := range s.Spec.Expect {
			if fb := y.Failback; fb != nil && !used[j] && fb.Service == fo.Service && fb.To == fo.From {
				w.FailbackAfter, used[j] = fb.After, true
				break
			}
		}
		ws = append(ws, w)
	}
	for j, y := range s.Spec.Expect {
		fb := y.Failback
		if fb == nil || used[j] {
			continue
		}
		if backup := Backup(s, fb.Service, fb.To); backup != "" {
			ws = append(ws, Watch{Service: fb.Service, Namespace: s.Spec.Namespace, From: fb.To, To: backup,
				Hosts: Hosts(s, fb.Service), Clients: clientClusters(s, fb.To), FailbackAfter: fb.After})
		}
	}
	return ws
}

// clientClusters are the clusters whose observed Envoys show a failover away from
// from: from itself when a workload there is observed (the seed), else every
// cluster with an observed workload (a chain's later hops, seen by the first
// cluster's clients).
func clientClusters(s *scenario.Scenario, from string) []string {
	var observed []string
	for _, e := range s.Spec.Observe.Envoy {
		if e.Cluster == from {
			return []string{from}
		}
		if !slices.Contains(observed, e.Cluster) {
			observed = append(observed, e.Cluster)
		}
	}
	if len(observed) == 0 {
		return []string{from}
	}
	return observed
}

// Hosts are the hostnames of the failover services backed by service, in
// the scenario's mesh and in the meshes its steps apply.
func Hosts(s *scenario.Scenario, service string) []string {
	var hosts []string
	meshes := []*scenario.Mesh{&s.Spec.Mesh}
	for i := range s.Spec.Steps {
		if a := s.Spec.Steps[i].Apply; a != nil && a.Mesh != nil {
			meshes = append(meshes, a.Mesh)
		}
	}
	for _, m := range meshes {
		for _, fs := range m.FailoverServices {
			for _, b := range fs.BackingServices {
				if b.Service == service && fs.Hostname != "" && !slices.Contains(hosts, fs.Hostname) {
					hosts = append(hosts, fs.Hostname)
				}
			}
		}
	}
	return hosts
}

// HostMatcher says whether an Envoy cluster's host is service's: the
// service's own hosts in any cluster (reviews.default.svc.cluster.local,
// reviews.default.svc.cluster2.global) and the failover hostnames it backs.
func HostMatcher(s *scenario.Scenario, service string) func(host string) bool {
	keys := []string{service + "." + s.Spec.Namespace}
	hosts := Hosts(s, service)
	for _, h := range hosts {
		keys = append(keys, stats.ServiceKey(h))
	}
	return func(host string) bool {
		return slices.Contains(hosts, host) || slices.Contains(keys, stats.ServiceKey(host))
	}
}

// Backup is the cluster traffic for service fails back to home from: the one
// a failover expectation moves it to, else the first other cluster of the scenario.
func Backup(s *scenario.Scenario, service, home string) string {
	for _, x := range s.Spec.Expect {
		if fo := x.Failover; fo != nil && fo.Service == service && fo.From == home {
			return fo.To
		}
	}
	for _, c := range s.Spec.Clusters {
		if c.Name != home {
			return c.Name
		}
	}
	return ""
}
