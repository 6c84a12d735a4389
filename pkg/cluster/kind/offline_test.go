package kind

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/meshdrill/drill/internal/bookinfo"
	"github.com/meshdrill/drill/pkg/cluster"
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
