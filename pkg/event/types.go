package event

import "time"

// The event types of a drill and their payloads. A consumer switches on Type and
// decodes Data into the payload named in the comment.
const (
	// RunStarted: RunInfo. The first event of every run.
	RunStarted Type = "run.started"
	// RunFinished: RunResult. The last event of a run that reached its end or aborted.
	RunFinished Type = "run.finished"

	// StepStarted / StepFinished: Step.
	StepStarted  Type = "step.started"
	StepFinished Type = "step.finished"

	// LoadStarted: LoadInfo. LoadWindow: Window, one per window (default 1 s).
	// LoadFinished: Window covering the whole attack.
	LoadStarted  Type = "load.started"
	LoadWindow   Type = "load.window"
	LoadFinished Type = "load.finished"
	// LoadWarmup: Warmup, one per cluster, before load.started: requests that
	// warmed a cluster's path and are not counted in the load.
	LoadWarmup Type = "load.warmup"
	// LoadSched: Sched, one per window while the load runs: how long drill's own
	// goroutines (the load generator's, and on the local provider the emulated
	// data plane's) waited for a CPU. Latency measured while they waited long is
	// the machine's, not the mesh's.
	LoadSched Type = "load.sched"

	// FaultApplied / FaultReverted / FaultRevertFailed: Fault.
	FaultApplied      Type = "fault.applied"
	FaultReverted     Type = "fault.reverted"
	FaultRevertFailed Type = "fault.revert-failed"
	// FaultUndo: Undo. How to undo a fault, published before the fault changes
	// anything and on disk before it does (see LogWriter.Sync): `drill undo`
	// reads it back when a drill was killed before it could revert.
	FaultUndo Type = "fault.undo"

	// StatsSample: Sample, one per scrape of an Envoy admin endpoint.
	// StatsScrapeFailed: ScrapeFailure. StatsReset: Sample (counters went back).
	StatsSample       Type = "stats.sample"
	StatsScrapeFailed Type = "stats.scrape-failed"
	StatsReset        Type = "stats.reset"
	// OutlierEjection: Ejection, when an Envoy cluster's active ejections change.
	OutlierEjection Type = "envoy.outlier-ejection"
	// HostEjected / HostReturned: HostChange, when a host of an Envoy cluster
	// starts or stops failing its outlier check, as the Envoy's own
	// /clusters?format=json says (health_status.failed_outlier_check).
	// PriorityChanged: HostChange, when the highest priority level (lowest
	// number) of an Envoy cluster with an available host — healthy in EDS and
	// not ejected — changes: where the cluster's traffic goes first.
	HostEjected     Type = "envoy.host-ejected"
	HostReturned    Type = "envoy.host-returned"
	PriorityChanged Type = "envoy.priority-changed"

	// Watch events: Workload (replicas), Pod, Endpoints.
	ReplicasChanged  Type = "k8s.replicas-changed"
	PodReady         Type = "k8s.pod-ready"
	PodTerminating   Type = "k8s.pod-terminating"
	PodDeleted       Type = "k8s.pod-deleted"
	EndpointsChanged Type = "k8s.endpoints-changed"

	// FailoverDetected / FailbackDetected: Failover.
	FailoverDetected Type = "failover.detected"
	FailbackDetected Type = "failback.detected"

	// GuardTripped: GuardTrip. A guard of the scenario's abort section tripped:
	// the engine reverts every fault and runs no further step.
	GuardTripped Type = "guard.tripped"

	// SteadyStateChecked: SteadyCheck. The steady state judged just before the
	// first fault; when it did not hold, no fault was injected.
	SteadyStateChecked Type = "steady-state.checked"

	// ClusterVersions: Versions, one per cluster once the clusters are up: the
	// Kubernetes and Istio each one runs.
	ClusterVersions Type = "cluster.versions"
	// PolicyApplied: Policy, one per cluster each time drill applies the mesh
	// policy there (before the load, and at each apply step): the Istio objects
	// as applied, so that a report shows them without the clusters.
	PolicyApplied Type = "policy.applied"

	// Log: LogLine, for messages worth keeping in the record (warnings, provider notes).
	Log Type = "log"
)

