package report

import (
	"fmt"

	"github.com/meshdrill/drill/internal/stats"
	"github.com/meshdrill/drill/pkg/scenario"
)

// ejection judges an ejection expectation from the observed Envoy's own
// /clusters pages: the first host of the service it ejected after the step.
func (ev *evaluator) ejection(res *Result, x *scenario.EjectionExpect) error {
	res.Check = fmt.Sprintf("%s's Envoy in %s ejects a host of %s within %s of %s", x.From, x.Cluster, x.Service, x.Within, x.After)
	m := Measure{Name: "ejection time", Unit: UnitSeconds, Max: fptr(seconds(x.Within.D()))}
	st := ev.r.step(x.After)
	if st == nil {
		res.Measures = append(res.Measures, m)
		return fmt.Errorf("step %s never started, so an ejection after it cannot be judged (%s)", x.After, ev.stepsSeen())
	}
	if iv := ev.rep.Timings.ScrapeIntervalSeconds; iv > 0 {
		m.ResolutionSeconds = fptr(iv)
	}
	match := ev.hostMatcher(x.Service)
	stepAt := seconds(ev.r.t(st.at))
	for _, h := range ev.rep.Timings.Hosts {
		if h.Kind != "ejected" || h.Workload != x.From || h.Cluster != x.Cluster || h.AtSeconds < stepAt {
			continue
		}
		c, ok := stats.ParseClusterName(h.EnvoyCluster, x.Cluster)
		if !ok || !match(c.Host) {
			continue
		}
		took := roundTo(h.AtSeconds-stepAt, 3)
		m.Observed = fptr(took)
		m.Held = took <= *m.Max
		res.Measures = append(res.Measures, m)
		res.Message = fmt.Sprintf("host %s of %s (priority %d) was ejected %s after %s, as the Envoy's /clusters showed at %s",
			h.Host, h.EnvoyCluster, h.Priority, formatSeconds(took), x.After, clockText(h.AtSeconds))
		if !m.Held {
			res.Message = "too slow: " + res.Message
		}
		return nil
	}
	res.Measures = append(res.Measures, m)
	res.Status = StatusFail
	res.Message = fmt.Sprintf("no host of %s was ejected by %s's Envoy in %s after %s, as its /clusters pages show (a host that leaves EDS, scaled away or deleted, is removed, not ejected)",
		x.Service, x.From, x.Cluster, x.After)
	return nil
}
