package report

import (
	"errors"
	"fmt"
	"image/color"
	"io/fs"
	"math"
	"path/filepath"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"

	"github.com/kvdb/kvdb/internal/check"
	"github.com/kvdb/kvdb/internal/history"
	"github.com/kvdb/kvdb/internal/load"
)

// Outcomes of an operation on the timeline.
const (
	OutcomeOK      = "ok"      // write acknowledged, read answered fresh (or not checked)
	OutcomeFailed  = "failed"  // definitely not done: refused, dropped, a read that failed
	OutcomeUnknown = "unknown" // a write that may or may not have taken effect (timeout, 5xx)
	OutcomeStale   = "stale"   // a read that missed an acknowledged write
)

// OpPoint is one operation on a run's timeline.
type OpPoint struct {
	// TMs is the operation's intended start, from the run's start.
	TMs float64
	// LatMs is its latency: intended start to completion.
	LatMs   float64
	Write   bool
	Outcome string
}

// OpPoints turns a run's history into timeline points; t0US is the run's
// start on the history's clock. Stale reads are those the history check
// counts as stale (package check).
func OpPoints(ops []history.Op, t0US int64) []OpPoint {
	stale := map[int64]bool{}
	for _, a := range check.FindAnomalies(ops, math.MaxInt).StaleExamples {
		stale[a.Seq] = true
	}
	out := make([]OpPoint, 0, len(ops))
	for _, op := range ops {
		p := OpPoint{TMs: float64(op.IntendedUS-t0US) / 1000, LatMs: float64(op.DoneUS-op.IntendedUS) / 1000, Write: op.IsWrite(), Outcome: OutcomeOK}
		switch {
		case op.IsWrite() && op.Outcome() == history.WriteUnknown:
			p.Outcome = OutcomeUnknown
		case op.IsWrite() && op.Outcome() == history.WriteFailed, !op.IsWrite() && !op.OK():
			p.Outcome = OutcomeFailed
		case !op.IsWrite() && stale[op.Seq]:
			p.Outcome = OutcomeStale
		}
		out = append(out, p)
	}
	return out
}

// loadOps fills the Ops of every fault run that has none from the run's
// history file under dir; runs without one keep none (their timeline is
// left out).
func loadOps(res *Results, dir string) error {
	for i := range res.Runs {
		r := &res.Runs[i]
		if r.Fault == nil || r.Ops != nil || r.Dir == "" {
			continue
		}
		runDir := filepath.Join(dir, r.Dir)
		ops, err := history.ReadFile(filepath.Join(runDir, load.HistoryFile))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("timeline of %s: %w", r.Dir, err)
		}
		sum, err := load.ReadSummary(filepath.Join(runDir, load.SummaryFile))
		if err != nil {
			return fmt.Errorf("timeline of %s: %w", r.Dir, err)
		}
		r.Ops = OpPoints(ops, sum.Started.UnixMicro())
	}
	return nil
}

// band shades the x range [x0, x1] of a plot from bottom to top: a fault's
// window.
type band struct {
	x0, x1 float64
	color  color.Color
}

func (b band) Plot(c draw.Canvas, p *plot.Plot) {
	trX, _ := p.Transforms(&c)
	x0, x1 := max(trX(b.x0), c.Min.X), min(trX(b.x1), c.Max.X)
	if x1 <= x0 {
		return
	}
	c.FillPolygon(b.color, []vg.Point{{X: x0, Y: c.Min.Y}, {X: x1, Y: c.Min.Y}, {X: x1, Y: c.Max.Y}, {X: x0, Y: c.Max.Y}})
}

// Thumbnail draws the band's legend entry.
func (b band) Thumbnail(c *draw.Canvas) {
	c.FillPolygon(b.color, []vg.Point{c.Min, {X: c.Max.X, Y: c.Min.Y}, c.Max, {X: c.Min.X, Y: c.Max.Y}})
}

// percentAxis labels a 0..100 axis every 25.
var percentAxis = plot.ConstantTicks([]plot.Tick{{Value: 0, Label: "0%"}, {Value: 25, Label: "25%"}, {Value: 50, Label: "50%"}, {Value: 75, Label: "75%"}, {Value: 100, Label: "100%"}})

// faultShade is opaque (vgpdf does not blend a translucent fill the way
// SVG and PNG do) and drawn first, under the grid and the data.
var faultShade = color.RGBA{R: 255, G: 232, B: 204, A: 255}

// faultBand returns the shaded window of r's fault (to the end of the run
// if it never healed), in seconds, and a legend label for it.
func faultBand(r *Run) (band, string, bool) {
	if r.Fault == nil {
		return band{}, "", false
	}
	end := r.DurationSec * 1000
	healed := "not healed"
	if r.Fault.EndMs != nil {
		end = *r.Fault.EndMs
		healed = fmt.Sprintf("%.1f–%.1f s", r.Fault.StartMs/1000, end/1000)
	}
	return band{x0: r.Fault.StartMs / 1000, x1: end / 1000, color: faultShade}, "fault " + healed, true
}

// outcome styles of the timeline: successes in greys so that failures,
// unknown outcomes and stale reads stand out.
var outcomeStyles = []struct {
	write   bool
	outcome string
	label   string
	color   color.RGBA
}{
	{false, OutcomeOK, "read ok", rgb(0xA9B4BF)},
	{true, OutcomeOK, "write ok", rgb(0x4D5B69)},
	{false, OutcomeStale, "read stale", rgb(0x8E44AD)},
	{true, OutcomeUnknown, "write unknown", rgb(0xF39C12)},
	{false, OutcomeFailed, "read failed", rgb(0xE74C3C)},
	{true, OutcomeFailed, "write failed", rgb(0xB03A2E)},
}

