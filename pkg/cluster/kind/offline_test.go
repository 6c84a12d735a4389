package kind

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/meshdrill/drill/internal/bookinfo"
	"github.com/meshdrill/drill/pkg/cluster"
	"github.com/meshdrill/drill/pkg/cluster/existing"
)

// TestOfflineKubernetesVersion: the offline node image is named after the
// Kubernetes its kubelet and kubeadm are built from.
func TestOfflineKubernetesVersion(t *testing.T) {
	path := filepath.Join("..", "..", "..", "tools", "kube", "go.mod")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(strings.TrimPrefix(strings.TrimSpace(line), "require ")); len(f) >= 2 && f[0] == "k8s.io/kubernetes" {
			if f[1] != OfflineKubernetesVersion {
				t.Fatalf("tools/kube builds Kubernetes %s, OfflineKubernetesVersion says %s", f[1], OfflineKubernetesVersion)
			}
			return
		}
	}
	t.Fatal("tools/kube/go.mod requires no k8s.io/kubernetes")
}

// TestOfflineIstioVersion: the offline Istio images and istioctl are named
// after the commit of the istio.io/istio module tools/istio builds them from.
func TestOfflineIstioVersion(t *testing.T) {
	data, err := os.ReadFile("../../../tools/istio/go.mod")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(strings.TrimPrefix(strings.TrimSpace(line), "require ")); len(f) >= 2 && f[0] == "istio.io/istio" {
			commit := f[1][strings.LastIndex(f[1], "-")+1:]
			if !strings.HasSuffix(OfflineIstioVersion, "-dev."+commit) {
				t.Fatalf("tools/istio builds istio.io/istio %s (commit %s); OfflineIstioVersion says %s", f[1], commit, OfflineIstioVersion)
			}
			return
		}
	}
	t.Fatal("tools/istio/go.mod requires no istio.io/istio")
}

// TestImagesMode: DRILL_KIND_IMAGES=offline switches the node and Bookinfo
// images to those make images builds, explicit image options still win, and a
// mode that does not exist is an error naming the variable.
func TestImagesMode(t *testing.T) {
	t.Setenv(ImagesEnv, ImagesOffline)
	p := New()
	if p.nodeImage != OfflineNodeImage || p.bookinfoImages != [2]string{OfflineBookinfoRegistry, bookinfo.Tag} || p.DataPlane() != cluster.DataPlaneEmulated ||
		p.istioHub != OfflineIstioHub || p.istioVersion != OfflineIstioVersion {
		t.Fatalf("offline: node %s, bookinfo %v, data plane %s, istio %s:%s", p.nodeImage, p.bookinfoImages, p.DataPlane(), p.istioHub, p.istioVersion)
	}
	p = New(WithNodeImage("mine:v1@sha256:00"), WithBookinfoImages("mirror", "1"), WithIstioHub("mirror/istio"))
	if p.nodeImage != "mine:v1@sha256:00" || p.bookinfoImages != [2]string{"mirror", "1"} || p.istioHub != "mirror/istio" {
		t.Fatalf("offline with overrides: node %s, bookinfo %v, istio hub %s", p.nodeImage, p.bookinfoImages, p.istioHub)
	}
	t.Setenv(ImagesEnv, "")
	p = New()
	if p.nodeImage != NodeImage || p.bookinfoImages[0] != "" || p.DataPlane() != cluster.DataPlaneEnvoy || p.istioHub != IstioHub || p.istioVersion != IstioVersion {
		t.Fatalf("default: node %s, bookinfo %v, istio %s:%s", p.nodeImage, p.bookinfoImages, p.istioHub, p.istioVersion)
	}
	p = New(WithImages("local"))
	if p.imagesErr == nil || !strings.Contains(p.imagesErr.Error(), ImagesEnv) {
		t.Fatalf("an unknown mode: %v, want an error naming %s", p.imagesErr, ImagesEnv)
	}
}

// TestIstioctlVersionOutput: the version istioctl prints is read for a
// release and for a development build such as the offline one.
func TestIstioctlVersionOutput(t *testing.T) {
	for out, want := range map[string]string{
		"client version: 1.31.1\n":                  "1.31.1",
		"client version: " + OfflineIstioVersion:    OfflineIstioVersion,
		"client version: 1.32.0-beta.1\n":           "1.32.0-beta.1",
		"1.31-alpha.0123456789abcdef0123456789abcd": "1.31-alpha.0123456789abcdef0123456789abcd",
	} {
		m := semver.FindStringSubmatch(out)
		if m == nil || m[1] != want {
			t.Errorf("%q: read %v, want %s", out, m, want)
		}
	}
	if m := semver.FindStringSubmatch("no version here"); m != nil {
		t.Errorf("found a version in text without one: %v", m)
	}
}

