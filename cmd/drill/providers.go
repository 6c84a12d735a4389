package main

import (
	"fmt"
	"strings"

	"github.com/spf13/pflag"

	"github.com/meshdrill/drill/pkg/cluster"
	"github.com/meshdrill/drill/pkg/cluster/existing"
	"github.com/meshdrill/drill/pkg/cluster/kind"
	"github.com/meshdrill/drill/pkg/cluster/local"
)

// providers are the providers drill offers, the default first. A new provider is
// one line here; its flags and options live in its own package.
var providers = []cluster.Registration{
	local.Registration(),
	kind.Registration(),
	existing.Registration(),
}

// providerFlags are --provider and every provider's own flags on one command.
type providerFlags struct {
	name      string
	factories map[string]cluster.Factory
}

// addProviderFlags registers --provider and each provider's flags on fs.
func addProviderFlags(fs *pflag.FlagSet) *providerFlags {
	pf := &providerFlags{factories: map[string]cluster.Factory{}}
	fs.StringVar(&pf.name, "provider", providers[0].Name, "where the clusters come from: "+strings.Join(providerNames(), ", "))
	for _, r := range providers {
		pf.factories[r.Name] = r.AddFlags(fs)
	}
	return pf
}

// build makes the chosen provider from its parsed flags.
func (pf *providerFlags) build(common cluster.Common) (cluster.Provider, error) {
	factory, ok := pf.factories[pf.name]
	if !ok {
		return nil, fmt.Errorf("unknown provider %q; use one of: %s", pf.name, strings.Join(providerNames(), ", "))
	}
	return factory(common)
}

func providerNames() []string {
	names := make([]string, len(providers))
	for i, r := range providers {
		names[i] = r.Name
	}
	return names
}
