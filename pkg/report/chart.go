package report

import (
	"fmt"
	"html"
	"math"
	"strconv"
	"strings"
)

// chart is one time chart of report.html, drawn as inline SVG: no script, no font
// or file to fetch, so the report opens anywhere, offline, and prints.
type chart struct {
	unit    string // the y axis unit, e.g. "req/s"
	xMax    float64
	logY    bool
	yFormat func(float64) string
	// Layers are drawn in this order: stacked areas, stacked bars, lines.
	areas   []layer
	bars    []layer
	lines   []layer
	x       []float64 // shared x of areas and bars
	barW    float64   // bar width, in x units
	markers []marker
	bands   []band
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
	chartH      = 300
	padL        = 64
	padR        = 20
	padT        = 46 // legend row and marker labels
	padB        = 34
	markerRowsH = 13
)

func (c *chart) svg(title string) string {
	var b strings.Builder
	plotW, plotH := float64(chartW-padL-padR), float64(chartH-padT-padB)
	xMax := c.xMax
	if xMax <= 0 {
		xMax = 1
	}
	X := func(x float64) float64 { return padL + x/xMax*plotW }

	// The y range: from 0 (or the lowest decade on a log scale) to a round top.
	lo, hi := 0.0, 0.0
	visit := func(v float64) {
		if v > hi {
			hi = v
		}
		if v > 0 && (lo == 0 || v < lo) {
			lo = v
		}
	}
	if len(c.areas) > 0 {
		for i := range c.x {
			sum := 0.0
			for _, l := range c.areas {
				sum += l.y[i]
			}
			visit(sum)
		}
	}
	if len(c.bars) > 0 {
		for i := range c.x {
			sum := 0.0
			for _, l := range c.bars {
				sum += l.y[i]
			}
			visit(sum)
		}
	}
	for _, l := range c.lines {
		for _, v := range l.y {
			if !math.IsNaN(v) {
				visit(v)
			}
		}
	}
	var ticks []float64
	var Y func(float64) float64
	if c.logY {
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
		Y = func(v float64) float64 {
			if v <= 0 {
				v = math.Pow(10, dlo)
			}
			f := (math.Log10(v) - dlo) / (dhi - dlo)
			return padT + plotH*(1-f)
		}
		for d := dlo; d <= dhi; d++ {
			for _, m := range []float64{1, 2, 5} {
				v := m * math.Pow(10, d)
				if v >= math.Pow(10, dlo) && v <= math.Pow(10, dhi)*1.0001 {
					ticks = append(ticks, v)
				}
			}
		}
	} else {
		step := niceStep(hi, 5)
		top := math.Ceil(hi/step) * step
		if top <= 0 {
			top, step = 1, 0.2
		}
		Y = func(v float64) float64 { return padT + plotH*(1-v/top) }
		for v := 0.0; v <= top*1.0001; v += step {
			ticks = append(ticks, v)
		}
	}
	yFmt := c.yFormat
	if yFmt == nil {
		yFmt = func(v float64) string { return trimFloat(v, 2) }
	}

	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 %d %d" role="img" aria-label="%s" class="chart">`, chartW, chartH, esc(title))
	fmt.Fprintf(&b, `<title>%s</title>`, esc(title))
	// Fault bands behind everything.
	for _, bd := range c.bands {
		x1, x2 := X(clamp(bd.from, 0, xMax)), X(clamp(bd.to, 0, xMax))
		fmt.Fprintf(&b, `<rect x="%s" y="%d" width="%s" height="%s" class="band"><title>%s</title></rect>`,
			f1(x1), padT, f1(max(x2-x1, 0)), f1(plotH), esc(bd.label))
	}
	// Grid and y axis.
	for _, t := range ticks {
		y := Y(t)
		fmt.Fprintf(&b, `<line x1="%d" x2="%d" y1="%s" y2="%s" class="grid"/>`, padL, chartW-padR, f1(y), f1(y))
		fmt.Fprintf(&b, `<text x="%d" y="%s" class="ytick">%s</text>`, padL-6, f1(y+4), esc(yFmt(t)))
	}
	fmt.Fprintf(&b, `<text x="14" y="%s" class="yunit" transform="rotate(-90 14 %s)">%s</text>`, f1(padT+plotH/2), f1(padT+plotH/2), esc(c.unit))
	// x axis.
	xs := niceTimeStep(xMax)
	for t := 0.0; t <= xMax+1e-9; t += xs {
		x := X(t)
		fmt.Fprintf(&b, `<line x1="%s" x2="%s" y1="%d" y2="%s" class="xgrid"/>`, f1(x), f1(x), padT, f1(padT+plotH))
		fmt.Fprintf(&b, `<text x="%s" y="%s" class="xtick">%s</text>`, f1(x), f1(padT+plotH+16), clockText(t))
	}
	fmt.Fprintf(&b, `<line x1="%d" x2="%d" y1="%s" y2="%s" class="axis"/>`, padL, chartW-padR, f1(padT+plotH), f1(padT+plotH))

	// Stacked areas.
	if len(c.areas) > 0 && len(c.x) > 0 {
		base := make([]float64, len(c.x))
		for _, l := range c.areas {
			top := make([]float64, len(c.x))
			var pts []string
			for i, x := range c.x {
				top[i] = base[i] + l.y[i]
				pts = append(pts, f1(X(x))+","+f1(Y(top[i])))
			}
			for i := len(c.x) - 1; i >= 0; i-- {
				pts = append(pts, f1(X(c.x[i]))+","+f1(Y(base[i])))
			}
			fmt.Fprintf(&b, `<polygon points="%s" fill="%s" fill-opacity="0.78" stroke="%s" stroke-width="0.6"><title>%s</title></polygon>`,
				strings.Join(pts, " "), l.color, l.color, esc(l.name))
			base = top
		}
	}
	// Stacked bars.
	if len(c.bars) > 0 {
		bw := c.barW / xMax * plotW
		bw = max(bw*0.8, 1.2)
		base := make([]float64, len(c.x))
		for _, l := range c.bars {
			for i, x := range c.x {
				if l.y[i] <= 0 {
					continue
				}
				y0, y1 := Y(base[i]), Y(base[i]+l.y[i])
				fmt.Fprintf(&b, `<rect x="%s" y="%s" width="%s" height="%s" fill="%s"><title>%s at %s: %s %s</title></rect>`,
					f1(X(x)-bw/2), f1(y1), f1(bw), f1(max(y0-y1, 0.8)), l.color, esc(l.name), clockText(x), trimFloat(l.y[i], 2), esc(c.unit))
				base[i] += l.y[i]
			}
		}
	}
	// Lines, broken at gaps (NaN).
	for _, l := range c.lines {
		x := l.x
		if x == nil {
			x = c.x
		}
		var seg []string
		flush := func() {
			if len(seg) > 1 {
				dash := ""
				if l.dash {
					dash = ` stroke-dasharray="5 3"`
				}
				fmt.Fprintf(&b, `<polyline points="%s" fill="none" stroke="%s" stroke-width="1.8" stroke-linejoin="round"%s><title>%s</title></polyline>`,
					strings.Join(seg, " "), l.color, dash, esc(l.name))
			} else if len(seg) == 1 {
				p := strings.Split(seg[0], ",")
				fmt.Fprintf(&b, `<circle cx="%s" cy="%s" r="2" fill="%s"/>`, p[0], p[1], l.color)
			}
			seg = seg[:0]
		}
		for i, v := range l.y {
			if math.IsNaN(v) || (c.logY && v <= 0) {
				flush()
				continue
			}
			seg = append(seg, f1(X(x[i]))+","+f1(Y(v)))
		}
		flush()
	}
	// Markers on top, their labels in rows so that close ones do not overlap.
	var rowEnd []float64
	for _, m := range c.markers {
		if m.at < 0 || m.at > xMax {
			continue
		}
		x := X(m.at)
		label := m.label
		w := float64(len([]rune(label)))*6.1 + 6
		row := 0
		for row < len(rowEnd) && rowEnd[row] > x-2 {
			row++
		}
		if row == len(rowEnd) {
			rowEnd = append(rowEnd, 0)
		}
		rowEnd[row] = x + w
		anchor, tx := "start", x+3
		if x+w > chartW-padR {
			anchor, tx = "end", x-3
		}
		ly := float64(padT) + 11 + float64(row)*markerRowsH
		fmt.Fprintf(&b, `<line x1="%s" x2="%s" y1="%d" y2="%s" class="marker %s"/>`, f1(x), f1(x), padT, f1(padT+plotH), m.kind)
		fmt.Fprintf(&b, `<text x="%s" y="%s" text-anchor="%s" class="mlabel %s">%s</text>`, f1(tx), f1(ly), anchor, m.kind, esc(label))
	}
	// Legend above the plot.
	lx := float64(padL)
	for _, group := range [][]layer{c.areas, c.bars, c.lines} {
		for _, l := range group {
			if l.dash {
				fmt.Fprintf(&b, `<line x1="%s" x2="%s" y1="17" y2="17" stroke="%s" stroke-width="2" stroke-dasharray="5 3"/>`, f1(lx), f1(lx+14), l.color)
			} else {
				fmt.Fprintf(&b, `<rect x="%s" y="11" width="14" height="11" rx="2" fill="%s"/>`, f1(lx), l.color)
			}
			fmt.Fprintf(&b, `<text x="%s" y="21" class="legend">%s</text>`, f1(lx+19), esc(l.name))
			lx += 19 + float64(len([]rune(l.name)))*6.6 + 18
		}
	}
	b.WriteString(`</svg>`)
	return b.String()
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
	for _, s := range []float64{1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600} {
		if span/s <= 12 {
			return s
		}
	}
	return 7200
}

// clockText writes a time on the load clock: 45s, 1m30s.
func clockText(t float64) string {
	s := int(math.Round(t))
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
