package kind

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/wait"
)

// Why MetalLB and not cloud-provider-kind: MetalLB runs inside each cluster
// from one pinned, checksummed manifest, as in Istio's own multicluster CI on
// kind, so the provider starts no process on the host and needs no access to
// the Docker socket beyond kind's own; its addresses are on the kind network,
// which every node (and, on Linux, the host) routes to. cloud-provider-kind
// would add a host-side controller to start, pin and stop.

// MetalLB's objects drill creates and waits for.
const (
	MetalLBNamespace  = "metallb-system"
	metallbController = "controller"
	metallbSpeaker    = "speaker"
	metallbPoolName   = "drill"
)

// MetalLBReleases is where MetalLB's manifests are downloaded from: the
// repository at the release tag.
const MetalLBReleases = "https://raw.githubusercontent.com/metallb/metallb"

// MetalLBArtifact is MetalLB's native (layer 2) manifest at MetalLBVersion.
func MetalLBArtifact(base string) Artifact {
	return Artifact{
		Name:   "MetalLB " + MetalLBVersion + " manifest",
		URL:    strings.TrimRight(base, "/") + "/" + MetalLBVersion + "/config/manifests/metallb-native.yaml",
		SHA256: metallbManifestSHA256,
		File:   "metallb-native-" + MetalLBVersion + ".yaml",
	}
}

// poolSize is how many LoadBalancer addresses each cluster gets: it needs two
// (ingress and east-west gateways); the rest is room for a user's own.
const poolSize = 8

// MetalLBPool is the address range the index-th cluster's MetalLB hands out:
// poolSize addresses per cluster taken from the top of the kind network,
// below its broadcast address, where Docker, which allocates container
// addresses from the bottom, does not reach. The network's gateway must not
// fall in it (kind issue 3167).
func MetalLBPool(subnet netip.Prefix, gateway netip.Addr, index int) (first, last netip.Addr, err error) {
	subnet = subnet.Masked()
	if !subnet.Addr().Is4() {
		return first, last, fmt.Errorf("kind network %s is not IPv4", subnet)
	}
	if index < 0 || index >= MaxClusters {
		return first, last, fmt.Errorf("cluster #%d: at most %d clusters", index+1, MaxClusters)
	}
	size := 1 << (32 - subnet.Bits())
	need := poolSize*(index+1) + 2 // the pools, the broadcast address and the network address
	if size < need+16 {            // and room for the nodes' own addresses
		return first, last, fmt.Errorf("kind network %s is too small for %d clusters' LoadBalancer addresses", subnet, index+1)
	}
	base := subnet.Addr().As4()
	top := uint32(base[0])<<24 | uint32(base[1])<<16 | uint32(base[2])<<8 | uint32(base[3]) + uint32(size) - 1
	end := top - 1 - uint32(poolSize*index)
	start := end - poolSize + 1
	first, last = addr4(start), addr4(end)
	if gateway.IsValid() && gateway.Compare(first) >= 0 && gateway.Compare(last) <= 0 {
		return first, last, fmt.Errorf("kind network %s: its gateway %s falls in cluster #%d's LoadBalancer range %s-%s", subnet, gateway, index+1, first, last)
	}
	return first, last, nil
}

func addr4(v uint32) netip.Addr {
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// MetalLBPoolObjects are the IPAddressPool of first-last and the
// L2Advertisement announcing it (metallb.io docs: configuration, layer 2).
func MetalLBPoolObjects(first, last netip.Addr) []*unstructured.Unstructured {
	pool := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "metallb.io/v1beta1",
		"kind":       "IPAddressPool",
		"metadata":   map[string]any{"name": metallbPoolName, "namespace": MetalLBNamespace},
		"spec":       map[string]any{"addresses": []any{first.String() + "-" + last.String()}},
	}}
	l2 := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "metallb.io/v1beta1",
		"kind":       "L2Advertisement",
		"metadata":   map[string]any{"name": metallbPoolName, "namespace": MetalLBNamespace},
		"spec":       map[string]any{"ipAddressPools": []any{metallbPoolName}},
	}}
	return []*unstructured.Unstructured{pool, l2}
}

// installMetalLB applies MetalLB's manifest, waits for its controller and
// speaker, then gives it the cluster's address pool. The pool is applied
// again until MetalLB's validating webhook, served by the controller, answers.
func (c *clusterRun) installMetalLB(ctx context.Context, manifest []byte, first, last netip.Addr) error {
	objs, err := DecodeManifest(manifest)
	if err != nil {
		return fmt.Errorf("cluster %s: MetalLB manifest: %w", c.name, err)
	}
	c.log.Info("installing MetalLB", "version", MetalLBVersion, "objects", len(objs), "pool", first.String()+"-"+last.String())
	ap := newApplier(c.kube.Discovery(), c.dyn)
	if err := ap.applyAll(ctx, objs); err != nil {
		return fmt.Errorf("cluster %s: install MetalLB: %w", c.name, err)
	}
	if err := c.waitDeployment(ctx, MetalLBNamespace, metallbController, c.p.readyTimeout); err != nil {
		return err
	}
	if err := c.waitDaemonSet(ctx, MetalLBNamespace, metallbSpeaker, c.p.readyTimeout); err != nil {
		return err
	}
	var lastErr error
	err = wait.PollUntilContextTimeout(ctx, 2*time.Second, c.p.readyTimeout, true, func(ctx context.Context) (bool, error) {
		lastErr = ap.applyAll(ctx, MetalLBPoolObjects(first, last))
		if lastErr == nil {
			return true, nil
		}
		if isWebhookUnavailable(lastErr) {
			c.log.Debug("MetalLB's webhook does not answer yet", "error", lastErr)
			return false, nil
		}
		return false, lastErr
	})
	if err != nil {
		if lastErr == nil {
			lastErr = err
		}
		return fmt.Errorf("cluster %s: configure MetalLB's address pool: %w; see `kubectl --kubeconfig %s -n %s logs deploy/%s`",
			c.name, lastErr, c.kubeconfig, MetalLBNamespace, metallbController)
	}
	c.log.Info("MetalLB ready", "pool", first.String()+"-"+last.String())
	return nil
}

// metallbInstalled reports whether a reused cluster already runs MetalLB with
// drill's pool.
func (c *clusterRun) metallbInstalled(ctx context.Context) bool {
	_, err := c.dyn.Resource(ipAddressPools).Namespace(MetalLBNamespace).Get(ctx, metallbPoolName, metav1.GetOptions{})
	return err == nil
}
