package kind

import (
	"context"
	"crypto/sha256"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/meshdrill/drill/internal/bookinfo"
	"github.com/meshdrill/drill/internal/preflight"
)

// Images built without a registry. On machines that reach no container
// registry, hack/kind-images.sh (make images) builds the kind node image —
// with every image kubeadm asks for preloaded in its containerd — and
// Bookinfo's images from drill's own Go Bookinfo, and keeps them in the local
// Docker engine. DRILL_KIND_IMAGES=offline (or --kind-images offline) makes
// the kind provider use them.
const (
	// ImagesEnv chooses the images: "offline" for those make images builds;
	// unset or "pull" for the real ones, pulled from their registries.
	ImagesEnv = "DRILL_KIND_IMAGES"
	// ImagesOffline and ImagesPull are ImagesEnv's values.
	ImagesOffline = "offline"
	ImagesPull    = "pull"

	// OfflineKubernetesVersion is the Kubernetes of the offline node image:
	// tools/kube's k8s.io/kubernetes, which the image's kubelet and kubeadm
	// are built from (a test checks the two agree).
	OfflineKubernetesVersion = "v1.37.2"
	// OfflineNodeImage is the node image make images builds.
	OfflineNodeImage = "drill.local/kind-node:" + OfflineKubernetesVersion
	// OfflineBookinfoRegistry holds Bookinfo's images built from drill's Go
	// Bookinfo, under upstream's image names and tag, preloaded in the node.
	OfflineBookinfoRegistry = "drill.local/bookinfo"

	// OfflineIstioHub holds Istio's pilot and proxyv2 images built from the
	// istio.io/istio module tools/istio pins; proxyv2's envoy is drill's
	// emulated Envoy. They are preloaded in the node image.
	OfflineIstioHub = "drill.local/istio"
	// OfflineIstioVersion is their tag and the version of the istioctl
	// built with them: the module's release branch (its VERSION file) and
	// commit, as Istio names development builds. It is not the release
	// IstioVersion: no Istio release is on the module proxy (a test checks
	// the commit against tools/istio/go.mod).
	OfflineIstioVersion = "1.31-dev.eed52ebb66ad"

	// RegistryContainer is drill's local registry (the distribution
	// project's, hack/kind-images.sh starts it), which holds the offline
	// images that are not Kubernetes' own; the nodes pull them from it on the
	// kind network (drill-registry:5000).
	RegistryContainer = "drill-registry"
	// registryPush is where make images pushes to it, and so the host of the
	// node image's registry digest.
	registryPush = "127.0.0.1:5001"

	// buildImagesCommand is what builds the offline images.
	buildImagesCommand = "make docker images (hack/docker.sh, hack/kind-images.sh)"
)

// WithImages chooses the images: ImagesOffline for those make images builds,
// ImagesPull (the default unless DRILL_KIND_IMAGES says otherwise) for the
// real ones. Image options given as well (WithNodeImage, WithBookinfoImages)
// still win.
func WithImages(mode string) Option { return func(p *Provider) { p.images = mode } }

// imagesFromEnv is the images mode DRILL_KIND_IMAGES asks for.
func imagesFromEnv() string {
	if v := strings.TrimSpace(os.Getenv(ImagesEnv)); v != "" {
		return v
	}
	return ImagesPull
}

// offline reports whether the provider runs the images make images builds.
func (p *Provider) offline() bool { return p.images == ImagesOffline }

// applyImages fills in the image choices the mode implies, after the options.
func (p *Provider) applyImages() error {
	switch p.images {
	case ImagesPull:
	case ImagesOffline:
		if !p.nodeImageSet {
			p.nodeImage = OfflineNodeImage
		}
		if p.bookinfoImages[0] == "" {
			p.bookinfoImages = [2]string{OfflineBookinfoRegistry, bookinfo.Tag}
		}
		if p.istioHub == IstioHub {
			p.istioHub = OfflineIstioHub
		}
		p.istioVersion = OfflineIstioVersion
	default:
		return fmt.Errorf("kind provider: images %q (%s or --kind-images): use %s or %s", p.images, ImagesEnv, ImagesOffline, ImagesPull)
	}
	return nil
}

