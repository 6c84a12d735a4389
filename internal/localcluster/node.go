package localcluster

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"net/netip"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/retry"
	"k8s.io/client-go/util/workqueue"
)

// Node is the emulated node of a local cluster: kubelet and scheduler in one,
// for a cluster that has neither. It registers a Node and keeps it Ready with
// lease and status heartbeats; binds every pending pod to itself; and runs
// each pod bound to it: an address of its own (see LoopbackFor), the Go
// program of each container's image, the pod's sidecar when Istio would inject
// one and a SidecarFactory is given, status (Running, Ready, container states,
// restarts) as the kubelet reports it, and on deletion the kubelet's order:
// not ready first, so endpoints drop, then the containers stopped within the
// grace period, then the pod removed.
type Node struct {
	cfg     nodeConfig
	cluster string
	name    string
	kube    kubernetes.Interface
	alloc   *podAllocator
	ip      netip.Addr // the node's reported address
	lo      netip.Addr // its loopback twin
	version string     // the API server's version, reported as the kubelet's

	factory    informers.SharedInformerFactory
	pods       corelisters.PodLister
	namespaces corelisters.NamespaceLister
	proxy      *serviceProxy
	queue      workqueue.TypedRateLimitingInterface[string]
	events     record.EventBroadcaster
	kubelet    record.EventRecorder
	scheduler  record.EventRecorder

	ctx    context.Context // lives until Stop
	cancel context.CancelFunc
	loops  sync.WaitGroup // heartbeats and queue workers

	mu       sync.Mutex
	workers  map[string]*podWorker // by namespace/name
	podsWG   sync.WaitGroup
	stopping bool

	stopOnce sync.Once
	stopErr  error
}

// StartNode registers the emulated node of cluster (the cluster's name, as
// its workloads report it) and starts running its pods. clusterIndex is the
// cluster's position among the drill's clusters and picks its pod range
// (PodCIDRFor). ctx bounds the start only: the node runs until Stop. On error
// nothing StartNode started is left running.
func StartNode(ctx context.Context, cluster string, clusterIndex int, kube kubernetes.Interface, opts ...NodeOption) (_ *Node, err error) {
	cfg := defaultNodeConfig()
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.name == "" {
		cfg.name = cluster + "-worker"
	}
	if errs := validation.IsDNS1123Subdomain(cfg.name); len(errs) > 0 {
		return nil, fmt.Errorf("node %q: %s", cfg.name, strings.Join(errs, "; "))
	}
	if !cfg.podCIDR.IsValid() {
		if cfg.podCIDR, err = PodCIDRFor(clusterIndex); err != nil {
			return nil, fmt.Errorf("cluster %s: %w", cluster, err)
		}
	}
	if p := cfg.podCIDR; !p.Addr().Is4() || p.Addr().As4()[0] != 10 || p.Bits() < 8 || p.Bits() > 28 {
		return nil, fmt.Errorf("cluster %s: pod range %s: want an IPv4 range of 16 addresses or more inside 10.0.0.0/8, whose loopback twins are in 127.0.0.0/8", cluster, p)
	}
	if cfg.backoff <= 0 || cfg.maxBackoff < cfg.backoff || cfg.leaseRenew <= 0 || cfg.leaseDuration < cfg.leaseRenew || cfg.statusInterval <= 0 {
		return nil, fmt.Errorf("cluster %s: node back-off and heartbeat intervals must be positive, the maximum no less than the initial", cluster)
	}

	n := &Node{
		cfg: cfg, cluster: cluster, name: cfg.name, kube: kube,
		alloc:   newPodAllocator(cfg.podCIDR, true),
		workers: map[string]*podWorker{},
	}
	n.ip = n.alloc.nodeAddr()
	n.lo, _ = loopbackAddr(n.ip)
	n.ctx, n.cancel = context.WithCancel(context.Background())
	defer func() {
		if err != nil {
			_ = n.Stop(context.WithoutCancel(ctx))
		}
	}()

	if v, verr := kube.Discovery().ServerVersion(); verr == nil {
		n.version = v.GitVersion
	} else {
		return nil, fmt.Errorf("cluster %s: node %s: reach the API server: %w", cluster, n.name, verr)
	}
	if err := n.register(ctx); err != nil {
		return nil, err
	}

	n.startEvents()
	n.factory = informers.NewSharedInformerFactory(kube, 0)
	podInformer := n.factory.Core().V1().Pods()
	n.pods = podInformer.Lister()
	n.namespaces = n.factory.Core().V1().Namespaces().Lister()
	svcInformer := n.factory.Core().V1().Services()
	if err := svcInformer.Informer().AddIndexers(cache.Indexers{clusterIPIndex: clusterIPIndexFunc}); err != nil {
		return nil, fmt.Errorf("cluster %s: node %s: %w", cluster, n.name, err)
	}
	sliceInformer := n.factory.Discovery().V1().EndpointSlices().Informer()
	if err := sliceInformer.AddIndexers(cache.Indexers{sliceServiceIndex: sliceServiceIndexFunc}); err != nil {
		return nil, fmt.Errorf("cluster %s: node %s: %w", cluster, n.name, err)
	}
	n.proxy = &serviceProxy{
		services:   svcInformer.Lister(),
		serviceIdx: svcInformer.Informer().GetIndexer(),
		sliceIdx:   sliceInformer.GetIndexer(),
	}
	n.queue = workqueue.NewTypedRateLimitingQueueWithConfig(
		workqueue.DefaultTypedControllerRateLimiter[string](),
		workqueue.TypedRateLimitingQueueConfig[string]{Name: "drill-node-" + n.name})
	enqueue := func(obj any) {
		if key, err := cache.DeletionHandlingMetaNamespaceKeyFunc(obj); err == nil {
			n.queue.Add(key)
		}
	}
	if _, err := podInformer.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    enqueue,
		UpdateFunc: func(_, obj any) { enqueue(obj) },
		DeleteFunc: enqueue,
	}); err != nil {
		return nil, fmt.Errorf("cluster %s: node %s: %w", cluster, n.name, err)
	}
	n.factory.Start(n.ctx.Done())
	for typ, ok := range n.factory.WaitForCacheSync(ctx.Done()) {
		if !ok {
			return nil, fmt.Errorf("cluster %s: node %s: caches of %v did not sync: %w", cluster, n.name, typ, context.Cause(ctx))
		}
	}

	n.loops.Add(2 + cfg.workers)
	go n.heartbeatLease()
	go n.heartbeatStatus()
	for range cfg.workers {
		go n.work()
	}
	cfg.log.Info("emulated node started", "cluster", cluster, "node", n.name, "podCIDR", cfg.podCIDR)
	return n, nil
}

