package load

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
)

// maxLoggedErrors bounds how many distinct transport errors an attack logs.
const maxLoggedErrors = 10

// collector takes each vegeta result of one Run as it arrives: it tells degraded
// answers, writes the results file and hands the result to the windows. It runs on the
// one goroutine that drains vegeta's results channel, which is unbuffered: the time it
// takes per result is time vegeta's workers wait, so it does the least it can.
type collector struct {
	win     *windower
	match   *matcher     // nil: no degraded matcher
	out     *resultsFile // nil: no results file
	log     *slog.Logger
	began   time.Time    // when the load started; windows are relative to it
	stopped *atomic.Bool // set before Run aborts requests in flight

	aborted  int64 // requests cut short by the abort, counted nowhere
	seenErrs map[string]bool
	// services caches the service a response header names, "" for headers
	// that name none (see servedBy).
	services map[string]string
	guards   *guards // nil: none
}

func (c *collector) add(r *vegeta.Result) {
	s := sample{seq: r.Seq, offset: max(r.Timestamp.Sub(c.began), 0), code: r.Code, latency: r.Latency}
	if r.Code == 0 && c.stopped.Load() && isAbort(r.Error) {
		s.aborted = true
		c.aborted++
		c.win.add(s)
		return
	}
	if c.match != nil && r.Code >= 200 && r.Code < 300 {
		s.degraded = c.match.match(r.Body)
	}
	c.servedBy(&s, r.Headers)
	c.guards.observe(&s)
	if r.Code == 0 && !c.seenErrs[r.Error] && len(c.seenErrs) < maxLoggedErrors {
		if c.seenErrs == nil {
			c.seenErrs = map[string]bool{}
		}
		c.seenErrs[r.Error] = true
		c.log.Warn("load transport error", "error", r.Error)
	}
	if c.out != nil {
		if err := c.out.write(r); err != nil {
			c.log.Error("load results file: writing stopped, load goes on", "error", err)
		}
	}
	c.win.add(s)
}

// Response headers drill's Bookinfo sets (internal/bookinfo/app): the
// answering workload's cluster and Deployment, and the cluster of each service
// it called, X-Drill-<Service>-Cluster.
const (
	headerCluster  = "X-Drill-Cluster"
	headerWorkload = "X-Drill-Workload"
	headerPrefix   = "X-Drill-"
	headerSuffix   = "-Cluster"
)

// servedBy reads who served the answer from its headers into s. It runs once
// per result, so the service a header names is worked out once per header.
func (c *collector) servedBy(s *sample, h http.Header) {
	if len(h) == 0 {
		return
	}
	add := func(service, cluster string) {
		if service != "" && cluster != "" && int(s.nServed) < maxServed {
			s.served[s.nServed] = servedBy{service, cluster}
			s.nServed++
		}
	}
	if cl := h.Get(headerCluster); cl != "" {
		add(workloadService(h.Get(headerWorkload)), cl)
	}
	for k, v := range h {
		if len(v) == 0 || k == headerCluster {
			continue
		}
		svc, ok := c.services[k]
		if !ok {
			if c.services == nil {
				c.services = map[string]string{}
			}
			if strings.HasPrefix(k, headerPrefix) && strings.HasSuffix(k, headerSuffix) && len(k) > len(headerPrefix)+len(headerSuffix) {
				svc = strings.ToLower(k[len(headerPrefix) : len(k)-len(headerSuffix)])
			}
			c.services[k] = svc
		}
		add(svc, v[0])
	}
}

// workloadService is the service of a Bookinfo Deployment name: reviews-v2 →
// reviews.
func workloadService(workload string) string {
	i := strings.LastIndex(workload, "-v")
	if i <= 0 {
		return workload
	}
	for _, r := range workload[i+2:] {
		if r < '0' || r > '9' {
			return workload
		}
	}
	return workload[:i]
}

// isAbort tells a request cancelled by Run's abort from a real transport error; vegeta
// keeps only the error's text ("Get \"…\": context canceled").
func isAbort(msg string) bool {
	return strings.HasSuffix(msg, context.Canceled.Error())
}
