//go:build tools

// Package tools pins the Istio control plane (pilot-discovery, i.e. istiod)
// that drill's local provider runs. It is its own module so istio.io/istio
// never enters drill's module graph; hack/build-tools.sh builds the command by
// package path from here.
package tools

import (
	_ "istio.io/istio/pilot/cmd/pilot-discovery"
)
