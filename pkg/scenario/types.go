package scenario

import "time"

// The scenario file, as SREs write it. Field comments are the reference: `drill
// schema` turns the `doc` tags into the JSON Schema's descriptions.

// APIVersion and Kind are the only values a scenario file may declare.
const (
	APIVersion = "drill/v1alpha1"
	Kind       = "Scenario"
)

// Scenario is one drill: where it runs, the mesh policy under test, the load, the
// timeline of faults and what must hold for the drill to pass.
type Scenario struct {
	APIVersion string   `yaml:"apiVersion" doc:"Must be drill/v1alpha1." schema:"required"`
	Kind       string   `yaml:"kind" doc:"Must be Scenario." schema:"required"`
	Metadata   Metadata `yaml:"metadata" schema:"required"`
	Spec       Spec     `yaml:"spec" schema:"required"`

	// File is the path the scenario was read from, for messages.
	File string `yaml:"-"`
	// pos records where each field was written, by field path.
	pos map[string]pos
}

// Metadata names the scenario.
type Metadata struct {
	Name        string            `yaml:"name" doc:"Name of the drill; used in report names. Lowercase letters, digits and '-'." schema:"required,name"`
	Description string            `yaml:"description" doc:"What the drill proves, in a sentence."`
	Labels      map[string]string `yaml:"labels" doc:"Free-form labels copied into the report."`
}

// Spec is the body of a scenario.
type Spec struct {
	Namespace   string        `yaml:"namespace" doc:"Namespace of the application. Default: default." schema:"label"`
	Clusters    []Cluster     `yaml:"clusters" doc:"The clusters of the mesh, in order." schema:"required,minItems=1"`
	Mesh        Mesh          `yaml:"mesh" doc:"The failover policy under test."`
	Load        LoadSpec      `yaml:"load" doc:"The traffic driven through the mesh during the drill." schema:"required"`
	Observe     Observe       `yaml:"observe" doc:"What drill watches besides the load results."`
	Steps       []Step        `yaml:"steps" doc:"The timeline: faults, reverts, waits and config changes."`
	SteadyState *SteadyState  `yaml:"steadyState" doc:"What the healthy mesh looks like to the load, checked before the first fault (no fault is injected into a mesh that is not: verdict inconclusive, exit code 3) and after the last revert (a line in the report)."`
	Abort       *Abort        `yaml:"abort" doc:"Guards on the load's answers: when one trips, the drill reverts every fault, runs no further step and ends with verdict aborted (exit code 3)."`
	Expect      []Expectation `yaml:"expect" doc:"What must hold for the drill to pass; each is a line in the report."`
}

// Cluster is one cluster of the mesh.
type Cluster struct {
	Name     string    `yaml:"name" doc:"Cluster name, also Istio's cluster ID. Lowercase letters, digits and '-'." schema:"required,name"`
	Bookinfo *Bookinfo `yaml:"bookinfo" doc:"Which Bookinfo workloads run here. Default: every service, reviews v1, v2 and v3."`
	Ingress  bool      `yaml:"ingress" doc:"Whether this cluster runs the ingress gateway that load is sent to."`
	Network  string    `yaml:"network" doc:"Istio network of the cluster. Default: network-<name>; clusters on different networks reach each other through east-west gateways."`
	Locality string    `yaml:"locality" doc:"Locality of the cluster's workloads as region/zone/subzone (zone and subzone optional). Default: region <name>." schema:"locality"`
}

// Bookinfo says which Bookinfo workloads run in a cluster. A service left out runs
// its default versions; a service given an empty list does not run at all.
type Bookinfo struct {
	Install     *bool    `yaml:"install" doc:"Install Bookinfo in this cluster. Default: true. Set false for clusters that already run it."`
	Productpage []string `yaml:"productpage" doc:"Versions of productpage. Default: [v1]." schema:"enum=v1,unique"`
	Details     []string `yaml:"details" doc:"Versions of details. Default: [v1]." schema:"enum=v1,unique"`
	Reviews     []string `yaml:"reviews" doc:"Versions of reviews (v1: no stars, v2: black stars, v3: red stars). Default: [v1, v2, v3]." schema:"enum=v1|v2|v3,unique"`
	Ratings     []string `yaml:"ratings" doc:"Versions of ratings. Default: [v1]." schema:"enum=v1,unique"`
	Replicas    int      `yaml:"replicas" doc:"Replicas of every Bookinfo Deployment. Default: 1." schema:"min=0"`
}

