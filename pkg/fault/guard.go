package fault

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
)

// EnvAllowContexts is the environment variable listing, comma-separated, the
// kube contexts destructive faults may run against, besides those given with
// --allow-context.
const EnvAllowContexts = "DRILL_ALLOW_CONTEXTS"

// ErrNotAllowed is wrapped by the error a Guard returns for a cluster the user
// did not allow.
var ErrNotAllowed = errors.New("destructive faults are not allowed on this cluster")

// Guard decides whether destructive faults may run against a cluster. They
// may against the clusters drill created itself (Target.Owned: the local
// provider's, kind clusters drill made) and against kube contexts the user
// named; against any other cluster — staging, production — drill refuses.
type Guard struct {
	allowed []string
}

// NewGuard allows destructive faults against drill's own clusters and against
// the kube contexts named in allowed (empty names are ignored).
func NewGuard(allowed ...string) *Guard {
	g := &Guard{}
	for _, c := range allowed {
		if c = strings.TrimSpace(c); c != "" && !slices.Contains(g.allowed, c) {
			g.allowed = append(g.allowed, c)
		}
	}
	return g
}

// AllowedFromEnv is the list in DRILL_ALLOW_CONTEXTS. The CLI passes it to
// NewGuard along with its --allow-context flags.
func AllowedFromEnv() []string {
	return strings.Split(os.Getenv(EnvAllowContexts), ",")
}

// Allowed is the list of allowed kube contexts.
func (g *Guard) Allowed() []string { return slices.Clone(g.allowed) }

// Check returns nil when destructive faults may run against t, and otherwise
// an error wrapping ErrNotAllowed that names the cluster and its context and
// says how to allow it. Call it before changing anything.
func (g *Guard) Check(t Target) error {
	if t.Owned {
		return nil
	}
	if t.Context != "" && g != nil && slices.Contains(g.allowed, t.Context) {
		return nil
	}
	if t.Context == "" {
		return fmt.Errorf("cluster %s: drill did not create it and its kube context is unknown, so it cannot be allowed: %w; "+
			"run the drill against a named kube context and allow it with --allow-context=<context> or %s=<context>",
			t.Name, ErrNotAllowed, EnvAllowContexts)
	}
	return fmt.Errorf("cluster %s (kube context %q): drill did not create it: %w; "+
		"if faults may really run there, allow the context with --allow-context=%s or %s=%s",
		t.Name, t.Context, ErrNotAllowed, shellQuote(t.Context), EnvAllowContexts, shellQuote(t.Context))
}
