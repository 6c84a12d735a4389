package watch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	"github.com/meshdrill/drill/pkg/event"
)

// Source is the Source of the events a Watcher publishes.
const Source = "watch"

// Watcher turns changes to one cluster's workloads into events.
type Watcher struct {
	cluster  string
	client   kubernetes.Interface
	pub      event.Publisher
	ns       string
	apps     []string
	services []string
	resync   time.Duration
	log      *slog.Logger

	started atomic.Bool
	synced  chan struct{} // closed once every handler has seen the initial objects
	done    chan struct{} // closed when Run returns
	runErr  error         // set before done is closed

	mu   sync.Mutex // guards the state below and orders publications with it
	deps map[string]event.Workload
	pods map[string]podState
	eps  map[string]event.Endpoints
}

// Option configures a Watcher.
type Option func(*Watcher)

// WithNamespace watches one namespace (default: every namespace).
func WithNamespace(ns string) Option { return func(w *Watcher) { w.ns = ns } }

// WithWorkloads limits the Deployments and Pods watched to those labelled
// app=<one of apps>, and, unless WithServices says otherwise, the
// EndpointSlices to those of the services of the same names (as Bookinfo names
// them). Default: every Deployment, Pod and EndpointSlice.
func WithWorkloads(apps ...string) Option {
	return func(w *Watcher) { w.apps = append([]string(nil), apps...) }
}

// WithServices limits the EndpointSlices watched to those of these services.
func WithServices(services ...string) Option {
	return func(w *Watcher) { w.services = append([]string(nil), services...) }
}

// WithResync sets the informers' resync period (default 0: none). Resyncs
// publish nothing; they only re-check state.
func WithResync(d time.Duration) Option { return func(w *Watcher) { w.resync = d } }

// WithLogger sets where the Watcher logs (default slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(w *Watcher) { w.log = l } }

// New returns a Watcher of the cluster named cluster, reached through client,
// publishing on pub. Run starts it.
func New(cluster string, client kubernetes.Interface, pub event.Publisher, opts ...Option) *Watcher {
	w := &Watcher{
		cluster: cluster,
		client:  client,
		pub:     pub,
		ns:      metav1.NamespaceAll,
		log:     slog.Default(),
		synced:  make(chan struct{}),
		done:    make(chan struct{}),
		deps:    map[string]event.Workload{},
		pods:    map[string]podState{},
		eps:     map[string]event.Endpoints{},
	}
	for _, o := range opts {
		o(w)
	}
	if w.services == nil {
		w.services = w.apps
	}
	return w
}

// serviceIndex indexes EndpointSlices by namespace/service.
const serviceIndex = "service"

