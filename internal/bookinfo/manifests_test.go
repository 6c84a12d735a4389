package bookinfo

import (
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"

	goldenfile "github.com/meshdrill/drill/internal/golden"

	"github.com/meshdrill/drill/internal/bookinfo/app"
	"github.com/meshdrill/drill/internal/stats"
	"github.com/meshdrill/drill/pkg/scenario"
)

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	goldenfile.Assert(t, filepath.Join("testdata", name), got)
}

func boolp(b bool) *bool { return &b }

func TestManifests(t *testing.T) {
	tests := []struct {
		name        string
		b           scenario.Bookinfo
		ns          string
		opts        []Option
		golden      string
		deployments []string
	}{
		{
			name: "seed cluster1: reviews v1 v2, ingress, productpage observed",
			b: scenario.Bookinfo{Productpage: []string{"v1"}, Details: []string{"v1"}, Reviews: []string{"v1", "v2"},
				Ratings: []string{"v1"}, Replicas: 1},
			ns: "default", opts: []Option{WithIngress(), WithObserved("productpage")},
			golden:      "seed-cluster1.yaml",
			deployments: []string{"details-v1", "ratings-v1", "reviews-v1", "reviews-v2", "productpage-v1"},
		},
		{
			name: "seed cluster2: reviews v3 only, two replicas, a mirror",
			b:    scenario.Bookinfo{Productpage: []string{}, Details: []string{}, Reviews: []string{"v3"}, Ratings: []string{"v1"}, Replicas: 2},
			ns:   "bookinfo", opts: []Option{WithImages("registry.example.com/mirror", "1.20.2")},
			golden:      "seed-cluster2.yaml",
			deployments: []string{"ratings-v1", "reviews-v3"},
		},
		{
			name: "defaults", b: scenario.DefaultBookinfo, ns: "default",
			deployments: []string{"details-v1", "ratings-v1", "reviews-v1", "reviews-v2", "reviews-v3", "productpage-v1"},
		},
		{name: "install false", b: scenario.Bookinfo{Install: boolp(false), Reviews: []string{"v1"}}, ns: "default"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Manifests(tc.b, tc.ns, tc.opts...)
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.Join(s.DeploymentNames(), ","); got != strings.Join(tc.deployments, ",") {
				t.Errorf("deployments %s, want %s", got, strings.Join(tc.deployments, ","))
			}
			if tc.b.Install != nil && !*tc.b.Install {
				if n := len(s.Objects()); n != 0 {
					t.Errorf("install: false gave %d objects, want none", n)
				}
				return
			}
			if len(s.Services) != 4 || len(s.ServiceAccounts) != 4 {
				t.Errorf("%d Services and %d ServiceAccounts, want all 4 of each in every cluster", len(s.Services), len(s.ServiceAccounts))
			}
			if s.Namespace.Labels[InjectionLabel] != "enabled" {
				t.Errorf("namespace labels %v, want %s=enabled", s.Namespace.Labels, InjectionLabel)
			}
			for _, d := range s.Deployments {
				svc, version := d.Labels[LabelApp], d.Labels[LabelVersion]
				if gotSvc, gotV, ok := ParseImage(d.Spec.Template.Spec.Containers[0].Image); !ok || gotSvc != svc || gotV != version {
					t.Errorf("%s runs image %s, which does not parse back to %s %s", d.Name, d.Spec.Template.Spec.Containers[0].Image, svc, version)
				}
				key, _ := stats.StatsAnnotation()
				_, annotated := d.Spec.Template.Annotations[key]
				wantAnnotated := false
				for _, o := range tc.opts {
					var c manifestConfig
					o(&c)
					for _, w := range c.observed {
						wantAnnotated = wantAnnotated || w == svc
					}
				}
				if annotated != wantAnnotated {
					t.Errorf("%s: stats annotation present %v, want %v", d.Name, annotated, wantAnnotated)
				}
			}
			if tc.golden != "" {
				y, err := s.YAML()
				if err != nil {
					t.Fatal(err)
				}
				golden(t, tc.golden, y)
			}
		})
	}
}

