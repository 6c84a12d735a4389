package drill

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

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

// warmUp sends warmupRequests requests to the load target through every
// cluster's ingress, one cluster after the other, and records each
// cluster's outcome (event.LoadWarmup). The answers are not part of the load;
// a cluster that cannot be warmed is reported, not fatal: the load's own
// figures will show what a cold path costs.
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
		ictx, cancel := context.WithTimeout(ctx, 30*time.Second)
		base, err := c.Access.Ingress(ictx)
		cancel()
		if err != nil {
			w.Error = "no ingress: " + err.Error()
			r.bus.Publish(event.New(event.LoadWarmup, sc.Name, "engine", w))
			continue
		}
		w.URL = strings.TrimSuffix(base, "/") + t.Path
		var last string
		for range warmupRequests {
			if ctx.Err() != nil {
				return
			}
			req, err := http.NewRequestWithContext(ctx, t.Method, w.URL, nil)
			if err != nil {
				w.Error = err.Error()
				break
			}
			if t.Host != "" {
				req.Host = t.Host
			}
			for k, v := range t.Headers {
				req.Header.Set(k, v)
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
		if w.OK < w.Requests && w.Error == "" {
			w.Error = "last failure: " + last
		}
		r.bus.Publish(event.New(event.LoadWarmup, sc.Name, "engine", w))
		r.logf("warmed %s: %d of %d requests answered", sc.Name, w.OK, w.Requests)
	}
}
