package translate

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	goldenfile "github.com/meshdrill/drill/internal/golden"

	"github.com/meshdrill/drill/pkg/scenario"
)

// goldenCase is one scenario in testdata/ translated with some remote addresses
// and options. Its expected output is testdata/golden/<name>/: <cluster>.yaml per
// cluster, warnings.txt and upstreams.txt when there are any, or error.txt.
type goldenCase struct {
	name    string
	file    string // default: <name>.yaml
	remotes map[string]Endpoint
	opts    []Option
}

// kindRemotes gives clusters east-west gateway addresses as kind clusters on one
// docker network would have them: clusterN at 172.18.0.1N.
func kindRemotes(clusters ...string) map[string]Endpoint {
	m := map[string]Endpoint{}
	for _, c := range clusters {
		m[c] = Endpoint{Address: "172.18.0.1" + strings.TrimPrefix(c, "cluster")}
	}
	return m
}

var goldenCases = []goldenCase{
	// The seed drill, as on kind: cluster2's east-west gateway is known.
	{name: "seed", remotes: kindRemotes("cluster1", "cluster2")},
	// The seed drill offline (drill translate without --remote): placeholders.
	{name: "seed-offline", file: "seed.yaml"},
	{name: "locality"},
	{name: "three-cluster-chain", remotes: kindRemotes("cluster1", "cluster2", "cluster3")},
	{name: "no-outlier", remotes: kindRemotes("cluster1", "cluster2")},
	{name: "max-ejection", remotes: map[string]Endpoint{"west": {Address: "10.1.2.3", Port: 31443}}},
	{name: "several-failover-services", remotes: map[string]Endpoint{
		"cluster1": {Address: "172.18.0.11"},
		"cluster2": {Address: "172.18.0.12", Network: "network-cluster2"},
		"cluster3": {Address: "eastwest.cluster3.example.com", Port: 443},
	}},
	{name: "locality-regions"},
	{name: "apply-step", remotes: kindRemotes("cluster1", "cluster2", "cluster3"), opts: []Option{WithStep("add-cluster3")}},
	{name: "seed-root-namespace", file: "seed.yaml", remotes: kindRemotes("cluster1", "cluster2"), opts: []Option{WithRootNamespace("istio-config")}},
	{name: "error-apply-step", remotes: kindRemotes("cluster1", "cluster2", "cluster3"), opts: []Option{WithStep("add-cluster3")}},
	{name: "error-backing-not-running", remotes: kindRemotes("cluster1", "cluster2", "cluster3")},
	{name: "error-policies", remotes: kindRemotes("cluster1", "cluster2")},
	{name: "error-locality-failover-services"},
	{name: "error-name-clash", remotes: kindRemotes("cluster1", "cluster2")},
}

func (c goldenCase) path() string {
	if c.file != "" {
		return filepath.Join("testdata", c.file)
	}
	return filepath.Join("testdata", c.name+".yaml")
}

func loadScenario(t testing.TB, path string) *scenario.Scenario {
	t.Helper()
	s, err := scenario.Load(path)
	if err != nil {
		t.Fatalf("load %s: %v", path, err)
	}
	return s
}

// renderGolden turns a translation into the files of its golden directory.
func renderGolden(t *testing.T, res *Result, err error) map[string]string {
	t.Helper()
	files := map[string]string{}
	if err != nil {
		files["error.txt"] = err.Error() + "\n"
		return files
	}
	for _, c := range res.Clusters {
		var b bytes.Buffer
		fmt.Fprintf(&b, "# cluster: %s\n", c.Cluster)
		if err := WriteYAML(&b, c.Objects()); err != nil {
			t.Fatalf("render %s: %v", c.Cluster, err)
		}
		files[c.Cluster+".yaml"] = b.String()
	}
	if len(res.Warnings) > 0 {
		var b strings.Builder
		for _, w := range res.Warnings {
			b.WriteString(w.Error() + "\n")
		}
		files["warnings.txt"] = b.String()
	}
	var ups strings.Builder
	for _, c := range res.Clusters {
		for _, u := range c.Upstreams {
			fmt.Fprintf(&ups, "%s: %s (%s) [%d] %s.%s in %s via %s\n",
				c.Cluster, u.FailoverService, u.Hostname, u.Priority, u.Service, u.Namespace, u.Cluster, u.EnvoyCluster)
		}
	}
	if ups.Len() > 0 {
		files["upstreams.txt"] = ups.String()
	}
	return files
}

func TestGolden(t *testing.T) {
	for _, tc := range goldenCases {
		t.Run(tc.name, func(t *testing.T) {
			s := loadScenario(t, tc.path())
			res, err := Translate(Input{Scenario: s, Remotes: tc.remotes}, tc.opts...)
			if err != nil {
				var list scenario.ErrorList
				if !errors.As(err, &list) {
					t.Fatalf("error is %T, want a scenario.ErrorList locating each problem: %v", err, err)
				}
			}
			got := renderGolden(t, res, err)
			dir := filepath.Join("testdata", "golden", tc.name)
			if goldenfile.Update() {
				if err := os.RemoveAll(dir); err != nil {
					t.Fatal(err)
				}
				if err := os.MkdirAll(dir, 0o755); err != nil {
					t.Fatal(err)
				}
				for name, content := range got {
					if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
						t.Fatal(err)
					}
				}
				return
			}
			entries, err := os.ReadDir(dir)
			if err != nil {
				t.Fatalf("%v (run go test -update to create the golden files)", err)
			}
			want := map[string]string{}
			for _, e := range entries {
				b, err := os.ReadFile(filepath.Join(dir, e.Name()))
				if err != nil {
					t.Fatal(err)
				}
				want[e.Name()] = string(b)
			}
			for _, name := range sortedKeys(got, want) {
				g, inGot := got[name]
				w, inWant := want[name]
				switch {
				case !inWant:
					t.Errorf("%s/%s is produced but has no golden file (run go test -update and review it)", dir, name)
				case !inGot:
					t.Errorf("%s/%s is expected but was not produced", dir, name)
				case g != w:
					t.Errorf("%s/%s differs from the golden file (run go test -update and review the diff):\n%s", dir, name, goldenfile.FirstDiff(w, g))
				}
			}
		})
	}
}

func sortedKeys(maps ...map[string]string) []string {
	seen := map[string]bool{}
	var keys []string
	for _, m := range maps {
		for k := range m {
			if !seen[k] {
				seen[k] = true
				keys = append(keys, k)
			}
		}
	}
	sort.Strings(keys)
	return keys
}
