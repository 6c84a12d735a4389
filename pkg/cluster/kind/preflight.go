package kind

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"

	"github.com/meshdrill/drill/internal/preflight"
	"github.com/meshdrill/drill/pkg/scenario"
)

// artifacts are what the preflight obtained for the clusters.
type artifacts struct {
	istioctl *Istioctl
	metallb  []byte
	// host is what the Docker engine's host asks of the clusters' configuration.
	host HostSettings
}

// Preflight checks, before anything is created, that this machine can run
// the scenario on kind: the Docker CLI and daemon, the engine's version, CPUs
// and memory, the inotify limits (a warning), the pinned node image, that no
// kind cluster of the drill's names exists (unless reusing), and that istioctl
// and MetalLB's manifest are in the cache or can be downloaded. It returns a
// *preflight.Error listing every problem, which the CLI turns into exit code 2.
// Up runs it first; calling it alone answers "could this machine run s?".
func (p *Provider) Preflight(ctx context.Context, s *scenario.Scenario) error {
	_, err := p.preflight(ctx, s)
	return err
}

func (p *Provider) preflight(ctx context.Context, s *scenario.Scenario) (*artifacts, error) {
	var info *preflight.DockerInfo
	art := &artifacts{}
	n := len(s.Spec.Clusters)
	// A pinned image is checked by its name alone; an offline one in the engine.
	var nodeImageNeeds []string
	if p.offline() && !p.nodeImageSet {
		nodeImageNeeds = []string{"docker"}
	}
	checks := []preflight.Check{
		{Name: "docker", Run: func(ctx context.Context) (string, error) {
			var err error
			info, err = preflight.Docker(ctx, preflight.WithDockerBinary(p.dockerBin))
			if err != nil {
				return "", err
			}
			art.host.CgroupV1 = info.CgroupVersion == "1"
			if art.host.CgroupV1 {
				return info.String() + "; cgroup v1: kubelet is configured with failCgroupV1: false", nil
			}
			return info.String(), nil
		}},
		{Name: "docker-engine", After: []string{"docker"}, Run: func(context.Context) (string, error) {
			return "Docker " + info.ServerVersion + ", " + info.OSType + " containers", preflight.CheckDockerEngine(info)
		}},
		{Name: "resources", After: []string{"docker"}, Run: func(context.Context) (string, error) {
			need := preflight.Requirements(n)
			if p.offline() {
				need = preflight.RequirementsEmulatedMesh(n)
			}
			return fmt.Sprintf("%d clusters need %d CPUs and %s; the engine has %d and %s",
				n, need.CPUs, preflight.FormatBytes(need.Memory), info.NCPU, preflight.FormatBytes(info.MemTotal)), preflight.CheckResources(info, need)
		}},
		{Name: "inotify", After: []string{"docker"}, Run: func(context.Context) (string, error) {
			if n < 2 || !localDocker() {
				return "not checked: one cluster, or a remote Docker engine", nil
			}
			return "limits fit several clusters", preflight.CheckInotify("/proc/sys/fs/inotify")
		}},
		{Name: "node-image", After: nodeImageNeeds, Run: func(ctx context.Context) (string, error) {
			if p.offline() && !p.nodeImageSet {
				pinned, found, err := checkOfflineNodeImage(ctx, p.dockerBin, p.nodeImage)
				if err != nil {
					return "", err
				}
				p.nodeImage = pinned
				return found + ", pinned as " + pinned, nil
			}
			return p.nodeImage + " (kind library " + LibraryVersion() + ")", preflight.CheckNodeImage(p.nodeImage)
		}},
		{Name: "registry", After: []string{"docker"}, Run: func(ctx context.Context) (string, error) {
			if !p.offline() {
				return "not used: images come from their registries", nil
			}
			return checkRegistry(ctx, p.dockerBin)
		}},
		{Name: "ingress", After: []string{"docker"}, Run: func(context.Context) (string, error) {
			if p.ingressMode == IngressLoadBalancer && runtime.GOOS != "linux" {
				return "", preflight.Warn("use the host port mode (--kind-ingress hostport), the default on this system",
					"the ingress gateway's LoadBalancer address is on a Docker network that %s cannot route to", runtime.GOOS)
			}
			if why := unroutableNetworks(info); p.ingressMode == IngressLoadBalancer && why != "" {
				if p.ingressChosen {
					return "", preflight.Warn("use the host port mode (--kind-ingress hostport)",
						"the Docker engine %s: this host cannot route to its container networks, where the gateway's LoadBalancer address is", why)
				}
				p.ingressMode = IngressHostPort
				return "hostport: the Docker engine " + why + ", so this host cannot route to its container networks", nil
			}
			return string(p.ingressMode), nil
		}},
		{Name: "kind-clusters", After: []string{"docker"}, Run: func(context.Context) (string, error) {
			names, err := p.kindProvider().List()
			if err != nil {
				return "", preflight.Fail("check that `docker ps` works", "list kind clusters: %v", err)
			}
			var clash []string
			for _, c := range s.Spec.Clusters {
				if slices.Contains(names, p.KindName(c.Name)) {
					clash = append(clash, p.KindName(c.Name))
				}
			}
			switch {
			case len(clash) == 0:
				return "no kind cluster of the drill's names exists", nil
			case p.reuse:
				return "reusing " + strings.Join(clash, ", "), nil
			}
			return "", preflight.Fail("pass --reuse to use them (clusters kept with --keep), or delete them: kind delete clusters "+strings.Join(clash, " "),
				"kind clusters %s already exist", strings.Join(clash, ", "))
		}},
		// Downloads come after the Docker checks: a machine that cannot run
		// the clusters does not need them.
		{Name: "istioctl", After: []string{"docker", "docker-engine", "resources"}, Run: func(ctx context.Context) (string, error) {
			if p.offline() {
				var err error
				if art.istioctl, err = offlineIstioctl(ctx); err != nil {
					return "", err
				}
				return "istioctl " + art.istioctl.Version + " (offline, built from tools/istio) at " + art.istioctl.Path, nil
			}
			a, err := IstioctlArtifact(p.istioReleases, IstioVersion, runtime.GOOS, runtime.GOARCH)
			if err != nil {
				return "", err
			}
			if art.istioctl, err = EnsureIstioctl(ctx, p.http, p.binDir, a, IstioVersion, p.log); err != nil {
				return "", err
			}
			return "istioctl " + art.istioctl.Version + " at " + art.istioctl.Path, nil
		}},
		{Name: "metallb", After: []string{"docker", "docker-engine", "resources"}, Run: func(ctx context.Context) (string, error) {
			if p.offline() {
				var path string
				var err error
				if art.metallb, path, err = offlineMetalLBManifest(); err != nil {
					return "", err
				}
				return "MetalLB " + MetalLBVersion + " manifest (offline, from its Go module; pinned checksum) at " + path, nil
			}
			path, err := Fetch(ctx, p.http, p.binDir, MetalLBArtifact(p.metallbReleases), p.log)
			if err != nil {
				return "", err
			}
			if art.metallb, err = os.ReadFile(path); err != nil {
				return "", err
			}
			return "MetalLB " + MetalLBVersion + " manifest at " + path, nil
		}},
	}
	if err := preflight.Run(ctx, checks, preflight.WithLogger(p.log)); err != nil {
		return nil, err
	}
	return art, nil
}

