package report

import (
	"fmt"
	"hash/fnv"
	"image/color"
	"strings"

	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// seriesStyle is how one config is drawn in every chart, HTML and PDF
// alike: its colour, dash pattern, marker and line width. Leader-follower
// configs are solid and wider, leaderless ones dashed and narrower and
// drawn on top, so that where a leader-follower line and a leaderless one
// coincide (w5r1 and leaderless writes both take 1.2 s under the paper
// profile) the wide solid line shows on both sides of the dashed one.
type seriesStyle struct {
	Color  color.RGBA
	Dashes []vg.Length
	Glyph  draw.GlyphDrawer
	Width  vg.Length
	// Layer orders drawing: lower first (underneath).
	Layer int
	// Phase staggers the markers of lines that coincide (0..1 of the
	// marker spacing).
	Phase float64
}

func rgb(hex uint32) color.RGBA {
	return color.RGBA{R: uint8(hex >> 16), G: uint8(hex >> 8), B: uint8(hex), A: 255}
}

func pts(v ...float64) []vg.Length {
	out := make([]vg.Length, len(v))
	for i, x := range v {
		out[i] = vg.Points(x)
	}
	return out
}

// palette is keyed by config name (the cluster presets') and by kvdb
// bench's system names. The colours are
// Okabe and Ito's colour-blind-safe set (yellow replaced by a dark grey,
// which reads on white) and one purple.
var palette = map[string]seriesStyle{
	"w5r1":            {Color: rgb(0x0072B2), Glyph: draw.CircleGlyph{}, Width: 3.2, Layer: 0, Phase: 0},
	"w1r5":            {Color: rgb(0x009E73), Glyph: draw.SquareGlyph{}, Width: 2.4, Layer: 0, Phase: 0.25},
	"w3r3":            {Color: rgb(0xCC79A7), Glyph: draw.PyramidGlyph{}, Width: 2.4, Layer: 0, Phase: 0.5},
	"w1r1":            {Color: rgb(0xD55E00), Glyph: draw.BoxGlyph{}, Width: 2.4, Layer: 0, Phase: 0.75},
	"leaderless":      {Color: rgb(0xE69F00), Dashes: pts(7, 3), Glyph: draw.TriangleGlyph{}, Width: 1.6, Layer: 1, Phase: 0.5},
	"leaderless-w3r3": {Color: rgb(0x56B4E9), Dashes: pts(2, 2), Glyph: draw.RingGlyph{}, Width: 1.6, Layer: 1, Phase: 0.125},
	"leaderless-w2r2": {Color: rgb(0x7B3294), Dashes: pts(8, 3, 2, 3), Glyph: draw.CrossGlyph{}, Width: 1.6, Layer: 1, Phase: 0.375},
	"leaderless-w1r1": {Color: rgb(0x444444), Dashes: pts(4, 2, 1, 2), Glyph: draw.PlusGlyph{}, Width: 1.6, Layer: 1, Phase: 0.875},
	// kvdb bench's systems (internal/bench): kvdb solid, its peers dashed.
	"kvdb-resp":    {Color: rgb(0xC0392B), Glyph: draw.CircleGlyph{}, Width: 2.6, Layer: 1, Phase: 0},
	"kvdb":         {Color: rgb(0xA6761D), Glyph: draw.SquareGlyph{}, Width: 2.2, Layer: 1, Phase: 0.25},
	"redis":        {Color: rgb(0x8C8C8C), Dashes: pts(6, 3), Glyph: draw.TriangleGlyph{}, Width: 1.8, Layer: 0, Phase: 0.5},
	"redis-wait4":  {Color: rgb(0x1F3A93), Dashes: pts(2, 2), Glyph: draw.RingGlyph{}, Width: 1.8, Layer: 0, Phase: 0.75},
	ReferenceStyle: {Color: rgb(0xBBBBBB), Dashes: pts(4, 3), Glyph: draw.CircleGlyph{}, Width: 1.2, Layer: 0},
	"etcd":         {Color: rgb(0x66A61E), Dashes: pts(8, 3, 2, 3), Glyph: draw.CrossGlyph{}, Width: 1.8, Layer: 0, Phase: 0.125},
}

// spare colours and dashes for configs outside the palette, chosen by a
// hash of the name so that a config keeps its style across charts.
var (
	spareColors = []uint32{0x1B9E77, 0xA6761D, 0x666666, 0xE7298A, 0x7570B3, 0x66A61E}
	spareDashes = [][]vg.Length{nil, pts(6, 2), pts(1, 2), pts(6, 2, 1, 2)}
	spareGlyphs = []draw.GlyphDrawer{draw.CircleGlyph{}, draw.SquareGlyph{}, draw.TriangleGlyph{}, draw.CrossGlyph{}}
)

// configStyle returns config's style, the same in every chart.
func configStyle(config string) seriesStyle {
	if s, ok := palette[config]; ok {
		return s
	}
	h := fnv.New32a()
	h.Write([]byte(config))
	v := h.Sum32()
	s := seriesStyle{
		Color:  rgb(spareColors[v%uint32(len(spareColors))]),
		Dashes: spareDashes[(v/7)%uint32(len(spareDashes))],
		Glyph:  spareGlyphs[(v/29)%uint32(len(spareGlyphs))],
		Width:  vg.Points(1.8),
		Layer:  1,
		Phase:  float64(v%8) / 8,
	}
	if strings.HasPrefix(config, "leaderless") && s.Dashes == nil {
		s.Dashes = pts(6, 2)
	}
	return s
}

// cssColor is the config's colour for HTML.
func cssColor(config string) string {
	c := configStyle(config).Color
	return fmt.Sprintf("#%02x%02x%02x", c.R, c.G, c.B)
}
