package scenario

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// seed is a minimal valid scenario that the table tests mutate.
const seed = `apiVersion: drill/v1alpha1
kind: Scenario
metadata:
  name: t
spec:
  clusters:
    - name: cluster1
      ingress: true
    - name: cluster2
  load:
    rate: 50/s
    duration: 60s
  steps:
    - name: down
      at: 10s
      fault: {scale: {cluster: cluster1, workload: reviews, replicas: 0}}
    - name: back
      after: down + 20s
      revert: down
  expect:
    - name: failover
      failover: {service: reviews, from: cluster1, to: cluster2, within: 10s, after: down}
`

func TestScenarioFilesAreValid(t *testing.T) {
	files, err := filepath.Glob("../../scenarios/*.yaml")
	conformance, _ := filepath.Glob("../../scenarios/conformance/*.yaml")
	files = append(files, conformance...)
	if err != nil || len(files) < 3 {
		t.Fatalf("expected at least 3 scenario files, got %v (%v)", files, err)
	}
	for _, f := range files {
		if _, err := Load(f); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
}

func TestSeedScenario(t *testing.T) {
	s, err := Load("../../scenarios/reviews-failover.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if got := s.Spec.Load.Rate.Constant; got == nil || got.PerSecond() != 50 {
		t.Errorf("rate = %v, want 50/s", got)
	}
	if s.Spec.Load.Duration.D() != 150*time.Second {
		t.Errorf("duration = %v", s.Spec.Load.Duration)
	}
	od := s.Spec.Mesh.TrafficPolicies[0].OutlierDetection
	if od == nil || od.MaxEjectionPercent == nil || *od.MaxEjectionPercent != 100 {
		t.Errorf("maxEjectionPercent default not applied: %+v", od)
	}
	if *od.ConsecutiveErrors != 1 || od.Interval.D() != 5*time.Second || od.BaseEjectionTime.D() != 120*time.Second {
		t.Errorf("outlier detection = %+v", od)
	}
	back := s.Spec.Steps[1]
	if back.After == nil || back.After.Anchor != "reviews-down" || back.After.Offset != 60*time.Second {
		t.Errorf("after = %+v", back.After)
	}
	c1 := s.Spec.Clusters[0]
	if got := strings.Join(c1.Bookinfo.Reviews, ","); got != "v1,v2" {
		t.Errorf("cluster1 reviews = %s", got)
	}
	if got := strings.Join(c1.Bookinfo.Ratings, ","); got != "v1" {
		t.Errorf("cluster1 ratings default = %s", got)
	}
	fs := s.Spec.Mesh.FailoverServices[0]
	if fs.Namespace != "default" || fs.BackingServices[1].Namespace != "default" || fs.Port.Number != 9080 {
		t.Errorf("failover service defaults: %+v", fs)
	}
	w := s.Spec.Expect[2].Degraded.Window
	if w.From == nil || w.From.Anchor != "reviews-down" || w.From.Offset != 10*time.Second || w.Until.Anchor != "reviews-back" {
		t.Errorf("window = %+v", w)
	}
	// Line 1 is the yaml-language-server modeline: positions are the file's own.
	if line, _ := s.Pos("spec.steps[1].after"); line != 47 {
		t.Errorf("Pos(spec.steps[1].after) = line %d, want 47", line)
	}
}

func TestDefaults(t *testing.T) {
	s, err := Parse("t.yaml", []byte(strings.Replace(seed, "      ingress: true\n", "", 1)))
	if err != nil {
		t.Fatal(err)
	}
	sp := s.Spec
	if !sp.Clusters[0].Ingress || sp.Load.Target.Cluster != "cluster1" {
		t.Errorf("the first cluster should become the ingress and load target: %+v %+v", sp.Clusters[0], sp.Load.Target)
	}
	if sp.Namespace != "default" || sp.Load.Target.Path != "/productpage" || sp.Load.Timeout.D() != 10*time.Second || !*sp.Load.KeepAlive {
		t.Errorf("load defaults: %+v", sp.Load)
	}
	if len(sp.Observe.Envoy) != 1 || sp.Observe.Envoy[0].Workload != "productpage" || sp.Observe.Envoy[0].Every.D() != time.Second {
		t.Errorf("observe default: %+v", sp.Observe)
	}
	if got := strings.Join(sp.Clusters[1].Bookinfo.Reviews, ","); got != "v1,v2,v3" {
		t.Errorf("default reviews versions = %s", got)
	}
	if sp.Steps[0].Fault.Scale.Namespace != "default" {
		t.Errorf("fault namespace default missing")
	}
}

func TestEmptyVersionListMeansNotRunning(t *testing.T) {
	in := strings.Replace(seed, "    - name: cluster2\n", "    - name: cluster2\n      bookinfo: {reviews: []}\n", 1)
	s, err := Parse("t.yaml", []byte(in))
	if err != nil {
		t.Fatal(err)
	}
	if r := s.Spec.Clusters[1].Bookinfo.Reviews; r == nil || len(r) != 0 {
		t.Errorf("reviews = %#v, want an empty non-nil list", r)
	}
}

func TestRateForms(t *testing.T) {
	for _, tc := range []struct {
		rate string
		ok   bool
		want string
	}{
		{"50/s", true, "constant 50/s"},
		{"3000/m", true, "constant 3000/m"},
		{"20", true, "constant 20/s"},
		{"{constant: 10/s}", true, "constant 10/s"},
		{"{ramp: {from: 10/s, to: 100/s}}", true, "ramp 10/s 100/s"},
		{"{steps: [{rate: 10/s, for: 30s}, {rate: 20/s}]}", true, "steps 2"},
		{"fast", false, "is not a rate"},
		{"0/s", false, "is not a rate"},
		{"50/fortnight", false, "not a time unit"},
		{"{ramp: {from: 10/s}, constant: 5/s}", false, "set one of"},
		{"{steps: [{rate: 10/s}, {rate: 20/s}]}", false, "how long this rate is held"},
	} {
		in := strings.Replace(seed, "rate: 50/s", "rate: "+tc.rate, 1)
		s, err := Parse("t.yaml", []byte(in))
		if !tc.ok {
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("rate %q: error %v, want one containing %q", tc.rate, err, tc.want)
			}
			continue
		}
		if err != nil {
			t.Errorf("rate %q: %v", tc.rate, err)
			continue
		}
		r := s.Spec.Load.Rate
		var got string
		switch {
		case r.Constant != nil:
			got = "constant " + r.Constant.String()
		case r.Ramp != nil:
			got = "ramp " + r.Ramp.From.String() + " " + r.Ramp.To.String()
		default:
			got = "steps " + string(rune('0'+len(r.Steps)))
		}
		if got != tc.want {
			t.Errorf("rate %q = %s, want %s", tc.rate, got, tc.want)
		}
	}
}

