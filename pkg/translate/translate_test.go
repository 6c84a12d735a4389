package translate

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	goldenfile "github.com/meshdrill/drill/internal/golden"

	networking "istio.io/api/networking/v1alpha3"
	networkingv1 "istio.io/client-go/pkg/apis/networking/v1"
	networkingv1alpha3 "istio.io/client-go/pkg/apis/networking/v1alpha3"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/meshdrill/drill/pkg/scenario"
)

// TestSeed checks what the seed's story depends on, object by object: the four
// kinds of object in cluster1, the aggregate's members in priority order, the
// shift to the failover hostname, outlier detection that can eject every endpoint.
func TestSeed(t *testing.T) {
	res, err := Translate(Input{Scenario: loadScenario(t, "testdata/seed.yaml"), Remotes: kindRemotes("cluster1", "cluster2")})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Warnings) != 0 {
		t.Errorf("warnings for the seed: %v", res.Warnings)
	}
	c1 := res.Cluster("cluster1")
	if len(c1.ServiceEntries) == 0 || len(c1.DestinationRules) == 0 || len(c1.EnvoyFilters) == 0 || len(c1.VirtualServices) == 0 {
		t.Fatalf("cluster1 has %d ServiceEntries, %d DestinationRules, %d EnvoyFilters, %d VirtualServices; the seed needs each kind",
			len(c1.ServiceEntries), len(c1.DestinationRules), len(c1.EnvoyFilters), len(c1.VirtualServices))
	}

	hosts := map[string]*networkingv1.ServiceEntry{}
	for _, se := range c1.ServiceEntries {
		hosts[se.Spec.Hosts[0]] = se
	}
	if hosts["reviews-failover.default.global"] == nil {
		t.Error("no ServiceEntry for the failover hostname")
	}
	remote := hosts["reviews.default.svc.cluster2.global"]
	if remote == nil || len(remote.Spec.Endpoints) != 1 || remote.Spec.Endpoints[0].Address != "172.18.0.12" ||
		remote.Spec.Endpoints[0].Ports["http-9080"] != DefaultGatewayPort || remote.Spec.Resolution != networking.ServiceEntry_STATIC {
		t.Errorf("remote ServiceEntry does not reach cluster2's gateway at 172.18.0.12:15443: %v", remote)
	}

	ef := c1.EnvoyFilters[0]
	if ef.Namespace != DefaultRootNamespace {
		t.Errorf("EnvoyFilter in %s, want the root namespace %s", ef.Namespace, DefaultRootNamespace)
	}
	patches := ef.Spec.ConfigPatches
	if len(patches) != 2 || patches[0].Patch.Operation != networking.EnvoyFilter_Patch_REMOVE || patches[1].Patch.Operation != networking.EnvoyFilter_Patch_ADD {
		t.Fatalf("EnvoyFilter patches: %v", patches)
	}
	for _, p := range patches {
		if p.ApplyTo != networking.EnvoyFilter_CLUSTER || p.Match.Context != networking.EnvoyFilter_SIDECAR_OUTBOUND ||
			p.Match.GetCluster().GetName() != "outbound|9080||reviews-failover.default.global" {
			t.Errorf("patch does not target the failover hostname's outbound cluster: %v", p)
		}
	}
	cluster := patches[1].Patch.Value.AsMap()
	ct := cluster["cluster_type"].(map[string]any)
	tc := ct["typed_config"].(map[string]any)
	if cluster["lb_policy"] != "CLUSTER_PROVIDED" || ct["name"] != "envoy.clusters.aggregate" ||
		tc["@type"] != "type.googleapis.com/envoy.extensions.clusters.aggregate.v3.ClusterConfig" {
		t.Errorf("not an aggregate cluster: %v", cluster)
	}
	wantMembers := []any{"outbound|9080|cluster1|reviews.default.svc.cluster.local", "outbound|9080||reviews.default.svc.cluster2.global"}
	if !slices.Equal(tc["clusters"].([]any), wantMembers) {
		t.Errorf("aggregate members %v, want %v", tc["clusters"], wantMembers)
	}
	for i, u := range c1.Upstreams {
		if u.EnvoyCluster != wantMembers[i] || u.Priority != i {
			t.Errorf("upstream %d: %+v, want %s at priority %d", i, u, wantMembers[i], i)
		}
	}

	vs := c1.VirtualServices[0]
	if vs.Spec.Hosts[0] != "reviews.default.svc.cluster.local" || vs.Spec.Http[0].Route[0].Destination.Host != "reviews-failover.default.global" {
		t.Errorf("VirtualService does not shift reviews to the failover hostname: %v", &vs.Spec)
	}
	if vs.Spec.Http[0].Retries != nil {
		t.Errorf("the seed sets no retries, got %v", vs.Spec.Http[0].Retries)
	}

	for _, c := range res.Clusters {
		for _, dr := range c.DestinationRules {
			od := dr.Spec.GetTrafficPolicy().GetOutlierDetection()
			if od == nil {
				t.Errorf("%s: %s has no outlier detection; mgmt-reviews-outlier applies to every cluster", c.Cluster, dr.Spec.Host)
				continue
			}
			if od.MaxEjectionPercent != 100 || od.GetConsecutive_5XxErrors().GetValue() != 1 || od.BaseEjectionTime.AsDuration().Seconds() != 120 {
				t.Errorf("%s: %s outlier detection %v, want 1 error, 120s, 100%%", c.Cluster, dr.Spec.Host, od)
			}
		}
	}
	if c2 := res.Cluster("cluster2"); len(c2.EnvoyFilters)+len(c2.VirtualServices)+len(c2.ServiceEntries) != 0 || len(c2.DestinationRules) != 1 {
		t.Errorf("cluster2 is not in the failover service's meshes; it needs only reviews' DestinationRule, got %d objects", c2.Len())
	}
}