// OfflineCacheDir is where make images keeps what it built besides images:
// istioctl and MetalLB's manifest (hack/kind-images.sh, $DRILL_KIND_IMAGES_CACHE
// or the user's cache directory).
func OfflineCacheDir() (string, error) {
	if d := os.Getenv("DRILL_KIND_IMAGES_CACHE"); d != "" {
		return d, nil
	}
	d, err := os.UserCacheDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(d, "drill", "kind-images"), nil
}

// offlineIstioctl is the istioctl make images built, checked to be of
// OfflineIstioVersion.
func offlineIstioctl(ctx context.Context) (*Istioctl, error) {
	dir, err := OfflineCacheDir()
	if err != nil {
		return nil, err
	}
	path := filepath.Join(dir, "istioctl-"+OfflineIstioVersion)
	if _, err := os.Stat(path); err != nil {
		return nil, preflight.Fail("build it: "+buildImagesCommand, "no istioctl %s at %s", OfflineIstioVersion, path)
	}
	got, err := istioctlVersion(ctx, path)
	if err != nil {
		return nil, preflight.Fail("rebuild it: "+buildImagesCommand, "%v", err)
	}
	if got != OfflineIstioVersion {
		return nil, preflight.Fail("rebuild it: "+buildImagesCommand, "%s reports version %s, not %s", path, got, OfflineIstioVersion)
	}
	return &Istioctl{Path: path, Version: got}, nil
}

// offlineMetalLBManifest is MetalLB's manifest make images took from the
// MetalLB module, checked against the pinned checksum of the release's file.
func offlineMetalLBManifest() ([]byte, string, error) {
	dir, err := OfflineCacheDir()
	if err != nil {
		return nil, "", err
	}
	path := filepath.Join(dir, "metallb-native-"+MetalLBVersion+".yaml")
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, "", preflight.Fail("build it: "+buildImagesCommand, "no MetalLB %s manifest at %s", MetalLBVersion, path)
	}
	if sum := fmt.Sprintf("%x", sha256.Sum256(b)); sum != metallbManifestSHA256 {
		return nil, "", preflight.Fail("rebuild it: "+buildImagesCommand, "%s has sha256 %s, not the pinned %s of MetalLB %s", path, sum, metallbManifestSHA256, MetalLBVersion)
	}
	return b, path, nil
}

// checkOfflineNodeImage checks that the node image make images builds is in
// the engine and returns it pinned by its digest in drill's registry (make
// images pushes it there: a local image has no digest of its own), as kind's
// release notes ask node images to be named. Such an image has no registry
// digest to check it by before it is pushed: the key it was built from (its
// drill.key label) stands for one.
func checkOfflineNodeImage(ctx context.Context, dockerBin, image string) (pinned, found string, err error) {
	out, err := docker(ctx, dockerBin, "image", "inspect", "-f", `{{index .Config.Labels "drill.key"}}|{{range .RepoDigests}}{{.}} {{end}}`, image)
	if err != nil {
		return "", "", preflight.Fail("build it: "+buildImagesCommand,
			"the offline image %s is not in the Docker engine", image)
	}
	key, digests, _ := strings.Cut(strings.TrimSpace(string(out)), "|")
	if key == "" {
		return "", "", preflight.Fail("rebuild it: "+buildImagesCommand,
			"the image %s was not built by make images (it has no drill.key label)", image)
	}
	found = image + " (offline, built from key " + key + ")"
	if strings.Contains(image, "@") {
		return image, found, nil // pinned already
	}
	_, tag, _ := strings.Cut(image[strings.LastIndex(image, "/")+1:], ":")
	for _, d := range strings.Fields(digests) {
		if repo, digest, ok := strings.Cut(d, "@"); ok && repo == registryPush+"/kind-node" {
			return repo + ":" + tag + "@" + digest, found, nil
		}
	}
	return "", "", preflight.Fail("push it: "+buildImagesCommand, "the offline image %s has no digest from drill's registry (%s)", image, registryPush)
}

