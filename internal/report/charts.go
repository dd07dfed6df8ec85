package report

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// Chart is one rendered chart. Its legend is drawn to the right of the
// plot area, where it never hides a line.
type Chart struct {
	Name    string // file stem, e.g. "latency-read-50"
	Title   string
	Caption string
	Plot    *plot.Plot
	Legend  *legend
}

// legend is a plot legend that remembers its labels, to size its column.
type legend struct {
	plot.Legend
	names []string
	lines int // lines drawn (a chart without any gets linear axes)
}

// finish returns the chart; one with no data at all gets plain linear axes
// (a log axis needs positive values) and says so in its title.
func finish(name, title string, p *plot.Plot, lg *legend) (Chart, error) {
	if lg.lines == 0 {
		p.X.Scale, p.Y.Scale = plot.LinearScale{}, plot.LinearScale{}
		p.X.Tick.Marker, p.Y.Tick.Marker = plot.DefaultTicks{}, plot.DefaultTicks{}
		p.X.Min, p.X.Max, p.Y.Min, p.Y.Max = 0, 1, 0, 1
		p.Title.Text += " (no data)"
	}
	return Chart{Name: name, Title: title, Plot: p, Legend: lg}, nil
}

func (l *legend) add(name string, t ...plot.Thumbnailer) {
	l.Add(name, t...)
	l.names = append(l.names, name)
}

// chart sizes
const (
	chartW = 16 * vg.Centimeter
	chartH = 10 * vg.Centimeter
)

// minMs keeps log axes finite: latencies below it are drawn at it.
const minMs = 0.01

// Save writes the chart as PNG and SVG into dir.
func (c Chart) Save(dir string) error {
	for _, format := range []string{"png", "svg"} {
		cv, err := draw.NewFormattedCanvas(chartW, chartH, format)
		if err != nil {
			return err
		}
		c.drawInto(draw.New(cv))
		f, err := os.Create(filepath.Join(dir, c.Name+"."+format))
		if err != nil {
			return fmt.Errorf("chart %s: %w", c.Name, err)
		}
		_, err = cv.WriteTo(f)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("chart %s: %w", c.Name, err)
		}
	}
	return nil
}

// drawInto draws the plot on the left of dc and the legend on the right.
func (c Chart) drawInto(dc draw.Canvas) {
	legendW := vg.Length(0)
	for _, e := range c.Legend.names {
		legendW = max(legendW, c.Legend.TextStyle.Width(e))
	}
	// a gap between the plot's right edge and the legend, so that lines
	// ending at the edge do not run into the legend's thumbnails
	gap := 3 * vg.Millimeter
	if legendW > 0 {
		legendW += c.Legend.ThumbnailWidth + 4*vg.Millimeter + gap
	}
	plotArea := dc
	plotArea.Max.X -= legendW
	c.Plot.Draw(plotArea)
	if legendW > 0 {
		la := dc
		la.Min.X = dc.Max.X - legendW + gap
		la.Max.Y -= c.Plot.Title.TextStyle.Height(c.Plot.Title.Text) + 6*vg.Millimeter
		c.Legend.Draw(la)
	}
}

// percentTicks labels a percentile axis drawn as 1/(1-p).
type percentTicks struct{}

func (percentTicks) Ticks(min, max float64) []plot.Tick {
	var ts []plot.Tick
	for _, t := range []struct {
		x float64
		l string
	}{{1, "0%"}, {2, "50%"}, {10, "90%"}, {100, "99%"}, {1000, "99.9%"}, {1e4, "99.99%"}, {1e5, "99.999%"}} {
		if t.x >= min && t.x <= max*1.0001 {
			ts = append(ts, plot.Tick{Value: t.x, Label: t.l})
		}
	}
	return ts
}

// msTicks labels a log latency axis in ms.
type msTicks struct{}