// Run watches until ctx is done, then stops its informers, waits for them and
// returns nil. It returns an error if the informers cannot be set up or ctx
// ends before they have synced. Run may be called once.
func (w *Watcher) Run(ctx context.Context) (err error) {
	if w.started.Swap(true) {
		return errors.New("watch: Run called twice")
	}
	defer func() {
		w.runErr = err
		close(w.done)
	}()

	appSel, err := selectorIn("app", w.apps)
	if err != nil {
		return fmt.Errorf("watch cluster %s: workloads %v: %w", w.cluster, w.apps, err)
	}
	svcSel, err := selectorIn(discoveryv1.LabelServiceName, w.services)
	if err != nil {
		return fmt.Errorf("watch cluster %s: services %v: %w", w.cluster, w.services, err)
	}
	byApp := informers.NewSharedInformerFactoryWithOptions(w.client, w.resync, informers.WithNamespace(w.ns),
		informers.WithTweakListOptions(func(o *metav1.ListOptions) { o.LabelSelector = appSel }))
	bySvc := informers.NewSharedInformerFactoryWithOptions(w.client, w.resync, informers.WithNamespace(w.ns),
		informers.WithTweakListOptions(func(o *metav1.ListOptions) { o.LabelSelector = svcSel }))
	defer byApp.Shutdown()
	defer bySvc.Shutdown()

	depInf := byApp.Apps().V1().Deployments().Informer()
	podInf := byApp.Core().V1().Pods().Informer()
	esInf := bySvc.Discovery().V1().EndpointSlices().Informer()
	if err := esInf.AddIndexers(cache.Indexers{serviceIndex: sliceService}); err != nil {
		return fmt.Errorf("watch cluster %s: index EndpointSlices: %w", w.cluster, err)
	}

	var regs []cache.ResourceEventHandlerRegistration
	for _, h := range []struct {
		inf cache.SharedIndexInformer
		h   cache.ResourceEventHandler
	}{
		{depInf, cache.ResourceEventHandlerFuncs{
			AddFunc:    w.onDeployment,
			UpdateFunc: func(_, obj any) { w.onDeployment(obj) },
			DeleteFunc: w.onDeploymentDeleted,
		}},
		{podInf, cache.ResourceEventHandlerFuncs{
			AddFunc:    w.onPod,
			UpdateFunc: func(_, obj any) { w.onPod(obj) },
			DeleteFunc: w.onPodDeleted,
		}},
		{esInf, cache.ResourceEventHandlerFuncs{
			AddFunc:    func(obj any) { w.onSlice(esInf.GetIndexer(), obj) },
			UpdateFunc: func(_, obj any) { w.onSlice(esInf.GetIndexer(), obj) },
			DeleteFunc: func(obj any) { w.onSlice(esInf.GetIndexer(), obj) },
		}},
	} {
		reg, err := h.inf.AddEventHandler(h.h)
		if err != nil {
			return fmt.Errorf("watch cluster %s: %w", w.cluster, err)
		}
		regs = append(regs, reg)
	}

	byApp.Start(ctx.Done())
	bySvc.Start(ctx.Done())
	// The registrations' HasSynced, not the informers': it turns true once the
	// handler has been given every initial object, so the baseline events are
	// published by the time WaitForSync returns.
	syncs := make([]cache.InformerSynced, len(regs))
	for i, r := range regs {
		syncs[i] = r.HasSynced
	}
	if !cache.WaitForCacheSync(ctx.Done(), syncs...) {
		return fmt.Errorf("watch cluster %s: informers did not sync before the drill ended: %w; check that the API server answers and that drill may list and watch deployments, pods and endpointslices", w.cluster, context.Cause(ctx))
	}
	close(w.synced)
	w.log.Debug("watch synced", "cluster", w.cluster, "namespace", w.ns, "workloads", w.apps)
	<-ctx.Done()
	return nil
}

// WaitForSync waits until Run has published the state of every object present
// when it started. It returns an error if ctx ends first or Run failed.
func (w *Watcher) WaitForSync(ctx context.Context) error {
	select {
	case <-w.synced:
		return nil
	case <-w.done:
		select {
		case <-w.synced:
			return nil
		default:
		}
		if w.runErr != nil {
			return w.runErr
		}
		return fmt.Errorf("watch cluster %s: stopped before it synced", w.cluster)
	case <-ctx.Done():
		return fmt.Errorf("watch cluster %s: wait for informers to sync: %w", w.cluster, context.Cause(ctx))
	}
}

func (w *Watcher) publish(t event.Type, payload any) {
	w.pub.Publish(event.New(t, w.cluster, Source, payload))
}

// selectorIn is "key in (values)", or everything when values is empty.
func selectorIn(key string, values []string) (string, error) {
	if len(values) == 0 {
		return labels.Everything().String(), nil
	}
	vals := slices.Clone(values)
	sort.Strings(vals)
	r, err := labels.NewRequirement(key, selection.In, slices.Compact(vals))
	if err != nil {
		return "", err
	}
	return labels.NewSelector().Add(*r).String(), nil
}

// unwrap returns the object of a delete notification, which is a
// DeletedFinalStateUnknown when the watch missed the deletion itself.
func unwrap(obj any) any {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		return t.Obj
	}
	return obj
}