// Name is the Node's name.
func (n *Node) Name() string { return n.name }

// Cluster is the name of the node's cluster.
func (n *Node) Cluster() string { return n.cluster }

// PodCIDR is the node's pod range: the addresses its pods report.
func (n *Node) PodCIDR() netip.Prefix { return n.cfg.podCIDR }

// IP is the node's reported address (its pods' hostIP); it listens on
// LoopbackFor of it.
func (n *Node) IP() netip.Addr { return n.ip }

// Transport reaches Services as a pod in namespace without a sidecar would,
// through the node's kube-proxy-like resolution: http://reviews:9080/,
// http://reviews.default.svc.cluster.local:9080/, or a ClusterIP. Requests
// come from the node's own loopback address.
func (n *Node) Transport(namespace string) http.RoundTripper {
	return n.proxy.transport(namespace, n.lo)
}

// Stop stops every pod's containers and sidecar at once (as a node that
// loses power; the API is left as it is) and the node's own loops. Stop the
// node before its control plane. It is safe to call more than once.
func (n *Node) Stop(ctx context.Context) error {
	n.stopOnce.Do(func() {
		n.mu.Lock()
		n.stopping = true
		workers := make([]*podWorker, 0, len(n.workers))
		for _, w := range n.workers {
			workers = append(workers, w)
		}
		n.mu.Unlock()
		for _, w := range workers {
			w.stop()
		}
		n.cancel()
		if n.queue != nil {
			n.queue.ShutDown()
		}
		done := make(chan struct{})
		go func() {
			n.podsWG.Wait()
			n.loops.Wait()
			if n.factory != nil {
				n.factory.Shutdown()
			}
			if n.events != nil {
				n.events.Shutdown()
			}
			close(done)
		}()
		select {
		case <-done:
		case <-ctx.Done():
			n.stopErr = fmt.Errorf("node %s: stop: %w (some pods had not stopped)", n.name, context.Cause(ctx))
		}
		n.cfg.log.Info("emulated node stopped", "cluster", n.cluster, "node", n.name)
	})
	return n.stopErr
}

