package fault

import (
	"slices"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes/fake"

	"github.com/meshdrill/drill/pkg/scenario"
)

func TestFromScenario(t *testing.T) {
	n := func(i int) *int { return &i }
	grace := scenario.Duration(1500 * time.Millisecond)
	target := Target{Name: "cluster1", Context: "cluster1", Client: fake.NewClientset()}
	tests := []struct {
		name     string
		fault    scenario.Fault
		kind     string
		describe string
		err      string
	}{
		{
			name:     "seed: reviews to zero",
			fault:    scenario.Fault{Scale: &scenario.ScaleFault{WorkloadRef: scenario.WorkloadRef{Cluster: "cluster1", Workload: "reviews"}, Replicas: n(0)}},
			kind:     KindScale,
			describe: "scale app=reviews in namespace default of cluster cluster1 to 0 replicas",
		},
		{
			name: "scale one deployment in its own namespace",
			fault: scenario.Fault{Scale: &scenario.ScaleFault{
				WorkloadRef: scenario.WorkloadRef{Cluster: "cluster1", Namespace: "shop", Deployment: "reviews-v2"}, Replicas: n(3)}},
			kind:     KindScale,
			describe: "scale deployment/reviews-v2 in namespace shop of cluster cluster1 to 3 replicas",
		},
		{
			name:     "delete half the pods by selector",
			fault:    scenario.Fault{DeletePods: &scenario.DeletePodsFault{WorkloadRef: scenario.WorkloadRef{Selector: "app=reviews,version=v2"}, Percent: n(50), GracePeriod: &grace}},
			kind:     KindDeletePods,
			describe: "delete 50% of the pods of selector app=reviews,version=v2 in namespace default of cluster cluster1 with grace period 1.5s",
		},
		{
			name:     "delete two pods",
			fault:    scenario.Fault{DeletePods: &scenario.DeletePodsFault{WorkloadRef: scenario.WorkloadRef{Workload: "ratings"}, Count: n(2)}},
			kind:     KindDeletePods,
			describe: "delete 2 pods of app=ratings in namespace default of cluster cluster1",
		},
		{name: "no kind", fault: scenario.Fault{}, err: "sets no kind"},
		{name: "scale without replicas", fault: scenario.Fault{Scale: &scenario.ScaleFault{WorkloadRef: scenario.WorkloadRef{Workload: "reviews"}}}, err: "replicas is not set"},
		{name: "negative replicas", fault: scenario.Fault{Scale: &scenario.ScaleFault{WorkloadRef: scenario.WorkloadRef{Workload: "reviews"}, Replicas: n(-1)}}, err: "must not be negative"},
		{name: "two selections", fault: scenario.Fault{Scale: &scenario.ScaleFault{WorkloadRef: scenario.WorkloadRef{Workload: "reviews", Deployment: "reviews-v1"}, Replicas: n(0)}}, err: "exactly one"},
		{name: "bad selector", fault: scenario.Fault{DeletePods: &scenario.DeletePodsFault{WorkloadRef: scenario.WorkloadRef{Selector: "app in (("}}}, err: "label selector"},
		{name: "count and percent", fault: scenario.Fault{DeletePods: &scenario.DeletePodsFault{WorkloadRef: scenario.WorkloadRef{Workload: "reviews"}, Count: n(1), Percent: n(10)}}, err: "not both"},
		{name: "percent out of range", fault: scenario.Fault{DeletePods: &scenario.DeletePodsFault{WorkloadRef: scenario.WorkloadRef{Workload: "reviews"}, Percent: n(101)}}, err: "1-100"},
		{name: "zero count", fault: scenario.Fault{DeletePods: &scenario.DeletePodsFault{WorkloadRef: scenario.WorkloadRef{Workload: "reviews"}, Count: n(0)}}, err: "at least 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := FromScenario(tt.fault, "default", target)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("FromScenario = %v, want an error containing %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if f.Kind() != tt.kind || f.Describe() != tt.describe {
				t.Errorf("got %s %q, want %s %q", f.Kind(), f.Describe(), tt.kind, tt.describe)
			}
			if f.Target().Name != "cluster1" {
				t.Errorf("target %q", f.Target().Name)
			}
		})
	}
}

func TestScenarioCluster(t *testing.T) {
	z := 0
	if got := ScenarioCluster(scenario.Fault{Scale: &scenario.ScaleFault{WorkloadRef: scenario.WorkloadRef{Cluster: "c2"}, Replicas: &z}}); got != "c2" {
		t.Errorf("scale: %q", got)
	}
	if got := ScenarioCluster(scenario.Fault{DeletePods: &scenario.DeletePodsFault{WorkloadRef: scenario.WorkloadRef{Cluster: "c3"}}}); got != "c3" {
		t.Errorf("deletePods: %q", got)
	}
}

func TestDeletePodsHowMany(t *testing.T) {
	tests := []struct {
		opts []DeleteOption
		pods int
		want int
	}{
		{nil, 3, 3},
		{[]DeleteOption{Count(2)}, 3, 2},
		{[]DeleteOption{Count(5)}, 3, 3},
		{[]DeleteOption{Percent(50)}, 3, 2},
		{[]DeleteOption{Percent(10)}, 3, 1},
		{[]DeleteOption{Percent(100)}, 4, 4},
		{[]DeleteOption{Percent(25)}, 4, 1},
		{[]DeleteOption{Percent(1)}, 0, 0},
	}
	for _, tt := range tests {
		d, err := NewDeletePods(Target{Name: "c", Client: fake.NewClientset()}, ByApp("default", "reviews"), tt.opts...)
		if err != nil {
			t.Fatal(err)
		}
		if got := d.howMany(tt.pods); got != tt.want {
			t.Errorf("%s of %d pods: %d, want %d", d.Describe(), tt.pods, got, tt.want)
		}
	}
}

func TestPartitionFromScenario(t *testing.T) {
	f := scenario.Fault{Partition: &scenario.PartitionFault{Cluster: "cluster1", OneWay: true}}
	if got := ScenarioPeers(f, []string{"cluster1", "cluster2", "cluster3"}); !slices.Equal(got, []string{"cluster2", "cluster3"}) {
		t.Errorf("default peers %v, want every other cluster", got)
	}
	if ScenarioCluster(f) != "cluster1" {
		t.Errorf("cluster %q", ScenarioCluster(f))
	}
	a := netTarget("cluster1", "127.77.0.0/16", hostFilter)
	b := netTarget("cluster2", "127.78.0.0/16", hostFilter)
	got, err := FromScenario(f, "default", a, b)
	if err != nil {
		t.Fatal(err)
	}
	p, ok := got.(*Partition)
	if !ok || p.Kind() != KindPartition || !p.oneWay || len(p.rules) != 1 || !strings.Contains(p.Describe(), "one way") {
		t.Errorf("built %T %+v", got, got)
	}
	if _, err := FromScenario(f, "default", a); err == nil {
		t.Error("a partition with no peer was built")
	}
}
