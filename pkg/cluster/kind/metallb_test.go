package kind

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/meshdrill/drill/internal/localcluster"
	"github.com/meshdrill/drill/internal/localcluster/localtest"
)

func TestMetalLBPool(t *testing.T) {
	kindNet := netip.MustParsePrefix("172.18.0.0/16")
	gw := netip.MustParseAddr("172.18.0.1")
	tests := []struct {
		subnet      netip.Prefix
		gateway     netip.Addr
		index       int
		first, last string
		err         string
	}{
		{kindNet, gw, 0, "172.18.255.247", "172.18.255.254", ""},
		{kindNet, gw, 1, "172.18.255.239", "172.18.255.246", ""},
		{kindNet, gw, 2, "172.18.255.231", "172.18.255.238", ""},
		{netip.MustParsePrefix("192.168.49.0/24"), netip.MustParseAddr("192.168.49.1"), 0, "192.168.49.247", "192.168.49.254", ""},
		{netip.MustParsePrefix("172.18.0.7/16"), gw, 0, "172.18.255.247", "172.18.255.254", ""},
		// A gateway at the top of the range (kind issue 3167).
		{netip.MustParsePrefix("10.89.0.0/24"), netip.MustParseAddr("10.89.0.250"), 0, "", "", "its gateway 10.89.0.250 falls in cluster #1's LoadBalancer range"},
		{netip.MustParsePrefix("10.89.0.0/27"), netip.Addr{}, 1, "", "", "too small"},
		{netip.MustParsePrefix("fc00:f853:ccd:e793::/64"), netip.Addr{}, 0, "", "", "not IPv4"},
		{kindNet, gw, MaxClusters, "", "", "at most 20 clusters"},
	}
	for _, tt := range tests {
		first, last, err := MetalLBPool(tt.subnet, tt.gateway, tt.index)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("MetalLBPool(%s, %s, %d) = %v, want error %q", tt.subnet, tt.gateway, tt.index, err, tt.err)
			}
			continue
		}
		if err != nil || first.String() != tt.first || last.String() != tt.last {
			t.Errorf("MetalLBPool(%s, %s, %d) = %s-%s, %v; want %s-%s", tt.subnet, tt.gateway, tt.index, first, last, err, tt.first, tt.last)
		}
	}
	// The pools of all clusters are disjoint.
	seen := map[netip.Addr]int{}
	for i := 0; i < MaxClusters; i++ {
		first, last, err := MetalLBPool(kindNet, gw, i)
		if err != nil {
			t.Fatal(err)
		}
		for a := first; a.Compare(last) <= 0; a = a.Next() {
			if j, dup := seen[a]; dup {
				t.Fatalf("%s is in the pools of clusters %d and %d", a, j, i)
			}
			seen[a] = i
		}
	}
}

// TestMetalLBManifestPinned: the file in testdata is MetalLB's manifest at
// the pinned tag (taken from the release's source), and its checksum is the
// one drill verifies the download against.
func TestMetalLBManifestPinned(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("testdata", "metallb-native-"+MetalLBVersion+".yaml"))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	if got := hex.EncodeToString(sum[:]); got != metallbManifestSHA256 {
		t.Fatalf("testdata manifest sha256 %s, pinned %s", got, metallbManifestSHA256)
	}
	if !strings.Contains(string(b), "quay.io/metallb/controller:"+MetalLBVersion) {
		t.Fatalf("the manifest does not run MetalLB %s", MetalLBVersion)
	}
	a := MetalLBArtifact(MetalLBReleases)
	if a.URL != "https://raw.githubusercontent.com/metallb/metallb/v0.15.2/config/manifests/metallb-native.yaml" || a.SHA256 != metallbManifestSHA256 {
		t.Fatalf("artifact %+v", a)
	}
	objs, err := DecodeManifest(b)
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]int{}
	for _, o := range objs {
		kinds[o.GetKind()]++
	}
	if len(objs) != 25 || kinds["CustomResourceDefinition"] != 8 || kinds["Deployment"] != 1 || kinds["DaemonSet"] != 1 {
		t.Fatalf("%d objects: %v", len(objs), kinds)
	}
}

func TestDecodeManifestErrors(t *testing.T) {
	if _, err := DecodeManifest([]byte("---\n# only a comment\n---\n")); err != nil {
		t.Errorf("empty documents: %v", err)
	}
	if _, err := DecodeManifest([]byte("apiVersion: v1\nkind: ConfigMap\n---\nmetadata: {name: x}\n")); err == nil || !strings.Contains(err.Error(), "document 2: no apiVersion or kind") {
		t.Errorf("document without kind: %v", err)
	}
	if _, err := DecodeManifest([]byte("kind: [\n")); err == nil || !strings.Contains(err.Error(), "document 1") {
		t.Errorf("bad YAML: %v", err)
	}
}

