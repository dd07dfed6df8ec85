package report

import (
	"image/color"
	"slices"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// chartFont is the face of every chart's and the PDF's text: a sans serif
// reads better at small sizes than gonum's default serif. The HTML embeds
// the same face once (see fontFaceCSS), so inline SVG text is measured and
// drawn with one font.
var chartFont = font.Font{Typeface: "Liberation", Variant: "Sans"}

// useChartFont sets every text style of p and lg to chartFont.
func useChartFont(p *plot.Plot, lg *legend) {
	for _, f := range []*font.Font{
		&p.Title.TextStyle.Font, &p.X.Label.TextStyle.Font, &p.Y.Label.TextStyle.Font,
		&p.X.Tick.Label.Font, &p.Y.Tick.Label.Font,
	} {
		f.Typeface, f.Variant = chartFont.Typeface, chartFont.Variant
	}
	p.Title.TextStyle.Font.Size = vg.Points(11)
	if lg != nil {
		lg.TextStyle.Font.Typeface, lg.TextStyle.Font.Variant = chartFont.Typeface, chartFont.Variant
		lg.TextStyle.Font.Size = vg.Points(9)
	}
}

// series is one config's line in a chart.
type series struct {
	config string // palette key
	label  string // legend label (config name unless told)
	xy     plotter.XYs
	// markers says whether to draw the config's marker along the line
	// (every few points, staggered by config so that coinciding lines'
	// markers do not cover each other).
	markers bool
	// thin draws the line at half width with the config's colour faded:
	// a secondary line of the same config (e.g. a p99 beside a p50).
	thin bool
}

// lineSet gathers a chart's lines and adds them in the palette's layer
// order (leader-follower, wide and solid, underneath; leaderless, dashed,
// on top), while the legend keeps the configs' order.
type lineSet []series

func (ls *lineSet) add(s series) {
	if len(s.xy) > 0 {
		*ls = append(*ls, s)
	}
}

// markerEvery is the number of points between two markers of a line of n
// points: about eight markers per line.
func markerEvery(n int) int { return max(1, n/8) }

func (ls lineSet) draw(p *plot.Plot, lg *legend) error {
	type built struct {
		layer  int
		things []plot.Plotter
	}
	var layers []built
	for _, s := range ls {
		st := configStyle(s.config)
		l, err := plotter.NewLine(s.xy)
		if err != nil {
			return err
		}
		l.Color = st.Color
		l.Width = st.Width
		l.Dashes = st.Dashes
		if s.thin {
			l.Width = st.Width / 2
			l.Color = fade(st.Color, 0.55)
		}
		var thumbs []plot.Thumbnailer
		thumbs = append(thumbs, l)
		things := []plot.Plotter{l}
		if s.markers {
			var mxy plotter.XYs
			k := markerEvery(len(s.xy))
			for i := int(st.Phase * float64(k)); i < len(s.xy); i += k {
				mxy = append(mxy, s.xy[i])
			}
			if len(mxy) > 0 {
				sc, err := plotter.NewScatter(mxy)
				if err != nil {
					return err
				}
				sc.GlyphStyle = draw.GlyphStyle{Color: l.Color, Radius: vg.Points(2.6), Shape: st.Glyph}
				things = append(things, sc)
				thumbs = append(thumbs, sc)
			}
		}
		label := s.label
		if label == "" {
			label = s.config
		}
		lg.add(label, thumbs...)
		lg.lines++
		layers = append(layers, built{st.Layer, things})
	}
	slices.SortStableFunc(layers, func(a, b built) int { return a.layer - b.layer })
	for _, b := range layers {
		p.Add(b.things...)
	}
	return nil
}

// fade mixes c with white: f = 1 keeps c, 0 gives white.
func fade(c color.RGBA, f float64) color.RGBA {
	m := func(v uint8) uint8 { return uint8(float64(v)*f + 255*(1-f)) }
	return color.RGBA{R: m(c.R), G: m(c.G), B: m(c.B), A: 255}
}
