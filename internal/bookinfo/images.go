package bookinfo

import (
	"regexp"
	"slices"
	"strings"
)

// Registry and Tag are where Bookinfo's images come from: the tag Istio's own
// samples/bookinfo/platform/kube/bookinfo.yaml pins in its current releases, from
// Istio's registry, which publishes the samples' images next to its own
// (istio/istio#59364) without Docker Hub's anonymous pull limit.
const (
	Registry = "registry.istio.io/release"
	Tag      = "1.20.3"
)

// The Bookinfo services, in the order upstream's bookinfo.yaml lists them.
const (
	Details     = "details"
	Ratings     = "ratings"
	Reviews     = "reviews"
	Productpage = "productpage"
)

// Services are the Bookinfo services in upstream's order.
var Services = []string{Details, Ratings, Reviews, Productpage}

// Port is the port every Bookinfo service and container listens on.
const Port = 9080

// versions are the versions of each service drill runs: upstream's images that
// need nothing outside Bookinfo (details v2 calls Google's books API, ratings v2
// a database; neither is emulated).
var versions = map[string][]string{
	Productpage: {"v1"},
	Details:     {"v1"},
	Reviews:     {"v1", "v2", "v3"},
	Ratings:     {"v1"},
}

// Versions returns the versions of service drill can run, nil for a name that is
// not a Bookinfo service.
func Versions(service string) []string { return slices.Clone(versions[service]) }

// Supported reports whether drill runs version of service.
func Supported(service, version string) bool {
	return slices.Contains(versions[service], version)
}

// Image is the upstream image of a service's version, e.g.
// registry.istio.io/release/examples-bookinfo-reviews-v2:1.20.3.
func Image(service, version string) string {
	return imageFrom(Registry, Tag, service, version)
}

func imageFrom(registry, tag, service, version string) string {
	return registry + "/examples-bookinfo-" + service + "-" + version + ":" + tag
}

var versionRE = regexp.MustCompile(`^v[0-9]+$`)

// ParseImage tells which Bookinfo service and version an image reference runs,
// whatever its registry, tag or digest: mirrors such as
// registry.istio.io/release/examples-bookinfo-reviews-v2:1.20.2 or
// reviews@sha256:… under the upstream name are recognised. ok is false for an
// image that is not one of Bookinfo's four services.
func ParseImage(image string) (service, version string, ok bool) {
	ref := image
	if i := strings.IndexByte(ref, '@'); i >= 0 {
		ref = ref[:i]
	}
	if i := strings.LastIndexByte(ref, '/'); i >= 0 {
		ref = ref[i+1:]
	}
	if i := strings.IndexByte(ref, ':'); i >= 0 {
		ref = ref[:i]
	}
	rest, found := strings.CutPrefix(ref, "examples-bookinfo-")
	if !found {
		return "", "", false
	}
	i := strings.LastIndexByte(rest, '-')
	if i <= 0 {
		return "", "", false
	}
	service, version = rest[:i], rest[i+1:]
	if _, known := versions[service]; !known || !versionRE.MatchString(version) {
		return "", "", false
	}
	return service, version, true
}