// Versions is what one cluster (the event's Cluster) runs. Empty when it
// could not be told; Error then says why.
type Versions struct {
	// Kubernetes is the API server's version (its gitVersion, v1.37.2).
	Kubernetes string `json:"kubernetes,omitempty"`
	// Istio is istiod's: the tag of its image, or what it reports itself.
	Istio string `json:"istio,omitempty"`
	Error string `json:"error,omitempty"`
}

// Policy is the mesh policy as applied to one cluster (the event's Cluster).
type Policy struct {
	// Step is the apply step that changed the policy; empty for the
	// scenario's own policy, applied before the load.
	Step    string         `json:"step,omitempty"`
	Objects []PolicyObject `json:"objects"`
	// YAML is the objects as one multi-document YAML stream, as
	// drill translate prints them.
	YAML string `json:"yaml,omitempty"`
}

// PolicyObject names one applied Istio object.
type PolicyObject struct {
	Kind      string `json:"kind"`
	Namespace string `json:"namespace,omitempty"`
	Name      string `json:"name"`
}

// SteadyCheck is the steady state judged over the load windows of [From,
// Until) (load clock).
type SteadyCheck struct {
	Held     bool          `json:"held"`
	From     time.Duration `json:"from"`
	Until    time.Duration `json:"until"`
	Requests int64         `json:"requests"`
	// Message gives each condition with its figure; Broken names those that
	// did not hold.
	Message string   `json:"message"`
	Broken  []string `json:"broken,omitempty"`
}

// StepCutShort starts the Error of a step.finished whose action was under way
// when drill stopped the drill on purpose (a guard tripped, the mesh was not
// steady before the first fault): the revert of every fault undoes what it
// did, and the report does not count it as a failed step.
const StepCutShort = "cut short:"

// GuardTrip is a guard that tripped on the load's answers.
type GuardTrip struct {
	Guard string `json:"guard"`
	// Condition is the guard's condition in words: "errors > 50 % of answers".
	Condition string `json:"condition"`
	// Figure is the share of the window's answers that met the condition
	// (errors, degraded, or slower than the latency bound), Limit the share
	// above which it trips; Answers is how many the window held.
	Figure  float64 `json:"figure"`
	Limit   float64 `json:"limit"`
	Answers int64   `json:"answers"`
	// Over is the sliding window's length; At is when the answer that tripped
	// it arrived, since load start.
	Over time.Duration `json:"over"`
	At   time.Duration `json:"at"`
}

// RunInfo describes a run as it starts.
type RunInfo struct {
	Scenario  string   `json:"scenario"`
	File      string   `json:"file,omitempty"`
	Provider  string   `json:"provider"`
	Clusters  []string `json:"clusters"`
	DataPlane string   `json:"dataPlane"` // "envoy" or "emulated"
	// DataPlaneDetail says what ran as the data plane when the provider
	// says more than its kind: the images of an emulated data plane.
	DataPlaneDetail string        `json:"dataPlaneDetail,omitempty"`
	LoadDuration    time.Duration `json:"loadDuration"`
	DrillVersion    string        `json:"drillVersion,omitempty"`
	// Host is the name of the machine drill ran on.
	Host string `json:"host,omitempty"`
	// PID is drill's process ID on Host: `drill undo` refuses to undo the faults
	// of a drill that is still running.
	PID int `json:"pid,omitempty"`
	// ScenarioYAML is the scenario file as it was run, so that `drill report DIR` can
	// evaluate the expectations again from events.jsonl alone.
	ScenarioYAML string `json:"scenarioYAML,omitempty"`
}

// Warmup is the warm-up of one cluster's path before the load: Requests sent
// to its ingress at the load's target, OK of them answered 2xx, the slowest
// in MaxSeconds. They are not part of the load's figures.
type Warmup struct {
	Cluster    string  `json:"cluster"`
	URL        string  `json:"url"`
	Requests   int     `json:"requests"`
	OK         int     `json:"ok"`
	MaxSeconds float64 `json:"maxSeconds"`
	Error      string  `json:"error,omitempty"`
}