// register creates the Node, or takes over one of the same name, and reports
// its status.
func (n *Node) register(ctx context.Context) error {
	labels := n.nodeLabels()
	cidr := n.cfg.podCIDR.String()
	node := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: n.name, Labels: labels},
		Spec:       corev1.NodeSpec{PodCIDR: cidr, PodCIDRs: []string{cidr}},
	}
	got, err := n.kube.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{FieldManager: fieldManager})
	if apierrors.IsAlreadyExists(err) {
		got, err = n.kube.CoreV1().Nodes().Get(ctx, n.name, metav1.GetOptions{})
		if err == nil {
			if got.Spec.PodCIDR != "" && got.Spec.PodCIDR != cidr {
				return fmt.Errorf("cluster %s: node %s exists with pod range %s, not %s; delete it (kubectl delete node %s) or give this node another name",
					n.cluster, n.name, got.Spec.PodCIDR, cidr, n.name)
			}
			got.Labels = labels
			got.Spec.PodCIDR, got.Spec.PodCIDRs = cidr, []string{cidr}
			got, err = n.kube.CoreV1().Nodes().Update(ctx, got, metav1.UpdateOptions{FieldManager: fieldManager})
		}
	}
	if err != nil {
		return fmt.Errorf("cluster %s: register node %s: %w", n.cluster, n.name, err)
	}
	got.Status = n.nodeStatus(got.Status)
	if _, err := n.kube.CoreV1().Nodes().UpdateStatus(ctx, got, metav1.UpdateOptions{FieldManager: fieldManager}); err != nil {
		return fmt.Errorf("cluster %s: report status of node %s: %w", n.cluster, n.name, err)
	}
	if err := n.renewLease(ctx, got); err != nil {
		return err
	}
	return n.untaint(ctx)
}

// untaint removes the condition taints a new Node carries: the API server's
// TaintNodesByCondition admission gives every new Node
// node.kubernetes.io/not-ready:NoSchedule, and the node lifecycle controller
// removes it once the node reports Ready. The local control plane does not
// run that controller by default (DefaultControllers), so the node does what
// it would; where the controller runs, the two agree.
func (n *Node) untaint(ctx context.Context) error {
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		node, err := n.kube.CoreV1().Nodes().Get(ctx, n.name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		kept := node.Spec.Taints[:0]
		for _, t := range node.Spec.Taints {
			if t.Key != corev1.TaintNodeNotReady && t.Key != corev1.TaintNodeUnreachable {
				kept = append(kept, t)
			}
		}
		if len(kept) == len(node.Spec.Taints) {
			return nil
		}
		node.Spec.Taints = kept
		_, err = n.kube.CoreV1().Nodes().Update(ctx, node, metav1.UpdateOptions{FieldManager: fieldManager})
		return err
	})
	if err != nil {
		return fmt.Errorf("cluster %s: remove the not-ready taint of node %s: %w", n.cluster, n.name, err)
	}
	return nil
}

// maxPods is the kubelet's default --max-pods.
const maxPods = 110

// nodeStatus is the node's status as a healthy kubelet reports it, keeping
// the transition times of conditions that did not change.
func (n *Node) nodeStatus(prev corev1.NodeStatus) corev1.NodeStatus {
	now := metav1.Now()
	capacity := corev1.ResourceList{
		corev1.ResourceCPU:    *resource.NewQuantity(int64(runtime.NumCPU()), resource.DecimalSI),
		corev1.ResourceMemory: *resource.NewQuantity(memTotal(), resource.BinarySI),
		corev1.ResourcePods:   *resource.NewQuantity(maxPods, resource.DecimalSI),
	}
	cond := func(t corev1.NodeConditionType, s corev1.ConditionStatus, reason, msg string) corev1.NodeCondition {
		c := corev1.NodeCondition{Type: t, Status: s, Reason: reason, Message: msg, LastHeartbeatTime: now, LastTransitionTime: now}
		for _, p := range prev.Conditions {
			if p.Type == t && p.Status == s {
				c.LastTransitionTime = p.LastTransitionTime
			}
		}
		return c
	}
	return corev1.NodeStatus{
		Capacity:    capacity,
		Allocatable: capacity,
		Conditions: []corev1.NodeCondition{
			cond(corev1.NodeMemoryPressure, corev1.ConditionFalse, "KubeletHasSufficientMemory", "drill's emulated node has sufficient memory available"),
			cond(corev1.NodeDiskPressure, corev1.ConditionFalse, "KubeletHasNoDiskPressure", "drill's emulated node has no disk pressure"),
			cond(corev1.NodePIDPressure, corev1.ConditionFalse, "KubeletHasSufficientPID", "drill's emulated node has sufficient PID available"),
			cond(corev1.NodeReady, corev1.ConditionTrue, "KubeletReady", "drill's emulated node is posting ready status"),
		},
		Addresses: []corev1.NodeAddress{
			{Type: corev1.NodeInternalIP, Address: n.ip.String()},
			{Type: corev1.NodeHostName, Address: n.name},
		},
		NodeInfo: corev1.NodeSystemInfo{
			KubeletVersion:          n.version,
			ContainerRuntimeVersion: "drill://emulated",
			OperatingSystem:         runtime.GOOS,
			Architecture:            runtime.GOARCH,
			OSImage:                 "drill emulated node",
		},
	}
}

