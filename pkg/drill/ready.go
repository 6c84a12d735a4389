package drill

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// readyStreak is how many answers in a row must be good before load starts: one
// good answer can come from a half-programmed mesh.
const readyStreak = 5

// waitReady polls the load target through the ingress gateway until it answers 2xx,
// not degraded, readyStreak times in a row, or the ready timeout passes.
func (r *run) waitReady(parent context.Context) error {
	c := r.clusters[r.s.Spec.Load.Target.Cluster]
	ctx, cancel := context.WithTimeout(parent, r.cfg.readyTimeout)
	defer cancel()
	base, err := c.Access.Ingress(ctx)
	if err != nil {
		return fmt.Errorf("cluster %s: find the ingress gateway: %w", c.Name, err)
	}
	t := r.s.Spec.Load.Target
	url := strings.TrimSuffix(base, "/") + t.Path
	degraded := degradedWhen(r.s)
	client := &http.Client{Timeout: 5 * time.Second}
	streak := 0
	last := "no answer yet"
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	for {
		req, err := r.targetRequest(ctx, url, t.Host)
		if err != nil {
			return fmt.Errorf("load target %s: %w", url, err)
		}
		ok := false
		resp, err := client.Do(req)
		if err != nil {
			last = err.Error()
		} else {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
			resp.Body.Close()
			switch {
			case resp.StatusCode/100 != 2:
				last = fmt.Sprintf("status %d", resp.StatusCode)
			case degraded != nil && degraded.Match(body):
				last = "a degraded answer (degradedWhen matched)"
			default:
				ok = true
			}
		}
		if ok {
			streak++
			if streak >= readyStreak {
				return nil
			}
		} else {
			streak = 0
		}
		select {
		case <-ctx.Done():
			if parent.Err() != nil {
				return context.Cause(parent)
			}
			return fmt.Errorf("the mesh did not answer %s %s with %d good answers in a row within %s (last: %s); check the ingress gateway and Bookinfo in cluster %s",
				t.Method, url, readyStreak, r.cfg.readyTimeout, last, c.Name)
		case <-tick.C:
		}
	}
}

// targetRequest is a request for the load target at url, with the target's
// method and headers, and host as its Host header ("" keeps url's).
func (r *run) targetRequest(ctx context.Context, url, host string) (*http.Request, error) {
	t := r.s.Spec.Load.Target
	req, err := http.NewRequestWithContext(ctx, t.Method, url, nil)
	if err != nil {
		return nil, err
	}
	if host != "" {
		req.Host = host
	}
	for k, v := range t.Headers {
		req.Header.Set(k, v)
	}
	return req, nil
}