// RunResult closes a run.
type RunResult struct {
	// Verdict is "pass", "fail" or "error".
	Verdict string `json:"verdict"`
	Reason  string `json:"reason,omitempty"`
}

// Step is a timeline step starting or finishing.
type Step struct {
	Name    string `json:"name"`
	Trigger string `json:"trigger"` // how it was triggered, e.g. "at 30s", "after reviews-down + 60s"
	Action  string `json:"action"`  // "fault", "revert", "wait", "apply"
	Error   string `json:"error,omitempty"`
}

// LoadInfo describes the attack as it starts.
type LoadInfo struct {
	Target   string        `json:"target"`
	Rate     string        `json:"rate"`
	Duration time.Duration `json:"duration"`
}

// Window summarises the results received in [Start, End) of load time.
type Window struct {
	Start    time.Duration    `json:"start"` // since load start
	End      time.Duration    `json:"end"`
	Requests int64            `json:"requests"`
	Codes    map[string]int64 `json:"codes,omitempty"` // status code ("200", "503", "0" for transport errors) → count
	Errors   int64            `json:"errors"`          // transport errors and non-2xx/3xx answers
	Degraded int64            `json:"degraded"`        // 2xx answers that matched degradedWhen
	// Latency percentiles of the window, in nanoseconds.
	P50 time.Duration `json:"p50"`
	P90 time.Duration `json:"p90"`
	P99 time.Duration `json:"p99"`
	Max time.Duration `json:"max"`
	// Rate is the achieved request rate over the window, per second.
	Rate float64 `json:"rate"`
	// Histogram is the window's latency distribution in nanoseconds, in
	// HdrHistogram's V2 compressed encoding, base64 (the form HdrHistogram log files
	// hold; hdrhistogram-go's Histogram.Encode(V2CompressedEncodingCookieBase)).
	// Percentiles cannot be combined across windows; histograms can, so a report
	// computes exact percentiles over any span of windows when it is present.
	Histogram string `json:"histogram,omitempty"`
	// Served is who answered, as the answers themselves say: service → cluster →
	// the answers that named that cluster, with when the first and last of them
	// were seen. It is read from the response headers drill's Bookinfo sets
	// (X-Drill-Cluster and X-Drill-Workload for the target itself,
	// X-Drill-<Service>-Cluster for each service it called and got an answer
	// from); answers without them count nowhere here.
	Served map[string]map[string]Seen `json:"served,omitempty"`
	// Failed is when the window's errors and degraded answers were seen.
	Failed *Seen `json:"failed,omitempty"`
}

// Seen is a count of answers and when the first and last of them arrived: the
// request's send time plus its latency, since load start (nanoseconds).
type Seen struct {
	N     int64         `json:"n"`
	First time.Duration `json:"first"`
	Last  time.Duration `json:"last"`
}

// Add counts one more answer seen at t.
func (s *Seen) Add(t time.Duration) {
	if s.N == 0 || t < s.First {
		s.First = t
	}
	if s.N == 0 || t > s.Last {
		s.Last = t
	}
	s.N++
}

// Merge adds o's answers to s.
func (s *Seen) Merge(o Seen) {
	if o.N == 0 {
		return
	}
	if s.N == 0 || o.First < s.First {
		s.First = o.First
	}
	if s.N == 0 || o.Last > s.Last {
		s.Last = o.Last
	}
	s.N += o.N
}

// Sched is the Go scheduler's view of drill's own process over one interval of
// the load: the time goroutines spent runnable before a thread ran them
// (runtime/metrics /sched/latencies:seconds), as the distribution's p99 and
// largest value. Each value is the lower bound of its histogram bucket.
type Sched struct {
	Start time.Duration `json:"start"` // since load start
	End   time.Duration `json:"end"`
	// Waits is how many times a goroutine became runnable in the interval.
	Waits uint64        `json:"waits"`
	P99   time.Duration `json:"p99"`
	Max   time.Duration `json:"max"`
}

