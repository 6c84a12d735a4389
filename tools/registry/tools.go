//go:build tools

// Package tools pins the container registry drill runs for its offline kind
// images: the distribution project's registry (the reference implementation
// of the OCI distribution spec), built by hack/kind-images.sh. It is its own
// module so the registry's storage drivers never enter drill's module graph.
package tools

import (
	_ "github.com/distribution/distribution/v3/cmd/registry"
)