// memTotal is the machine's memory, which the node reports as its capacity.
func memTotal() int64 {
	const fallback = 8 << 30
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return fallback
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		fields := strings.Fields(s.Text())
		if len(fields) >= 2 && fields[0] == "MemTotal:" {
			if kb, err := strconv.ParseInt(fields[1], 10, 64); err == nil {
				return kb << 10
			}
		}
	}
	return fallback
}

// work processes the pod queue until Stop.
func (n *Node) work() {
	defer n.loops.Done()
	for {
		key, shutdown := n.queue.Get()
		if shutdown {
			return
		}
		if err := n.sync(key); err != nil {
			if n.ctx.Err() == nil {
				n.cfg.log.Warn("sync pod", "cluster", n.cluster, "pod", key, "err", err)
			}
			n.queue.AddRateLimited(key)
		} else {
			n.queue.Forget(key)
		}
		n.queue.Done(key)
	}
}

// sync brings one pod's reality in line with the API: binds it when it is
// pending, starts it when it is bound here, and hands deletions to its worker.
func (n *Node) sync(key string) error {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return nil
	}
	pod, err := n.pods.Pods(ns).Get(name)
	if apierrors.IsNotFound(err) {
		if w := n.worker(key); w != nil {
			w.gone()
		}
		return nil
	} else if err != nil {
		return err
	}
	if pod.Spec.NodeName == "" {
		return n.schedule(pod)
	}
	if pod.Spec.NodeName != n.name {
		return nil
	}
	w := n.worker(key)
	if w != nil && w.uid != pod.UID {
		// A new pod of the same name (a StatefulSet's): the old one is gone.
		w.gone()
		<-w.done
		w = nil
	}
	if w == nil {
		if pod.DeletionTimestamp != nil {
			// Nothing of it runs here: the kubelet removes such a pod at once.
			return n.deletePod(n.ctx, pod)
		}
		if pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
			return nil
		}
		if w = n.startWorker(pod); w == nil {
			return nil
		}
	}
	if pod.DeletionTimestamp != nil {
		w.delete(pod)
	}
	return nil
}

func (n *Node) worker(key string) *podWorker {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.workers[key]
}

func (n *Node) startWorker(pod *corev1.Pod) *podWorker {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.stopping {
		return nil
	}
	key := pod.Namespace + "/" + pod.Name
	w := newPodWorker(n, pod)
	n.workers[key] = w
	n.podsWG.Add(1)
	go func() {
		defer n.podsWG.Done()
		w.run()
		n.mu.Lock()
		if n.workers[key] == w {
			delete(n.workers, key)
		}
		n.mu.Unlock()
	}()
	return w
}

// deletePod removes a pod whose containers have stopped, as the kubelet does
// once it is done with a deleted pod: with no grace left, and only the pod of
// that UID.
func (n *Node) deletePod(ctx context.Context, pod *corev1.Pod) error {
	zero := int64(0)
	uid := pod.UID
	err := n.kube.CoreV1().Pods(pod.Namespace).Delete(ctx, pod.Name, metav1.DeleteOptions{
		GracePeriodSeconds: &zero,
		Preconditions:      &metav1.Preconditions{UID: &uid},
	})
	if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("delete pod %s/%s: %w", pod.Namespace, pod.Name, err)
	}
	return nil
}

// since is t as a metav1.Time, or now for the zero time.
func since(t time.Time) metav1.Time {
	if t.IsZero() {
		return metav1.Now()
	}
	return metav1.NewTime(t)
}