// Fault is a fault being applied or reverted.
type Fault struct {
	Step      string `json:"step"`
	Kind      string `json:"kind"` // "scale", "delete-pods"
	Cluster   string `json:"cluster"`
	Namespace string `json:"namespace"`
	Workload  string `json:"workload"`
	// Scale faults: replicas before and after.
	From *int32 `json:"from,omitempty"`
	To   *int32 `json:"to,omitempty"`
	// Pods deleted, for delete-pods.
	Pods  []string `json:"pods,omitempty"`
	Error string   `json:"error,omitempty"`
	// Restore is the command a human can run to undo the fault by hand.
	Restore string `json:"restore,omitempty"`
	// Deployments holds each Deployment a scale fault changed with its own replicas
	// before and after (a workload such as reviews is reviews-v1, reviews-v2, …, each
	// with its own original count); From and To are then the sums over them.
	Deployments []DeploymentReplicas `json:"deployments,omitempty"`
	// Note says why a revert changed nothing, e.g. for delete-pods, whose pods the
	// workload's controller recreates by itself.
	Note string `json:"note,omitempty"`
	// Peers are the clusters on the other side of a partition.
	Peers []string `json:"peers,omitempty"`
	// Undo is the ID of the fault's Undo record (the fault.undo event published
	// before it was applied), so that `drill undo` can tell which records were
	// reverted.
	Undo string `json:"undo,omitempty"`
}

// Undo says how to put back what one fault changes, in terms a later process can
// act on alone: the cluster's kubeconfig and context and the exact objects and
// original values. Exactly one of the action fields (Replicas, EnvoyFilter, Chain,
// Nodes) is set, or Nothing or Cannot says why there is no action.
type Undo struct {
	// ID names the record in its run: "f1", "f2", … in the order the faults were
	// applied.
	ID         string `json:"id"`
	Step       string `json:"step"`
	Kind       string `json:"kind"`
	Cluster    string `json:"cluster"`
	Context    string `json:"context,omitempty"`
	Kubeconfig string `json:"kubeconfig,omitempty"`
	Namespace  string `json:"namespace,omitempty"`
	// Replicas: scale each Deployment back to From (its replicas before the
	// fault; To is what the fault sets).
	Replicas []DeploymentReplicas `json:"replicas,omitempty"`
	// EnvoyFilter: delete the EnvoyFilter of this name in Namespace, which the
	// fault creates (labelled app.kubernetes.io/managed-by=drill).
	EnvoyFilter string `json:"envoyFilter,omitempty"`
	// Chain: remove this iptables chain, and the jumps to it, from Filters.
	Chain   string       `json:"chain,omitempty"`
	Filters []UndoFilter `json:"filters,omitempty"`
	// Nodes: start these stopped node containers again.
	Nodes []string `json:"nodes,omitempty"`
	// Nothing says why the fault needs no undoing (deleted pods are recreated by
	// their controllers).
	Nothing string `json:"nothing,omitempty"`
	// Cannot says why the fault cannot be undone by a later process (a
	// component the drill ran in its own process ended with it).
	Cannot string `json:"cannot,omitempty"`
}

// UndoFilter is a packet filter a partition's chain is in: this host's own
// (Node empty) or a kind node container's.
type UndoFilter struct {
	Name string `json:"name"`
	Node string `json:"node,omitempty"`
}

// HostChange is a change in one Envoy's /clusters page: a host ejected or
// returned (Host, Priority, Locality set), or the serving priority level of an
// Envoy cluster changed (From and To; -1 is no level with an available host).
type HostChange struct {
	Workload     string `json:"workload"`
	Pod          string `json:"pod,omitempty"`
	EnvoyCluster string `json:"envoyCluster"`
	Host         string `json:"host,omitempty"`
	Priority     int    `json:"priority"`
	Locality     string `json:"locality,omitempty"`
	From         int    `json:"from,omitempty"`
	To           int    `json:"to,omitempty"`
}

// DeploymentReplicas is one Deployment's replicas before and after a scale fault.
type DeploymentReplicas struct {
	Name string `json:"name"`
	From int32  `json:"from"`
	To   int32  `json:"to"`
}

