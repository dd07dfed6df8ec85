package report

import (
	"fmt"
	"image/color"
	"os"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/text"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgpdf"
)

// A4 landscape.
var (
	pageW  = 297 * vg.Millimeter
	pageH  = 210 * vg.Millimeter
	margin = 12 * vg.Millimeter
)

// pdfDoc lays out text and charts on pages, top to bottom.
type pdfDoc struct {
	c  *vgpdf.Canvas
	dc draw.Canvas
	y  vg.Length // current baseline, from the bottom
}

func newPDF() *pdfDoc {
	c := vgpdf.New(pageW, pageH)
	d := &pdfDoc{c: c, dc: draw.New(c)}
	d.y = pageH - margin
	return d
}

// style is the text style at size points; headings use a larger size, as
// the PDF writer embeds the regular face only.
func style(size vg.Length) text.Style {
	return text.Style{Color: color.Black, Font: font.From(plot.DefaultFont, size), Handler: plot.DefaultTextHandler}
}

func (d *pdfDoc) newPage() {
	d.c.NextPage()
	d.y = pageH - margin
}

// need starts a new page unless h fits below the cursor.
func (d *pdfDoc) need(h vg.Length) {
	if d.y-h < margin {
		d.newPage()
	}
}

// line writes one line of text at x.
func (d *pdfDoc) line(sty text.Style, x vg.Length, s string) {
	h := sty.Font.Size * 1.35
	d.need(h)
	d.y -= h
	d.dc.FillText(sty, vg.Point{X: x, Y: d.y}, s)
}

// para writes word-wrapped text across the page width.
func (d *pdfDoc) para(sty text.Style, s string) {
	width := pageW - 2*margin
	var cur []string
	flush := func() {
		if len(cur) > 0 {
			d.line(sty, margin, strings.Join(cur, " "))
			cur = cur[:0]
		}
	}
	for _, w := range strings.Fields(s) {
		if len(cur) > 0 && sty.Width(strings.Join(append(cur, w), " ")) > width {
			flush()
		}
		cur = append(cur, w)
	}
	flush()
	d.y -= sty.Font.Size / 2
}

// table writes rows in columns sized to their widest cell.
func (d *pdfDoc) table(header []string, rows [][]string) {
	hs, bs := style(7.15), style(6.5)
	widths := make([]vg.Length, len(header))
	for i, h := range header {
		widths[i] = hs.Width(h)
	}
	for _, r := range rows {
		for i, c := range r {
			widths[i] = max(widths[i], bs.Width(c))
		}
	}
	draw := func(sty text.Style, cells []string) {
		h := sty.Font.Size * 1.5
		d.need(h)
		d.y -= h
		x := margin
		for i, c := range cells {
			d.dc.FillText(sty, vg.Point{X: x, Y: d.y}, c)
			x += widths[i] + 3*vg.Millimeter
		}
	}
	draw(hs, header)
	for _, r := range rows {
		draw(bs, r)
	}
	d.y -= 4 * vg.Millimeter
}

// charts draws charts two per row.
func (d *pdfDoc) charts(cs []Chart) {
	w := (pageW - 2*margin - 6*vg.Millimeter) / 2
	h := w * 10 / 16
	for i := 0; i < len(cs); i += 2 {
		d.need(h)
		for j := 0; j < 2 && i+j < len(cs); j++ {
			x := margin + vg.Length(j)*(w+6*vg.Millimeter)
			cv := draw.Canvas{Canvas: d.c, Rectangle: vg.Rectangle{Min: vg.Point{X: x, Y: d.y - h}, Max: vg.Point{X: x + w, Y: d.y}}}
			cs[i+j].drawInto(cv)
		}
		d.y -= h + 4*vg.Millimeter
	}
}

func (d *pdfDoc) save(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := d.c.WriteTo(f); err != nil {
		f.Close()
		return fmt.Errorf("write pdf: %w", err)
	}
	return f.Close()
}

func writePDF(path string, res *Results, analysis, notes []Paragraph, sections []section) error {
	d := newPDF()
	d.line(style(17.6), margin, res.Title)
	d.para(style(8), fmt.Sprintf("Started %s. Delay profile %s. Latencies in ms from each request's intended start; floors are the profile's theoretical minimum.", res.Started, res.Delays))
	var rows [][]string
	for i := range res.Runs {
		rows = append(rows, tableRow(&res.Runs[i]))
	}
	d.table(tableHeader, rows)
	for _, p := range append(analysis, notes...) {
		d.line(style(11.0), margin, p.Heading)
		d.para(style(8.5), p.Text)
	}
	for _, s := range sections {
		d.newPage()
		d.line(style(13.2), margin, s.Heading)
		d.charts(s.Charts)
	}
	return d.save(path)
}