func (msTicks) Ticks(min, max float64) []plot.Tick {
	var ts []plot.Tick
	for e := math.Floor(math.Log10(min)); e <= math.Ceil(math.Log10(max)); e++ {
		v := math.Pow(10, e)
		ts = append(ts, plot.Tick{Value: v, Label: strconv.FormatFloat(v, 'g', -1, 64)})
		for _, m := range []float64{2, 5} {
			if m*v <= max {
				ts = append(ts, plot.Tick{Value: m * v})
			}
		}
	}
	return ts
}

func newPlot(title, xlabel, ylabel string) *plot.Plot {
	p := newBarePlot(title, xlabel, ylabel)
	p.Add(plotter.NewGrid())
	return p
}

// newBarePlot is newPlot without the grid, for charts that draw something
// under it first (a fault's window) or want only part of it.
func newBarePlot(title, xlabel, ylabel string) *plot.Plot {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = xlabel
	p.Y.Label.Text = ylabel
	useChartFont(p, nil)
	return p
}

func newLegend() *legend {
	l := &legend{Legend: plot.NewLegend()}
	l.Top, l.Left = true, true
	l.TextStyle.Font.Typeface, l.TextStyle.Font.Variant = chartFont.Typeface, chartFont.Variant
	l.TextStyle.Font.Size = vg.Points(9)
	l.ThumbnailWidth = vg.Points(26)
	return l
}

func logY(p *plot.Plot) {
	p.Y.Scale = plot.LogScale{}
	p.Y.Tick.Marker = msTicks{}
}

// LatencySpectrum plots latency against percentile for each run, on log
// axes so the long tail is visible.
func LatencySpectrum(name, title string, runs []*Run, spectrum func(*Run) []Point) (Chart, error) {
	p := newPlot(title, "percentile", "latency (ms, log)")
	logY(p)
	lg := newLegend()
	p.X.Scale = plot.LogScale{}
	p.X.Tick.Marker = percentTicks{}
	var ls lineSet
	for _, r := range runs {
		var xy plotter.XYs
		for _, pt := range spectrum(r) {
			if pt.P >= 100 {
				continue
			}
			xy = append(xy, plotter.XY{X: 1 / (1 - pt.P/100), Y: math.Max(pt.Ms, minMs)})
		}
		ls.add(series{config: r.Config, xy: xy, markers: true})
	}
	if err := ls.draw(p, lg); err != nil {
		return Chart{}, err
	}
	return finish(name, title, p, lg)
}

// IntervalCDF plots, for each run, the fraction of reads of a written key
// whose write-to-read interval is at most x.
func IntervalCDF(name, title string, runs []*Run) (Chart, error) {
	p := newPlot(title, "write-to-read interval, same key (ms, log)", "fraction of reads")
	p.X.Scale = plot.LogScale{}
	p.X.Tick.Marker = msTicks{}
	lg := newLegend()
	var ls lineSet
	for _, r := range runs {
		if len(r.Intervals) == 0 {
			continue
		}
		v := slices.Clone(r.Intervals)
		slices.Sort(v)
		step := max(1, len(v)/400)
		var xy plotter.XYs
		for j := 0; j < len(v); j += step {
			xy = append(xy, plotter.XY{X: math.Max(v[j], 0.1), Y: float64(j+1) / float64(len(v))})
		}
		xy = append(xy, plotter.XY{X: math.Max(v[len(v)-1], 0.1), Y: 1})
		ls.add(series{config: r.Config, xy: xy, markers: true})
	}
	if err := ls.draw(p, lg); err != nil {
		return Chart{}, err
	}
	return finish(name, title, p, lg)
}

