package report

import (
	"fmt"
	"html"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// chart is one time chart of report.html, drawn as inline SVG: no script, no font
// or file to fetch, so the report opens anywhere, offline, and prints.
type chart struct {
	id         string  // unique in the page, for the plot's clip path
	unit       string  // the y axis unit, e.g. "req/s"
	xMin, xMax float64 // the time range shown, seconds on the load clock
	logY       bool
	yFormat    func(float64) string
	// Layers are drawn in this order: stacked areas, stacked bars, lines.
	areas   []layer
	bars    []layer
	lines   []layer
	x       []float64 // shared x of areas and bars
	barW    float64   // bar width, in x units
	markers []marker
	bands   []band
	dips    []band // drawn over the bands, under the data
}

type layer struct {
	name  string
	color string
	y     []float64 // aligned with chart.x, or with x of the layer
	x     []float64 // for lines with their own x
	dash  bool
}

// Geometry of every chart, in SVG user units (the SVG scales to the page width).
const (
	chartW      = 1120
	plotHeight  = 230
	padL        = 64
	padR        = 20
	legendH     = 28 // the legend row above the marker labels
	padB        = 34
	markerRowsH = 14
)

// labelWidth estimates the width of a label in the 11px sans-serif of the charts.
func labelWidth(s string) float64 { return float64(len([]rune(s)))*6.3 + 8 }

// maxPoints bounds the points a chart draws: about one per pixel column of the
// plot. Longer series are merged in groups of neighbours, so that a drill of hours
// still makes a page of a few hundred kilobytes.
const maxPoints = 1000

// decimate merges the chart's series down to maxPoints: rates (areas, bars) by
// their mean, which is the rate over the merged span; lines, which are latency
// percentiles, by their maximum, since percentiles do not average and the worst
// is what a reader looks for.
//
// It first crops the series to the chart's time range (a close-up shows a few
// seconds of a long run at full resolution), and works on copies: charts share
// their series.
func (c *chart) decimate() {
	xMax := c.xMax
	if xMax <= c.xMin {
		xMax = c.xMin + 1
	}
	i0, i1 := cropRange(c.x, c.xMin, xMax)
	c.x = c.x[i0:i1]
	for _, ls := range []*[]layer{&c.areas, &c.bars, &c.lines} {
		*ls = slices.Clone(*ls)
		for i := range *ls {
			l := &(*ls)[i]
			if l.x == nil {
				l.y = l.y[i0:i1]
			} else {
				j0, j1 := cropRange(l.x, c.xMin, xMax)
				l.x, l.y = l.x[j0:j1], l.y[j0:j1]
			}
		}
	}
	g := (len(c.x) + maxPoints - 1) / maxPoints
	if g > 1 {
		x := mergeSeries(c.x, g, mean)
		for _, ls := range [][]layer{c.areas, c.bars} {
			for i := range ls {
				ls[i].y = mergeSeries(ls[i].y, g, mean)
			}
		}
		for i := range c.lines {
			if c.lines[i].x == nil {
				c.lines[i].y = mergeSeries(c.lines[i].y, g, maxOf)
			}
		}
		c.x, c.barW = x, c.barW*float64(g)
	}
	for i := range c.lines {
		l := &c.lines[i]
		if g := (len(l.x) + maxPoints - 1) / maxPoints; l.x != nil && g > 1 {
			l.x, l.y = mergeSeries(l.x, g, mean), mergeSeries(l.y, g, maxOf)
		}
	}
}

// cropRange is the index range of x within [lo, hi], widened by one point on
// each side so that lines and areas run to the edges of the plot.
func cropRange(x []float64, lo, hi float64) (int, int) {
	i0 := sort.SearchFloat64s(x, lo)
	i1 := sort.Search(len(x), func(i int) bool { return x[i] > hi })
	a, b := max(i0-1, 0), min(i1+1, len(x))
	if a > b { // x out of order: a log's own business, not a reason to fail
		return 0, len(x)
	}
	return a, b
}

func mergeSeries(v []float64, g int, agg func([]float64) float64) []float64 {
	out := make([]float64, 0, (len(v)+g-1)/g)
	for i := 0; i < len(v); i += g {
		out = append(out, agg(v[i:min(i+g, len(v))]))
	}
	return out
}

func mean(v []float64) float64 {
	sum, n := 0.0, 0
	for _, x := range v {
		if !math.IsNaN(x) {
			sum += x
			n++
		}
	}
	if n == 0 {
		return math.NaN()
	}
	return sum / float64(n)
}

func maxOf(v []float64) float64 {
	m := math.NaN()
	for _, x := range v {
		if !math.IsNaN(x) && (math.IsNaN(m) || x > m) {
			m = x
		}
	}
	return m
}

// plot is a chart's geometry once its data and markers are known: the
// mapping of data to SVG coordinates, the y ticks and the marker label rows.
type plot struct {
	c            *chart
	xMin, xMax   float64
	plotW, plotH float64
	padTi        int
	padT         float64
	chartH       int
	labels       []placedLabel
	ticks        []float64
	Y            func(float64) float64
	yFmt         func(float64) string
}

// placedLabel is a marker's label in its row above the plot.
type placedLabel struct {
	m     marker
	x, tx float64
	row   int
	end   bool
}

func (p *plot) X(x float64) float64    { return padL + (x-p.xMin)/(p.xMax-p.xMin)*p.plotW }
func (p *plot) visible(x float64) bool { return x >= p.xMin && x <= p.xMax }

func (c *chart) svg(title string) string {
	c.decimate()
	p := &plot{c: c, xMin: c.xMin, xMax: c.xMax, plotW: float64(chartW - padL - padR), plotH: float64(plotHeight)}
	if p.xMax <= p.xMin {
		p.xMax = p.xMin + 1
	}
	rows := p.placeLabels()
	p.padTi = legendH + rows*markerRowsH + 6
	p.padT = float64(p.padTi)
	p.chartH = p.padTi + plotHeight + padB
	p.scaleY()

	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 %d %d" role="img" aria-label="%s" class="chart">`, chartW, p.chartH, esc(title))
	fmt.Fprintf(&b, `<title>%s</title>`, esc(title))
	fmt.Fprintf(&b, `<defs><clipPath id="%s"><rect x="%d" y="%d" width="%s" height="%s"/></clipPath></defs>`, c.id, padL, p.padTi, f1(p.plotW), f1(p.plotH))
	p.bands(&b)
	p.axes(&b)
	fmt.Fprintf(&b, `<g clip-path="url(#%s)">`, c.id)
	p.areas(&b)
	p.bars(&b)
	p.lines(&b)
	b.WriteString(`</g>`)
	p.strips(&b)
	p.markers(&b)
	p.legend(&b)
	b.WriteString(`</svg>`)
	return b.String()
}

// placeLabels puts marker labels in rows between the legend and the plot, a
// label moving down a row when it would overlap one before it, and returns the
// number of rows.
func (p *plot) placeLabels() int {
	var rowEnd []float64
	for _, m := range p.c.markers {
		if !p.visible(m.at) {
			continue
		}
		x := p.X(m.at)
		w := labelWidth(m.label)
		l := placedLabel{m: m, x: x, tx: x + 3}
		left := x
		if x+w > chartW-padR {
			l.end, l.tx, left = true, x-3, x-w
		}
		for l.row < len(rowEnd) && rowEnd[l.row] > left {
			l.row++
		}
		if l.row == len(rowEnd) {
			rowEnd = append(rowEnd, 0)
		}
		rowEnd[l.row] = left + w
		p.labels = append(p.labels, l)
	}
	return len(rowEnd)
}

// yRange is the range of what is visible: the highest value (of a stack, its
// sum) and the lowest positive one.
func (p *plot) yRange() (lo, hi float64) {
	c := p.c
	visit := func(v float64) {
		if math.IsNaN(v) {
			return
		}
		hi = max(hi, v)
		if v > 0 && (lo == 0 || v < lo) {
			lo = v
		}
	}
	for _, stack := range [][]layer{c.areas, c.bars} {
		if len(stack) == 0 {
			continue
		}
		for i, x := range c.x {
			if !p.visible(x) {
				continue
			}
			sum := 0.0
			for _, l := range stack {
				sum += l.y[i]
			}
			visit(sum)
		}
	}
	for _, l := range c.lines {
		for i, v := range l.y {
			if p.visible(l.xs(c)[i]) {
				visit(v)
			}
		}
	}
	return lo, hi
}

// scaleY sets the y mapping and ticks: from 0 (or the lowest decade on a log
// scale) to a round number above the highest visible value.
func (p *plot) scaleY() {
	lo, hi := p.yRange()
	if p.c.logY {
		if lo <= 0 {
			lo = 1e-3
		}
		if hi <= lo {
			hi = lo * 10
		}
		dlo, dhi := math.Floor(math.Log10(lo)), math.Ceil(math.Log10(hi))
		if dhi <= dlo {
			dhi = dlo + 1
		}
		p.Y = func(v float64) float64 {
			v = max(v, math.Pow(10, dlo))
			return p.padT + p.plotH*(1-(math.Log10(v)-dlo)/(dhi-dlo))
		}
		for d := dlo; d <= dhi; d++ {
			for _, m := range []float64{1, 2, 5} {
				if d == dhi && m > 1 {
					break
				}
				p.ticks = append(p.ticks, m*math.Pow(10, d))
			}
		}
	} else {
		// Headroom, so that a flat line at the top stays readable.
		step := niceStep(hi*1.1, 5)
		top := math.Ceil(hi*1.1/step) * step
		if top <= 0 {
			top, step = 1, 0.2
		}
		p.Y = func(v float64) float64 { return p.padT + p.plotH*(1-v/top) }
		for i := 0; float64(i)*step <= top*1.0001; i++ {
			p.ticks = append(p.ticks, float64(i)*step)
		}
	}
	p.yFmt = p.c.yFormat
	if p.yFmt == nil {
		p.yFmt = func(v float64) string { return trimFloat(v, 2) }
	}
}

// bands draws the fault bands behind the data.
func (p *plot) bands(b *strings.Builder) {
	for _, set := range []struct {
		class string
		bands []band
	}{{"band", p.c.bands}, {"dip", p.c.dips}} {
		for _, bd := range set.bands {
			x1, x2 := p.X(clamp(bd.from, p.xMin, p.xMax)), p.X(clamp(bd.to, p.xMin, p.xMax))
			if x2 > x1 {
				fmt.Fprintf(b, `<rect x="%s" y="%d" width="%s" height="%s" class="%s"><title>%s</title></rect>`,
					f1(x1), p.padTi, f1(x2-x1), f1(p.plotH), set.class, esc(bd.label))
			}
		}
	}
}

// axes draws the grid, the ticks and the axes.
func (p *plot) axes(b *strings.Builder) {
	for _, t := range p.ticks {
		y := p.Y(t)
		fmt.Fprintf(b, `<line x1="%d" x2="%d" y1="%s" y2="%s" class="grid"/>`, padL, chartW-padR, f1(y), f1(y))
		fmt.Fprintf(b, `<text x="%d" y="%s" class="ytick">%s</text>`, padL-6, f1(y+4), esc(p.yFmt(t)))
	}
	fmt.Fprintf(b, `<text x="14" y="%s" class="yunit" transform="rotate(-90 14 %s)">%s</text>`, f1(p.padT+p.plotH/2), f1(p.padT+p.plotH/2), esc(p.c.unit))
	xs := niceTimeStep(p.xMax - p.xMin)
	for t := math.Ceil(p.xMin/xs) * xs; t <= p.xMax+1e-9; t += xs {
		x := p.X(t)
		fmt.Fprintf(b, `<line x1="%s" x2="%s" y1="%d" y2="%s" class="xgrid"/>`, f1(x), f1(x), p.padTi, f1(p.padT+p.plotH))
		fmt.Fprintf(b, `<text x="%s" y="%s" class="xtick">%s</text>`, f1(x), f1(p.padT+p.plotH+16), clockText(t))
	}
	fmt.Fprintf(b, `<line x1="%d" x2="%d" y1="%s" y2="%s" class="axis"/>`, padL, chartW-padR, f1(p.padT+p.plotH), f1(p.padT+p.plotH))
}

// areas draws the stacked areas. With a bar width each value holds over its
// interval, as counts per window or per scrape do; without, the outline joins
// the middles.
func (p *plot) areas(b *strings.Builder) {
	c := p.c
	if len(c.areas) == 0 || len(c.x) == 0 {
		return
	}
	half := c.barW / 2
	edge := func(pts []string, x, y float64, rev bool) []string {
		if half == 0 {
			return append(pts, f1(p.X(x))+","+f1(p.Y(y)))
		}
		a, z := x-half, x+half
		if rev {
			a, z = z, a
		}
		return append(pts, f1(p.X(a))+","+f1(p.Y(y)), f1(p.X(z))+","+f1(p.Y(y)))
	}
	base := make([]float64, len(c.x))
	for _, l := range c.areas {
		top := make([]float64, len(c.x))
		pts := make([]string, 0, 4*len(c.x))
		for i, x := range c.x {
			top[i] = base[i] + l.y[i]
			pts = edge(pts, x, top[i], false)
		}
		for i := len(c.x) - 1; i >= 0; i-- {
			pts = edge(pts, c.x[i], base[i], true)
		}
		fmt.Fprintf(b, `<polygon points="%s" fill="%s" fill-opacity="0.8"><title>%s</title></polygon>`,
			strings.Join(pts, " "), l.color, esc(l.name))
		base = top
	}
}

// bars draws the stacked bars, one per interval.
func (p *plot) bars(b *strings.Builder) {
	c := p.c
	if len(c.bars) == 0 {
		return
	}
	bw := max(c.barW/(p.xMax-p.xMin)*p.plotW*0.8, 1.5)
	base := make([]float64, len(c.x))
	for _, l := range c.bars {
		for i, x := range c.x {
			if l.y[i] <= 0 || !p.visible(x) {
				continue
			}
			y0, y1 := p.Y(base[i]), p.Y(base[i]+l.y[i])
			fmt.Fprintf(b, `<rect x="%s" y="%s" width="%s" height="%s" fill="%s"><title>%s at %s: %s %s</title></rect>`,
				f1(p.X(x)-bw/2), f1(y1), f1(bw), f1(max(y0-y1, 0.8)), l.color, esc(l.name), clockText(x), trimFloat(l.y[i], 2), esc(c.unit))
			base[i] += l.y[i]
		}
	}
}

// lines draws the lines, broken at gaps (NaN).
func (p *plot) lines(b *strings.Builder) {
	c := p.c
	for _, l := range c.lines {
		x := l.xs(c)
		var seg []string
		flush := func() {
			switch {
			case len(seg) > 1:
				dash := ""
				if l.dash {
					dash = ` stroke-dasharray="5 3"`
				}
				fmt.Fprintf(b, `<polyline points="%s" fill="none" stroke="%s" stroke-width="1.8" stroke-linejoin="round"%s><title>%s</title></polyline>`,
					strings.Join(seg, " "), l.color, dash, esc(l.name))
			case len(seg) == 1:
				pt := strings.Split(seg[0], ",")
				fmt.Fprintf(b, `<circle cx="%s" cy="%s" r="2" fill="%s"/>`, pt[0], pt[1], l.color)
			}
			seg = seg[:0]
		}
		for i, v := range l.y {
			if math.IsNaN(v) || (c.logY && v <= 0) {
				flush()
				continue
			}
			seg = append(seg, f1(p.X(x[i]))+","+f1(p.Y(v)))
		}
		flush()
	}
}

// strips draws a fault in place as a strip along the top of the plot too,
// which areas do not cover.
func (p *plot) strips(b *strings.Builder) {
	for _, bd := range p.c.bands {
		x1, x2 := p.X(clamp(bd.from, p.xMin, p.xMax)), p.X(clamp(bd.to, p.xMin, p.xMax))
		if x2 > x1 {
			fmt.Fprintf(b, `<rect x="%s" y="%s" width="%s" height="4" class="strip"><title>%s</title></rect>`, f1(x1), f1(p.padT-4), f1(x2-x1), esc(bd.label))
		}
	}
}

// markers draws the markers and their labels, on top of the data.
func (p *plot) markers(b *strings.Builder) {
	for _, l := range p.labels {
		anchor := "start"
		if l.end {
			anchor = "end"
		}
		ly := float64(legendH) + 10 + float64(l.row)*markerRowsH
		fmt.Fprintf(b, `<line x1="%s" x2="%s" y1="%s" y2="%s" class="marker %s"/>`, f1(l.x), f1(l.x), f1(ly+3), f1(p.padT+p.plotH), l.m.kind)
		fmt.Fprintf(b, `<text x="%s" y="%s" text-anchor="%s" class="mlabel %s">%s</text>`, f1(l.tx), f1(ly), anchor, l.m.kind, esc(l.m.label))
	}
}

// legend draws the legend above everything: a swatch for areas and bars, a
// stroke for lines.
func (p *plot) legend(b *strings.Builder) {
	lx := float64(padL)
	for gi, group := range [][]layer{p.c.areas, p.c.bars, p.c.lines} {
		for _, l := range group {
			if gi == 2 {
				dash := ""
				if l.dash {
					dash = ` stroke-dasharray="5 3"`
				}
				fmt.Fprintf(b, `<line x1="%s" x2="%s" y1="16.5" y2="16.5" stroke="%s" stroke-width="2.5"%s/>`, f1(lx), f1(lx+16), l.color, dash)
			} else {
				fmt.Fprintf(b, `<rect x="%s" y="11" width="14" height="11" rx="2" fill="%s"/>`, f1(lx), l.color)
			}
			fmt.Fprintf(b, `<text x="%s" y="21" class="legend">%s</text>`, f1(lx+21), esc(l.name))
			lx += 21 + labelWidth(l.name) + 14
		}
	}
}

// xs is the x of a line: its own, or the chart's.
func (l layer) xs(c *chart) []float64 {
	if l.x != nil {
		return l.x
	}
	return c.x
}

func clamp(v, lo, hi float64) float64 { return max(lo, min(v, hi)) }

func f1(v float64) string { return strconv.FormatFloat(v, 'f', 1, 64) }

func esc(s string) string { return html.EscapeString(s) }

// niceStep is a round step (1, 2 or 5 × 10^n) giving about n ticks up to hi.
func niceStep(hi float64, n int) float64 {
	if hi <= 0 {
		return 1
	}
	raw := hi / float64(n)
	p := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= raw {
			return m * p
		}
	}
	return 10 * p
}

// niceTimeStep picks a tick step in seconds for a time axis of length span.
func niceTimeStep(span float64) float64 {
	for _, s := range []float64{1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200} {
		if span/s <= 12 {
			return s
		}
	}
	return niceStep(span, 10)
}

// clockText writes a time on the load clock: 45s, 1m30s.
func clockText(t float64) string {
	s := int(math.Round(t))
	if s < 0 {
		return "-" + clockText(-t)
	}
	if s < 60 {
		return strconv.Itoa(s) + "s"
	}
	if s%60 == 0 {
		return strconv.Itoa(s/60) + "m"
	}
	return fmt.Sprintf("%dm%02ds", s/60, s%60)
}

// Colours: outcomes in the traffic-light order SREs read at a glance; a
// colour-blind-safe palette (Okabe–Ito) for clusters and percentiles.
const (
	colorOK       = "#4caf50"
	colorDegraded = "#f0a020"
	colorError    = "#d32f2f"
)

var palette = []string{"#0072b2", "#e69f00", "#009e73", "#cc79a7", "#56b4e9", "#d55e00", "#7a7a7a", "#f0e442"}