// TestExplicitMaxEjectionPercent keeps the user's value instead of drill's 100.
func TestExplicitMaxEjectionPercent(t *testing.T) {
	res, err := Translate(Input{Scenario: loadScenario(t, "testdata/max-ejection.yaml")})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range res.Clusters {
		for _, dr := range c.DestinationRules {
			od := dr.Spec.GetTrafficPolicy().GetOutlierDetection()
			if od.GetMaxEjectionPercent() != 50 || od.GetMinHealthPercent() != 20 || od.GetConsecutiveGatewayErrors().GetValue() != 2 {
				t.Errorf("%s: %s: %v, want maxEjectionPercent 50, minHealthPercent 20, 2 gateway errors", c.Cluster, dr.Spec.Host, od)
			}
		}
	}
}

// TestDeterministic translates each case several times, from freshly loaded
// scenarios: the bytes must not change.
func TestDeterministic(t *testing.T) {
	for _, tc := range goldenCases {
		var first []byte
		for i := 0; i < 5; i++ {
			res, err := Translate(Input{Scenario: loadScenario(t, tc.path()), Remotes: tc.remotes}, tc.opts...)
			var b bytes.Buffer
			if err != nil {
				b.WriteString(err.Error())
			} else {
				for _, c := range res.Clusters {
					if err := WriteYAML(&b, c.Objects()); err != nil {
						t.Fatal(err)
					}
				}
			}
			if i == 0 {
				first = b.Bytes()
			} else if !bytes.Equal(first, b.Bytes()) {
				t.Fatalf("%s: translation %d differs from the first:\n%s", tc.name, i+1, goldenfile.FirstDiff(string(first), b.String()))
			}
		}
	}
}