// Strategy is how failover policy becomes Istio objects.
type Strategy string

const (
	// StrategyAggregate is Service Mesh Hub's design: a ServiceEntry for the failover
	// hostname, an EnvoyFilter making its Envoy cluster an aggregate of the local and
	// remote clusters, VirtualServices shifting traffic to it, DestinationRules with
	// outlier detection.
	StrategyAggregate Strategy = "aggregate"
	// StrategyLocality is Istio-native locality failover: one DestinationRule per
	// service with outlier detection and localityLbSetting, on a host whose endpoints
	// are merged across clusters.
	StrategyLocality Strategy = "locality"
)

// Mesh is the failover policy, in the Service Mesh Hub style.
type Mesh struct {
	Strategy         Strategy          `yaml:"strategy" doc:"aggregate (ServiceEntry + EnvoyFilter aggregate cluster + VirtualService + DestinationRule) or locality (Istio localityLbSetting). Default: aggregate."`
	TrafficPolicies  []TrafficPolicy   `yaml:"trafficPolicies" doc:"Policies applied to traffic toward a service."`
	FailoverServices []FailoverService `yaml:"failoverServices" doc:"Hostnames backed, in priority order, by a service in several clusters."`
}

// TrafficPolicy applies outlier detection, a traffic shift, retries or a timeout to
// traffic toward one service.
type TrafficPolicy struct {
	Name             string            `yaml:"name" doc:"Name of the policy." schema:"required,name"`
	Destination      Destination       `yaml:"destination" doc:"The service the policy applies to." schema:"required"`
	OutlierDetection *OutlierDetection `yaml:"outlierDetection" doc:"Eject failing endpoints. maxEjectionPercent defaults to 100."`
	TrafficShift     *TrafficShift     `yaml:"trafficShift" doc:"Send the service's traffic to a failover service (strategy aggregate)."`
	Retries          *Retries          `yaml:"retries" doc:"Retry failed requests."`
	Timeout          Duration          `yaml:"timeout" doc:"Timeout of a request to the service, e.g. 2s."`
	LocalityFailover *LocalityFailover `yaml:"localityFailover" doc:"Locality failover settings (strategy locality)."`
}

// Destination selects a service, optionally only in some clusters.
type Destination struct {
	Service   string   `yaml:"service" doc:"Kubernetes service name, e.g. reviews." schema:"required,minLength=1"`
	Namespace string   `yaml:"namespace" doc:"Namespace of the service. Default: spec.namespace." schema:"label"`
	Clusters  []string `yaml:"clusters" doc:"Clusters whose clients the policy applies to. Default: every cluster." schema:"name,unique"`
}

// OutlierDetection is Envoy outlier detection as Istio's DestinationRule exposes it.
type OutlierDetection struct {
	ConsecutiveErrors        *int     `yaml:"consecutiveErrors" doc:"Consecutive 5xx errors (or local-origin failures) before ejection. Istio's default: 5." schema:"min=1"`
	ConsecutiveGatewayErrors *int     `yaml:"consecutiveGatewayErrors" doc:"Consecutive 502/503/504 before ejection." schema:"min=1"`
	Interval                 Duration `yaml:"interval" doc:"Time between ejection sweeps. Istio's default: 10s."`
	BaseEjectionTime         Duration `yaml:"baseEjectionTime" doc:"Minimum ejection duration, multiplied by the times ejected. Istio's default: 30s."`
	MaxEjectionPercent       *int     `yaml:"maxEjectionPercent" doc:"Largest share of endpoints that may be ejected, 0-100. Default: 100 (Istio's own default, 10, makes failover partial)." schema:"min=0,max=100"`
	MinHealthPercent         *int     `yaml:"minHealthPercent" doc:"Envoy's healthy panic threshold (Istio writes it into the cluster's common_lb_config.healthy_panic_threshold): below this share of healthy endpoints in a priority level, while the levels together are short of 100 %, Envoy balances over every endpoint of the level, ejected ones included. Istio's default: 0 (never panic; Envoy's own default is 50)." schema:"min=0,max=100"`
}

// TrafficShift sends a service's traffic to a failover service.
type TrafficShift struct {
	FailoverService string `yaml:"failoverService" doc:"Name of a failoverServices entry." schema:"required,minLength=1"`
}

// Retries is a retry policy.
type Retries struct {
	Attempts      int      `yaml:"attempts" doc:"Number of retries." schema:"required,min=1"`
	PerTryTimeout Duration `yaml:"perTryTimeout" doc:"Timeout of each try."`
	RetryOn       string   `yaml:"retryOn" doc:"Envoy retry conditions, e.g. 5xx,connect-failure,gateway-error."`
}

