package fault

import (
	"errors"
	"strings"
	"testing"
)

func TestGuard(t *testing.T) {
	tests := []struct {
		name    string
		allowed []string
		target  Target
		ok      bool
		mention []string
	}{
		{name: "drill's own cluster", target: Target{Name: "c1", Context: "kind-c1", Owned: true}, ok: true},
		{name: "own cluster without context", target: Target{Name: "c1", Owned: true}, ok: true},
		{name: "allowed context", allowed: []string{"staging", " prod-eu "}, target: Target{Name: "c1", Context: "prod-eu"}, ok: true},
		{name: "not allowed", allowed: []string{"staging"}, target: Target{Name: "east", Context: "prod-us"},
			mention: []string{"cluster east", `"prod-us"`, "--allow-context=prod-us", "DRILL_ALLOW_CONTEXTS=prod-us"}},
		{name: "nothing allowed", target: Target{Name: "east", Context: "gke_proj_us-east1_prod"},
			mention: []string{"--allow-context=gke_proj_us-east1_prod"}},
		{name: "context needing quotes", target: Target{Name: "east", Context: "ops's cluster"},
			mention: []string{`--allow-context='ops'\''s cluster'`}},
		{name: "unknown context", allowed: []string{""}, target: Target{Name: "east"},
			mention: []string{"cluster east", "context is unknown"}},
		{name: "prefix is not a match", allowed: []string{"prod"}, target: Target{Name: "east", Context: "prod-us"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := NewGuard(tt.allowed...).Check(tt.target)
			if tt.ok {
				if err != nil {
					t.Fatalf("Check = %v, want allowed", err)
				}
				return
			}
			if !errors.Is(err, ErrNotAllowed) {
				t.Fatalf("Check = %v, want ErrNotAllowed", err)
			}
			for _, m := range tt.mention {
				if !strings.Contains(err.Error(), m) {
					t.Errorf("error %q does not mention %q", err, m)
				}
			}
		})
	}
}

func TestAllowedFromEnv(t *testing.T) {
	t.Setenv(EnvAllowContexts, "staging, kind-east,,staging")
	g := NewGuard(append(AllowedFromEnv(), "flag-ctx")...)
	if got := strings.Join(g.Allowed(), ","); got != "staging,kind-east,flag-ctx" {
		t.Errorf("Allowed = %s", got)
	}
	if err := g.Check(Target{Name: "e", Context: "kind-east"}); err != nil {
		t.Errorf("context from the environment not allowed: %v", err)
	}
}

func TestRestoreCommandQuoting(t *testing.T) {
	tests := []struct {
		target Target
		ns     string
		want   string
	}{
		{Target{Context: "kind-c1"}, "default", "kubectl --context kind-c1 -n default"},
		{Target{Context: "arn:aws:eks:eu-west-1:123:cluster/prod"}, "bookinfo", "kubectl --context arn:aws:eks:eu-west-1:123:cluster/prod -n bookinfo"},
		{Target{Context: "c1", Kubeconfig: "/tmp/drill run/c1/kubeconfig"}, "default", "kubectl --kubeconfig '/tmp/drill run/c1/kubeconfig' --context c1 -n default"},
		{Target{}, "default", "kubectl -n default"},
		{Target{Context: "a$b"}, "x", "kubectl --context 'a$b' -n x"},
	}
	for _, tt := range tests {
		if got := tt.target.kubectl(tt.ns); got != tt.want {
			t.Errorf("kubectl(%+v) = %q, want %q", tt.target, got, tt.want)
		}
	}
}