// TestOwnership checks that the engine can find exactly what drill applied: every
// object matches the scenario's selector, says which policies made it, and has a
// valid name of at most 63 characters.
func TestOwnership(t *testing.T) {
	for _, tc := range goldenCases {
		s := loadScenario(t, tc.path())
		res, err := Translate(Input{Scenario: s, Remotes: tc.remotes}, tc.opts...)
		if err != nil {
			continue
		}
		sel, err := labels.Parse(Selector(s.Metadata.Name))
		if err != nil {
			t.Fatal(err)
		}
		other, _ := labels.Parse(Selector("another-scenario"))
		for _, c := range res.Clusters {
			for _, o := range c.Objects() {
				if !sel.Matches(labels.Set(o.GetLabels())) {
					t.Errorf("%s: %s: labels %v do not match %s", tc.name, describe(o), o.GetLabels(), sel)
				}
				if other.Matches(labels.Set(o.GetLabels())) {
					t.Errorf("%s: %s matches another scenario's selector", tc.name, describe(o))
				}
				if o.GetAnnotations()[AnnotationPolicies] == "" {
					t.Errorf("%s: %s does not say which policies made it", tc.name, describe(o))
				}
				if errs := validation.IsDNS1123Label(o.GetName()); len(errs) > 0 {
					t.Errorf("%s: %s: name: %v", tc.name, describe(o), errs)
				}
			}
		}
	}
}

func TestObjectName(t *testing.T) {
	if got := objectName("reviews", "cluster2"); got != "drill-reviews-cluster2" {
		t.Errorf("objectName = %q", got)
	}
	long1 := objectName(strings.Repeat("a", 40), strings.Repeat("b", 40))
	long2 := objectName(strings.Repeat("a", 40), strings.Repeat("c", 40))
	for _, n := range []string{long1, long2} {
		if len(n) > maxNameLen || len(validation.IsDNS1123Label(n)) > 0 {
			t.Errorf("%q is not a valid name of at most %d characters", n, maxNameLen)
		}
	}
	if long1 == long2 {
		t.Errorf("two long names collide after truncation: %q", long1)
	}
	if again := objectName(strings.Repeat("a", 40), strings.Repeat("b", 40)); again != long1 {
		t.Errorf("truncated name not stable: %q then %q", long1, again)
	}
	// A cut that lands on a '-' must not leave "--" or a trailing '-'.
	cut := objectName(strings.Repeat("x", 45), strings.Repeat("y", 30))
	if strings.Contains(cut, "--") || len(validation.IsDNS1123Label(cut)) > 0 {
		t.Errorf("bad cut name %q", cut)
	}
}

func TestParseRemote(t *testing.T) {
	tests := []struct {
		in      string
		cluster string
		ep      Endpoint
		err     string
	}{
		{in: "cluster2=172.18.0.12:15443", cluster: "cluster2", ep: Endpoint{Address: "172.18.0.12", Port: 15443}},
		{in: "cluster2=172.18.0.12", cluster: "cluster2", ep: Endpoint{Address: "172.18.0.12"}},
		{in: " cluster2 = gw.example.com:443 ", cluster: "cluster2", ep: Endpoint{Address: "gw.example.com", Port: 443}},
		{in: "c3=[fd00::12]:15443", cluster: "c3", ep: Endpoint{Address: "fd00::12", Port: 15443}},
		{in: "c3=[fd00::12]", cluster: "c3", ep: Endpoint{Address: "fd00::12"}},
		{in: "c3=fd00::12", cluster: "c3", ep: Endpoint{Address: "fd00::12"}},
		{in: "172.18.0.12:15443", err: "CLUSTER=ADDRESS"},
		{in: "cluster2=", err: "CLUSTER=ADDRESS"},
		{in: "=1.2.3.4", err: "CLUSTER=ADDRESS"},
		{in: "Cluster_2=1.2.3.4", err: "not a cluster name"},
		{in: "cluster2=1.2.3.4:0", err: "not a port"},
		{in: "cluster2=1.2.3.4:99999", err: "not a port"},
		{in: "cluster2=1.2.3.4:http", err: "not a port"},
		{in: "cluster2=not an address", err: "neither an IP address nor a DNS name"},
	}
	for _, tc := range tests {
		cluster, ep, err := ParseRemote(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ParseRemote(%q) error %v, want one containing %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || cluster != tc.cluster || ep != tc.ep {
			t.Errorf("ParseRemote(%q) = %q, %+v, %v; want %q, %+v", tc.in, cluster, ep, err, tc.cluster, tc.ep)
		}
	}
}

func FuzzParseRemote(f *testing.F) {
	for _, s := range []string{"cluster2=172.18.0.12:15443", "c=[::1]:1", "c=gw.example.com", "=", "a=b:c:d", "x=[", "x=]:1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		cluster, ep, err := ParseRemote(s)
		if err != nil {
			return
		}
		if len(validation.IsDNS1123Label(cluster)) > 0 {
			t.Fatalf("accepted cluster name %q", cluster)
		}
		if err := ep.validate(); err != nil {
			t.Fatalf("accepted an invalid endpoint %+v: %v", ep, err)
		}
		// What was accepted reads back the same from its own printed form.
		c2, ep2, err := ParseRemote(cluster + "=" + ep.String())
		if err != nil || c2 != cluster || ep2.Address != ep.Address || ep2.port() != ep.port() {
			t.Fatalf("%q: reparsing %q gave %q %+v %v", s, cluster+"="+ep.String(), c2, ep2, err)
		}
	})
}