// unroutableNetworks says why the host cannot reach the engine's container
// networks, "" when it can: a rootless engine keeps them in its own network
// namespace, and Docker Desktop (on Linux too) runs the engine in a VM (kind
// docs: user/rootless, user/loadbalancer).
func unroutableNetworks(info *preflight.DockerInfo) string {
	switch {
	case info.Rootless:
		return "runs rootless"
	case strings.Contains(info.OperatingSystem, "Docker Desktop"):
		return "runs in Docker Desktop's VM"
	}
	return ""
}

// localDocker reports whether the Docker engine runs on this machine, whose
// kernel limits then apply to the kind nodes.
func localDocker() bool {
	if runtime.GOOS != "linux" {
		return false
	}
	h := os.Getenv("DOCKER_HOST")
	return h == "" || strings.HasPrefix(h, "unix://")
}

// defaultStateDir is where kubeconfigs, operators and the mesh CA live:
// $XDG_CACHE_HOME/drill/kind (~/.cache/drill/kind), or ~/Library/Caches on
// macOS.
func defaultStateDir() string {
	if d, err := os.UserCacheDir(); err == nil {
		return filepath.Join(d, "drill", "kind")
	}
	return filepath.Join(os.TempDir(), "drill-kind")
}

// BinDirEnv overrides where downloads are kept; the local provider reads the
// same variable for its control-plane binaries.
const BinDirEnv = "DRILL_BIN_DIR"

const drillModule = "github.com/meshdrill/drill"

// defaultBinDir is $DRILL_BIN_DIR, else bin/ of the drill checkout holding
// the working directory (where `make` keeps every tool), else
// <cache>/drill/bin.
func defaultBinDir() string {
	if d := os.Getenv(BinDirEnv); d != "" {
		return d
	}
	if wd, err := os.Getwd(); err == nil {
		for dir := wd; ; dir = filepath.Dir(dir) {
			if isDrillModule(filepath.Join(dir, "go.mod")) {
				return filepath.Join(dir, "bin")
			}
			if filepath.Dir(dir) == dir {
				break
			}
		}
	}
	if d, err := os.UserCacheDir(); err == nil {
		return filepath.Join(d, "drill", "bin")
	}
	return filepath.Join(os.TempDir(), "drill-bin")
}

func isDrillModule(gomod string) bool {
	f, err := os.Open(gomod)
	if err != nil {
		return false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if line := strings.TrimSpace(sc.Text()); strings.HasPrefix(line, "module ") {
			return strings.TrimSpace(strings.TrimPrefix(line, "module ")) == drillModule
		}
	}
	return false
}