func TestTriggerForms(t *testing.T) {
	for _, tc := range []struct {
		when, event, after string
		delay              time.Duration
	}{
		{"failover-detected", "failover-detected", "", 0},
		{"failover-detected + 5s", "failover-detected", "", 5 * time.Second},
		{"failover-detected after down", "failover-detected", "down", 0},
		{"failback-detected after down + 1m", "failback-detected", "down", time.Minute},
		{"{event: outlier-ejection, after: down, delay: 2s}", "outlier-ejection", "down", 2 * time.Second},
	} {
		in := strings.Replace(seed, "      after: down + 20s\n      revert: down", "      when: "+tc.when+"\n      revert: down", 1)
		s, err := Parse("t.yaml", []byte(in))
		if err != nil {
			t.Errorf("when %q: %v", tc.when, err)
			continue
		}
		w := s.Spec.Steps[1].When
		if w.Event != tc.event || w.After != tc.after || w.Delay.D() != tc.delay {
			t.Errorf("when %q = %+v", tc.when, w)
		}
	}
}

// TestErrors checks that each mistake is reported at its line and field, with a
// message that says what to do.
func TestErrors(t *testing.T) {
	for _, tc := range []struct {
		name     string
		old, new string
		want     []string // substrings of the single expected error line
	}{
		{"typo'd field", "      ingress: true", "      ingres: true", []string{"t.yaml:8:7:", "spec.clusters[0].ingres", `did you mean "ingress"`}},
		{"bad duration", "duration: 60s", "duration: 60 seconds", []string{"t.yaml:12:15:", "spec.load.duration", "not a duration"}},
		{"duration without unit", "at: 10s", "at: 10", []string{"t.yaml:15:11:", "spec.steps[0].at", "needs a unit"}},
		{"unknown step", "after: down + 20s", "after: dwn + 20s", []string{"t.yaml:18:14:", "spec.steps[1].after", `unknown step "dwn"`, `did you mean "down"`}},
		{"unknown revert", "revert: down", "revert: nope", []string{"spec.steps[1].revert", `unknown step "nope"`}},
		{"unknown cluster in fault", "fault: {scale: {cluster: cluster1,", "fault: {scale: {cluster: cluster3,", []string{"t.yaml:16:32:", "spec.steps[0].fault.scale.cluster", `unknown cluster "cluster3"`, "cluster1, cluster2"}},
		{"unknown cluster in expectation", "from: cluster1, to: cluster2", "from: cluster1, to: clusterX", []string{"spec.expect[0].failover.to", `unknown cluster "clusterX"`}},
		{"wrong type", "replicas: 0}", "replicas: none}", []string{"spec.steps[0].fault.scale.replicas", "whole number"}},
		{"list where map", "  load:\n    rate: 50/s\n    duration: 60s\n", "  load: [1]\n", []string{"spec.load", "must be a mapping"}},
		{"two triggers", "      at: 10s\n", "      at: 10s\n      after: back\n", []string{"spec.steps[0]", "exactly one trigger"}},
		{"no action", "      revert: down\n", "", []string{"spec.steps[1]", "exactly one action"}},
		{"self reference", "after: down + 20s", "after: back + 20s", []string{"spec.steps[1].after", "cannot refer to itself"}},
		{"step after load end", "at: 10s", "at: 90s", []string{"spec.steps[0].at", "not before the end of load"}},
		{"revert of a step without fault", "      at: 10s\n      fault: {scale: {cluster: cluster1, workload: reviews, replicas: 0}}", "      at: 10s\n      wait: 5s", []string{"spec.steps[1].revert", "has no fault"}},
		{"bad api version", "drill/v1alpha1", "drill/v2", []string{"t.yaml:1:13:", "apiVersion", "unsupported version"}},
		{"duplicate field", "  name: t\n", "  name: t\n  name: u\n", []string{"metadata.name", "duplicate field"}},
		{"invalid yaml", "kind: Scenario", "kind: [Scenario", []string{"t.yaml:", "invalid YAML"}},
		{"bad selector", "workload: reviews, replicas", "selector: 'app in (', replicas", []string{"spec.steps[0].fault.scale.selector", "not a label selector"}},
		{"bad cluster name", "name: cluster2", "name: Cluster_2", []string{"spec.clusters[1].name", "not a valid name"}},
		{"http fault status", "fault: {scale: {cluster: cluster1, workload: reviews, replicas: 0}}", "fault: {httpFault: {cluster: cluster1, workload: reviews, abort: {status: 700}}}",
			[]string{"t.yaml:16:", "spec.steps[0].fault.httpFault.abort.status", "200-599"}},
		{"http fault percent", "fault: {scale: {cluster: cluster1, workload: reviews, replicas: 0}}", "fault: {httpFault: {cluster: cluster1, workload: reviews, abort: {status: 503, percent: 150}}}",
			[]string{"spec.steps[0].fault.httpFault.abort.percent", "0-100"}},
		{"http fault without delay duration", "fault: {scale: {cluster: cluster1, workload: reviews, replicas: 0}}", "fault: {httpFault: {cluster: cluster1, workload: reviews, delay: {percent: 10}}}",
			[]string{"spec.steps[0].fault.httpFault.delay.fixed", "required"}},
		{"http fault with nothing", "fault: {scale: {cluster: cluster1, workload: reviews, replicas: 0}}", "fault: {httpFault: {cluster: cluster1, workload: reviews}}",
			[]string{"spec.steps[0].fault.httpFault", "abort, delay or both"}},
		{"gateway loss role", "fault: {scale: {cluster: cluster1, workload: reviews, replicas: 0}}", "fault: {gatewayLoss: {cluster: cluster2, gateway: egress}}",
			[]string{"spec.steps[0].fault.gatewayLoss.gateway", "eastwest or ingress"}},
		{"gateway loss cluster", "fault: {scale: {cluster: cluster1, workload: reviews, replicas: 0}}", "fault: {gatewayLoss: {cluster: cluster9}}",
			[]string{"spec.steps[0].fault.gatewayLoss.cluster", `unknown cluster "cluster9"`}},
		{"control plane loss cluster", "fault: {scale: {cluster: cluster1, workload: reviews, replicas: 0}}", "fault: {controlPlaneLoss: {cluster: nowhere}}",
			[]string{"spec.steps[0].fault.controlPlaneLoss.cluster", `unknown cluster "nowhere"`}},
		{"partition peer unknown", "fault: {scale: {cluster: cluster1, workload: reviews, replicas: 0}}", "fault: {partition: {cluster: cluster1, peers: [cluster9]}}",
			[]string{"t.yaml:16:", "spec.steps[0].fault.partition.peers[0]", `unknown cluster "cluster9"`}},
		{"partition from itself", "fault: {scale: {cluster: cluster1, workload: reviews, replicas: 0}}", "fault: {partition: {cluster: cluster1, peers: [cluster2, cluster1]}}",
			[]string{"spec.steps[0].fault.partition.peers[1]", "the cluster being cut off"}},
		{"partition peer twice", "fault: {scale: {cluster: cluster1, workload: reviews, replicas: 0}}", "fault: {partition: {cluster: cluster1, peers: [cluster2, cluster2]}}",
			[]string{"spec.steps[0].fault.partition.peers[1]", "named twice"}},
		{"ejection from a workload not observed", "failover: {service: reviews, from: cluster1, to: cluster2, within: 10s, after: down}", "ejection: {from: details, cluster: cluster1, service: reviews, within: 5s, after: down}",
			[]string{"spec.expect[0].ejection.from", "details in cluster1 is not observed"}},
		{"ejection without deadline", "failover: {service: reviews, from: cluster1, to: cluster2, within: 10s, after: down}", "ejection: {from: productpage, cluster: cluster1, service: reviews, after: down}",
			[]string{"spec.expect[0].ejection.within", "required"}},
		{"trigger on an unknown Envoy event", "at: 10s", "when: host-gone", []string{"spec.steps[0].when", `unknown event "host-gone"`, "host-ejected"}},
		{"zone loss cluster", "fault: {scale: {cluster: cluster1, workload: reviews, replicas: 0}}", "fault: {zoneLoss: {cluster: cluster7}}",
			[]string{"t.yaml:16:", "spec.steps[0].fault.zoneLoss.cluster", `unknown cluster "cluster7"`}},
		{"zone loss of another locality", "fault: {scale: {cluster: cluster1, workload: reviews, replicas: 0}}", "fault: {zoneLoss: {cluster: cluster1, locality: eu-west/zone-b}}",
			[]string{"spec.steps[0].fault.zoneLoss.locality", "cluster cluster1's workloads are in locality cluster1", "would take none"}},
		{"zone loss bad locality", "fault: {scale: {cluster: cluster1, workload: reviews, replicas: 0}}", "fault: {zoneLoss: {cluster: cluster1, locality: 'a//b'}}",
			[]string{"spec.steps[0].fault.zoneLoss.locality", "not a locality"}},
		{"zone loss bad namespace", "fault: {scale: {cluster: cluster1, workload: reviews, replicas: 0}}", "fault: {zoneLoss: {cluster: cluster1, namespace: Bad_NS}}",
			[]string{"spec.steps[0].fault.zoneLoss.namespace", "not a valid namespace"}},
		{"partition and scale", "fault: {scale: {cluster: cluster1, workload: reviews, replicas: 0}}", "fault: {partition: {cluster: cluster1}, scale: {cluster: cluster1, workload: reviews, replicas: 0}}",
			[]string{"spec.steps[0].fault", "exactly one fault"}},
		{"http fault by deployment", "fault: {scale: {cluster: cluster1, workload: reviews, replicas: 0}}", "fault: {httpFault: {cluster: cluster1, deployment: reviews-v1, abort: {status: 503}}}",
			[]string{"spec.steps[0].fault.httpFault.deployment", "workload or selector"}},
		{"guard without condition", "  expect:\n", "  abort: {when: [{name: g}]}\n  expect:\n",
			[]string{"t.yaml:", "spec.abort.when[0]", "set one condition"}},
		{"guard with two conditions", "  expect:\n", "  abort: {when: [{name: g, errorRatio: 0.5, latency: {p99: 1s}}]}\n  expect:\n",
			[]string{"spec.abort.when[0]", "only one condition"}},
		{"guard ratio out of range", "  expect:\n", "  abort: {when: [{name: g, errorRatio: 1.5}]}\n  expect:\n",
			[]string{"spec.abort.when[0].errorRatio", "from 0 to below 1"}},
		{"guard window too short", "  expect:\n", "  abort: {when: [{name: g, errorRatio: 0.5, over: 10ms}]}\n  expect:\n",
			[]string{"spec.abort.when[0].over", "at least 100ms"}},
		{"guard window longer than the load", "  expect:\n", "  abort: {when: [{name: g, errorRatio: 0.5, over: 2m}]}\n  expect:\n",
			[]string{"spec.abort.when[0].over", "longer than the load"}},
		{"guard named twice", "  expect:\n", "  abort: {when: [{name: g, errorRatio: 0.5}, {name: g, failedRatio: 0.5}]}\n  expect:\n",
			[]string{"spec.abort.when[1].name", "named twice"}},
		{"guard on degraded without degradedWhen", "  expect:\n", "  abort: {when: [{name: g, degradedRatio: 0.5}]}\n  expect:\n",
			[]string{"spec.abort.when[0].degradedRatio", "degradedWhen"}},
		{"guard latency with two percentiles", "  expect:\n", "  abort: {when: [{name: g, latency: {p50: 1s, p99: 2s}}]}\n  expect:\n",
			[]string{"spec.abort.when[0].latency", "exactly one of p50"}},
		{"guard on an Envoy that is not observed", "  expect:\n", "  abort: {when: [{name: g, upstream5xx: {from: details, to: reviews, cluster: cluster1, ratio: 0.5}}]}\n  expect:\n",
			[]string{"t.yaml:", "spec.abort.when[0].upstream5xx.from", "details in cluster1 is not observed"}},
		{"guard on Envoy 5xx at a ratio of 1", "  expect:\n", "  abort: {when: [{name: g, upstream5xx: {from: productpage, to: reviews, cluster: cluster1, ratio: 1}}]}\n  expect:\n",
			[]string{"spec.abort.when[0].upstream5xx.ratio", "from 0 to below 1"}},
		{"guard on Envoy 5xx without ratio", "  expect:\n", "  abort: {when: [{name: g, upstream5xx: {from: productpage, to: reviews, cluster: cluster1}}]}\n  expect:\n",
			[]string{"spec.abort.when[0].upstream5xx.ratio", "required"}},
		{"guard on Envoy 5xx and errors", "  expect:\n", "  abort: {when: [{name: g, errorRatio: 0.5, upstream5xx: {from: productpage, to: reviews, cluster: cluster1, ratio: 0.5}}]}\n  expect:\n",
			[]string{"spec.abort.when[0]", "only one condition", "upstream5xx"}},
		{"abort without guards", "  expect:\n", "  abort: {tail: 10s}\n  expect:\n",
			[]string{"spec.abort.when", "at least one guard"}},
		{"recovery after an unknown step", "failover: {service: reviews, from: cluster1, to: cluster2, within: 10s, after: down}", "recovery: {after: dwn, within: 10s}",
			[]string{"spec.expect[0].recovery.after", "unknown step", "did you mean"}},
		{"recovery without deadline", "failover: {service: reviews, from: cluster1, to: cluster2, within: 10s, after: down}", "recovery: {after: back}",
			[]string{"spec.expect[0].recovery.within", "required"}},
		{"availability out of range", "failover: {service: reviews, from: cluster1, to: cluster2, within: 10s, after: down}", "availability: {min: 90}",
			[]string{"spec.expect[0].availability.min", "from 0 to 1"}},
		{"retried 5xx without bounds", "failover: {service: reviews, from: cluster1, to: cluster2, within: 10s, after: down}", "upstream5xx: {from: productpage, to: reviews, cluster: cluster1, max: 2, retried: {}}",
			[]string{"t.yaml:", "spec.expect[0].upstream5xx.retried", "set max, min or both"}},
		{"share without bounds", "failover: {service: reviews, from: cluster1, to: cluster2, within: 10s, after: down}", "share: {service: reviews, cluster: cluster2}",
			[]string{"t.yaml:", "spec.expect[0].share", "set min, max or both"}},
		{"share over 100%", "failover: {service: reviews, from: cluster1, to: cluster2, within: 10s, after: down}", "share: {service: reviews, cluster: cluster2, max: 120%}",
			[]string{"spec.expect[0].share.max", "a share is 0% to 100%"}},
		{"share not a percentage", "failover: {service: reviews, from: cluster1, to: cluster2, within: 10s, after: down}", "share: {service: reviews, cluster: cluster2, min: 0.3}",
			[]string{"spec.expect[0].share.min", "not a percentage"}},
		{"share min above max", "failover: {service: reviews, from: cluster1, to: cluster2, within: 10s, after: down}", "share: {service: reviews, cluster: cluster2, min: 40%, max: 30%}",
			[]string{"spec.expect[0].share.min", "larger than max (40% > 30%)"}},
		{"share of an unknown cluster", "failover: {service: reviews, from: cluster1, to: cluster2, within: 10s, after: down}", "share: {service: reviews, cluster: cluster3, min: 10%}",
			[]string{"spec.expect[0].share.cluster", `unknown cluster "cluster3"`}},
		{"share without service", "failover: {service: reviews, from: cluster1, to: cluster2, within: 10s, after: down}", "share: {cluster: cluster2, min: 10%, from: down}",
			[]string{"spec.expect[0].share.service", "required"}},
		{"share window after an unknown step", "failover: {service: reviews, from: cluster1, to: cluster2, within: 10s, after: down}", "share: {service: reviews, cluster: cluster2, min: 10%, from: dwn + 5s}",
			[]string{"spec.expect[0].share.from", "unknown step"}},
		{"regression of a share", "failover: {service: reviews, from: cluster1, to: cluster2, within: 10s, after: down}",
			"share: {service: reviews, cluster: cluster2, min: 10%}\n    - name: r\n      regression: {figure: failover, maxIncrease: 10%}",
			[]string{"spec.expect[1].regression.figure", "is a share expectation"}},
		{"steady state without condition", "  expect:\n", "  steadyState: {over: 5s}\n  expect:\n",
			[]string{"spec.steadyState", "at least one condition"}},
		{"steady state over too short", "  expect:\n", "  steadyState: {over: 500ms, errorRatio: 0.01}\n  expect:\n",
			[]string{"spec.steadyState.over", "at least 1s"}},
		{"steady state ratio out of range", "  expect:\n", "  steadyState: {failedRatio: 2}\n  expect:\n",
			[]string{"spec.steadyState.failedRatio", "from 0 to 1"}},
		{"steady state longer than the time before the fault", "  expect:\n", "  steadyState: {over: 20s, errorRatio: 0.01}\n  expect:\n",
			[]string{"t.yaml:15:", "spec.steps[0].at", "before 20s of load"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := strings.Replace(seed, tc.old, tc.new, 1)
			if in == seed {
				t.Fatalf("test case does not change the input: %q not found", tc.old)
			}
			_, err := Parse("t.yaml", []byte(in))
			if err == nil {
				t.Fatal("no error")
			}
			var list ErrorList
			if !errors.As(err, &list) {
				t.Fatalf("error is %T, want ErrorList: %v", err, err)
			}
			for _, e := range list {
				if e.File != "t.yaml" || e.Line == 0 {
					t.Errorf("error without a location: %v", e)
				}
			}
			msg := list.Error()
			matched := false
			for _, line := range strings.Split(msg, "\n") {
				ok := true
				for _, w := range tc.want {
					ok = ok && strings.Contains(line, w)
				}
				matched = matched || ok
			}
			if !matched {
				t.Errorf("got:\n%s\nwant a line containing all of %q", msg, tc.want)
			}
		})
	}
}

