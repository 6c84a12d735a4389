package drill

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/meshdrill/drill/internal/failover"
	"github.com/meshdrill/drill/internal/stats"
	"github.com/meshdrill/drill/internal/watch"
	"github.com/meshdrill/drill/pkg/cluster"
	"github.com/meshdrill/drill/pkg/event"
	"github.com/meshdrill/drill/pkg/scenario"
)

// observers are the goroutines that watch a run: cluster watches, Envoy scrapers and
// failover detectors.
type observers struct {
	wg       sync.WaitGroup
	closers  []func()
	interval time.Duration
}

func (o *observers) wait() {
	o.wg.Wait()
	for _, c := range o.closers {
		c()
	}
}

// drain waits one scrape interval, so that the traffic of the last load window is in
// the stats before the scrapers stop.
func (o *observers) drain(ctx context.Context) {
	t := time.NewTimer(o.interval + o.interval/2)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

func (r *run) startObservers(ctx context.Context) (*observers, error) {
	o := &observers{interval: time.Second}
	ns := r.s.Spec.Namespace

	// Watches: every cluster, the Bookinfo workloads and services.
	apps := []string{"productpage", "details", "reviews", "ratings"}
	for _, st := range r.s.Spec.Steps {
		if st.Fault != nil {
			if sc := st.Fault.Scale; sc != nil && sc.Workload != "" && !slices.Contains(apps, sc.Workload) {
				apps = append(apps, sc.Workload)
			}
		}
	}
	for _, name := range clusterNames(r.s) {
		c := r.clusters[name]
		w := watch.New(c.Name, c.Kube, r.bus, watch.WithNamespace(ns), watch.WithWorkloads(apps...), watch.WithServices(apps...), watch.WithLogger(r.log))
		o.wg.Add(1)
		go func() {
			defer o.wg.Done()
			if err := w.Run(ctx); err != nil && ctx.Err() == nil {
				r.bus.Publish(event.New(event.Log, c.Name, "watch", event.LogLine{Level: "warn", Message: err.Error()}))
			}
		}()
		syncCtx, cancel := context.WithTimeout(ctx, time.Minute)
		err := w.WaitForSync(syncCtx)
		cancel()
		if err != nil {
			return o, fmt.Errorf("cluster %s: start watching: %w", c.Name, err)
		}
	}

	// Failover detectors, fed from the bus, publishing what they find.
	detectors, err := r.detectors()
	if err != nil {
		return o, err
	}
	if len(detectors) > 0 {
		sub := r.bus.Subscribe("detectors", event.WithBuffer(1<<14))
		o.wg.Add(1)
		go func() {
			defer o.wg.Done()
			defer sub.Unsubscribe()
			for {
				e, err := sub.Next(ctx)
				if err != nil {
					return
				}
				for _, d := range detectors {
					for _, out := range d.Observe(e) {
						r.bus.Publish(out)
					}
				}
			}
		}()
	}

	// Envoy scrapers.
	for i, target := range r.s.Spec.Observe.Envoy {
		c := r.clusters[target.Cluster]
		o.interval = max(o.interval, target.Every.D())
		scr, closer, err := r.scraper(ctx, c, target)
		if closer != nil {
			o.closers = append(o.closers, closer)
		}
		if err != nil {
			return o, fmt.Errorf("spec.observe.envoy[%d] (%s in %s): %w", i, target.Workload, target.Cluster, err)
		}
		o.wg.Add(1)
		go func() {
			defer o.wg.Done()
			if err := scr.Run(ctx); err != nil && ctx.Err() == nil {
				r.bus.Publish(event.New(event.Log, c.Name, "stats", event.LogLine{Level: "warn", Message: err.Error()}))
			}
		}()
	}
	return o, nil
}

// scraper finds a ready pod of the observed workload, opens its Envoy admin port and
// checks that its sidecar keeps per-upstream stats.
func (r *run) scraper(ctx context.Context, c *cluster.Cluster, t scenario.EnvoyTarget) (*stats.Scraper, func(), error) {
	pods, err := c.Kube.CoreV1().Pods(r.s.Spec.Namespace).List(ctx, metav1.ListOptions{LabelSelector: "app=" + t.Workload})
	if err != nil {
		return nil, nil, fmt.Errorf("list pods: %w", err)
	}
	var pod *corev1.Pod
	for i := range pods.Items {
		if podReady(&pods.Items[i]) {
			pod = &pods.Items[i]
			break
		}
	}
	if pod == nil {
		return nil, nil, fmt.Errorf("no ready pod with app=%s in namespace %s", t.Workload, r.s.Spec.Namespace)
	}
	admin, err := c.Access.EnvoyAdmin(ctx, pod.Namespace, pod.Name)
	if err != nil {
		return nil, nil, fmt.Errorf("reach the Envoy admin port of %s: %w", pod.Name, err)
	}
	scr, err := stats.NewScraper(stats.Target{
		Workload: t.Workload, Pod: pod.Name, Cluster: c.Name, AdminURL: admin.URL, Client: admin.Client,
	}, r.bus, stats.WithInterval(t.Every.D()), stats.WithLogger(r.log))
	if err != nil {
		return nil, admin.Close, err
	}
	snap, err := scr.Scrape(ctx)
	if err != nil {
		return nil, admin.Close, fmt.Errorf("first scrape of %s: %w", pod.Name, err)
	}
	if err := stats.CheckOutboundStats(snap, t.Workload); err != nil {
		return nil, admin.Close, err
	}
	return scr, admin.Close, nil
}

func podReady(p *corev1.Pod) bool {
	if p.DeletionTimestamp != nil || p.Status.Phase != corev1.PodRunning {
		return false
	}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// detectors makes one failover Detector per failover the scenario's expectations
// speak of — the same ones report.Build judges with — plus, for each failover
// service without one, a Detector of its first two backing clusters, so that steps
// triggered by failover events fire even when nothing expects them.
func (r *run) detectors() ([]*failover.Detector, error) {
	watches := failover.Watches(r.s)
	for _, fs := range r.s.Spec.Mesh.FailoverServices {
		if len(fs.BackingServices) < 2 {
			continue
		}
		b0, b1 := fs.BackingServices[0], fs.BackingServices[1]
		covered := slices.ContainsFunc(watches, func(w failover.Watch) bool {
			return w.Service == b0.Service && w.From == b0.Cluster
		})
		if !covered {
			watches = append(watches, failover.Watch{Service: b0.Service, Namespace: b0.Namespace, From: b0.Cluster, To: b1.Cluster, Hosts: []string{fs.Hostname}})
		}
	}
	var ds []*failover.Detector
	var errs []error
	for _, w := range watches {
		d, err := failover.NewDetector(w)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		ds = append(ds, d)
	}
	return ds, errors.Join(errs...)
}
