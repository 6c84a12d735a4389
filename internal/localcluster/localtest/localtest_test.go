package localtest

import (
	"testing"

	"k8s.io/apimachinery/pkg/util/validation"
)

func TestClusterName(t *testing.T) {
	tests := []struct{ name, want string }{
		{"TestMesh", "testmesh"},
		{"TestMesh/east_and_west", "testmesh-east-and-west"},
		{"TestX/a__b--c", "testx-a-b-c"},
		{"Test_with_a_very_long_name_that_goes_on_and_on_and_on", "test-with-a-very-long-name-that-goes-on"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := ClusterName(named{T: t, name: tt.name})
			if got != tt.want {
				t.Errorf("ClusterName(%q) = %q, want %q", tt.name, got, tt.want)
			}
			if errs := validation.IsDNS1123Label(got); len(errs) > 0 {
				t.Errorf("%q is not a DNS label: %v", got, errs)
			}
		})
	}
}

type named struct {
	*testing.T
	name string
}

func (n named) Name() string { return n.name }