// LocalityFailover tunes Istio's locality failover for the locality strategy.
type LocalityFailover struct {
	FailoverPriority []string       `yaml:"failoverPriority" doc:"Label keys ordering endpoints by how many leading labels match the client, e.g. [topology.istio.io/cluster]."`
	Failover         []FailoverRule `yaml:"failover" doc:"Region to fail over to when a region has no healthy endpoints."`
}

// FailoverRule is one explicit region failover.
type FailoverRule struct {
	From string `yaml:"from" doc:"Source region." schema:"required,minLength=1"`
	To   string `yaml:"to" doc:"Region to fail over to." schema:"required,minLength=1"`
}

// FailoverService is a hostname backed by a service in several clusters, in
// priority order.
type FailoverService struct {
	Name            string           `yaml:"name" doc:"Name of the failover service, referenced by trafficShift." schema:"required,name"`
	Hostname        string           `yaml:"hostname" doc:"The hostname clients resolve, e.g. reviews-failover.default.global." schema:"required,hostname"`
	Namespace       string           `yaml:"namespace" doc:"Namespace the Istio objects go to. Default: spec.namespace." schema:"label"`
	Port            Port             `yaml:"port" doc:"Port of the failover hostname. Default: 9080, http."`
	Meshes          []string         `yaml:"meshes" doc:"Clusters in which the hostname is defined. Default: the cluster of the first backing service." schema:"name,unique"`
	BackingServices []BackingService `yaml:"backingServices" doc:"Services backing the hostname, highest priority first." schema:"required,minItems=1"`
}

// Port is a service port.
type Port struct {
	Number   int    `yaml:"number" doc:"Port number. Default: 9080." schema:"min=1,max=65535"`
	Protocol string `yaml:"protocol" doc:"http, http2, grpc or tcp. Default: http." schema:"enum=http|http2|grpc|tcp"`
}

// BackingService is one service behind a failover hostname.
type BackingService struct {
	Service   string `yaml:"service" doc:"Kubernetes service name." schema:"required,minLength=1"`
	Namespace string `yaml:"namespace" doc:"Namespace of the service. Default: spec.namespace." schema:"label"`
	Cluster   string `yaml:"cluster" doc:"Cluster running the service." schema:"required,name"`
}

// LoadSpec is the traffic driven during the drill.
type LoadSpec struct {
	Target       Target    `yaml:"target" doc:"Where requests go."`
	Rate         Rate      `yaml:"rate" doc:"Requests per time unit: 50/s, or {ramp: {from: 10/s, to: 100/s}}, or {steps: [{rate: 10/s, for: 30s}, ...]}." schema:"required"`
	Duration     Duration  `yaml:"duration" doc:"How long load runs; the timeline's clock starts with it." schema:"required,positive"`
	Timeout      Duration  `yaml:"timeout" doc:"Timeout of each request. Default: 10s."`
	Connections  int       `yaml:"connections" doc:"Maximum idle connections per host. Default: 10000." schema:"min=0"`
	Workers      int       `yaml:"workers" doc:"Initial number of load workers. Default: 10." schema:"min=0"`
	MaxWorkers   int       `yaml:"maxWorkers" doc:"Upper bound on workers. Default: unbounded." schema:"min=0"`
	HTTP2        bool      `yaml:"http2" doc:"Use HTTP/2."`
	KeepAlive    *bool     `yaml:"keepAlive" doc:"Reuse connections. Default: true."`
	Window       Duration  `yaml:"window" doc:"Length of each reported window of results. Default: 1s."`
	DegradedWhen *Degraded `yaml:"degradedWhen" doc:"How to tell a degraded answer that still returns 2xx."`
}

// Target is where load is sent: the ingress gateway of a cluster.
type Target struct {
	Cluster string            `yaml:"cluster" doc:"Cluster whose ingress gateway receives the load. Default: the cluster with ingress: true." schema:"name"`
	Path    string            `yaml:"path" doc:"Request path. Default: /productpage." schema:"pattern=path"`
	Method  string            `yaml:"method" doc:"HTTP method. Default: GET." schema:"pattern=method"`
	Host    string            `yaml:"host" doc:"Host header, when the gateway routes by host."`
	Headers map[string]string `yaml:"headers" doc:"Extra request headers."`
}