func TestRemotesRejected(t *testing.T) {
	s := loadScenario(t, "testdata/seed.yaml")
	tests := []struct {
		remotes map[string]Endpoint
		want    string
	}{
		{map[string]Endpoint{"cluster9": {Address: "1.2.3.4"}}, `remote address for "cluster9": testdata/seed.yaml has no such cluster (it has cluster1, cluster2)`},
		{map[string]Endpoint{"cluster2": {}}, "remote address for cluster2: address is empty"},
		{map[string]Endpoint{"cluster2": {Address: "1.2.3.4", Port: 70000}}, "not a port"},
		{map[string]Endpoint{"cluster2": {Address: "1.2.3.4", Network: "Net_2"}}, "network"},
	}
	for _, tc := range tests {
		_, err := Translate(Input{Scenario: s, Remotes: tc.remotes})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("remotes %v: error %v, want one containing %q", tc.remotes, err, tc.want)
		}
	}
}

func TestOptionsRejected(t *testing.T) {
	s := loadScenario(t, "testdata/apply-step.yaml")
	tests := []struct {
		opts []Option
		want string
	}{
		{[]Option{WithStep("nope")}, `has no step "nope"`},
		{[]Option{WithRootNamespace("Istio System")}, "root namespace"},
	}
	for _, tc := range tests {
		if _, err := Translate(Input{Scenario: s}, tc.opts...); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("error %v, want one containing %q", err, tc.want)
		}
	}
	seed := loadScenario(t, "testdata/seed.yaml")
	if _, err := Translate(Input{Scenario: seed}, WithStep("reviews-down")); err == nil || !strings.Contains(err.Error(), "changes no mesh policy") {
		t.Errorf("a step without apply: error %v", err)
	}
	if _, err := Translate(Input{}); err == nil {
		t.Error("no scenario: no error")
	}
}

// TestErrorsLocateProblems checks the error of a backing service in a cluster that
// does not run it: one scenario.FieldError, at the file, line and field.
func TestErrorsLocateProblems(t *testing.T) {
	_, err := Translate(Input{Scenario: loadScenario(t, "testdata/error-backing-not-running.yaml")})
	var list scenario.ErrorList
	if !errors.As(err, &list) || len(list) != 1 {
		t.Fatalf("want one located error, got %v", err)
	}
	e := list[0]
	if e.File != "testdata/error-backing-not-running.yaml" || e.Line != 26 ||
		e.Field != "spec.mesh.failoverServices[0].backingServices[1].cluster" || !strings.Contains(e.Msg, "reviews does not run in cluster2") {
		t.Errorf("error %+v", e)
	}
}

// TestScenarios translates the scenarios drill ships, offline and with addresses.
func TestScenarios(t *testing.T) {
	files, err := filepath.Glob("../../scenarios/*.yaml")
	conformance, _ := filepath.Glob("../../scenarios/conformance/*.yaml")
	files = append(files, conformance...)
	if err != nil || len(files) == 0 {
		t.Fatalf("no scenarios: %v", err)
	}
	for _, f := range files {
		s := loadScenario(t, f)
		remotes := map[string]Endpoint{}
		for _, c := range s.Spec.Clusters {
			remotes[c.Name] = Endpoint{Address: "192.0.2.1"}
		}
		for _, r := range []map[string]Endpoint{nil, remotes} {
			res, err := Translate(Input{Scenario: s, Remotes: r})
			if err != nil {
				t.Errorf("%s: %v", f, err)
				continue
			}
			n := 0
			for _, c := range res.Clusters {
				n += c.Len()
			}
			if n == 0 {
				t.Errorf("%s: no objects", f)
			}
		}
	}
}

