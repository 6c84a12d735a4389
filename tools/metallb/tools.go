//go:build tools

// Package tools pins MetalLB's controller and speaker, the two images of
// MetalLB's native (layer 2) manifest, at the release the kind provider
// installs (pkg/cluster/kind MetalLBVersion). hack/metallb-images.sh builds
// them by package path from here for offline kind clusters; MetalLB's
// dependencies never enter drill's own module graph.
package tools

import (
	_ "go.universe.tf/metallb/controller"
	_ "go.universe.tf/metallb/speaker"
)