// Degraded recognises an answer that succeeded on the wire but not for the user.
type Degraded struct {
	BodyContains string `yaml:"bodyContains" doc:"The body contains this text." schema:"minLength=1"`
	BodyMatches  string `yaml:"bodyMatches" doc:"The body matches this regular expression (RE2)." schema:"minLength=1"`
}

// Observe says which Envoys to scrape.
type Observe struct {
	Envoy []EnvoyTarget `yaml:"envoy" doc:"Sidecars whose admin stats are scraped. Default: productpage in the load target's cluster, every 1s."`
}

// EnvoyTarget is a workload whose sidecar is scraped.
type EnvoyTarget struct {
	Cluster  string   `yaml:"cluster" doc:"Cluster of the workload." schema:"required,name"`
	Workload string   `yaml:"workload" doc:"Workload (app label) whose sidecar is scraped." schema:"required,minLength=1"`
	Every    Duration `yaml:"every" doc:"Scrape interval; also the resolution of failover times. Default: 1s."`
}

// Step is one thing the drill does, when its trigger fires. Exactly one trigger (at,
// after, when) and exactly one action (fault, revert, wait, apply).
type Step struct {
	Name  string    `yaml:"name" doc:"Name of the step, referenced by other steps and expectations." schema:"required,name,not=start|end"`
	At    *Duration `yaml:"at" doc:"Fire this long after load starts, e.g. 30s."`
	After *Instant  `yaml:"after" doc:"Fire relative to another step: 'reviews-down + 60s'."`
	When  *Trigger  `yaml:"when" doc:"Fire on an event: 'failover-detected', 'failover-detected after reviews-down + 5s'."`

	Fault  *Fault `yaml:"fault" doc:"Inject a fault."`
	Revert string `yaml:"revert" doc:"Revert the fault of the named step." schema:"minLength=1"`
	Wait   *Wait  `yaml:"wait" doc:"Wait: a duration, or until a workload is ready again."`
	Apply  *Apply `yaml:"apply" doc:"Change the mesh policy mid-drill."`
	Keep   bool   `yaml:"keep" doc:"Leave this step's fault in place when the drill ends."`
}

// SteadyState is the healthy mesh, in the load's terms, over a span of load.
// At least one condition.
type SteadyState struct {
	Over          Duration      `yaml:"over" doc:"The span of load judged, just before the first fault and after the last revert. At least 1s. Default: 10s."`
	ErrorRatio    *float64      `yaml:"errorRatio" doc:"At most this share (0-1) of the span's answers are errors (transport errors, non-2xx/3xx), e.g. 0.01." schema:"min=0,max=1"`
	DegradedRatio *float64      `yaml:"degradedRatio" doc:"At most this share of the span's answers are degraded (load.degradedWhen)." schema:"min=0,max=1"`
	FailedRatio   *float64      `yaml:"failedRatio" doc:"At most this share of the span's answers are errors or degraded." schema:"min=0,max=1"`
	Latency       *GuardLatency `yaml:"latency" doc:"Bound on one latency percentile of the span's answers, e.g. {p99: 500ms}."`
}

// Abort stops a drill that hurts more than it may: guards judged on every
// answer of the load.
type Abort struct {
	When []Guard  `yaml:"when" doc:"The guards; the first to trip aborts the drill." schema:"required,minItems=1"`
	Tail Duration `yaml:"tail" doc:"How long the load goes on after a guard trips, so that recovery is still measured (at most the rest of the load). Default: 15s."`
}

// Guard is a condition on the load's answers over a sliding window of their
// arrival times, or on an observed Envoy's answers from a service over the
// scrapes of a sliding window. Exactly one of errorRatio, degradedRatio,
// failedRatio, latency and upstream5xx.
type Guard struct {
	Name          string         `yaml:"name" doc:"Name of the guard, given in the report when it trips." schema:"required,name"`
	Over          Duration       `yaml:"over" doc:"The sliding window of answers, by arrival time, e.g. 5s. At least 100ms. Default: 5s."`
	MinRequests   *int           `yaml:"minRequests" doc:"Answers the window must hold before the guard can trip. Default: 10." schema:"min=0"`
	ErrorRatio    *float64       `yaml:"errorRatio" doc:"Trip when more than this share (0 to below 1) of the window's answers are errors (transport errors, non-2xx/3xx), e.g. 0.5." schema:"min=0,xmax=1"`
	DegradedRatio *float64       `yaml:"degradedRatio" doc:"Trip when more than this share of the window's answers are degraded (load.degradedWhen)." schema:"min=0,xmax=1"`
	FailedRatio   *float64       `yaml:"failedRatio" doc:"Trip when more than this share of the window's answers are errors or degraded." schema:"min=0,xmax=1"`
	Latency       *GuardLatency  `yaml:"latency" doc:"Trip when a latency percentile of the window's answers is over its bound."`
	Upstream5xx   *GuardEnvoy5xx `yaml:"upstream5xx" doc:"Trip when more than a share of the final answers an observed Envoy got from a service in the window were 5xx, by the Envoy's own stats (read at every scrape, so a guard trips at most one scrape interval late). minRequests counts those answers."`
}

