package report

import (
	"fmt"

	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// StalenessChart draws one config's staleness over time since
// acknowledgement: the measured share of fresh reads per bucket of t (the
// config's markers, drawn only for buckets with at least MinReads reads;
// fainter markers for the others) and PBS's predicted curve (the config's
// line).
func StalenessChart(name, title, cfg string, st *Staleness) (Chart, error) {
	p := newPlot(title, "t: time since the acknowledgement (ms)", "P(fresh at t)")
	p.Y.Min, p.Y.Max = -4, 104
	p.Y.Tick.Marker = percentAxis
	lg := newLegend()
	style := configStyle(cfg)
	var curve plotter.XYs
	for _, c := range st.Curve {
		curve = append(curve, plotter.XY{X: c.TMs, Y: 100 * c.Fresh})
	}
	if len(curve) == 0 {
		for _, c := range st.Predicted {
			if c.Reads > 0 {
				curve = append(curve, plotter.XY{X: c.TMs, Y: 100 * c.Fresh})
			}
		}
	}
	if len(curve) > 0 {
		l, err := plotter.NewLine(curve)
		if err != nil {
			return Chart{}, err
		}
		l.Color, l.Width = style.Color, vg.Points(2)
		p.Add(l)
		label := "PBS"
		if st.RMSE != nil {
			label = fmt.Sprintf("PBS (RMSE %.1f)", *st.RMSE)
		}
		lg.add(label, l)
		lg.lines++
	}
	split := func(ps []StalenessPoint) (solid, faint plotter.XYs, n int) {
		for _, m := range ps {
			if m.Reads == 0 {
				continue
			}
			pt := plotter.XY{X: m.TMs, Y: 100 * m.Fresh}
			if m.Reads >= st.MinReads {
				solid = append(solid, pt)
				n += m.Reads
			} else {
				faint = append(faint, pt)
			}
		}
		return solid, faint, n
	}
	what := "measured"
	if st.Source == SourceProbe {
		what = "probe"
	}
	solid, faint, n := split(st.Measured)
	type markers struct {
		xy    plotter.XYs
		label string
		f     float64
		shape draw.GlyphDrawer
	}
	ms := []markers{
		// filled circles: some configs' line markers are thin (+, ×)
		{solid, fmt.Sprintf("%s (%s)", what, plural(n, "read")), 1, draw.CircleGlyph{}},
		{faint, fmt.Sprintf("< %d reads", st.MinReads), 0.4, draw.CircleGlyph{}},
	}
	if st.Workload != nil {
		ws, _, wn := split(st.Workload.Measured)
		ms = append(ms, markers{ws, fmt.Sprintf("workload (%s)", plural(wn, "read")), 0.55, draw.TriangleGlyph{}})
	}
	for _, s := range ms {
		if len(s.xy) == 0 {
			continue
		}
		sc, err := plotter.NewScatter(s.xy)
		if err != nil {
			return Chart{}, err
		}
		sc.GlyphStyle = draw.GlyphStyle{Color: fade(style.Color, s.f), Radius: vg.Points(3.4), Shape: s.shape}
		p.Add(sc)
		lg.add(s.label, sc)
		lg.lines++
	}
	p.X.Min = 0
	c, err := finish(name, title, p, lg)
	c.Caption = "circles: the measured share of fresh reads per bucket of t; line: the PBS prediction (RMSE in points)"
	if st.Workload != nil {
		c.Caption += "; triangles: the mixed workload's reads (steady runs: hot keys, several writes in flight, read repair)"
	}
	return c, err
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return thousands(n) + " " + noun + "s"
}

// MeasuredStaleness draws every config's measured P(fresh) over t in one
// chart (buckets with at least MinReads reads), in the configs' styles.
func MeasuredStaleness(name, title string, res *Results) (Chart, error) {
	p := newPlot(title, "t: time since the acknowledgement (ms)", "reads that are fresh")
	p.Y.Min, p.Y.Max = -4, 104
	p.Y.Tick.Marker = percentAxis
	lg := newLegend()
	var ls lineSet
	for _, cfg := range res.Configs() {
		st := res.Staleness[cfg]
		if st == nil {
			continue
		}
		var xy plotter.XYs
		for _, m := range st.Measured {
			if m.Reads > 0 && m.Reads >= st.MinReads {
				xy = append(xy, plotter.XY{X: m.TMs, Y: 100 * m.Fresh})
			}
		}
		ls.add(series{config: cfg, xy: xy, markers: true})
	}
	if err := ls.draw(p, lg); err != nil {
		return Chart{}, err
	}
	p.X.Min = 0
	return finish(name, title, p, lg)
}
