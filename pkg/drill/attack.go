package drill

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/meshdrill/drill/pkg/load"
	"github.com/meshdrill/drill/pkg/report"
	"github.com/meshdrill/drill/pkg/scenario"
)

// newAttack builds the scenario's load toward the target cluster's ingress gateway.
func (r *run) newAttack(ctx context.Context, gw *guardWatch) (*load.Attack, error) {
	l := r.s.Spec.Load
	c := r.clusters[l.Target.Cluster]
	base, err := c.Access.Ingress(ctx)
	if err != nil {
		return nil, fmt.Errorf("cluster %s: find the ingress gateway: %w", c.Name, err)
	}
	target := load.Target{Method: l.Target.Method, URL: strings.TrimSuffix(base, "/") + l.Target.Path, Host: l.Target.Host}
	opts := []load.Option{
		load.WithRate(shapeOf(l.Rate)),
		load.WithDuration(l.Duration.D()),
		load.WithTimeout(l.Timeout.D()),
		load.WithConnections(l.Connections),
		load.WithWorkers(uint64(l.Workers)),
		load.WithHTTP2(l.HTTP2),
		load.WithKeepAlive(*l.KeepAlive),
		load.WithWindow(l.Window.D()),
		load.WithCluster(c.Name),
		load.WithLogger(r.log),
		load.WithResultsFile(filepath.Join(r.dir, report.ResultsFile)),
	}
	if l.MaxWorkers > 0 {
		opts = append(opts, load.WithMaxWorkers(uint64(l.MaxWorkers)))
	}
	if len(l.Target.Headers) > 0 {
		h := http.Header{}
		for k, v := range l.Target.Headers {
			h.Set(k, v)
		}
		opts = append(opts, load.WithHeaders(h))
	}
	if dw := degradedWhen(r.s); dw != nil {
		opts = append(opts, load.WithDegraded(*dw))
	}
	if gw != nil {
		opts = append(opts, load.WithGuards(loadGuards(r.s), gw.onTrip))
	}
	return load.New(target, opts...)
}

// degradedWhen is the scenario's degradedWhen as the load judges it, or nil.
func degradedWhen(s *scenario.Scenario) *load.DegradedWhen {
	d := s.Spec.Load.DegradedWhen
	if d == nil {
		return nil
	}
	dw := &load.DegradedWhen{BodyContains: d.BodyContains}
	if d.BodyMatches != "" {
		dw.BodyMatches = regexp.MustCompile(d.BodyMatches) // validated when the scenario was loaded
	}
	return dw
}

func shapeOf(r scenario.Rate) load.Shape {
	switch {
	case r.Ramp != nil:
		return load.Ramp(r.Ramp.From.Rate(), r.Ramp.To.Rate())
	case len(r.Steps) > 0:
		steps := make([]load.Step, len(r.Steps))
		for i, s := range r.Steps {
			steps[i] = load.Step{Rate: s.Rate.Rate(), For: s.For.D()}
		}
		return load.Steps(steps...)
	}
	return load.Constant(r.Constant.Rate())
}