// GuardEnvoy5xx is a guard on an observed Envoy's answers from a service:
// its upstream_rq_5xx against its upstream_rq_completed, final answers only
// (retried attempts are charged apart, as Envoy's router does).
type GuardEnvoy5xx struct {
	EnvoyPath `yaml:",inline"`
	Ratio     *float64 `yaml:"ratio" doc:"Trip when more than this share (0 to below 1) of the window's answers were 5xx, e.g. 0.5." schema:"required,min=0,xmax=1"`
}

// GuardLatency bounds one latency percentile of a guard's window.
type GuardLatency struct {
	P50 Duration `yaml:"p50" doc:"Bound on the median." schema:"positive"`
	P90 Duration `yaml:"p90" doc:"Bound on the 90th percentile." schema:"positive"`
	P99 Duration `yaml:"p99" doc:"Bound on the 99th percentile." schema:"positive"`
}

// Bound is the one percentile bounded (50, 90 or 99; validation makes sure
// exactly one is set) and its bound.
func (l GuardLatency) Bound() (percentile float64, bound time.Duration) {
	switch {
	case l.P50 > 0:
		return 50, l.P50.D()
	case l.P90 > 0:
		return 90, l.P90.D()
	}
	return 99, l.P99.D()
}

// Fault is one fault. Exactly one kind is set.
type Fault struct {
	Scale            *ScaleFault            `yaml:"scale" doc:"Scale a workload to a number of replicas."`
	DeletePods       *DeletePodsFault       `yaml:"deletePods" doc:"Delete a workload's pods (all, a count or a percentage)."`
	ControlPlaneLoss *ControlPlaneLossFault `yaml:"controlPlaneLoss" doc:"Take a cluster's istiod away: its Envoys keep their last configuration and get no endpoint update."`
	GatewayLoss      *GatewayLossFault      `yaml:"gatewayLoss" doc:"Take a cluster's east-west or ingress gateway away while the workloads behind it stay up."`
	HTTPFault        *HTTPFault             `yaml:"httpFault" doc:"Make a workload answer with errors or slowly: Envoy's fault filter in the workload's own sidecar, on its inbound side, so callers see real upstream errors."`
	Partition        *PartitionFault        `yaml:"partition" doc:"Cut the network between a cluster and others: their packets are dropped (iptables), so connections time out instead of being refused."`
	ZoneLoss         *ZoneLossFault         `yaml:"zoneLoss" doc:"Take down at once every workload of a locality (region, zone or subzone) in a cluster: each Deployment of the namespace with a pod on a node of that locality is scaled to zero."`
}

// ZoneLossFault takes down every workload of one locality of a cluster.
type ZoneLossFault struct {
	Cluster   string `yaml:"cluster" doc:"Cluster the locality is in." schema:"required,name"`
	Locality  string `yaml:"locality" doc:"The locality lost: region, region/zone or region/zone/subzone, as the nodes' topology labels say. Default: the cluster's locality." schema:"locality"`
	Namespace string `yaml:"namespace" doc:"Namespace of the workloads taken down. Default: spec.namespace." schema:"label"`
}

// PartitionFault cuts the network between a cluster and its peers.
type PartitionFault struct {
	Cluster string   `yaml:"cluster" doc:"Cluster cut off." schema:"required,name"`
	Peers   []string `yaml:"peers" doc:"Clusters on the other side. Default: every other cluster." schema:"name,unique"`
	OneWay  bool     `yaml:"oneWay" doc:"Cut only the connections the cluster opens to its peers; theirs to it still work. Default: both ways."`
}

// ControlPlaneLossFault takes a cluster's istiod away.
type ControlPlaneLossFault struct {
	Cluster string `yaml:"cluster" doc:"Cluster whose istiod goes away." schema:"required,name"`
}