// TestOfflineArtifactsErrors: without what make images leaves in the cache,
// the preflight names the command that builds it.
func TestOfflineArtifactsErrors(t *testing.T) {
	t.Setenv("DRILL_KIND_IMAGES_CACHE", t.TempDir())
	if _, err := offlineIstioctl(t.Context()); err == nil || !strings.Contains(err.Error(), "make docker images") {
		t.Errorf("no istioctl in the cache: %v, want an error naming make images", err)
	}
	if _, _, err := offlineMetalLBManifest(); err == nil || !strings.Contains(err.Error(), "make docker images") {
		t.Errorf("no MetalLB manifest in the cache: %v, want an error naming make images", err)
	}
	dir, _ := OfflineCacheDir()
	if err := os.WriteFile(filepath.Join(dir, "metallb-native-"+MetalLBVersion+".yaml"), []byte("not the release's bytes"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := offlineMetalLBManifest(); err == nil || !strings.Contains(err.Error(), metallbManifestSHA256) {
		t.Errorf("a manifest of other bytes: %v, want an error naming the pinned checksum", err)
	}
	data, err := os.ReadFile("testdata/metallb-native-" + MetalLBVersion + ".yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "metallb-native-"+MetalLBVersion+".yaml"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	if got, _, err := offlineMetalLBManifest(); err != nil || len(got) != len(data) {
		t.Errorf("the release's manifest: %v", err)
	}
}

// TestRemoteSecretsMissing: when istiod has not synced a cluster, the error
// says whether that cluster's remote secret is missing, unlabelled or there.
func TestRemoteSecretsMissing(t *testing.T) {
	labelled := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: remoteSecretPrefix + "cluster2", Namespace: existing.IstioNamespace,
		Labels: map[string]string{MultiClusterLabel: "true"}}}
	unlabelled := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: remoteSecretPrefix + "cluster3", Namespace: existing.IstioNamespace}}
	c := &clusterRun{name: "cluster1", kube: fake.NewClientset(labelled, unlabelled)}
	got := c.remoteSecretsMissing(t.Context(), []string{"cluster1", "cluster2", "cluster3", "cluster4"})
	for _, want := range []string{
		"remote secret istio-system/istio-remote-secret-cluster2 is there: istiod cannot reach or read cluster cluster2's API server",
		"istio-remote-secret-cluster3 lacks the label istio/multiCluster=true",
		"no remote secret istio-system/istio-remote-secret-cluster4 for cluster cluster4",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("%q lacks %q", got, want)
		}
	}
	if strings.Contains(got, "cluster1") {
		t.Errorf("%q speaks of the cluster's own secret", got)
	}
}

// TestPinOfflineNodeImage: the node image is pinned by the digest drill's
// registry gave it; without one the preflight says to push it, and an image
// make images did not build is refused.
func TestPinOfflineNodeImage(t *testing.T) {
	fake := filepath.Join(t.TempDir(), "docker")
	script := "#!/bin/sh\nprintf '%s\\n' " + `"$INSPECT"` + "\n"
	if err := os.WriteFile(fake, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("INSPECT", "abc123|other.example/kind-node@sha256:aaaa "+registryPush+"/kind-node@sha256:bbbb ")
	got, found, err := checkOfflineNodeImage(t.Context(), fake, OfflineNodeImage)
	if want := registryPush + "/kind-node:" + OfflineKubernetesVersion + "@sha256:bbbb"; err != nil || got != want {
		t.Errorf("pinned %q (%v), want %q", got, err, want)
	}
	if !strings.Contains(found, "built from key abc123") {
		t.Errorf("found %q does not name the key the image was built from", found)
	}
	if again, _, err := checkOfflineNodeImage(t.Context(), fake, got); err != nil || again != got {
		t.Errorf("pinning a pinned name: %q (%v)", again, err)
	}
	t.Setenv("INSPECT", "abc123|")
	if _, _, err := checkOfflineNodeImage(t.Context(), fake, OfflineNodeImage); err == nil || !strings.Contains(err.Error(), "make docker images") {
		t.Errorf("no registry digest: %v, want an error naming make images", err)
	}
	t.Setenv("INSPECT", "|"+registryPush+"/kind-node@sha256:bbbb")
	if _, _, err := checkOfflineNodeImage(t.Context(), fake, OfflineNodeImage); err == nil || !strings.Contains(err.Error(), "no drill.key label") {
		t.Errorf("an image without drill's key: %v, want it refused", err)
	}
}
