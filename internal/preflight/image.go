package preflight

import (
	"regexp"
)

// pinnedImage matches an image reference pinned by digest:
// name[:tag]@sha256:<64 hex>.
var pinnedImage = regexp.MustCompile(`^[a-z0-9][a-z0-9._/-]*(:[0-9A-Za-z._-]+)?@sha256:[0-9a-f]{64}$`)

// CheckNodeImage checks that a kind node image is pinned by digest, as kind's
// release notes ask ("You MUST use the @sha256 digest"): a tag alone may name a
// node image built for another kind release, which kind cannot boot.
func CheckNodeImage(image string) error {
	if !pinnedImage.MatchString(image) {
		return Fail("name the image with its digest, as kind's release notes list them (kindest/node:vX.Y.Z@sha256:...), or leave the node image unset to use the one drill pins",
			"node image %q is not pinned by digest", image)
	}
	return nil
}
