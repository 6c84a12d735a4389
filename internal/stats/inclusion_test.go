package stats

import (
	"errors"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

func TestCheckOutboundStats(t *testing.T) {
	tests := []struct {
		file    string
		wantErr bool
	}{
		{"sidecar_before.prom", false},
		{"sidecar_after.json", false},
		{"istio_legacy_tags.prom", false},
		{"sidecar_default_matcher.prom", true},
		{"envoy_default_tags.prom", true}, // a plain Envoy with no Istio cluster names
	}
	for _, tc := range tests {
		s := mustParse(t, tc.file)
		err := CheckOutboundStats(s, "productpage")
		if (err != nil) != tc.wantErr {
			t.Errorf("%s: err = %v; want error %v", tc.file, err, tc.wantErr)
			continue
		}
		if err == nil {
			continue
		}
		if !errors.Is(err, ErrNoOutboundStats) {
			t.Errorf("%s: %v does not wrap ErrNoOutboundStats", tc.file, err)
		}
		for _, must := range []string{"productpage", ProxyConfigAnnotation, "inclusionPrefixes", "cluster.outbound", LegacyInclusionAnnotation, "restart"} {
			if !strings.Contains(err.Error(), must) {
				t.Errorf("%s: error does not say %q: %v", tc.file, must, err)
			}
		}
	}
	s := mustParse(t, "sidecar_default_matcher.prom")
	if err := CheckOutboundStats(s, "productpage"); !strings.Contains(err.Error(), "27 active clusters") {
		t.Errorf("error does not count the active clusters: %v", err)
	}
}

func TestStatsAnnotation(t *testing.T) {
	key, value := StatsAnnotation()
	if key != "proxy.istio.io/config" {
		t.Errorf("key = %q", key)
	}
	var pc struct {
		ProxyStatsMatcher struct {
			InclusionPrefixes []string `yaml:"inclusionPrefixes"`
		} `yaml:"proxyStatsMatcher"`
	}
	if err := yaml.Unmarshal([]byte(value), &pc); err != nil {
		t.Fatal(err)
	}
	if got := pc.ProxyStatsMatcher.InclusionPrefixes; len(got) != 1 || got[0] != "cluster.outbound" {
		t.Errorf("inclusionPrefixes = %q", got)
	}
}

func TestMergeStatsInclusion(t *testing.T) {
	tests := []struct {
		name     string
		existing string
		want     string
		changed  bool
		wantErr  string
	}{
		{name: "empty", existing: "", want: "proxyStatsMatcher:\n  inclusionPrefixes:\n  - cluster.outbound\n", changed: true},
		{
			name:     "other settings kept",
			existing: "holdApplicationUntilProxyStarts: true\n",
			want:     "holdApplicationUntilProxyStarts: true\nproxyStatsMatcher:\n  inclusionPrefixes:\n    - cluster.outbound\n",
			changed:  true,
		},
		{
			name:     "prefix appended",
			existing: "proxyStatsMatcher:\n  inclusionPrefixes: [\"listener\"]\n  inclusionRegexps: [\".*circuit_breakers.*\"]\n",
			want:     "proxyStatsMatcher:\n  inclusionPrefixes:\n    - \"listener\"\n    - cluster.outbound\n  inclusionRegexps: [\".*circuit_breakers.*\"]\n",
			changed:  true,
		},
		{
			name:     "already covered",
			existing: "proxyStatsMatcher:\n  inclusionPrefixes:\n  - cluster.\n",
			want:     "proxyStatsMatcher:\n  inclusionPrefixes:\n  - cluster.\n",
		},
		{
			name:     "null matcher",
			existing: "proxyStatsMatcher:\n",
			want:     "proxyStatsMatcher:\n  inclusionPrefixes:\n    - cluster.outbound\n",
			changed:  true,
		},
		{name: "not yaml", existing: "proxyStatsMatcher: [", wantErr: "fix its YAML"},
		{name: "not a mapping", existing: "- a\n- b\n", wantErr: "not a YAML mapping"},
		{name: "wrong shape", existing: "proxyStatsMatcher:\n  inclusionPrefixes: cluster\n", wantErr: "inclusionPrefixes has the wrong shape (line 2)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, changed, err := MergeStatsInclusion(tc.existing)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v; want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want || changed != tc.changed {
				t.Errorf("got %q, changed %v; want %q, %v", got, changed, tc.want, tc.changed)
			}
		})
	}
}
