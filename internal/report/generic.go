package report

import (
	"fmt"
	"math"
	"slices"
	"strconv"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg/draw"
)

// Line is one named line of a Lines chart. Style names its look in the
// palette (a config or a bench system; ReferenceStyle for a threshold);
// empty, Name does.
type Line struct {
	Name, Style string
	X, Y        []float64
}

// ReferenceStyle draws a line as a threshold: thin, grey, dashed.
const ReferenceStyle = "reference"

// Lines draws named lines with a marker at their points, in the report's
// style (a name in the palette keeps its colour and dashes): charts other
// than the report's, such as kvdb bench's rate sweep. With logScale the y
// axis is logarithmic, for latencies in milliseconds (values below 0.01
// ms are drawn at 0.01).
func Lines(name, title, xlabel, ylabel string, logScale bool, lines []Line) (Chart, error) {
	p := newPlot(title, xlabel, ylabel)
	if logScale {
		logY(p)
	}
	lg := newLegend()
	var ls lineSet
	for _, l := range lines {
		if len(l.X) != len(l.Y) {
			return Chart{}, fmt.Errorf("chart %s: line %s has %d x and %d y values", name, l.Name, len(l.X), len(l.Y))
		}
		xy := make(plotter.XYs, len(l.X))
		for i := range l.X {
			y := l.Y[i]
			if logScale {
				y = math.Max(y, minMs)
			}
			xy[i] = plotter.XY{X: l.X[i], Y: y}
		}
		style := l.Style
		if style == "" {
			style = l.Name
		}
		ls.add(series{config: style, label: l.Name, xy: xy, markers: style != ReferenceStyle})
	}
	if err := ls.draw(p, lg); err != nil {
		return Chart{}, err
	}
	return finish(name, title, p, lg)
}

// BarSeries is one named series of a Bars chart: a value per group.
type BarSeries struct {
	Name   string
	Values []float64
}

// Bars draws one group of bars per group label, one bar per series, in
// the report's style.
func Bars(name, title, xlabel, ylabel string, groups []string, series []BarSeries) (Chart, error) {
	bs := make([]barSeries, len(series))
	for i, s := range series {
		if len(s.Values) != len(groups) {
			return Chart{}, fmt.Errorf("chart %s: series %s has %d values for %d groups", name, s.Name, len(s.Values), len(groups))
		}
		bs[i] = barSeries{name: s.Name, vals: plotter.Values(s.Values)}
	}
	c, err := groupedBars(name, title, xlabel, ylabel, groups, bs)
	if err != nil {
		return c, err
	}
	c.Plot.Y.Tick.Marker = plainTicks{}
	if longest := slices.MaxFunc(append([]string{""}, groups...), func(a, b string) int { return len(a) - len(b) }); len(longest)*len(groups) > 48 {
		// Long labels would run into each other: slant them.
		c.Plot.X.Tick.Label.Rotation = math.Pi / 10
		c.Plot.X.Tick.Label.XAlign = draw.XRight
		c.Plot.X.Tick.Label.YAlign = draw.YTop
	}
	return c, nil
}

// plainTicks labels an axis with plain numbers (50000, not 50000.00).
type plainTicks struct{}

func (plainTicks) Ticks(min, max float64) []plot.Tick {
	ts := plot.DefaultTicks{}.Ticks(min, max)
	for i := range ts {
		if ts[i].Label != "" {
			ts[i].Label = strconv.FormatFloat(ts[i].Value, 'f', -1, 64)
		}
	}
	return ts
}
