package drill

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/meshdrill/drill/internal/bookinfo"
	"github.com/meshdrill/drill/pkg/cluster"
	"github.com/meshdrill/drill/pkg/event"
)

// warmupRequests is how many requests each cluster's path gets before the
// load. A cold backup — a JVM behind reviews-v3 that has never served, a
// connection pool never opened — would otherwise meet its first requests at
// failover, and the drill would judge start-up instead of failover.
const warmupRequests = 20

// warmupTimeout bounds one warm-up request: a cold JVM's first answer can
// take seconds.
const warmupTimeout = 10 * time.Second

// warmUp sends warmupRequests requests for the load target through every
// cluster, one cluster after the other, and records each cluster's outcome
// (event.LoadWarmup): a cluster with an ingress through it; a cluster
// without one — a backup — straight to its own productpage, whose calls go
// on through its sidecar to its own reviews. The answers are not part of
// the load; a cluster that cannot be warmed is reported, not fatal: the
// load's own figures will show what a cold path costs.
func (r *run) warmUp(ctx context.Context) {
	t := r.s.Spec.Load.Target
	client := &http.Client{Timeout: warmupTimeout}
	defer client.CloseIdleConnections()
	for _, sc := range r.s.Spec.Clusters {
		c := r.clusters[sc.Name]
		if c == nil || c.Access == nil {
			continue
		}
		w := event.Warmup{Cluster: sc.Name}
		base, host, closeWay, err := r.warmupWay(ctx, c, sc.Ingress)
		if err != nil {
			w.Error = err.Error()
			r.bus.Publish(event.New(event.LoadWarmup, sc.Name, "engine", w))
			continue
		}
		w.URL = strings.TrimSuffix(base, "/") + t.Path
		var last string
		for range warmupRequests {
			if ctx.Err() != nil {
				break
			}
			req, err := r.targetRequest(ctx, w.URL, host)
			if err != nil {
				w.Error = err.Error()
				break
			}
			w.Requests++
			start := time.Now()
			resp, err := client.Do(req)
			if err != nil {
				last = err.Error()
				continue
			}
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
			resp.Body.Close()
			if resp.StatusCode/100 != 2 {
				last = fmt.Sprintf("status %d", resp.StatusCode)
				continue
			}
			w.OK++
			w.MaxSeconds = max(w.MaxSeconds, time.Since(start).Seconds())
		}
		client.CloseIdleConnections()
		closeWay()
		if ctx.Err() != nil {
			return
		}
		if w.OK < w.Requests && w.Error == "" {
			w.Error = "last failure: " + last
		}
		r.bus.Publish(event.New(event.LoadWarmup, sc.Name, "engine", w))
		r.logf("warmed %s: %d of %d requests answered", sc.Name, w.OK, w.Requests)
	}
}

// warmupWay is where a cluster's warm-up requests go: its ingress when the
// scenario gives it one, else a way to a pod of its productpage. host is the
// Host header to send ("" for the request URL's).
func (r *run) warmupWay(ctx context.Context, c *cluster.Cluster, ingress bool) (base, host string, closeWay func(), err error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if ingress {
		base, err := c.Access.Ingress(ctx)
		if err != nil {
			return "", "", nil, fmt.Errorf("no ingress: %w", err)
		}
		return base, r.s.Spec.Load.Target.Host, func() {}, nil
	}
	fw, ok := c.Access.(cluster.PodForwarder)
	if !ok {
		return "", "", nil, fmt.Errorf("no ingress, and the provider opens no way to its pods")
	}
	ns := r.s.Spec.Namespace
	pods, err := c.Kube.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: bookinfo.LabelApp + "=productpage"})
	if err != nil {
		return "", "", nil, fmt.Errorf("no ingress; list its productpage pods: %w", err)
	}
	for _, p := range pods.Items {
		if p.Status.Phase != corev1.PodRunning || p.DeletionTimestamp != nil {
			continue
		}
		way, err := fw.PodPort(ctx, ns, p.Name, bookinfo.Port)
		if err != nil {
			return "", "", nil, fmt.Errorf("no ingress; open a way to pod %s/%s: %w", ns, p.Name, err)
		}
		closeWay = func() {}
		if way.Close != nil {
			closeWay = way.Close
		}
		return way.URL, "", closeWay, nil
	}
	return "", "", nil, fmt.Errorf("no ingress and no running productpage pod in namespace %s", ns)
}
