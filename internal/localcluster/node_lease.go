package localcluster

import (
	"context"
	"fmt"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
)

// NodeLeaseNamespace holds the kubelets' heartbeat leases.
const NodeLeaseNamespace = "kube-node-lease"

// The node's heartbeats are the kubelet's: a Lease in kube-node-lease renewed
// well within its duration, which the node lifecycle controller reads to judge
// the node alive, and a status update that refreshes the Ready condition's
// heartbeat. With both kept, kube-controller-manager's node lifecycle
// controller, when it runs, never finds the node unreachable, and so never
// taints it or evicts its pods.

func (n *Node) heartbeatLease() {
	defer n.loops.Done()
	t := time.NewTicker(n.cfg.leaseRenew)
	defer t.Stop()
	for {
		select {
		case <-n.ctx.Done():
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(n.ctx, n.cfg.leaseRenew)
		if err := n.renewLease(ctx, nil); err != nil && n.ctx.Err() == nil {
			n.cfg.log.Warn("renew node lease", "cluster", n.cluster, "node", n.name, "err", err)
		}
		cancel()
	}
}

// renewLease creates or renews the node's lease. node, when given, becomes
// the lease's owner, so deleting the Node takes its lease with it.
func (n *Node) renewLease(ctx context.Context, node *corev1.Node) error {
	leases := n.kube.CoordinationV1().Leases(NodeLeaseNamespace)
	holder := n.name
	duration := int32(n.cfg.leaseDuration / time.Second)
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		now := metav1.NewMicroTime(time.Now())
		l, err := leases.Get(ctx, n.name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			l = &coordinationv1.Lease{
				ObjectMeta: metav1.ObjectMeta{Name: n.name, Namespace: NodeLeaseNamespace},
				Spec: coordinationv1.LeaseSpec{
					HolderIdentity: &holder, LeaseDurationSeconds: &duration,
					AcquireTime: &now, RenewTime: &now,
				},
			}
			if node != nil {
				l.OwnerReferences = []metav1.OwnerReference{{APIVersion: "v1", Kind: "Node", Name: node.Name, UID: node.UID}}
			}
			_, err = leases.Create(ctx, l, metav1.CreateOptions{FieldManager: fieldManager})
			return err
		}
		if err != nil {
			return err
		}
		l.Spec.HolderIdentity, l.Spec.LeaseDurationSeconds, l.Spec.RenewTime = &holder, &duration, &now
		if node != nil {
			l.OwnerReferences = []metav1.OwnerReference{{APIVersion: "v1", Kind: "Node", Name: node.Name, UID: node.UID}}
		}
		_, err = leases.Update(ctx, l, metav1.UpdateOptions{FieldManager: fieldManager})
		return err
	})
	if err != nil {
		return fmt.Errorf("cluster %s: node lease %s/%s: %w", n.cluster, NodeLeaseNamespace, n.name, err)
	}
	return nil
}

func (n *Node) heartbeatStatus() {
	defer n.loops.Done()
	t := time.NewTicker(n.cfg.statusInterval)
	defer t.Stop()
	for {
		select {
		case <-n.ctx.Done():
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(n.ctx, n.cfg.statusInterval)
		err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
			node, err := n.kube.CoreV1().Nodes().Get(ctx, n.name, metav1.GetOptions{})
			if err != nil {
				return err
			}
			node.Status = n.nodeStatus(node.Status)
			_, err = n.kube.CoreV1().Nodes().UpdateStatus(ctx, node, metav1.UpdateOptions{FieldManager: fieldManager})
			return err
		})
		cancel()
		if err != nil && n.ctx.Err() == nil {
			n.cfg.log.Warn("report node status", "cluster", n.cluster, "node", n.name, "err", err)
		}
	}
}