func TestResourceAndUnstructured(t *testing.T) {
	objs := []Object{
		&networkingv1.ServiceEntry{TypeMeta: typeServiceEntry},
		&networkingv1.DestinationRule{TypeMeta: typeDestinationRule},
		&networkingv1.VirtualService{TypeMeta: typeVirtualService},
		&networkingv1alpha3.EnvoyFilter{TypeMeta: typeEnvoyFilter},
	}
	want := []string{
		"networking.istio.io/v1, Resource=serviceentries",
		"networking.istio.io/v1, Resource=destinationrules",
		"networking.istio.io/v1, Resource=virtualservices",
		"networking.istio.io/v1alpha3, Resource=envoyfilters",
	}
	for i, o := range objs {
		o.SetName("drill-x")
		o.SetNamespace("default")
		if got := Resource(o).String(); got != want[i] {
			t.Errorf("Resource(%T) = %s, want %s", o, got, want[i])
		}
		u, err := ToUnstructured(o)
		if err != nil {
			t.Fatal(err)
		}
		if u.GroupVersionKind() != o.GetObjectKind().GroupVersionKind() || u.GetName() != "drill-x" || u.GetNamespace() != "default" {
			t.Errorf("unstructured %v", u.Object)
		}
		if _, ok := u.Object["status"]; ok {
			t.Error("unstructured carries a status; server-side apply of a CR would try to own it")
		}
		if len(u.GetManagedFields()) != 0 || u.GetCreationTimestamp().Unix() > 0 {
			t.Error("unstructured carries server-set metadata")
		}
	}
}

// FuzzTranslate feeds arbitrary scenario files through the loader and, when they
// load, the translator: it must return objects or located errors, never panic, and
// what it returns must render.
func FuzzTranslate(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.yaml")
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := scenario.Parse("fuzz.yaml", data)
		if err != nil {
			return
		}
		res, err := Translate(Input{Scenario: s})
		if err != nil {
			var list scenario.ErrorList
			if !errors.As(err, &list) {
				t.Fatalf("unlocated error %T: %v", err, err)
			}
			return
		}
		for _, c := range res.Clusters {
			if _, err := YAML(c.Objects()); err != nil {
				t.Fatal(err)
			}
		}
	})
}

// TestAggregateWithLocalityFailover: with the aggregate strategy, a service
// that is not shifted to a failover service (productpage, for the ingress
// gateway) can fail over by locality within its own host; the shifted one
// (reviews) keeps its plain outlier detection.
func TestAggregateWithLocalityFailover(t *testing.T) {
	res, err := Translate(Input{Scenario: loadScenario(t, "../../scenarios/partition.yaml")})
	if err != nil {
		t.Fatal(err)
	}
	seen := 0
	for _, c := range res.Clusters {
		for _, dr := range c.DestinationRules {
			lb := dr.Spec.GetTrafficPolicy().GetLoadBalancer().GetLocalityLbSetting()
			switch dr.Spec.Host {
			case "productpage.default.svc.cluster.local":
				seen++
				if !lb.GetEnabled().GetValue() || len(lb.GetFailoverPriority()) != 1 || lb.GetFailoverPriority()[0] != "topology.istio.io/cluster" {
					t.Errorf("%s: productpage's locality setting %v, want enabled with failoverPriority [topology.istio.io/cluster]", c.Cluster, lb)
				}
				if dr.Spec.GetTrafficPolicy().GetOutlierDetection() == nil {
					t.Errorf("%s: productpage without outlier detection: Istio would not fail over by locality", c.Cluster)
				}
			case "reviews.default.svc.cluster.local":
				if lb != nil {
					t.Errorf("%s: reviews got a locality setting %v", c.Cluster, lb)
				}
			}
		}
	}
	if seen == 0 {
		t.Error("no DestinationRule for productpage")
	}
}
