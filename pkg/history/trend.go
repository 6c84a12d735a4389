package history

import (
	"sort"
)

// Trend is one figure of a scenario on a provider over runs, oldest first.
type Trend struct {
	Scenario string    `json:"scenario"`
	Provider string    `json:"provider"`
	Figure   string    `json:"figure"`
	Unit     string    `json:"unit"`
	Values   []float64 `json:"values"`
	Runs     []string  `json:"runs"`
	Last     float64   `json:"last"`
	Median   float64   `json:"median"`
	Min      float64   `json:"min"`
	Max      float64   `json:"max"`
}

// Trends groups runs (newest first, as List returns them) by scenario and
// provider and follows each figure over them, oldest first. Groups come in the
// order of their newest run; figures in the order of that run's figures.
func Trends(runs []Run) []Trend {
	type group struct {
		scenario, provider string
		runs               []Run
	}
	var groups []*group
	index := map[[2]string]*group{}
	for _, r := range runs {
		k := [2]string{r.Scenario, r.Provider}
		g := index[k]
		if g == nil {
			g = &group{scenario: r.Scenario, provider: r.Provider}
			index[k] = g
			groups = append(groups, g)
		}
		g.runs = append(g.runs, r)
	}
	var out []Trend
	for _, g := range groups {
		for _, f := range g.runs[0].Figures {
			t := Trend{Scenario: g.scenario, Provider: g.provider, Figure: f.Name, Unit: f.Unit}
			for i := len(g.runs) - 1; i >= 0; i-- {
				if v, ok := g.runs[i].Figure(f.Name); ok {
					t.Values = append(t.Values, v.Value)
					t.Runs = append(t.Runs, g.runs[i].RunID)
				}
			}
			t.Last = t.Values[len(t.Values)-1]
			s := append([]float64(nil), t.Values...)
			sort.Float64s(s)
			t.Min, t.Max = s[0], s[len(s)-1]
			t.Median = s[len(s)/2]
			if len(s)%2 == 0 {
				t.Median = (s[len(s)/2-1] + s[len(s)/2]) / 2
			}
			out = append(out, t)
		}
	}
	return out
}

// Row is one figure of two runs side by side.
type Row struct {
	Figure string   `json:"figure"`
	Unit   string   `json:"unit"`
	A      *float64 `json:"a"`
	B      *float64 `json:"b"`
	// Change is B less A; ChangeRatio that as a share of A (absent for A 0).
	Change      *float64 `json:"change,omitempty"`
	ChangeRatio *float64 `json:"changeRatio,omitempty"`
	StatusA     string   `json:"statusA,omitempty"`
	StatusB     string   `json:"statusB,omitempty"`
}

// Compare lines up the figures of two runs: a's in its order, then those only
// b has.
func Compare(a, b *Run) []Row {
	var rows []Row
	seen := map[string]bool{}
	add := func(name, unit string) {
		if seen[name] {
			return
		}
		seen[name] = true
		r := Row{Figure: name, Unit: unit}
		if f, ok := a.Figure(name); ok {
			r.A, r.StatusA = &f.Value, string(f.Status)
		}
		if f, ok := b.Figure(name); ok {
			r.B, r.StatusB = &f.Value, string(f.Status)
		}
		if r.A != nil && r.B != nil {
			d := *r.B - *r.A
			r.Change = &d
			if *r.A != 0 {
				q := d / *r.A
				r.ChangeRatio = &q
			}
		}
		rows = append(rows, r)
	}
	for _, f := range a.Figures {
		add(f.Name, f.Unit)
	}
	for _, f := range b.Figures {
		add(f.Name, f.Unit)
	}
	return rows
}
