package fault

import (
	"context"
	"strings"

	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/meshdrill/drill/pkg/event"
)

// Fault is one fault on one cluster. Implementations remember what they
// changed so that Revert restores exactly that, and are safe to Revert after
// a partial or failed Apply: Revert undoes whatever Apply got to.
type Fault interface {
	// Kind names the kind of fault, as in event.Fault.Kind: "scale",
	// "delete-pods".
	Kind() string
	// Target is the cluster the fault acts on; a Set checks it against its
	// Guard before Apply.
	Target() Target
	// Apply injects the fault. It is called at most once.
	Apply(ctx context.Context) error
	// Revert undoes the fault. A Revert that succeeded makes later calls no-ops;
	// one that failed may be retried.
	Revert(ctx context.Context) error
	// Describe says in a few words what the fault does, for messages:
	// "scale deployment reviews-v1, reviews-v2 (app=reviews) in default of
	// cluster1 to 0 replicas".
	Describe() string
	// RestoreCommand is the command a human runs to undo the fault by hand,
	// exact to the context, namespace and original values; empty when there is
	// nothing to restore.
	RestoreCommand() string
	// Record is what the fault has done so far as an event payload: after Apply
	// the change it made, after Revert the change back. The Set fills in Step,
	// Error and Restore.
	Record() event.Fault
}

// Target is a cluster a fault acts on.
type Target struct {
	// Name is the drill cluster name, used in events and messages.
	Name string
	// Context is the kubeconfig context of the cluster. The Guard checks it and
	// restore commands name it.
	Context string
	// Kubeconfig is the kubeconfig file holding Context, when it is not the
	// user's default one (the local provider writes its own); restore commands
	// pass it with --kubeconfig.
	Kubeconfig string
	// Owned says drill created the cluster itself (the local provider, or kind
	// clusters drill made), so destructive faults need no permission.
	Owned bool
	// Client reaches the cluster's API server; Dynamic too, for Istio's
	// objects (an http fault's EnvoyFilter).
	Client  kubernetes.Interface
	Dynamic dynamic.Interface
	// Gateways is set when the cluster runs its gateways itself (the local
	// provider), not as Deployments.
	Gateways GatewayHost
	// ControlPlane is set when the cluster runs istiod itself (the local
	// provider), not as a Deployment.
	ControlPlane ControlPlaneHost
	// Network is set when drill can filter the cluster's traffic (a
	// partition): its address ranges and packet filters.
	Network Network
}

// kubectl is the start of a kubectl command line addressing t in namespace ns.
func (t Target) kubectl(ns string) string {
	cmd := "kubectl"
	if t.Kubeconfig != "" {
		cmd += " --kubeconfig " + shellQuote(t.Kubeconfig)
	}
	if t.Context != "" {
		cmd += " --context " + shellQuote(t.Context)
	}
	return cmd + " -n " + shellQuote(ns)
}

// shellQuote quotes s for a POSIX shell when it holds anything but the
// characters kube context names, namespaces and paths usually have. It works
// on bytes, so that a name that is not valid UTF-8 reaches kubectl unchanged.
func shellQuote(s string) string {
	if s == "" {
		return "''"
	}
	for i := 0; i < len(s); i++ {
		if !safeInShell(s[i]) {
			return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
		}
	}
	return s
}

func safeInShell(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("-_./:@=,+", c) >= 0
}
