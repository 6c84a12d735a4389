package report

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/meshdrill/drill/pkg/event"
)

// ClusterVersions is what one cluster ran, from its cluster.versions event.
type ClusterVersions struct {
	Cluster    string `json:"cluster"`
	Kubernetes string `json:"kubernetes,omitempty"`
	Istio      string `json:"istio,omitempty"`
	// Error says why a version is missing.
	Error string `json:"error,omitempty"`
}

// AppliedPolicy is the mesh policy as drill applied it to one cluster, from a
// policy.applied event: before the load (Step empty) or at an apply step.
type AppliedPolicy struct {
	Cluster   string               `json:"cluster"`
	Step      string               `json:"step,omitempty"`
	AtSeconds float64              `json:"atSeconds"`
	Objects   []event.PolicyObject `json:"objects"`
	// yaml is the objects' YAML, shown in report.html only.
	yaml string
}

// YAML is the applied objects as one YAML stream, as drill translate prints them.
func (p AppliedPolicy) YAML() string { return p.yaml }

// ObjectsText names the objects: "ServiceEntry reviews-failover, DestinationRule …".
func (p AppliedPolicy) ObjectsText() string {
	parts := make([]string, len(p.Objects))
	for i, o := range p.Objects {
		parts[i] = o.Kind + " " + o.Name
	}
	return strings.Join(parts, ", ")
}

// KubeEvent is one Kubernetes change drill's watches recorded (a k8s.* event):
// replicas, pods and endpoints, on the load clock.
type KubeEvent struct {
	AtSeconds float64 `json:"atSeconds"`
	Cluster   string  `json:"cluster"`
	// Type is the event's type without its k8s. prefix: replicas-changed,
	// pod-ready, pod-terminating, pod-deleted, endpoints-changed.
	Type string `json:"type"`
	What string `json:"what"`
}

// kubeEventText describes a k8s.* event for people; ok is false when its
// payload does not decode.
func kubeEventText(e event.Event) (string, bool) {
	switch e.Type {
	case event.ReplicasChanged:
		var w event.Workload
		if e.Decode(&w) != nil {
			return "", false
		}
		return fmt.Sprintf("deployment %s/%s: %d desired, %d ready, %d available", w.Namespace, w.Name, w.Desired, w.Ready, w.Available), true
	case event.PodReady, event.PodTerminating, event.PodDeleted:
		var p event.Pod
		if e.Decode(&p) != nil {
			return "", false
		}
		what := map[event.Type]string{event.PodReady: "ready", event.PodTerminating: "terminating", event.PodDeleted: "deleted"}[e.Type]
		s := fmt.Sprintf("pod %s/%s %s", p.Namespace, p.Name, what)
		if p.IP != "" && e.Type == event.PodReady {
			s += " at " + p.IP
		}
		return s, true
	case event.EndpointsChanged:
		var ep event.Endpoints
		if e.Decode(&ep) != nil {
			return "", false
		}
		s := fmt.Sprintf("service %s/%s: ", ep.Namespace, ep.Service)
		if len(ep.Ready) == 0 {
			s += "no ready endpoint"
		} else {
			s += plural(int64(len(ep.Ready)), "ready endpoint", "ready endpoints") + " (" + strings.Join(ep.Ready, ", ") + ")"
		}
		if len(ep.NotReady) > 0 {
			s += fmt.Sprintf(", %d not ready", len(ep.NotReady))
		}
		return s, true
	}
	return "", false
}

// environment fills in what ran where: each cluster's versions, the policy
// applied to it, and the Kubernetes changes recorded.
func (ev *evaluator) environment() {
	r, rep := ev.r, ev.rep
	for _, cv := range r.versions {
		rep.ClusterVersions = append(rep.ClusterVersions, cv)
	}
	sort.SliceStable(rep.ClusterVersions, func(i, j int) bool {
		return clusterIndex(rep.Clusters, rep.ClusterVersions[i].Cluster) < clusterIndex(rep.Clusters, rep.ClusterVersions[j].Cluster)
	})
	for _, p := range r.policies {
		rep.Policy = append(rep.Policy, AppliedPolicy{
			Cluster: p.e.Cluster, Step: p.p.Step, AtSeconds: seconds(r.t(p.e.Elapsed)), Objects: p.p.Objects, yaml: p.p.YAML,
		})
	}
	for _, e := range r.kube {
		what, ok := kubeEventText(e)
		if !ok {
			continue
		}
		rep.KubeEvents = append(rep.KubeEvents, KubeEvent{
			AtSeconds: seconds(r.t(e.Elapsed)), Cluster: e.Cluster, Type: strings.TrimPrefix(string(e.Type), "k8s."), What: what,
		})
	}
	if r.loadStarted != nil {
		rep.loadStart = r.loadStarted.Time
	} else {
		rep.loadStart = rep.Started
	}
}

func clusterIndex(clusters []string, name string) int {
	for i, c := range clusters {
		if c == name {
			return i
		}
	}
	return len(clusters)
}

// WallClock is the UTC time of a moment on the load clock, to the millisecond:
// "21:00:30.125".
func (r *Report) WallClock(atSeconds float64) string {
	if r.loadStart.IsZero() {
		return ""
	}
	return r.loadStart.Add(time.Duration(atSeconds * float64(time.Second))).UTC().Format("15:04:05.000")
}

// TimelineRow is a line of report.html's timeline: a Moment, or a
// Kubernetes change (Kind "k8s").
type TimelineRow struct {
	AtSeconds float64
	Kind      string
	What      string
}

// TimelineRows are the run's moments and its Kubernetes changes, in time order.
func (r *Report) TimelineRows() []TimelineRow {
	var rows []TimelineRow
	for _, m := range r.Moments() {
		rows = append(rows, TimelineRow(m))
	}
	for _, k := range r.KubeEvents {
		rows = append(rows, TimelineRow{AtSeconds: k.AtSeconds, Kind: "k8s", What: k.Cluster + ": " + k.What})
	}
	sort.SliceStable(rows, func(i, j int) bool { return rows[i].AtSeconds < rows[j].AtSeconds })
	return rows
}
