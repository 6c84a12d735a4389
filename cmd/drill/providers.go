package main

import (
	"fmt"
	"log/slog"
	"strings"

	"github.com/meshdrill/drill/pkg/cluster"
	"github.com/meshdrill/drill/pkg/cluster/existing"
	"github.com/meshdrill/drill/pkg/cluster/kind"
	"github.com/meshdrill/drill/pkg/cluster/local"
)

func init() {
	providerFactories[local.Name] = func(_ *runFlags, log *slog.Logger) (cluster.Provider, error) {
		return local.New(local.WithLogger(log)), nil
	}
	providerFactories["kind"] = func(f *runFlags, log *slog.Logger) (cluster.Provider, error) {
		opts := []kind.Option{kind.WithLogger(log)}
		if f.keep {
			opts = append(opts, kind.WithKeep())
		}
		if f.reuse {
			opts = append(opts, kind.WithReuse())
		}
		switch m := kind.IngressMode(f.kindIngress); m {
		case "":
		case kind.IngressLoadBalancer, kind.IngressHostPort:
			opts = append(opts, kind.WithIngressMode(m))
		default:
			return nil, fmt.Errorf("--kind-ingress %q: use %s or %s", f.kindIngress, kind.IngressLoadBalancer, kind.IngressHostPort)
		}
		return kind.New(opts...), nil
	}
	providerFactories["existing"] = func(f *runFlags, log *slog.Logger) (cluster.Provider, error) {
		if len(f.contexts) == 0 {
			return nil, fmt.Errorf("the existing provider needs --context, mapping each scenario cluster to a kube context: --context cluster1=ctx-a,cluster2=ctx-b")
		}
		ctxs, err := existing.ParseContexts(f.contexts...)
		if err != nil {
			return nil, err
		}
		opts := []existing.Option{existing.WithLogger(log)}
		if f.kubeconfig != "" {
			opts = append(opts, existing.WithKubeconfig(f.kubeconfig))
		}
		if f.installBookinfo {
			opts = append(opts, existing.WithInstallBookinfo())
		}
		for _, kv := range f.ingress {
			name, url, ok := strings.Cut(kv, "=")
			if !ok || name == "" || url == "" {
				return nil, fmt.Errorf("--ingress %q: write CLUSTER=URL, e.g. cluster1=http://10.0.0.5:80", kv)
			}
			opts = append(opts, existing.WithIngress(name, url))
		}
		return existing.New(ctxs, opts...), nil
	}
}