func TestManifestsErrors(t *testing.T) {
	tests := []struct {
		name string
		b    scenario.Bookinfo
		ns   string
		opts []Option
		want string
	}{
		{"unknown version", scenario.Bookinfo{Reviews: []string{"v4"}}, "default", nil, `reviews has no version "v4"`},
		{"details v2 not emulated", scenario.Bookinfo{Details: []string{"v2"}}, "default", nil, `details has no version "v2"`},
		{"twice", scenario.Bookinfo{Reviews: []string{"v1", "v1"}}, "default", nil, "listed twice"},
		{"negative replicas", scenario.Bookinfo{Replicas: -1}, "default", nil, "must not be negative"},
		{"bad namespace", scenario.Bookinfo{}, "Default", nil, `namespace "Default"`},
		{"observe unknown", scenario.Bookinfo{}, "default", []Option{WithObserved("frontend")}, `"frontend" is not a Bookinfo service`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Manifests(tc.b, tc.ns, tc.opts...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

func TestParseImage(t *testing.T) {
	tests := []struct {
		image, svc, version string
		ok                  bool
	}{
		{"docker.io/istio/examples-bookinfo-reviews-v2:1.20.3", "reviews", "v2", true},
		{"istio/examples-bookinfo-productpage-v1", "productpage", "v1", true},
		{"registry.istio.io/release/examples-bookinfo-details-v1:1.20.2", "details", "v1", true},
		{"localhost:5000/examples-bookinfo-ratings-v1@sha256:0123", "ratings", "v1", true},
		{"examples-bookinfo-reviews-v10:latest", "reviews", "v10", true},
		{"docker.io/istio/examples-bookinfo-ratings-v2-mysql:1.20.3", "", "", false},
		{"docker.io/istio/examples-bookinfo-mongodb:1.20.3", "", "", false},
		{"docker.io/istio/proxyv2:1.28.0", "", "", false},
		{"nginx", "", "", false},
		{"", "", "", false},
	}
	for _, tc := range tests {
		svc, version, ok := ParseImage(tc.image)
		if svc != tc.svc || version != tc.version || ok != tc.ok {
			t.Errorf("ParseImage(%q) = %q, %q, %v; want %q, %q, %v", tc.image, svc, version, ok, tc.svc, tc.version, tc.ok)
		}
	}
	for _, svc := range Services {
		for _, v := range Versions(svc) {
			if s, ver, ok := ParseImage(Image(svc, v)); !ok || s != svc || ver != v {
				t.Errorf("Image(%s, %s) = %s does not parse back", svc, v, Image(svc, v))
			}
		}
	}
}

// TestWithClusterName: every workload is told its cluster, and without the
// option nothing is added (upstream's manifests stay as they are).
func TestWithClusterName(t *testing.T) {
	set, err := Manifests(scenario.Bookinfo{}, "default", WithClusterName("cluster2"))
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range set.Deployments {
		env := d.Spec.Template.Spec.Containers[0].Env
		if !slices.ContainsFunc(env, func(e corev1.EnvVar) bool { return e.Name == "CLUSTER_NAME" && e.Value == "cluster2" }) {
			t.Errorf("deployment %s: env %v lacks CLUSTER_NAME=cluster2", d.Name, env)
		}
	}
	plain, err := Manifests(scenario.Bookinfo{}, "default")
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range plain.Deployments {
		for _, e := range d.Spec.Template.Spec.Containers[0].Env {
			if e.Name == "CLUSTER_NAME" {
				t.Errorf("deployment %s has CLUSTER_NAME without the option", d.Name)
			}
		}
	}
}

// TestReadinessProbe: every Deployment is Ready only once its application
// answers the probe, and drill's own application of each workload answers
// it. Without the probe a pod scaled back up was Ready before it listened:
// its first requests got 503s from its sidecar and outlier detection
// ejected it, so failback took a whole ejection (60 s) longer on kind.
func TestReadinessProbe(t *testing.T) {
	s, err := Manifests(scenario.DefaultBookinfo, "default")
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range s.Deployments {
		c := d.Spec.Template.Spec.Containers[0]
		p := c.ReadinessProbe
		if p == nil || p.HTTPGet == nil || p.HTTPGet.Port.IntValue() != Port || p.PeriodSeconds > 2 {
			t.Errorf("%s: readiness probe %+v, want an HTTP GET on port %d every second or two", d.Name, p, Port)
			continue
		}
		h, err := app.New(d.Labels[LabelApp], d.Labels[LabelVersion], app.Env{})
		if err != nil {
			t.Fatal(err)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, p.HTTPGet.Path, nil))
		if rec.Code != http.StatusOK {
			t.Errorf("%s: drill's application answers its probe %s with %d", d.Name, p.HTTPGet.Path, rec.Code)
		}
	}
}
