package kind

import (
	"runtime/debug"

	kinddefaults "sigs.k8s.io/kind/pkg/apis/config/defaults"
)

// What the kind provider runs, pinned. Changing a version here is a reviewed
// change: the checksums next to it change with it.
const (
	// NodeImage is the node image of the kind release drill is built with
	// (sigs.k8s.io/kind pkg/apis/config/defaults), pinned by digest as kind's
	// release notes require: Kubernetes 1.37.0.
	NodeImage = kinddefaults.Image

	// IstioVersion is the Istio release installed in every cluster: istioctl of
	// this version installs the control plane and gateways from IstioHub.
	IstioVersion = "1.31.1"
	// IstioHub is where Istio's images (pilot, proxyv2) are pulled from: Istio's
	// own registry, which its charts default to since istio/istio#59364 (the
	// release hub fixed in istio/release-builder#2313). docker.io/istio has the
	// same images, but Docker Hub allows about 10 anonymous pulls an hour per
	// address, fewer than a cold two-cluster drill makes.
	IstioHub = "registry.istio.io/release"

	// MetalLBVersion is the MetalLB release that gives gateways LoadBalancer
	// addresses on the kind network, as Istio's own kind CI does.
	MetalLBVersion = "v0.15.2"
)

// istioctlSHA256 pins the istioctl release archives by platform
// ("<os>-<arch>" of Go), as the release publishes them next to each archive
// (<archive>.sha256). A platform missing here is verified against that
// published file instead, and the log says so.
var istioctlSHA256 = map[string]string{
	"linux-amd64":  "a44563904f22f2a8bf6ac4fff1b0bad9f718587c2be6aa807b83fe9049910639",
	"darwin-arm64": "3f37edda91e51a5948d688681c9db64971ee3abb38cda65d797dec51f46fecd1",
}

// metallbManifestSHA256 is the sha256 of MetalLB's
// config/manifests/metallb-native.yaml at tag MetalLBVersion; testdata holds
// the same file and a test checks the two agree.
const metallbManifestSHA256 = "a1b04c376fb39c93265f551fe23716a3ae6e09b790edb3bf257d3fc784c35a18"

// LibraryVersion is the version of the kind library compiled into drill
// ("(unknown)" in binaries built without module information).
func LibraryVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			if d.Path == "sigs.k8s.io/kind" {
				if d.Replace != nil {
					return d.Replace.Version
				}
				return d.Version
			}
		}
	}
	return "(unknown)"
}
