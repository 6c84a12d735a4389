package report

import (
	"context"
	"fmt"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/push"
	dto "github.com/prometheus/client_model/go"
)

// PushJob is the job label of the metrics drill pushes.
const PushJob = "drill"

// Push sends the run's metrics (MetricFamilies) to the Pushgateway at url,
// replacing what an earlier run of the same scenario on the same provider
// pushed there: the group is {job="drill", scenario, provider}. The scenario
// and provider labels move from the series to the group's key, as the
// Pushgateway requires; it puts them back on every series it serves. client
// may be nil for http.DefaultClient.
func (r *Report) Push(ctx context.Context, url string, client *http.Client) error {
	families := r.MetricFamilies()
	for _, mf := range families {
		for _, m := range mf.Metric {
			kept := m.Label[:0]
			for _, l := range m.Label {
				if n := l.GetName(); n != LabelScenario && n != LabelProvider {
					kept = append(kept, l)
				}
			}
			m.Label = kept
		}
	}
	p := push.New(url, PushJob).
		Grouping(LabelScenario, orText(r.Scenario, "unknown")).
		Grouping(LabelProvider, orText(r.Provider, "unknown")).
		Gatherer(prometheus.GathererFunc(func() ([]*dto.MetricFamily, error) { return families, nil }))
	if client != nil {
		p = p.Client(client)
	}
	if err := p.PushContext(ctx); err != nil {
		return fmt.Errorf("push the metrics of %s to the Pushgateway at %s: %w", orText(r.RunID, "the run"), url, err)
	}
	return nil
}
