package cluster

import (
	"log/slog"

	"github.com/spf13/pflag"
)

// Registration is how a command line reaches a provider. Each provider package
// offers one (kind.Registration(), ...): the provider adds its own flags to a
// command's flag set and, once they are parsed, builds itself from them. A CLI
// registers every provider's flags on each command that brings clusters up, so a
// new provider is one line in the CLI's list.
type Registration struct {
	// Name is the provider's name, the value of --provider.
	Name string
	// AddFlags adds the provider's flags to fs and returns the function that
	// builds the provider from their values once fs is parsed. Flag names are
	// prefixed or worded so that they do not clash with other providers'.
	AddFlags func(fs *pflag.FlagSet) Factory
}

// Factory builds a provider from its parsed flags and what every provider shares.
type Factory func(Common) (Provider, error)

// Common is what a command line gives every provider beyond its own flags.
type Common struct {
	Logger *slog.Logger
	// Keep leaves the clusters in place when the command ends (drill run --keep).
	Keep bool
}