func TestAllErrorsAtOnce(t *testing.T) {
	in, err := os.ReadFile("testdata/many-errors.yaml")
	if err != nil {
		t.Fatal(err)
	}
	_, err = Parse("testdata/many-errors.yaml", in)
	var list ErrorList
	if !errors.As(err, &list) {
		t.Fatalf("want ErrorList, got %v", err)
	}
	golden(t, "testdata/many-errors.golden", []byte(list.Error()+"\n"))
}

func TestCycle(t *testing.T) {
	in := seed + `    - name: a
      when: failover-detected after b
      wait: 5s
    - name: b
      after: a + 5s
      wait: 5s
`
	in = strings.Replace(in, "  expect:\n    - name: failover\n      failover: {service: reviews, from: cluster1, to: cluster2, within: 10s, after: down}\n", "", 1)
	_, err := Parse("t.yaml", []byte(in))
	if err == nil || !strings.Contains(err.Error(), "a → b → a") {
		t.Fatalf("want a cycle a → b → a, got %v", err)
	}
}

func TestNoStructHasConflictingFields(t *testing.T) {
	// An inlined struct must not hide or be hidden by a field of the same name
	// except where the outer field wins on purpose; list the types that inline.
	for _, typ := range []any{ScaleFault{}, DeletePodsFault{}, CountExpect{}, LatencyExpect{}} {
		_ = typ
	}
	typ := reflectTypeOf(Upstream5xxExpect{})
	if f := structFields(typ); len(f["from"]) != 2 || typ.Field(f["from"][0]).Name != "EnvoyPath" {
		t.Errorf("upstream5xx.from must be the workload (EnvoyPath.From), not the window start: %v", f["from"])
	}
}

