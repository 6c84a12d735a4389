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

// TestImagesMode: DRILL_KIND_IMAGES=offline switches the node and Bookinfo
// images to those make images builds, explicit image options still win, and a
// mode that does not exist is an error naming the variable.
func TestImagesMode(t *testing.T) {
	t.Setenv(ImagesEnv, ImagesOffline)
	p := New()
	if p.nodeImage != OfflineNodeImage || p.bookinfoImages != [2]string{OfflineBookinfoRegistry, bookinfo.Tag} || p.DataPlane() != cluster.DataPlaneNone {
		t.Fatalf("offline: node %s, bookinfo %v, data plane %s", p.nodeImage, p.bookinfoImages, p.DataPlane())
	}
	p = New(WithNodeImage("mine:v1@sha256:00"), WithBookinfoImages("mirror", "1"))
	if p.nodeImage != "mine:v1@sha256:00" || p.bookinfoImages != [2]string{"mirror", "1"} {
		t.Fatalf("offline with overrides: node %s, bookinfo %v", p.nodeImage, p.bookinfoImages)
	}
	t.Setenv(ImagesEnv, "")
	p = New()
	if p.nodeImage != NodeImage || p.bookinfoImages[0] != "" || p.DataPlane() != cluster.DataPlaneEnvoy {
		t.Fatalf("default: node %s, bookinfo %v", p.nodeImage, p.bookinfoImages)
	}
	p = New(WithImages("local"))
	if p.imagesErr == nil || !strings.Contains(p.imagesErr.Error(), ImagesEnv) {
		t.Fatalf("an unknown mode: %v, want an error naming %s", p.imagesErr, ImagesEnv)
	}
}