// AcrossRatios plots one latency figure (e.g. an op's p50) of every config
// against the write ratio.
func AcrossRatios(name, title string, res *Results, value func(*Run) (float64, bool)) (Chart, error) {
	p := newPlot(title, "write ratio", "latency (ms, log)")
	logY(p)
	lg := newLegend()
	ratios := res.Ratios()
	labels := make([]string, len(ratios))
	for i, r := range ratios {
		labels[i] = pct(r)
	}
	p.NominalX(labels...)
	var ls lineSet
	for _, cfg := range res.Configs() {
		var xy plotter.XYs
		for j, ratio := range ratios {
			run := res.Find(cfg, ratio)
			if run == nil {
				continue
			}
			if v, ok := value(run); ok {
				xy = append(xy, plotter.XY{X: float64(j), Y: math.Max(v, minMs)})
			}
		}
		ls.add(series{config: cfg, xy: xy, markers: true})
	}
	if err := ls.draw(p, lg); err != nil {
		return Chart{}, err
	}
	return finish(name, title, p, lg)
}

// CountsByConfig draws grouped bars: one group per write ratio, one bar per
// config, of count(run).
func CountsByConfig(name, title, ylabel string, res *Results, count func(*Run) float64) (Chart, error) {
	ratios := res.Ratios()
	labels := make([]string, len(ratios))
	for i, r := range ratios {
		labels[i] = pct(r)
	}
	var series []barSeries
	for _, cfg := range res.Configs() {
		vals := make(plotter.Values, len(ratios))
		for j, ratio := range ratios {
			if run := res.Find(cfg, ratio); run != nil {
				vals[j] = count(run)
			}
		}
		series = append(series, barSeries{cfg, vals})
	}
	return groupedBars(name, title, "write ratio", ylabel, labels, series)
}

// barSeries is one bar per group.
type barSeries struct {
	name string
	vals plotter.Values
}

// groupedBars draws one group of bars per label, one bar per series.
func groupedBars(name, title, xlabel, ylabel string, labels []string, series []barSeries) (Chart, error) {
	p := newPlot(title, xlabel, ylabel)
	lg := newLegend()
	top := 0.0
	groups := max(1, len(labels))
	// about 380 pt of plot width; bars take three quarters of each group
	w := vg.Points(min(14, 0.75*380/float64(groups)/float64(max(1, len(series)))))
	for i, sr := range series {
		b, err := plotter.NewBarChart(sr.vals, w)
		if err != nil {
			return Chart{}, err
		}
		b.Color = configStyle(sr.name).Color
		b.LineStyle.Width = 0
		b.Offset = w * vg.Length(float64(i)-float64(len(series)-1)/2)
		p.Add(b)
		lg.add(sr.name, b)
		for _, v := range sr.vals {
			top = max(top, v)
		}
	}
	p.NominalX(labels...)
	p.Y.Min, p.Y.Max = 0, max(1, top*1.1)
	return Chart{Name: name, Title: title, Plot: p, Legend: lg}, nil
}

// InversionWindow draws, per config (all ratios pooled), how many
// inversions happened at each age of the write in flight: the
// inconsistency window the runs exposed.
func InversionWindow(name, title string, res *Results) (Chart, error) {
	const buckets = 8
	span := 0.0
	for i := range res.Runs {
		span = max(span, res.Runs[i].FloorWriteMs)
		for _, a := range res.Runs[i].InversionAgesMs {
			span = max(span, a)
		}
	}
	width := math.Max(1, math.Ceil(span/buckets/50)*50) // round bucket width to 50 ms
	labels := make([]string, buckets+1)
	for i := range buckets {
		labels[i] = fmt.Sprintf("<%.0f", float64(i+1)*width)
	}
	labels[buckets] = fmt.Sprintf("≥%.0f", buckets*width)
	var series []barSeries
	for _, cfg := range res.Configs() {
		vals := make(plotter.Values, buckets+1)
		for i := range res.Runs {
			if res.Runs[i].Config != cfg {
				continue
			}
			for _, a := range res.Runs[i].InversionAgesMs {
				vals[min(buckets, int(a/width))]++
			}
		}
		series = append(series, barSeries{cfg, vals})
	}
	return groupedBars(name, title, "age of the key's latest write (ms)", "inversions", labels, series)
}

// pct formats a ratio as a percentage: 0.1 -> "10%".
func pct(r float64) string { return strconv.FormatFloat(r*100, 'g', 4, 64) + "%" }