// Sample is the change in one Envoy's upstream stats since its previous scrape.
type Sample struct {
	Workload string `json:"workload"`
	Pod      string `json:"pod,omitempty"`
	// Interval is the time since the previous successful scrape.
	Interval time.Duration `json:"interval"`
	// Clusters holds per-Envoy-cluster deltas, keyed by Envoy cluster name
	// (e.g. "outbound|9080||reviews.default.svc.cluster.local").
	Clusters map[string]ClusterDelta `json:"clusters"`
	// Served counts requests by the cluster (Kubernetes cluster) of the workload that
	// served them, from istio_requests_total, keyed by destination service host;
	// 5xx answers are not counted (a destination answering 503 serves nothing).
	Served map[string]map[string]int64 `json:"served,omitempty"`
}

// ClusterDelta is the change in one Envoy cluster's stats over an interval.
type ClusterDelta struct {
	// Requests is upstream_rq_total: the connection pool's count, every
	// attempt (retries included).
	Requests int64 `json:"requests"`
	// Codes are the router's final answers by code (upstream_rq_<code>);
	// Answers is their sum, Upstream5xx the 5xx among them. Through an
	// aggregate cluster the router charges them on the aggregate.
	Codes       map[string]int64 `json:"codes,omitempty"`
	Answers     int64            `json:"answers,omitempty"`
	Upstream5xx int64            `json:"upstream5xx"`
	// Retried5xx are 5xx answers of attempts the router retried
	// (retry.upstream_rq_5xx), not among Answers.
	Retried5xx        int64 `json:"retried5xx,omitempty"`
	ConnectFail       int64 `json:"connectFail,omitempty"`
	Retries           int64 `json:"retries,omitempty"`
	EjectionsActive   int64 `json:"ejectionsActive"` // gauge, current value
	EjectionsEnforced int64 `json:"ejectionsEnforced,omitempty"`
	MembershipHealthy int64 `json:"membershipHealthy"` // gauge
	MembershipTotal   int64 `json:"membershipTotal"`   // gauge
}

// ScrapeFailure is a failed scrape; the scraper keeps going.
type ScrapeFailure struct {
	Workload string `json:"workload"`
	Pod      string `json:"pod,omitempty"`
	Error    string `json:"error"`
}

// Ejection reports a change of active ejections in an Envoy cluster.
type Ejection struct {
	Workload     string `json:"workload"`
	EnvoyCluster string `json:"envoyCluster"`
	Active       int64  `json:"active"`
	Previous     int64  `json:"previous"`
}

// Workload is a Deployment's replica counts changing.
type Workload struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	Desired   int32  `json:"desired"`
	Ready     int32  `json:"ready"`
	Available int32  `json:"available"`
}

// Pod is a pod becoming ready, terminating or deleted.
type Pod struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	App       string `json:"app,omitempty"`
	Version   string `json:"version,omitempty"`
	IP        string `json:"ip,omitempty"`
}

// Endpoints is the set of ready endpoints of a service changing in one cluster.
type Endpoints struct {
	Namespace string   `json:"namespace"`
	Service   string   `json:"service"`
	Ready     []string `json:"ready"`
	NotReady  []string `json:"notReady,omitempty"`
}

// Failover is traffic for a service moving to (or back from) another cluster.
type Failover struct {
	Service string `json:"service"`
	From    string `json:"from"`
	To      string `json:"to"`
	// After is the step whose fault (or revert) this follows, and Took the time from
	// that step to detection; Resolution is the scrape interval that bounds Took.
	After      string        `json:"after,omitempty"`
	Took       time.Duration `json:"took"`
	Resolution time.Duration `json:"resolution"`
	// Basis is what the detection read: "istio_requests_total" (the cluster of the
	// workload that answered) or "envoy_cluster" (the Envoy cluster the request was
	// sent to). In the detecting scrape interval, Served of Total requests to the
	// service were answered in To.
	Basis  string `json:"basis,omitempty"`
	Served int64  `json:"served,omitempty"`
	Total  int64  `json:"total,omitempty"`
}

// LogLine is a message kept in the record.
type LogLine struct {
	Level   string `json:"level"`
	Message string `json:"message"`
}
