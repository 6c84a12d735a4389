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
	"secs":      formatSeconds,
	"count":     func(v int64) string { return formatCount(float64(v)) },
	"plural":    plural,
	"clock":     clockText,
	"wall":      func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05 MST") },
	"wallms":    func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05.000 MST") },
	"utcAt":     func(r *Report, at float64) string { return r.WallClock(at) },
	"int64":     func(n int) int64 { return int64(n) },
	"join":      strings.Join,
	"sparkline": sparkline,
	"mark": func(s Status) string {
		switch s {
		case StatusPass:
			return "✔"
		case StatusInconclusive:
			return "?"
		case StatusSkipped:
			return "–"
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
	add := func(title, caption string, c *chart) {
		c.id = fmt.Sprintf("plot%d", len(out)+1)
		out = append(out, htmlChart{Title: title, Caption: caption, SVG: template.HTML(c.svg(title))})
	}
	base := func(unit string) *chart {
		return &chart{unit: unit, xMax: s.end, markers: s.markers, bands: s.bands, dips: s.dips}
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
		c.x, c.barW = x, r.Timings.WindowSeconds
		c.areas = []layer{
			{name: "ok", color: colorOK, y: ok},
			{name: "degraded (2xx, degradedWhen matched)", color: colorDegraded, y: deg},
			{name: "error (non-2xx/3xx, transport)", color: colorError, y: bad},
		}
		add("Requests per second by outcome",
			fmt.Sprintf("What the load saw at the ingress, per %s window of send time. Red bands: faults in place; orange: what each fault or revert cost the clients, from the first failed answer to the recovery (hover for the figures).", formatSeconds(r.Timings.WindowSeconds)), c)

		c = base("latency")
		c.x, c.logY = x, true
		c.yFormat = func(v float64) string { return formatSeconds(v) }
		c.lines = []layer{
			{name: "p50", color: palette[0], y: p50},
			{name: "p90", color: palette[1], y: p90},
			{name: "p99", color: palette[5], y: p99},
		}
		add("Latency percentiles", "Per load window, logarithmic scale.", c)
	}
	for _, o := range s.observers {
		who := fmt.Sprintf("%s in %s", o.workload, o.cluster)
		svc := "upstream"
		if len(o.services) > 0 {
			svc = strings.Join(o.services, ", ")
		}
		answered := o.answeredLayers()
		if len(o.upstream) > 0 {
			c := base("req/s")
			c.x, c.barW = o.x, o.width
			c.areas = layersOf(o.upstream, upstreamOrder)
			add(fmt.Sprintf("Requests from %s to %s, per Envoy cluster", who, svc),
				fmt.Sprintf("From %s's Envoy stats (upstream_rq_total per Envoy cluster), per %s scrape. Local is the service in %s; .global clusters are the backing services in other clusters; the aggregate is the failover host.", o.workload, formatSeconds(o.width), o.cluster), c)
		}
		if len(answered) > 0 {
			c := base("req/s")
			c.x, c.barW, c.areas = o.x, o.width, answered
			add(fmt.Sprintf("Requests from %s to %s, by the cluster that answered", who, svc),
				"From istio_requests_total (reporter=source) destination_cluster: the identity of the workload that answered. Unknown: no workload answered (the request failed before reaching one).", c)
		}
		c := base("per second")
		c.x, c.barW = o.x, o.width
		c.bars = layersOf(o.code503, upstreamOrder)
		for i := range c.bars {
			c.bars[i].name = "503 from " + c.bars[i].name
		}
		var total503 float64
		for _, ys := range o.code503 {
			for _, y := range ys {
				total503 += y * o.width
			}
		}
		if len(s.windows) > 0 {
			x := make([]float64, len(s.windows))
			deg, bad := make([]float64, len(x)), make([]float64, len(x))
			for i, w := range s.windows {
				x[i], deg[i], bad[i] = (w.from+w.to)/2, w.degraded, w.errors
			}
			c.lines = []layer{
				{name: "degraded answers at the ingress", color: colorDegraded, x: x, y: deg},
				{name: "errors at the ingress", color: colorError, x: x, y: bad, dash: true},
			}
		}
		add(fmt.Sprintf("503s %s got from %s, and what the load saw", who, svc),
			fmt.Sprintf("Bars: upstream 503 answers in %s's Envoy per Envoy cluster, %s in all. Lines: degraded and failed answers the load got at the ingress, per window.",
				o.workload, formatCount(math.Round(total503))), c)

		// A close-up of each failover and failback this observer saw, at the
		// resolution of its scrapes.
		for _, f := range r.Timings.Failovers {
			if f.From != o.cluster && f.To != o.cluster {
				continue
			}
			step := f.AtSeconds - f.TookSeconds
			c := base("req/s")
			c.xMin, c.xMax = math.Max(0, math.Floor(step-5)), math.Ceil(f.AtSeconds+8)
			c.x, c.barW = o.x, o.width
			c.areas = answered
			src := "the cluster that answered"
			if len(answered) == 0 {
				c.areas, src = layersOf(o.upstream, upstreamOrder), "Envoy cluster"
			}
			add(fmt.Sprintf("Close-up: %s of %s to %s, by %s", f.Kind, f.Service, f.To, src),
				fmt.Sprintf("Each step is one %s scrape of %s's Envoy. The %s is detected at the end of the first interval after %s in which %s answered most requests (%s of %s): %s after the step, within %s of the true moment.",
					formatSeconds(o.width), o.workload, f.Kind, f.After, f.To, formatCount(float64(f.Served)), formatCount(float64(f.Total)), formatSeconds(f.TookSeconds), formatSeconds(f.ResolutionSeconds)), c)
		}
	}
	if svg, shown, total := r.hostLanes(s.end); svg != "" {
		caption := "From the observed Envoys' own /clusters, read at every scrape: red while outlier detection had a host ejected (failed_outlier_check), and in blue the priority level each Envoy cluster served from first, at each change (none: no available host)."
		if shown < total {
			caption += fmt.Sprintf(" The first %d of %d lanes; report.json's timings.hosts has them all.", shown, total)
		}
		out = append(out, htmlChart{Title: "Envoy's own view: hosts ejected, and the priority served from", Caption: caption, SVG: template.HTML(svg)})
	}
	return out
}

// answeredLayers are the areas of requests by answering cluster, "unknown" (nobody
// answered) on top in red.
func (o observerSeries) answeredLayers() []layer {
	ls := layersOf(o.answered, func(a, b string) int {
		if (a == "unknown") != (b == "unknown") {
			if a == "unknown" {
				return 1
			}
			return -1
		}
		return strings.Compare(a, b)
	})
	for i := range ls {
		if ls[i].name == "unknown" {
			ls[i].color, ls[i].name = colorError, "unknown (no workload answered)"
		}
	}
	return ls
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
