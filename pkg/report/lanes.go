package report

import (
	"fmt"
	"math"
	"strings"

	"github.com/meshdrill/drill/internal/stats"
)

// maxLanes bounds the lanes of the Envoy view: a mesh with hundreds of hosts
// ejected says so in the caption rather than drawing a page-long figure.
const maxLanes = 40

// Geometry of the lanes, in the charts' SVG user units.
const (
	laneH      = 30 // a lane: its label, then its bar
	laneBarH   = 10
	laneAxisH  = 26
	laneLabelY = 11
)

// lane is one row of the Envoy view: a host's ejections, or an Envoy
// cluster's serving priority.
type lane struct {
	label string
	spans [][2]float64 // ejected from, to (seconds on the load clock)
	marks []laneMark   // serving priority changes
}

type laneMark struct {
	at   float64
	text string
}

// hostLanes draws what the observed Envoys' /clusters showed change, under
// the charts' time axis from 0 to end: one lane per host an Envoy ejected,
// red while it was ejected (to the end of the load when it never returned),
// and one lane per Envoy cluster whose serving priority changed, with the
// level written at each change. Empty when nothing changed; shown is how
// many lanes were drawn of how many there were.
func (r *Report) hostLanes(end float64) (svg string, shown, total int) {
	if len(r.Timings.Hosts) == 0 || end <= 0 {
		return "", 0, 0
	}
	var lanes []*lane
	byKey := map[string]*lane{}
	get := func(key, label string) *lane {
		if l, ok := byKey[key]; ok {
			return l
		}
		l := &lane{label: label}
		byKey[key] = l
		lanes = append(lanes, l)
		return l
	}
	for _, h := range r.Timings.Hosts {
		who := fmt.Sprintf("%s in %s → %s", h.Workload, h.Cluster, shortEnvoyCluster(h.EnvoyCluster))
		switch h.Kind {
		case "ejected":
			l := get("host|"+h.Workload+"|"+h.Cluster+"|"+h.EnvoyCluster+"|"+h.Host, fmt.Sprintf("%s: host %s (priority %d)", who, h.Host, h.Priority))
			if n := len(l.spans); n == 0 || !math.IsInf(l.spans[n-1][1], 1) {
				l.spans = append(l.spans, [2]float64{h.AtSeconds, math.Inf(1)})
			}
		case "returned":
			l := get("host|"+h.Workload+"|"+h.Cluster+"|"+h.EnvoyCluster+"|"+h.Host, fmt.Sprintf("%s: host %s (priority %d)", who, h.Host, h.Priority))
			if n := len(l.spans); n > 0 && math.IsInf(l.spans[n-1][1], 1) {
				l.spans[n-1][1] = h.AtSeconds
			}
		case "priority":
			l := get("prio|"+h.Workload+"|"+h.Cluster+"|"+h.EnvoyCluster, who+": the priority it serves from first")
			text := fmt.Sprintf("P%d", h.To)
			if h.To < 0 {
				text = "none"
			}
			l.marks = append(l.marks, laneMark{at: h.AtSeconds, text: text})
		}
	}
	total = len(lanes)
	if len(lanes) > maxLanes {
		lanes = lanes[:maxLanes]
	}
	plotW := float64(chartW - padL - padR)
	x := func(t float64) float64 { return padL + clamp(t, 0, end)/end*plotW }
	height := len(lanes)*laneH + laneAxisH
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 %d %d" role="img" aria-label="Envoy's own view" class="chart lanes">`, chartW, height)
	b.WriteString(`<title>Envoy's own view: hosts ejected, and the priority each Envoy cluster served from first</title>`)
	for i, l := range lanes {
		y := float64(i * laneH)
		fmt.Fprintf(&b, `<text x="%d" y="%s" class="lane-label" font-size="11" fill="#444">%s</text>`, padL, f1(y+laneLabelY), esc(l.label))
		fmt.Fprintf(&b, `<rect x="%d" y="%s" width="%s" height="%d" fill="#f3f3f3"/>`, padL, f1(y+14), f1(plotW), laneBarH)
		for _, sp := range l.spans {
			to, still := sp[1], ""
			if math.IsInf(to, 1) {
				to, still = end, ", not returned by the end of the load"
			}
			x1, x2 := x(sp[0]), x(to)
			fmt.Fprintf(&b, `<rect x="%s" y="%s" width="%s" height="%d" fill="#d32f2f" class="ejected"><title>ejected from %s to %s%s</title></rect>`,
				f1(x1), f1(y+14), f1(math.Max(x2-x1, 1.5)), laneBarH, clockText(sp[0]), clockText(to), still)
		}
		for _, m := range l.marks {
			xm := x(m.at)
			fmt.Fprintf(&b, `<line x1="%s" x2="%s" y1="%s" y2="%s" stroke="#3c6e9f" stroke-width="2" class="priority"><title>%s: serves from %s</title></line>`,
				f1(xm), f1(xm), f1(y+12), f1(y+14+laneBarH+2), clockText(m.at), esc(m.text))
			fmt.Fprintf(&b, `<text x="%s" y="%s" font-size="10" fill="#3c6e9f">%s</text>`, f1(xm+3), f1(y+14+laneBarH-1), esc(m.text))
		}
	}
	axisY := len(lanes)*laneH + 4
	fmt.Fprintf(&b, `<line x1="%d" x2="%d" y1="%d" y2="%d" class="axis"/>`, padL, chartW-padR, axisY, axisY)
	step := niceTimeStep(end)
	for t := 0.0; t <= end+1e-9; t += step {
		fmt.Fprintf(&b, `<text x="%s" y="%d" class="xtick">%s</text>`, f1(x(t)), axisY+16, clockText(t))
	}
	b.WriteString(`</svg>`)
	return b.String(), len(lanes), total
}

// shortEnvoyCluster is an Envoy cluster's name as a lane says it: the
// service host of an Istio cluster name, with the subset, without the
// cluster-local suffix; other names as they are.
func shortEnvoyCluster(name string) string {
	c, ok := stats.ParseClusterName(name, "")
	if !ok || c.Host == "" {
		return name
	}
	host := strings.TrimSuffix(c.Host, ".svc.cluster.local")
	if c.Subset != "" {
		host += " (" + c.Subset + ")"
	}
	return host
}