// Timeline is the chart Jepsen's reports made standard: every operation of
// a fault run as a point, time since the run's start against latency (log
// scale), coloured by outcome, with the fault's window shaded. Writes are
// triangles, reads circles.
func Timeline(name, title string, r *Run) (Chart, error) {
	p := newBarePlot(title, "time since the run's start (s)", "latency (ms, log)")
	logY(p)
	lg := newLegend()
	if b, label, ok := faultBand(r); ok {
		p.Add(b)
		lg.add(label, b)
	}
	p.Add(plotter.NewGrid())
	xMax, yMax := math.Max(r.DurationSec, 1), 1.0
	for _, op := range r.Ops {
		xMax, yMax = math.Max(xMax, op.TMs/1000), math.Max(yMax, op.LatMs)
	}
	// room above the slowest operation, so that its glyphs show whole
	p.X.Min, p.X.Max = 0, xMax
	p.Y.Min, p.Y.Max = 0.1, yMax*1.6
	for _, st := range outcomeStyles {
		var xy plotter.XYs
		for _, op := range r.Ops {
			if op.Write == st.write && op.Outcome == st.outcome {
				xy = append(xy, plotter.XY{X: op.TMs / 1000, Y: math.Max(op.LatMs, 0.1)})
			}
		}
		if len(xy) == 0 {
			continue
		}
		sc, err := plotter.NewScatter(xy)
		if err != nil {
			return Chart{}, err
		}
		sc.GlyphStyle = draw.GlyphStyle{Color: st.color, Radius: vg.Points(1.6), Shape: draw.CircleGlyph{}}
		if st.write {
			sc.GlyphStyle.Shape, sc.GlyphStyle.Radius = draw.TriangleGlyph{}, vg.Points(2)
		}
		p.Add(sc)
		lg.add(fmt.Sprintf("%s (%d)", st.label, len(xy)), sc)
		lg.lines++
	}
	return finish(name, title, p, lg)
}

// RefusedOverTime draws, for one scenario, the share of writes (or reads)
// refused in each timeline bucket as one strip per config (a full strip is
// 100%), in the config's colour, with the fault's window shaded (the span
// of every run's). Strips rather than lines: most configs refuse nothing
// most of the time, and lines at 0% would hide one another.
func RefusedOverTime(name, title string, runs []*Run, writes bool) (Chart, error) {
	p := newBarePlot(title, "time since the run's start (s)", "")
	lg := newLegend()
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, r := range runs {
		if b, _, ok := faultBand(r); ok {
			lo, hi = math.Min(lo, b.x0), math.Max(hi, b.x1)
		}
	}
	if lo < hi {
		b := band{x0: lo, x1: hi, color: faultShade}
		p.Add(b)
		lg.add("fault", b)
	}
	grid := plotter.NewGrid()
	grid.Horizontal.Color = nil // rows are separated by their baselines
	p.Add(grid)
	st := strips{writes: writes}
	var ticks []plot.Tick
	for i, r := range runs {
		row := float64(len(runs) - 1 - i)
		st.rows = append(st.rows, stripRow{run: r, base: row})
		ticks = append(ticks, plot.Tick{Value: row + 0.45, Label: r.Config})
		if len(r.Timeline) > 0 {
			lg.lines++
		}
	}
	p.Add(st)
	p.Y.Tick.Marker = plot.ConstantTicks(ticks)
	p.Y.Min, p.Y.Max = 0, math.Max(1, float64(len(runs)))
	p.Y.Tick.Label.Font.Size = vg.Points(8.5)
	p.X.Min = 0
	return finish(name, title, p, lg)
}

// strips draws RefusedOverTime's rows.
type strips struct {
	rows   []stripRow
	writes bool
}

type stripRow struct {
	run  *Run
	base float64 // the row's bottom, in rows
}

// stripH is the part of a row a 100% bar fills.
const stripH = 0.88

func (s strips) Plot(c draw.Canvas, p *plot.Plot) {
	trX, trY := p.Transforms(&c)
	for _, row := range s.rows {
		r := row.run
		col := configStyle(r.Config).Color
		base := trY(row.base + 0.03)
		c.StrokeLine2(draw.LineStyle{Color: fade(col, 0.5), Width: vg.Points(0.6)}, c.Min.X, base, c.Max.X, base)
		w := bucketMs(r)
		for _, b := range r.Timeline {
			ok, failed := b.ReadsOK, b.ReadsFailed
			if s.writes {
				ok, failed = b.WritesOK, b.WritesFailed
			}
			if failed == 0 {
				continue
			}
			share := float64(failed) / float64(ok+failed)
			x0, x1 := trX(b.StartMs/1000), trX((b.StartMs+w)/1000)
			top := trY(row.base + 0.03 + stripH*share)
			c.FillPolygon(col, []vg.Point{{X: x0, Y: base}, {X: x1, Y: base}, {X: x1, Y: top}, {X: x0, Y: top}})
		}
	}
}

// DataRange makes the x axis span the runs' timelines.
func (s strips) DataRange() (xmin, xmax, ymin, ymax float64) {
	for _, row := range s.rows {
		if n := len(row.run.Timeline); n > 0 {
			xmax = math.Max(xmax, (row.run.Timeline[n-1].StartMs+bucketMs(row.run))/1000)
		}
		ymax = math.Max(ymax, row.base+1)
	}
	return 0, xmax, 0, ymax
}
