package kind

import (
	"net/netip"
	"reflect"
	"strings"
	"testing"

	"sigs.k8s.io/kind/pkg/apis/config/v1alpha4"
	"sigs.k8s.io/yaml"

	"github.com/meshdrill/drill/pkg/scenario"
)

// TestClusterLayoutsDisjoint: no two clusters' ranges overlap, and none
// overlaps Docker's default address pools (172.16.0.0/12, 192.168.0.0/16)
// where the kind network lives, or kind's own defaults.
func TestClusterLayoutsDisjoint(t *testing.T) {
	reserved := []netip.Prefix{
		netip.MustParsePrefix("172.16.0.0/12"),
		netip.MustParsePrefix("192.168.0.0/16"),
		netip.MustParsePrefix("10.244.0.0/16"), // kind's default pod subnet
		netip.MustParsePrefix("10.96.0.0/16"),  // kind's default service subnet
	}
	var all []netip.Prefix
	for i := 0; i < MaxClusters; i++ {
		l, err := ClusterLayout(i)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, l.PodSubnet, l.ServiceSubnet)
	}
	all = append(all, reserved...)
	for i := range all {
		for j := i + 1; j < len(all); j++ {
			if all[i].Overlaps(all[j]) {
				t.Errorf("%s overlaps %s", all[i], all[j])
			}
		}
	}
	if _, err := ClusterLayout(MaxClusters); err == nil || !strings.Contains(err.Error(), "at most 20 clusters") {
		t.Errorf("ClusterLayout(%d) = %v", MaxClusters, err)
	}
}

func TestLocalityLabels(t *testing.T) {
	tests := []struct {
		in   string
		want map[string]string
		err  string
	}{
		{"", nil, ""},
		{"cluster1", map[string]string{"topology.kubernetes.io/region": "cluster1"}, ""},
		{"eu-west/zone-a", map[string]string{"topology.kubernetes.io/region": "eu-west", "topology.kubernetes.io/zone": "zone-a"}, ""},
		{"eu-west/zone-a/rack1", map[string]string{"topology.kubernetes.io/region": "eu-west", "topology.kubernetes.io/zone": "zone-a", "topology.istio.io/subzone": "rack1"}, ""},
		{"a/b/c/d", nil, "write region[/zone[/subzone]]"},
		{"a//c", nil, "empty part"},
	}
	for _, tt := range tests {
		got, err := LocalityLabels(tt.in)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("LocalityLabels(%q) = %v, want error %q", tt.in, err, tt.err)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("LocalityLabels(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
}

// TestConfigNotMutatedByKind: kind fills in defaults on the config Create is
// given; drill hands it a copy, so its own config stays as built.
func TestConfigNotMutatedByKind(t *testing.T) {
	cfg, err := Config(scenario.Cluster{Name: "cluster1", Locality: "eu/a"}, 0, HostSettings{})
	if err != nil {
		t.Fatal(err)
	}
	before, _ := ConfigYAML(cfg)
	cp := copyConfig(cfg)
	v1alpha4.SetDefaultsCluster(cp) // what CreateWithV1Alpha4Config does
	after, _ := ConfigYAML(cfg)
	if string(before) != string(after) {
		t.Fatalf("the original config changed:\n%s\n---\n%s", before, after)
	}
	if cp.Nodes[0].Image == "" || cp.Networking.APIServerAddress == "" {
		t.Fatalf("kind's defaults were not applied to the copy: %+v", cp.Networking)
	}
	if !reflect.DeepEqual(cp.Nodes[0].Labels, cfg.Nodes[0].Labels) || cp.Networking.PodSubnet != "10.10.0.0/16" {
		t.Fatalf("the copy lost drill's settings: %+v", cp)
	}
}

// TestConfigCgroupV1: on a cgroup v1 host every cluster's kubelet is told not to
// refuse it; on cgroup v2 the configuration has no patch at all.
func TestConfigCgroupV1(t *testing.T) {
	c := scenario.Cluster{Name: "cluster1"}
	v2, err := Config(c, 0, HostSettings{})
	if err != nil {
		t.Fatal(err)
	}
	if len(v2.KubeadmConfigPatches) != 0 {
		t.Fatalf("cgroup v2 host: patches %q, want none", v2.KubeadmConfigPatches)
	}
	v1, err := Config(c, 0, HostSettings{CgroupV1: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(v1.KubeadmConfigPatches) != 1 {
		t.Fatalf("cgroup v1 host: %d patches, want 1", len(v1.KubeadmConfigPatches))
	}
	var patch struct {
		Kind         string `json:"kind"`
		FailCgroupV1 *bool  `json:"failCgroupV1"`
	}
	if err := yaml.UnmarshalStrict([]byte(v1.KubeadmConfigPatches[0]), &patch); err != nil {
		t.Fatalf("the patch is not a KubeletConfiguration fragment: %v", err)
	}
	if patch.Kind != "KubeletConfiguration" || patch.FailCgroupV1 == nil || *patch.FailCgroupV1 {
		t.Fatalf("patch %+v, want kind KubeletConfiguration with failCgroupV1: false", patch)
	}
	// The patch survives the round trip through the YAML users can run by hand.
	y, err := ConfigYAML(v1)
	if err != nil || !strings.Contains(string(y), "failCgroupV1: false") {
		t.Fatalf("kind config YAML lost the patch (%v):\n%s", err, y)
	}
}
