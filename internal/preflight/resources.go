package preflight

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
)

const gib = 1 << 30

// Per-cluster needs of a kind drill, measured as what one single-node kind
// cluster with Istio (istiod, an ingress and an east-west gateway) and
// Bookinfo with sidecars (six pods, three of them reviews on Open Liberty)
// holds once running: about 3 GiB, the largest share being the reviews JVMs and
// the node's own control plane. CPUs are what keeps start-up of several
// clusters at once from timing out; the drill itself then needs little.
const (
	MemoryPerCluster = 3 * gib
	// MemoryBase is left for the Docker engine and the host's other work.
	MemoryBase     = 1 * gib
	CPUsPerCluster = 1
	CPUsBase       = 1
)

// Need is what a drill needs of the Docker engine.
type Need struct {
	Clusters int
	CPUs     int
	Memory   int64
}

// Requirements is what a drill of n kind clusters needs: for the seed's two
// clusters 3 CPUs and 7 GiB, for three clusters 4 CPUs and 10 GiB.
func Requirements(clusters int) Need {
	return Need{
		Clusters: clusters,
		CPUs:     CPUsBase + CPUsPerCluster*clusters,
		Memory:   MemoryBase + MemoryPerCluster*int64(clusters),
	}
}

// RequirementsWithoutMesh is what n kind clusters need that run no Istio and
// drill's Go Bookinfo (the offline images): a node's control plane and kubelet
// take about half a CPU at rest and under 1 GiB, so two clusters fit 2 CPUs and
// 4 GiB (measured figures in docs/kind.md).
func RequirementsWithoutMesh(clusters int) Need {
	return Need{
		Clusters: clusters,
		CPUs:     CPUsBase + (clusters+1)/2,
		Memory:   1<<30 + 3<<29*int64(clusters),
	}
}

// RequirementsEmulatedMesh is what n kind clusters on the offline images
// need: Istio's control plane and pilot-agents are real, but the sidecars'
// Envoy is drill's Go emulation and Bookinfo is drill's Go Bookinfo, with
// no JVM; a cluster holds about 1.5 GiB once running, and two fit 2 CPUs
// (measured figures in docs/kind.md).
func RequirementsEmulatedMesh(clusters int) Need {
	return Need{
		Clusters: clusters,
		CPUs:     CPUsBase + (clusters+1)/2,
		Memory:   MemoryBase + 2*gib*int64(clusters),
	}
}

// CheckResources compares what the Docker engine has with need. On Docker
// Desktop the engine's CPUs and memory are the VM's, set in its Resources
// settings, not the host's. Too little memory fails the preflight: nodes
// are then killed for it mid-drill. Too few CPUs only warns: the clusters
// start more slowly and the load's latency suffers, but failover is still
// judged (three clusters on the offline images ran to a verdict on 2 CPUs,
// docs/kind.md).
func CheckResources(info *DockerInfo, need Need) error {
	const fix = "give the Docker engine more (Docker Desktop: Settings → Resources), run a scenario with fewer clusters, or use the local provider (--provider local)"
	var short []string
	cpus := info.NCPU > 0 && info.NCPU < need.CPUs
	if cpus {
		short = append(short, fmt.Sprintf("%d CPUs (it has %d)", need.CPUs, info.NCPU))
	}
	if info.MemTotal > 0 && info.MemTotal < need.Memory {
		short = append(short, fmt.Sprintf("%s of memory (it has %s)", FormatBytes(need.Memory), FormatBytes(info.MemTotal)))
	}
	switch {
	case len(short) == 0:
		return nil
	case cpus && len(short) == 1:
		return Warn(fix, "a drill of %d kind clusters wants %s: the clusters will start slowly and latency expectations may fail", need.Clusters, short[0])
	}
	return Fail(fix, "a drill of %d kind clusters needs %s for the Docker engine", need.Clusters, strings.Join(short, " and "))
}

// IsWarning reports whether err is a finding that does not fail the
// preflight (see Warn).
func IsWarning(err error) bool {
	var w *warning
	return errors.As(err, &w)
}

// Recommended inotify limits for several kind clusters on one host (kind docs:
// known-issues, "Pod errors due to too many open files").
const (
	RecommendedInotifyWatches   = 524288
	RecommendedInotifyInstances = 512
)

// CheckInotify warns when the Linux host's inotify limits are below kind's
// recommendation for running several clusters: kubelets and Istio's agents
// then fail with "too many open files". It reads procDir (normally
// /proc/sys/fs/inotify) and says nothing on other systems, where the limits
// belong to Docker Desktop's VM.
func CheckInotify(procDir string) error {
	if runtime.GOOS != "linux" {
		return nil
	}
	var low []string
	for _, l := range []struct {
		file string
		want int
	}{
		{"max_user_watches", RecommendedInotifyWatches},
		{"max_user_instances", RecommendedInotifyInstances},
	} {
		b, err := os.ReadFile(procDir + "/" + l.file)
		if err != nil {
			continue
		}
		n, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil || n >= l.want {
			continue
		}
		low = append(low, fmt.Sprintf("fs.inotify.%s=%d (kind recommends %d)", l.file, n, l.want))
	}
	if len(low) == 0 {
		return nil
	}
	return Warn(fmt.Sprintf("raise them: sudo sysctl fs.inotify.max_user_watches=%d fs.inotify.max_user_instances=%d", RecommendedInotifyWatches, RecommendedInotifyInstances),
		"inotify limits are low for several kind clusters, whose pods may fail with \"too many open files\": %s", strings.Join(low, ", "))
}

// FormatBytes renders n in GiB with one decimal, or MiB below 1 GiB.
func FormatBytes(n int64) string {
	if n >= gib {
		return strconv.FormatFloat(float64(n)/gib, 'f', 1, 64) + " GiB"
	}
	return strconv.FormatInt(n>>20, 10) + " MiB"
}
