package report

import (
	_ "embed"
	"fmt"
	"html/template"
	"io"
	"math"
	"slices"
	"sort"
	"strings"
	"time"
)

//go:embed report.html.tmpl
var htmlTemplate string

var htmlTmpl = template.Must(template.New("report.html").Funcs(template.FuncMap{
	"secs":  formatSeconds,
	"count": func(v int64) string { return formatCount(float64(v)) },
	"clock": clockText,
	"wall":  func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05 MST") },
	"join":  strings.Join,
	"mark": func(s Status) string {
		if s == StatusPass {
			return "✔"
		}
		return "✘"
	},
}).Parse(htmlTemplate))

// htmlChart is a chart as the template places it.
type htmlChart struct {
	Title   string
	Caption string
	SVG     template.HTML
}

// WriteHTML writes report.html: one self-contained page (inline CSS and SVG, no
// script, no font, image or stylesheet to fetch) with the verdict, the
// expectations, the timeline and charts of the run with its steps, faults and
// failovers marked.
func (r *Report) WriteHTML(w io.Writer) error {
	data := struct {
		*Report
		Charts []htmlChart
		Span   string
	}{Report: r, Charts: r.charts()}
	if err := htmlTmpl.Execute(w, data); err != nil {
		return fmt.Errorf("write report.html: %w", err)
	}
	return nil
}

func (r *Report) charts() []htmlChart {
	s := r.series
	if s == nil {
		return nil
	}
	var out []htmlChart
	base := func(unit string) *chart {
		return &chart{unit: unit, xMax: s.end, markers: s.markers, bands: s.bands}
	}
	if len(s.windows) > 0 {
		x := make([]float64, len(s.windows))
		ok, deg, bad := make([]float64, len(x)), make([]float64, len(x)), make([]float64, len(x))
		p50, p90, p99 := make([]float64, len(x)), make([]float64, len(x)), make([]float64, len(x))
		for i, w := range s.windows {
			x[i] = (w.from + w.to) / 2
			ok[i], deg[i], bad[i] = w.ok, w.degraded, w.errors
			p50[i], p90[i], p99[i] = nanIfZero(w.p50, w.requests), nanIfZero(w.p90, w.requests), nanIfZero(w.p99, w.requests)
		}
		c := base("req/s")
		c.x = x
		c.areas = []layer{
			{name: "ok", color: colorOK, y: ok},
			{name: "degraded (2xx, degradedWhen matched)", color: colorDegraded, y: deg},
			{name: "error (non-2xx/3xx, transport)", color: colorError, y: bad},
		}
		out = append(out, htmlChart{Title: "Requests per second by outcome", SVG: template.HTML(c.svg("Requests per second by outcome")),
			Caption: fmt.Sprintf("What the load saw at the ingress, per %s window of send time.", formatSeconds(r.Timings.WindowSeconds))})

		c = base("latency")
		c.x, c.logY = x, true
		c.yFormat = func(v float64) string { return formatSeconds(v) }
		c.lines = []layer{
			{name: "p50", color: palette[0], y: p50},
			{name: "p90", color: palette[1], y: p90},
			{name: "p99", color: palette[5], y: p99},
		}
		out = append(out, htmlChart{Title: "Latency percentiles", SVG: template.HTML(c.svg("Latency percentiles")),
			Caption: "Per load window, logarithmic scale."})
	}
	for _, o := range s.observers {
		who := fmt.Sprintf("%s in %s", o.workload, o.cluster)
		svc := "upstream"
		if len(o.services) > 0 {
			svc = strings.Join(o.services, ", ")
		}
		if len(o.upstream) > 0 {
			c := base("req/s")
			c.x = o.x
			c.areas = layersOf(o.upstream, upstreamOrder)
			title := fmt.Sprintf("Requests from %s to %s, per Envoy cluster", who, svc)
			out = append(out, htmlChart{Title: title, SVG: template.HTML(c.svg(title)),
				Caption: fmt.Sprintf("From %s's Envoy stats (upstream_rq_total per Envoy cluster), per %s scrape. Local is the service in %s; .global clusters are the backing services in other clusters; the aggregate is the failover host.", o.workload, formatSeconds(o.width), o.cluster)})
		}
		if len(o.answered) > 0 {
			c := base("req/s")
			c.x = o.x
			c.areas = layersOf(o.answered, func(a, b string) int {
				// "unknown" (nobody answered) last, on top.
				if (a == "unknown") != (b == "unknown") {
					if a == "unknown" {
						return 1
					}
					return -1
				}
				return strings.Compare(a, b)
			})
			for i := range c.areas {
				if c.areas[i].name == "unknown" {
					c.areas[i].color, c.areas[i].name = colorError, "unknown (no workload answered)"
				}
			}
			title := fmt.Sprintf("Requests from %s to %s, by the cluster that answered", who, svc)
			out = append(out, htmlChart{Title: title, SVG: template.HTML(c.svg(title)),
				Caption: "From istio_requests_total (reporter=source) destination_cluster: the identity of the workload that answered."})
		}
		c := base("503/s")
		c.x, c.barW = o.x, o.width
		c.bars = layersOf(o.code503, upstreamOrder)
		if len(s.windows) > 0 {
			x := make([]float64, len(s.windows))
			y := make([]float64, len(s.windows))
			for i, w := range s.windows {
				x[i], y[i] = (w.from+w.to)/2, w.server5xxRate
			}
			c.lines = []layer{{name: "5xx at the ingress (load)", color: "#222222", x: x, y: y, dash: true}}
		}
		title := fmt.Sprintf("503 answers to %s from %s", o.workload, svc)
		out = append(out, htmlChart{Title: title, SVG: template.HTML(c.svg(title)),
			Caption: fmt.Sprintf("Bars: upstream 503s in %s's Envoy, per Envoy cluster. Line: 5xx answers the load got at the ingress.", o.workload)})
	}
	return out
}

func nanIfZero(v, requests float64) float64 {
	if requests == 0 {
		return math.NaN()
	}
	return v
}

// upstreamOrder stacks local clusters first, then remote ones, then the aggregate.
func upstreamOrder(a, b string) int {
	rank := func(s string) int {
		switch {
		case strings.HasSuffix(s, "(local)"):
			return 0
		case strings.HasSuffix(s, "(.global)"):
			return 1
		}
		return 2
	}
	if ra, rb := rank(a), rank(b); ra != rb {
		return ra - rb
	}
	return strings.Compare(a, b)
}

func layersOf(m map[string][]float64, order func(a, b string) int) []layer {
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	slices.SortFunc(names, order)
	out := make([]layer, len(names))
	for i, n := range names {
		out[i] = layer{name: n, color: palette[i%len(palette)], y: m[n]}
	}
	return out
}

// sortedKeys returns a map's keys in order.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
