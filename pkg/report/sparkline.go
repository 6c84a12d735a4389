package report

import (
	"fmt"
	"html/template"
	"math"
	"strings"
)

// Sparkline size, in CSS pixels: small enough to sit beside a figure.
const (
	sparkWidth  = 96
	sparkHeight = 20
	sparkPad    = 2.5
)

// sparkline draws a trend as a small inline SVG polyline, oldest point left,
// this run as a dot at the right; its title lists the values.
func sparkline(t *Trend) template.HTML {
	if t == nil || len(t.Points) == 0 {
		return ""
	}
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, p := range t.Points {
		lo, hi = min(lo, p.Value), max(hi, p.Value)
	}
	if hi == lo {
		hi, lo = hi+1, lo-1 // a flat line in the middle
	}
	n := len(t.Points)
	x := func(i int) float64 {
		if n == 1 {
			return sparkWidth - sparkPad
		}
		return sparkPad + float64(i)*(sparkWidth-2*sparkPad)/float64(n-1)
	}
	y := func(v float64) float64 {
		return sparkHeight - sparkPad - (v-lo)/(hi-lo)*(sparkHeight-2*sparkPad)
	}
	m := Measure{Unit: t.Unit}
	var pts, title []string
	for i, p := range t.Points {
		pts = append(pts, fmt.Sprintf("%.1f,%.1f", x(i), y(p.Value)))
		title = append(title, m.format(p.Value))
	}
	last := t.Points[n-1]
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="sparkline" width="%d" height="%d" viewBox="0 0 %d %d" role="img" aria-label="%s over %d runs">`,
		sparkWidth, sparkHeight, sparkWidth, sparkHeight, template.HTMLEscapeString(t.Figure), n)
	fmt.Fprintf(&b, `<title>%s: %s</title>`, template.HTMLEscapeString(t.Figure), template.HTMLEscapeString(strings.Join(title, " → ")))
	if n > 1 {
		fmt.Fprintf(&b, `<polyline points="%s"/>`, strings.Join(pts, " "))
	}
	fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="2.2"/></svg>`, x(n-1), y(last.Value))
	return template.HTML(b.String())
}

// TrendOf is the trend beside an expectation in report.html: its figure's, or
// for a regression expectation the figure it judged; nil without history.
func (r *Report) TrendOf(x Result) *Trend {
	if x.Regression != nil {
		return r.Trend(x.Regression.Figure)
	}
	if len(x.Measures) == 0 {
		return nil
	}
	return r.Trend(figureKey(x, 0))
}

// LastText is this run's figure, for people.
func (t Trend) LastText() string {
	if len(t.Points) == 0 {
		return "—"
	}
	return Measure{Unit: t.Unit}.format(t.Points[len(t.Points)-1].Value)
}

// MedianText is the median of the figure in the runs before this one.
func (t Trend) MedianText() string {
	if len(t.Points) < 2 {
		return "—"
	}
	vs := make([]float64, 0, len(t.Points)-1)
	for _, p := range t.Points[:len(t.Points)-1] {
		vs = append(vs, p.Value)
	}
	return Measure{Unit: t.Unit}.format(median(vs))
}