// GatewayLossFault takes a cluster's gateway away.
type GatewayLossFault struct {
	Cluster string `yaml:"cluster" doc:"Cluster whose gateway goes away." schema:"required,name"`
	Gateway string `yaml:"gateway" doc:"eastwest (default) or ingress." schema:"enum=eastwest|ingress"`
}

// HTTPFault injects errors and delays at the inbound side of a workload's
// sidecar, with Envoy's HTTP fault filter (an EnvoyFilter drill applies and
// deletes): the workload is up, and wrong.
type HTTPFault struct {
	WorkloadRef `yaml:",inline"`
	Abort       *FaultAbort `yaml:"abort" doc:"Answer a share of requests with an HTTP status instead of the workload."`
	Delay       *FaultDelay `yaml:"delay" doc:"Delay a share of requests before the workload sees them."`
}

// FaultAbort is the abort of an HTTPFault.
type FaultAbort struct {
	Status  int      `yaml:"status" doc:"HTTP status to answer, 200-599, e.g. 503." schema:"required,min=200,max=599"`
	Percent *float64 `yaml:"percent" doc:"Share of requests, 0-100. Default: 100." schema:"min=0,max=100"`
}

// FaultDelay is the delay of an HTTPFault.
type FaultDelay struct {
	Fixed   *Duration `yaml:"fixed" doc:"How long to hold each delayed request, e.g. 2s." schema:"required,positive"`
	Percent *float64  `yaml:"percent" doc:"Share of requests, 0-100. Default: 100." schema:"min=0,max=100"`
}

// WorkloadRef selects Deployments in a cluster: by app label (workload), by name
// (deployment) or by label selector (selector). Exactly one of the three.
type WorkloadRef struct {
	Cluster    string `yaml:"cluster" doc:"Cluster of the workload." schema:"required,name"`
	Namespace  string `yaml:"namespace" doc:"Namespace. Default: spec.namespace." schema:"label"`
	Workload   string `yaml:"workload" doc:"App label: every Deployment with app=<workload> (e.g. reviews: reviews-v1 and reviews-v2)." schema:"minLength=1"`
	Deployment string `yaml:"deployment" doc:"One Deployment by name." schema:"minLength=1"`
	Selector   string `yaml:"selector" doc:"A label selector, e.g. app=reviews,version=v2." schema:"minLength=1"`
}

// ScaleFault scales Deployments through the scale subresource.
type ScaleFault struct {
	WorkloadRef `yaml:",inline"`
	Replicas    *int `yaml:"replicas" doc:"Replicas to scale to, e.g. 0." schema:"required,min=0"`
}

// DeletePodsFault deletes pods of a workload; their controllers recreate them.
type DeletePodsFault struct {
	WorkloadRef `yaml:",inline"`
	Count       *int      `yaml:"count" doc:"How many pods to delete. Default: all." schema:"min=1"`
	Percent     *int      `yaml:"percent" doc:"Share of pods to delete, 1-100." schema:"min=1,max=100"`
	GracePeriod *Duration `yaml:"gracePeriod" doc:"Grace period of the deletion. Default: the pod's own."`
}

// Apply changes the mesh policy mid-drill: the new policy replaces the old one,
// translated and applied the same way, objects that are gone removed.
type Apply struct {
	Mesh *Mesh `yaml:"mesh" doc:"The new mesh policy." schema:"required"`
}

// Expectation is one named pass/fail check over the recorded run. Exactly one kind.
type Expectation struct {
	Name         string              `yaml:"name" doc:"Name of the check, a line in the report." schema:"required,name"`
	Upstream5xx  *Upstream5xxExpect  `yaml:"upstream5xx" doc:"Count of 5xx answers a workload's Envoy got from a service."`
	Errors       *CountExpect        `yaml:"errors" doc:"Client-side errors (transport errors and non-2xx/3xx) seen by the load."`
	Degraded     *CountExpect        `yaml:"degraded" doc:"Degraded answers (see load.degradedWhen) seen by the load."`
	Latency      *LatencyExpect      `yaml:"latency" doc:"Latency percentiles seen by the load."`
	Failover     *FailoverExpect     `yaml:"failover" doc:"Traffic for a service moved to another cluster after a step, in time."`
	Failback     *FailbackExpect     `yaml:"failback" doc:"Traffic for a service came back to its cluster after a step, in time."`
	Recovery     *RecoveryExpect     `yaml:"recovery" doc:"The load's success ratio was back at its level before the first fault within a time of a fault or revert step."`
	Availability *AvailabilityExpect `yaml:"availability" doc:"No load window of a span fell below a success ratio."`
	Ejection     *EjectionExpect     `yaml:"ejection" doc:"An observed Envoy's outlier detection ejected a host of a service within a time of a step, as the Envoy's own /clusters page says."`
	Regression   *RegressionExpect   `yaml:"regression" doc:"A figure of this run is not much worse than the median of the scenario's last passing runs on the same provider (the run history)."`
	Share        *ShareExpect        `yaml:"share" doc:"The share of a service's answers that one cluster served, among the load's answers in a window, lies between bounds: how an Envoy split the traffic (priority spill-over, failover order), as the client saw it."`
}

