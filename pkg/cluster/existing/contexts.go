package existing

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// ParseContexts reads the --context flag: CLUSTER=CONTEXT pairs, comma
// separated, the flag repeatable, e.g. "cluster1=kind-a,cluster2=gke-b". It
// maps scenario cluster names to kube contexts.
func ParseContexts(values ...string) (map[string]string, error) {
	out := map[string]string{}
	for _, v := range values {
		for _, pair := range strings.Split(v, ",") {
			pair = strings.TrimSpace(pair)
			if pair == "" {
				continue
			}
			name, ctx, ok := strings.Cut(pair, "=")
			name, ctx = strings.TrimSpace(name), strings.TrimSpace(ctx)
			if !ok || name == "" || ctx == "" {
				return nil, fmt.Errorf("--context %q: write CLUSTER=CONTEXT, e.g. cluster1=prod-eu-1 (the scenario's cluster name, then a context of your kubeconfig)", pair)
			}
			if errs := validation.IsDNS1123Label(name); len(errs) > 0 {
				return nil, fmt.Errorf("--context %q: %q is not a cluster name: %s", pair, name, errs[0])
			}
			if prev, dup := out[name]; dup && prev != ctx {
				return nil, fmt.Errorf("--context: cluster %s is given two contexts, %q and %q", name, prev, ctx)
			}
			out[name] = ctx
		}
	}
	return out, nil
}

// RESTConfig loads the client configuration of kube context ctxName from
// kubeconfig, or from the default kubeconfig chain ($KUBECONFIG, then
// ~/.kube/config) when kubeconfig is empty.
func RESTConfig(kubeconfig, ctxName string) (*rest.Config, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	if kubeconfig != "" {
		rules.ExplicitPath = kubeconfig
	}
	raw, err := rules.Load()
	if err != nil {
		return nil, fmt.Errorf("load kubeconfig: %w", err)
	}
	if _, ok := raw.Contexts[ctxName]; !ok {
		known := make([]string, 0, len(raw.Contexts))
		for k := range raw.Contexts {
			known = append(known, k)
		}
		sort.Strings(known)
		where := "the default kubeconfig ($KUBECONFIG or ~/.kube/config)"
		if kubeconfig != "" {
			where = kubeconfig
		}
		return nil, fmt.Errorf("kube context %q is not in %s; it has %s (see `kubectl config get-contexts`)", ctxName, where, listOrNone(known))
	}
	cfg, err := clientcmd.NewNonInteractiveClientConfig(*raw, ctxName, &clientcmd.ConfigOverrides{}, rules).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("kube context %q: %w", ctxName, err)
	}
	// client-go's defaults (5 QPS, burst 10) throttle a drill that applies an
	// application and watches it at once.
	cfg.QPS, cfg.Burst = 50, 100
	cfg.UserAgent = "drill"
	return cfg, nil
}

func listOrNone(s []string) string {
	if len(s) == 0 {
		return "no contexts"
	}
	return strings.Join(slices.Clip(s), ", ")
}
