//go:build tools

// Package tools pins Istio: pilot-discovery (istiod), which drill's local
// provider runs and the kind provider's offline pilot image carries;
// pilot-agent, which the offline proxyv2 image runs in every sidecar and
// gateway as Istio does; and istioctl, which installs Istio on kind when
// no release can be downloaded. It is its own module so istio.io/istio
// never enters drill's module graph; hack/build-tools.sh and
// hack/kind-images.sh build the commands by package path from here.
package tools

import (
	_ "istio.io/istio/istioctl/cmd/istioctl"
	_ "istio.io/istio/pilot/cmd/pilot-agent"
	_ "istio.io/istio/pilot/cmd/pilot-discovery"
)