// ShareExpect bounds the share of a service's answers that one cluster served,
// counted from the load's own answers: each answer of drill's Bookinfo names
// the cluster that served each service on its path (docs/bookinfo.md,
// attribution headers). Answers that name no cluster for the service (it
// failed) are in neither the share nor its whole. Where no answer names one
// (another application), the observed Envoys' istio_requests_total counts.
type ShareExpect struct {
	Service string   `yaml:"service" doc:"The service whose answers are counted, e.g. reviews: by the cluster each of the load's answers names for it (drill's Bookinfo names productpage's, details' and reviews'), else by the observed Envoys' istio_requests_total." schema:"required,minLength=1"`
	Cluster string   `yaml:"cluster" doc:"The cluster whose share is bounded." schema:"required,name"`
	Min     *Percent `yaml:"min" doc:"At least this share of the service's answers, e.g. 22%."`
	Max     *Percent `yaml:"max" doc:"At most this share of the service's answers, e.g. 38%."`
	Window  `yaml:",inline"`
}

// EjectionExpect requires an observed Envoy to eject a host of a service —
// outlier detection's health flag failed_outlier_check in its /clusters page —
// within a time of a step.
type EjectionExpect struct {
	From    string   `yaml:"from" doc:"The observed workload whose Envoy must eject, e.g. productpage." schema:"required,minLength=1"`
	Cluster string   `yaml:"cluster" doc:"The cluster of that workload." schema:"required,name"`
	Service string   `yaml:"service" doc:"The service whose host is ejected, e.g. reviews (any Envoy cluster of it, the failover service's members included)." schema:"required,minLength=1"`
	Within  Duration `yaml:"within" doc:"Deadline from the step." schema:"required,positive"`
	After   string   `yaml:"after" doc:"The step the clock starts at (usually the fault)." schema:"required,name"`
}

// RegressionExpect judges a figure of the run against the scenario's own
// history: the median of the same figure over the last passing runs of a
// scenario of the same name on the same provider. With fewer runs than MinRuns
// in the history it is skipped, not failed. At least one of MaxIncrease and
// MaxIncreaseBy; with both, the figure may grow by the larger of the two, so
// that jitter on a small baseline does not count as a regression.
type RegressionExpect struct {
	Figure        string   `yaml:"figure" doc:"The figure judged: an expectation of this scenario by name (its first measure; name.measure for another, e.g. p99.p50), or a figure of the load: load.p50, load.p90, load.p99, load.max, load.errors, run.seconds." schema:"required,minLength=1"`
	Last          int      `yaml:"last" doc:"How many of the last passing runs the median is taken over. Default: 5." schema:"min=0"`
	MinRuns       int      `yaml:"minRuns" doc:"Fewest passing runs with the figure needed to judge it; with fewer the expectation is skipped. Default: 3, at most last." schema:"min=0"`
	MaxIncrease   *Percent `yaml:"maxIncrease" doc:"How much above the median the figure may be, as a share of it, e.g. 50%."`
	MaxIncreaseBy *Amount  `yaml:"maxIncreaseBy" doc:"How much above the median the figure may be, in the figure's unit: a duration for a time (500ms), a number for a count (20)."`
}

// Regression defaults.
const (
	DefaultRegressionLast    = 5
	DefaultRegressionMinRuns = 3
)

// Runs is Last with its default.
func (r *RegressionExpect) Runs() int {
	if r.Last <= 0 {
		return DefaultRegressionLast
	}
	return r.Last
}

// Needed is MinRuns with its default, never more than Runs.
func (r *RegressionExpect) Needed() int {
	n := r.MinRuns
	if n <= 0 {
		n = DefaultRegressionMinRuns
	}
	return min(n, r.Runs())
}

