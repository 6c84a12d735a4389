package report

import (
	"fmt"
	"io"
	"sort"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"google.golang.org/protobuf/proto"
)

// MetricsFile is the run's figures in Prometheus' text exposition format, for
// node_exporter's textfile collector, a Pushgateway (drill run --pushgateway)
// or promtool.
const MetricsFile = "metrics.prom"

// Metric labels every series of metrics.prom carries.
const (
	LabelScenario = "scenario"
	LabelProvider = "provider"
	LabelRun      = "run"
)

// verdicts are the values of drill_verdict's verdict label, all of them
// present so that a query for a verdict never finds an absent series.
var verdicts = []Verdict{Pass, Fail, Inconclusive, Aborted, Error}

// MetricFamilies are the run's figures as Prometheus metric families: the
// verdict, each expectation's status and observed values, the failover and
// recovery times, the load's percentiles and the run's duration. Each series
// is labelled scenario, provider and run. Every family is a gauge: a run is
// one observation, not a counter that grows.
func (r *Report) MetricFamilies() []*dto.MetricFamily {
	m := newMetricSet(r)
	for _, v := range verdicts {
		m.add("drill_verdict", "The run's verdict: 1 for the verdict it had, 0 for the others.", b2f(r.Verdict == v), "verdict", string(v))
	}
	m.add("drill_exit_code", "drill's exit code for the verdict (0 pass, 1 fail, 2 error, 3 inconclusive or aborted).", float64(r.Verdict.ExitCode()))
	for _, x := range r.Expectations {
		m.add("drill_expectation_passed", "1 when the expectation held, 0 when it did not or was not judged (the status label says which).",
			b2f(x.Status == StatusPass), "expectation", x.Name, "kind", x.Kind, "status", string(x.Status))
		for _, ms := range x.Measures {
			if ms.Observed == nil {
				continue
			}
			name, help := "drill_expectation_observed_requests", "What an expectation observed, in requests."
			switch ms.Unit {
			case UnitSeconds:
				name, help = "drill_expectation_observed_seconds", "What an expectation observed, in seconds."
			case UnitRatio:
				name, help = "drill_expectation_observed_ratio", "What an expectation observed, as a ratio from 0 to 1."
			}
			m.add(name, help, *ms.Observed, "expectation", x.Name, "kind", x.Kind, "measure", ms.Name)
		}
	}
	seen := map[string]bool{}
	for _, f := range r.Timings.Failovers {
		key := f.Kind + "/" + f.Service + "/" + f.After
		if seen[key] {
			continue
		}
		seen[key] = true
		took := f.TookSeconds
		if f.Client != nil {
			took = f.Client.TookSeconds
		}
		m.add("drill_failover_seconds", "How long a failover or failback took after its step.", took,
			"kind", f.Kind, "service", f.Service, "from", f.From, "to", f.To, "after", f.After)
	}
	for _, f := range r.Timings.Faults {
		for _, d := range []struct {
			phase string
			dip   *Dip
		}{{"fault", f.Dip}, {"revert", f.RevertDip}} {
			if d.dip != nil && d.dip.RecoverySeconds != nil {
				m.add("drill_recovery_seconds", "How long after a fault or its revert the load's success ratio was back at its baseline.",
					*d.dip.RecoverySeconds, "step", f.Step, "phase", d.phase)
			}
		}
	}
	if l := r.Load; l != nil {
		// A percentile label, not quantile: Prometheus keeps quantile for
		// summaries, whose sum drill does not have.
		for _, q := range []struct {
			percentile string
			v          float64
		}{{"p50", l.P50Seconds}, {"p90", l.P90Seconds}, {"p99", l.P99Seconds}, {"max", l.MaxSeconds}} {
			m.add("drill_load_latency_seconds", "Latency of the load's requests over the whole attack, by percentile (max is the slowest).", q.v, "percentile", q.percentile)
		}
		m.add("drill_load_requests", "Requests the load sent.", float64(l.Requests))
		m.add("drill_load_errors", "Client-side errors the load saw (transport errors and non-2xx/3xx answers).", float64(l.Errors))
		m.add("drill_load_degraded", "Degraded answers the load saw.", float64(l.Degraded))
	}
	m.add("drill_run_duration_seconds", "How long the run took, from run.started to run.finished.", r.Timings.RunSeconds)
	if !r.Started.IsZero() {
		m.add("drill_run_start_timestamp_seconds", "When the run started, in seconds since the Unix epoch.", float64(r.Started.UnixMilli())/1e3)
	}
	return m.families()
}

// WriteMetrics writes metrics.prom: MetricFamilies in the text exposition
// format (version 0.0.4), which promtool check metrics reads.
func (r *Report) WriteMetrics(w io.Writer) error {
	for _, mf := range r.MetricFamilies() {
		if _, err := expfmt.MetricFamilyToText(w, mf); err != nil {
			return fmt.Errorf("write %s: %w", MetricsFile, err)
		}
	}
	return nil
}

type metricSet struct {
	common []*dto.LabelPair
	byName map[string]*dto.MetricFamily
	order  []string
}

func newMetricSet(r *Report) *metricSet {
	run := r.RunID
	if run == "" {
		run = "unknown"
	}
	return &metricSet{
		common: []*dto.LabelPair{label(LabelScenario, r.Scenario), label(LabelProvider, r.Provider), label(LabelRun, run)},
		byName: map[string]*dto.MetricFamily{},
	}
}

func (m *metricSet) add(name, help string, v float64, labels ...string) {
	mf := m.byName[name]
	if mf == nil {
		mf = &dto.MetricFamily{Name: proto.String(name), Help: proto.String(help), Type: dto.MetricType_GAUGE.Enum()}
		m.byName[name] = mf
		m.order = append(m.order, name)
	}
	lp := append([]*dto.LabelPair(nil), m.common...)
	for i := 0; i+1 < len(labels); i += 2 {
		lp = append(lp, label(labels[i], labels[i+1]))
	}
	sort.Slice(lp, func(i, j int) bool { return lp[i].GetName() < lp[j].GetName() })
	mf.Metric = append(mf.Metric, &dto.Metric{Label: lp, Gauge: &dto.Gauge{Value: proto.Float64(v)}})
}

func (m *metricSet) families() []*dto.MetricFamily {
	out := make([]*dto.MetricFamily, 0, len(m.order))
	for _, n := range m.order {
		out = append(out, m.byName[n])
	}
	return out
}

func label(name, value string) *dto.LabelPair {
	return &dto.LabelPair{Name: proto.String(name), Value: proto.String(value)}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