// checkRegistry checks that drill's registry runs.
func checkRegistry(ctx context.Context, dockerBin string) (string, error) {
	out, err := docker(ctx, dockerBin, "container", "inspect", "-f", "{{.State.Running}} {{.Config.Image}}", RegistryContainer)
	if err != nil || !strings.HasPrefix(string(out), "true ") {
		return "", preflight.Fail("start it: "+buildImagesCommand+" (it runs with --restart=always)",
			"drill's local registry (container %s), which the nodes pull Istio, MetalLB and Bookinfo from, is not running", RegistryContainer)
	}
	return RegistryContainer + " runs " + strings.TrimSpace(strings.TrimPrefix(string(out), "true ")), nil
}

// connectRegistry attaches drill's registry to the kind network, where the
// nodes reach it by its name; it is a no-op when already attached.
func (p *Provider) connectRegistry(ctx context.Context) error {
	p.registryMu.Lock()
	defer p.registryMu.Unlock()
	out, err := docker(ctx, p.dockerBin, "container", "inspect", "-f", "{{range $k, $v := .NetworkSettings.Networks}}{{$k}} {{end}}", RegistryContainer)
	if err != nil {
		return fmt.Errorf("drill's registry: %w", err)
	}
	if slices.Contains(strings.Fields(string(out)), dockerNetwork()) {
		return nil
	}
	if _, err := docker(ctx, p.dockerBin, "network", "connect", dockerNetwork(), RegistryContainer); err != nil {
		return fmt.Errorf("connect drill's registry to the %s network: %w", dockerNetwork(), err)
	}
	p.log.Info("drill's registry joined the kind network", "container", RegistryContainer, "network", dockerNetwork())
	return nil
}

// fencePodRanges makes each cluster's own pod range unreachable on its
// node, below the per-pod routes kindnet adds: a connection to the address
// of a pod that is gone (deleted, or scaled away, while a proxy still has
// it in EDS) fails at once with "no route to host", as on nodes whose CNI
// holds blackhole routes for its pod blocks (Calico), instead of leaving
// through the node's default route toward the host's network and hanging
// on ARP or SYN retries for seconds.
func (p *Provider) fencePodRanges(ctx context.Context, runs []*clusterRun) error {
	for _, c := range runs {
		layout, err := ClusterLayout(c.index)
		if err != nil {
			return err
		}
		node := c.kindName + "-control-plane"
		if _, err := docker(ctx, p.dockerBin, "exec", node, "ip", "route", "replace", "unreachable", layout.PodSubnet.String()); err != nil {
			return fmt.Errorf("cluster %s: fence the pod range %s: %w", c.name, layout.PodSubnet, err)
		}
	}
	return nil
}

// routeClusters lets every cluster's nodes reach the others' pod and service
// addresses through the kind network, as routes to each control-plane node:
// the clusters' ranges never overlap (ClusterLayout), so one route a range
// suffices.
func (p *Provider) routeClusters(ctx context.Context, runs []*clusterRun) error {
	for _, from := range runs {
		for _, to := range runs {
			if from == to {
				continue
			}
			layout, err := ClusterLayout(to.index)
			if err != nil {
				return err
			}
			for _, prefix := range []netip.Prefix{layout.PodSubnet, layout.ServiceSubnet} {
				node := from.kindName + "-control-plane"
				if _, err := docker(ctx, p.dockerBin, "exec", node, "ip", "route", "replace", prefix.String(), "via", to.controlPlane.String()); err != nil {
					return fmt.Errorf("cluster %s: route to cluster %s's %s: %w", from.name, to.name, prefix, err)
				}
			}
			from.log.Info("routed to cluster", "cluster", to.name, "via", to.controlPlane)
		}
	}
	return nil
}