// TestInstallMetalLBManifest applies MetalLB's real manifest to a real
// kube-apiserver, as drill does on kind, and checks the pool: with no pod to
// serve MetalLB's validating webhook, the pool is refused as "webhook
// unavailable", which drill keeps retrying until the controller answers.
func TestInstallMetalLBManifest(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a kube-apiserver")
	}
	cp := localtest.Start(t, localcluster.WithoutIstiod())
	cfg := cp.RESTConfig()
	kube := kubernetes.NewForConfigOrDie(cfg)
	dyn := dynamic.NewForConfigOrDie(cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	b, err := os.ReadFile(filepath.Join("testdata", "metallb-native-"+MetalLBVersion+".yaml"))
	if err != nil {
		t.Fatal(err)
	}
	objs, err := DecodeManifest(b)
	if err != nil {
		t.Fatal(err)
	}
	ap := newApplier(kube.Discovery(), dyn)
	if err := ap.applyAll(ctx, objs); err != nil {
		t.Fatal(err)
	}
	// Applying again changes nothing and fails on nothing.
	if err := ap.applyAll(ctx, objs); err != nil {
		t.Fatalf("second apply: %v", err)
	}
	if _, err := kube.AppsV1().Deployments(MetalLBNamespace).Get(ctx, metallbController, metav1.GetOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := kube.AppsV1().DaemonSets(MetalLBNamespace).Get(ctx, metallbSpeaker, metav1.GetOptions{}); err != nil {
		t.Fatal(err)
	}
	crd := schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}
	if _, err := dyn.Resource(crd).Get(ctx, "ipaddresspools.metallb.io", metav1.GetOptions{}); err != nil {
		t.Fatal(err)
	}

	first, last, err := MetalLBPool(netip.MustParsePrefix("172.18.0.0/16"), netip.MustParseAddr("172.18.0.1"), 0)
	if err != nil {
		t.Fatal(err)
	}
	// The CRDs must be established before their kinds resolve: wait for that
	// condition, then expect the webhook's refusal.
	var applyErr error
	_ = wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		applyErr = ap.applyAll(ctx, MetalLBPoolObjects(first, last))
		return applyErr == nil || isWebhookUnavailable(applyErr), nil
	})
	if applyErr == nil {
		t.Fatal("the pool was accepted with no webhook running")
	}
	if !isWebhookUnavailable(applyErr) {
		t.Fatalf("pool apply failed with %v; want the webhook's unavailability", applyErr)
	}
	if isWebhookUnavailable(apierrors.NewForbidden(schema.GroupResource{Resource: "ipaddresspools"}, "drill", nil)) {
		t.Error("a Forbidden error was taken for an unavailable webhook")
	}
}

func TestRangePrefixes(t *testing.T) {
	for _, tc := range []struct{ first, last, want string }{
		{"172.18.255.200", "172.18.255.250", "172.18.255.200/29 172.18.255.208/28 172.18.255.224/28 172.18.255.240/29 172.18.255.248/31 172.18.255.250/32"},
		{"172.18.1.0", "172.18.1.255", "172.18.1.0/24"},
		{"10.0.0.5", "10.0.0.5", "10.0.0.5/32"},
		{"10.0.0.6", "10.0.0.5", ""},
	} {
		var got []string
		for _, p := range rangePrefixes(netip.MustParseAddr(tc.first), netip.MustParseAddr(tc.last)) {
			got = append(got, p.String())
		}
		if s := strings.Join(got, " "); s != tc.want {
			t.Errorf("%s-%s: %s, want %s", tc.first, tc.last, s, tc.want)
		}
	}
}

// TestClusterNetwork: a kind cluster's network for a partition holds its
// nodes, pod and service ranges and MetalLB pool, and a filter per node.
func TestClusterNetwork(t *testing.T) {
	p := &Provider{dockerBin: "docker"}
	c := &clusterRun{p: p, index: 1, nodes: []string{"drill-cluster2-control-plane"},
		nodeAddrs: []netip.Addr{netip.MustParseAddr("172.18.0.3")},
		pool:      [2]netip.Addr{netip.MustParseAddr("172.18.255.128"), netip.MustParseAddr("172.18.255.191")}}
	n := c.network()
	var got []string
	for _, r := range n.ranges {
		got = append(got, r.String())
	}
	if s := strings.Join(got, " "); s != "172.18.0.3/32 10.11.0.0/16 10.101.0.0/16 172.18.255.128/26" {
		t.Errorf("ranges %s", s)
	}
	if len(n.filters) != 1 || strings.Join(n.filters[0].Command, " ") != "docker exec drill-cluster2-control-plane iptables" {
		t.Errorf("filters %+v", n.filters)
	}
}