// TestLocalityFailoverWithAggregate: the aggregate strategy takes
// localityFailover on a service without a failover service
// (scenarios/partition.yaml keeps productpage home that way), and refuses it
// beside trafficShift.
func TestLocalityFailoverWithAggregate(t *testing.T) {
	raw, err := os.ReadFile("../../scenarios/partition.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Parse("partition.yaml", raw); err != nil {
		t.Fatalf("localityFailover on productpage with the aggregate strategy: %v", err)
	}
	bad := strings.Replace(string(raw), "trafficShift: {failoverService: reviews-failover}",
		"trafficShift: {failoverService: reviews-failover}\n        outlierDetection: {consecutiveErrors: 1}\n        localityFailover: {failoverPriority: [topology.istio.io/cluster]}", 1)
	if bad == string(raw) {
		t.Fatal("the scenario has no trafficShift to add localityFailover to")
	}
	_, err = Parse("partition.yaml", []byte(bad))
	if err == nil || !strings.Contains(err.Error(), "localityFailover: cannot be combined with trafficShift") {
		t.Errorf("localityFailover beside trafficShift: %v", err)
	}
}

// TestAbortDefaults: a guard written with its condition alone gets a 5 s
// window, 10 answers before it can trip, and the drill 15 s of load after.
func TestAbortDefaults(t *testing.T) {
	in := strings.Replace(seed, "  expect:\n", "  abort: {when: [{name: too-many-errors, errorRatio: 0.5}, {name: slow, over: 2s, minRequests: 0, latency: {p99: 2s}}]}\n  expect:\n", 1)
	s, err := Parse("t.yaml", []byte(in))
	if err != nil {
		t.Fatal(err)
	}
	a := s.Spec.Abort
	if a == nil || len(a.When) != 2 {
		t.Fatalf("abort %+v, want two guards", a)
	}
	g, slow := a.When[0], a.When[1]
	if a.Tail.D() != 15*time.Second || g.Over.D() != 5*time.Second || g.MinRequests == nil || *g.MinRequests != 10 {
		t.Errorf("tail %s, over %s, minRequests %v; want 15s, 5s, 10", a.Tail, g.Over, g.MinRequests)
	}
	if slow.Over.D() != 2*time.Second || *slow.MinRequests != 0 || slow.Latency.P99.D() != 2*time.Second {
		t.Errorf("guard as written lost its values: %+v", slow)
	}
}