// RecoveryExpect bounds how long the dip of a fault or revert step lasted, as
// the report measures it: from the step to the first of three load windows in
// a row back at the baseline.
type RecoveryExpect struct {
	After  string   `yaml:"after" doc:"The fault or revert step whose dip is judged." schema:"required,name"`
	Within Duration `yaml:"within" doc:"Deadline from the step, e.g. 15s." schema:"required,positive"`
}

// AvailabilityExpect is a floor under every load window's success ratio
// (answers 2xx/3xx and not degraded, over the window's requests) in a span.
type AvailabilityExpect struct {
	Min    *float64 `yaml:"min" doc:"Lowest success ratio (0-1) a window may have, e.g. 0.9." schema:"required,min=0,max=1"`
	Window `yaml:",inline"`
}

// Window limits an expectation to part of the run. Both ends are instants: a
// duration since load start (30s), a step (reviews-down), a step plus an offset
// (reviews-down + 10s), start or end.
type Window struct {
	From  *Instant `yaml:"from" doc:"Start of the window. Default: start of load."`
	Until *Instant `yaml:"until" doc:"End of the window. Default: end of load."`
}

// EnvoyPath is what an observed Envoy got from a service: the workload whose
// Envoy is read, in its cluster, and the destination service.
type EnvoyPath struct {
	From    string `yaml:"from" doc:"Workload whose Envoy is read, e.g. productpage; must be observed (spec.observe.envoy)." schema:"required,minLength=1"`
	To      string `yaml:"to" doc:"Destination service, e.g. reviews." schema:"required,minLength=1"`
	Cluster string `yaml:"cluster" doc:"Cluster of the observed workload." schema:"required,name"`
}

// Upstream5xxExpect bounds the 5xx answers one workload's Envoy received from a service.
type Upstream5xxExpect struct {
	EnvoyPath `yaml:",inline"`
	Max       *int    `yaml:"max" doc:"At most this many." schema:"min=0"`
	Min       *int    `yaml:"min" doc:"At least this many (to prove a fault was felt)." schema:"min=0"`
	Window    Window  `yaml:"window" doc:"Count only within this window: {from: reviews-down, until: reviews-back}. Default: the whole load."`
	Retried   *Bounds `yaml:"retried" doc:"Bounds on the 5xx answers of attempts the Envoy retried (Envoy's retry.upstream_rq_5xx), counted apart from the final answers: {min: 100} proves a retry policy met the failures the client never saw."`
}

// Bounds bounds a count. At least one of Max and Min.
type Bounds struct {
	Max *int `yaml:"max" doc:"At most this many." schema:"min=0"`
	Min *int `yaml:"min" doc:"At least this many." schema:"min=0"`
}

// CountExpect bounds a count of load results.
type CountExpect struct {
	Max    *int `yaml:"max" doc:"At most this many." schema:"min=0"`
	Min    *int `yaml:"min" doc:"At least this many." schema:"min=0"`
	Window `yaml:",inline"`
}

// LatencyExpect bounds latency percentiles. At least one bound.
type LatencyExpect struct {
	P50    Duration `yaml:"p50" doc:"Bound on the median."`
	P90    Duration `yaml:"p90" doc:"Bound on the 90th percentile."`
	P99    Duration `yaml:"p99" doc:"Bound on the 99th percentile."`
	Max    Duration `yaml:"max" doc:"Bound on the slowest request."`
	Window `yaml:",inline"`
}

// FailoverExpect requires traffic for a service to move from one cluster to another
// within a time of a step.
type FailoverExpect struct {
	Service string   `yaml:"service" doc:"Service whose traffic must move." schema:"required,minLength=1"`
	From    string   `yaml:"from" doc:"Cluster that served it before." schema:"required,name"`
	To      string   `yaml:"to" doc:"Cluster that must serve it after." schema:"required,name"`
	Within  Duration `yaml:"within" doc:"Deadline from the step." schema:"required,positive"`
	After   string   `yaml:"after" doc:"The step (usually the fault) the clock starts at." schema:"required,name"`
}

// FailbackExpect requires traffic for a service to return to a cluster within a time
// of a step (usually the revert).
type FailbackExpect struct {
	Service string   `yaml:"service" doc:"Service whose traffic must return." schema:"required,minLength=1"`
	To      string   `yaml:"to" doc:"Cluster that must serve it again." schema:"required,name"`
	Within  Duration `yaml:"within" doc:"Deadline from the step." schema:"required,positive"`
	After   string   `yaml:"after" doc:"The step (usually the revert) the clock starts at." schema:"required,name"`
}
