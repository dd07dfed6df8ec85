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

// pdfDoc lays out text, tables and charts on pages, top to bottom. The
// charts are drawn as vector graphics, as in the HTML.
type pdfDoc struct {
	c     *vgpdf.Canvas
	dc    draw.Canvas
	y     vg.Length // current top of the free space, from the bottom
	pages int
}

func newPDF() *pdfDoc {
	c := vgpdf.New(pageW, pageH)
	d := &pdfDoc{c: c, dc: draw.New(cp1252Canvas{c}), pages: 1}
	d.y = pageH - margin
	return d
}

// cp1252Canvas passes text to the PDF canvas in Windows-1252, the encoding
// vgpdf declares for its fonts (UTF-8 would print "…" as "â€¦"); the few
// characters outside it are spelled in ASCII.
type cp1252Canvas struct{ *vgpdf.Canvas }

func (c cp1252Canvas) FillString(f font.Face, pt vg.Point, s string) {
	c.Canvas.FillString(f, pt, toCP1252(s))
}

// cp1252 maps the characters of Windows-1252 outside Latin-1 that the
// report uses to their bytes.
var cp1252 = map[rune]byte{'€': 0x80, '‚': 0x82, '…': 0x85, '‘': 0x91, '’': 0x92, '“': 0x93, '”': 0x94, '•': 0x95, '–': 0x96, '—': 0x97}

var asciiFor = map[rune]string{'≤': "<=", '≥': ">=", '≈': "~", '→': "->", '−': "-"}

func toCP1252(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r < 0x80:
			b.WriteRune(r)
		case cp1252[r] != 0:
			b.WriteByte(cp1252[r])
		case r >= 0xA0 && r <= 0xFF:
			b.WriteByte(byte(r))
		case asciiFor[r] != "":
			b.WriteString(asciiFor[r])
		default:
			b.WriteByte('?')
		}
	}
	return b.String()
}

// style is the text style at size points, in the charts' face (the PDF
// writer embeds the regular face only: headings differ by size).
func style(size vg.Length) text.Style {
	return text.Style{Color: color.Black, Font: font.From(chartFont, size), Handler: plot.DefaultTextHandler}
}

func grey(v uint8) color.Color { return color.Gray{Y: v} }

func (d *pdfDoc) newPage() {
	d.c.NextPage()
	d.pages++
	d.y = pageH - margin
}

// fresh reports whether nothing was drawn on the page yet.
func (d *pdfDoc) fresh() bool { return d.y == pageH-margin }

// need starts a new page unless h fits below the cursor.
func (d *pdfDoc) need(h vg.Length) {
	if d.y-h < margin && !d.fresh() {
		d.newPage()
	}
}

// lineH is the height of one line of sty.
func lineH(sty text.Style) vg.Length { return sty.Font.Size * 1.3 }

// line writes one line of text at x.
func (d *pdfDoc) line(sty text.Style, x vg.Length, s string) {
	h := lineH(sty)
	d.need(h)
	d.y -= h
	d.dc.FillText(sty, vg.Point{X: x, Y: d.y + sty.Font.Size*0.25}, s)
}

// wrap splits s into lines no wider than width (a word wider than width
// gets a line of its own).
func wrap(sty text.Style, s string, width vg.Length) []string {
	var lines []string
	for _, para := range strings.Split(s, "\n") {
		var cur []string
		for _, w := range strings.Fields(para) {
			if len(cur) > 0 && sty.Width(strings.Join(append(cur, w), " ")) > width {
				lines = append(lines, strings.Join(cur, " "))
				cur = cur[:0]
			}
			cur = append(cur, w)
		}
		if len(cur) > 0 || len(lines) == 0 {
			lines = append(lines, strings.Join(cur, " "))
		}
	}
	return lines
}

// para writes word-wrapped text from x to the right margin.
func (d *pdfDoc) para(sty text.Style, x vg.Length, s string) {
	for _, l := range wrap(sty, s, pageW-margin-x) {
		d.line(sty, x, l)
	}
	d.y -= sty.Font.Size / 2
}

// heading writes a heading, on a fresh page for level 2, and keeps room
// below it for the first thing that follows (room bytes).
func (d *pdfDoc) heading(level int, s string, room vg.Length) {
	switch level {
	case 1:
		d.line(style(17), margin, s)
	case 2:
		if !d.fresh() {
			d.newPage()
		}
		d.line(style(14), margin, s)
		d.rule()
	default:
		d.need(lineH(style(11.5)) + 2*vg.Millimeter + room)
		d.y -= 2 * vg.Millimeter
		d.line(style(11.5), margin, s)
	}
	d.y -= 1.5 * vg.Millimeter
}

// rule draws a thin line across the page under the cursor.
func (d *pdfDoc) rule() {
	d.y -= 1 * vg.Millimeter
	d.dc.StrokeLine2(draw.LineStyle{Color: grey(200), Width: vg.Points(0.5)}, margin, d.y, pageW-margin, d.y)
}

// swatchW is the width a config's colour swatch takes before its name.
const swatchW = 3.2 * vg.Millimeter

func (d *pdfDoc) swatch(cfg string, x, baseline, size vg.Length) {
	s := size * 0.75
	d.dc.FillPolygon(configStyle(cfg).Color, []vg.Point{{X: x, Y: baseline}, {X: x + s, Y: baseline}, {X: x + s, Y: baseline + s}, {X: x, Y: baseline + s}})
}

// table draws t across the page width: columns sized to their content
// when it fits, otherwise the widest columns wrapped; the font shrinks
// (down to 5 pt) only if even the longest words do not fit. The header is
// repeated on every page the table spans.
func (d *pdfDoc) table(t *table, size vg.Length) {
	avail := pageW - 2*margin
	gap := 2.6 * vg.Millimeter
	var sty text.Style
	var widths []vg.Length
	for ; ; size -= 0.5 {
		sty = style(size)
		widths = columnWidths(sty, t, avail-gap*vg.Length(len(t.Header)-1))
		if widths != nil || size <= 5 {
			break
		}
	}
	if widths == nil { // still too wide at 5 pt: equal columns, words may overflow
		widths = make([]vg.Length, len(t.Header))
		for i := range widths {
			widths[i] = (avail - gap*vg.Length(len(t.Header)-1)) / vg.Length(len(t.Header))
		}
	}
	lh := lineH(sty)
	cellLines := func(row []string, i int) []string {
		w := widths[i]
		if i == t.ConfigCol {
			w -= swatchW
		}
		return wrap(sty, row[i], w)
	}
	var drawRow func(row []string, header bool)
	drawRow = func(row []string, header bool) {
		lines := make([][]string, len(row))
		n := 1
		for i := range row {
			lines[i] = cellLines(row, i)
			n = max(n, len(lines[i]))
		}
		h := vg.Length(n)*lh + 1.2*vg.Millimeter
		if d.y-h < margin && !d.fresh() {
			d.newPage()
			if !header {
				drawRow(t.Header, true)
			}
		}
		top := d.y
		if header {
			d.dc.FillPolygon(grey(238), []vg.Point{{X: margin, Y: top - h}, {X: margin + avail, Y: top - h}, {X: margin + avail, Y: top}, {X: margin, Y: top}})
		}
		x := margin
		for i := range row {
			cx := x
			if i == t.ConfigCol && !header && row[i] != "" {
				d.swatch(row[i], cx, top-lh+sty.Font.Size*0.1, sty.Font.Size)
				cx += swatchW
			}
			for j, l := range lines[i] {
				d.dc.FillText(sty, vg.Point{X: cx, Y: top - vg.Length(j+1)*lh + sty.Font.Size*0.25}, l)
			}
			x += widths[i] + gap
		}
		d.y = top - h
		d.dc.StrokeLine2(draw.LineStyle{Color: grey(215), Width: vg.Points(0.4)}, margin, d.y, margin+avail, d.y)
		d.y -= 0.6 * vg.Millimeter
	}
	drawRow(t.Header, true)
	for _, r := range t.Rows {
		drawRow(r, false)
	}
	d.y -= 3 * vg.Millimeter
}

// columnWidths sizes t's columns to fit avail in sty: each column gets its
// content's width if all fit; otherwise the narrow columns keep theirs and
// the wide ones share the rest in proportion to their content, never below
// their longest word. nil if even that does not fit.
func columnWidths(sty text.Style, t *table, avail vg.Length) []vg.Length {
	n := len(t.Header)
	natural := make([]vg.Length, n)
	minimum := make([]vg.Length, n)
	measure := func(i int, s string, extra vg.Length) {
		natural[i] = max(natural[i], sty.Width(s)+extra)
		for _, w := range strings.Fields(s) {
			minimum[i] = max(minimum[i], sty.Width(w)+extra)
		}
	}
	for i, h := range t.Header {
		// headers wrap at spaces
		for _, w := range strings.Fields(h) {
			minimum[i] = max(minimum[i], sty.Width(w))
		}
		natural[i] = max(natural[i], sty.Width(h))
	}
	for _, r := range t.Rows {
		for i, c := range r {
			extra := vg.Length(0)
			if i == t.ConfigCol {
				extra = swatchW
			}
			measure(i, c, extra)
		}
	}
	var total, minTotal vg.Length
	for i := range natural {
		total += natural[i]
		minTotal += minimum[i]
	}
	if total <= avail {
		return natural
	}
	if minTotal > avail {
		return nil
	}
	// Water-filling: a column whose content fits its fair share keeps it;
	// the others share what is left by their content.
	widths := make([]vg.Length, n)
	fixed := make([]bool, n)
	left := avail
	for changed := true; changed; {
		changed = false
		var rest vg.Length
		for i := range natural {
			if !fixed[i] {
				rest += natural[i]
			}
		}
		for i := range natural {
			if fixed[i] {
				continue
			}
			share := left * natural[i] / rest
			if natural[i] <= share || minimum[i] >= share {
				w := natural[i]
				if minimum[i] >= share {
					w = minimum[i]
				}
				widths[i], fixed[i] = w, true
				left -= w
				changed = true
				break
			}
		}
	}
	var rest vg.Length
	for i := range natural {
		if !fixed[i] {
			rest += natural[i]
		}
	}
	for i := range natural {
		if !fixed[i] {
			widths[i] = left * natural[i] / rest
		}
	}
	var sum vg.Length
	for _, w := range widths {
		sum += w
	}
	if sum > avail*1.001 {
		return nil
	}
	return widths
}

// chartGap is the space between two charts side by side.
const chartGap = 6 * vg.Millimeter

// pdfChartSize is the size of a chart in the PDF: half the text width,
// and no taller than lets two rows with captions and a heading share a
// page.
func pdfChartSize() (w, h vg.Length) {
	w = (pageW - 2*margin - chartGap) / 2
	return w, min(w*chartH/chartW, 76*vg.Millimeter)
}

// chartRowH is the height of a row of charts without captions.
func (d *pdfDoc) chartRowH() vg.Length {
	_, h := pdfChartSize()
	return h + 4*vg.Millimeter
}

// charts draws charts two per row, each with its caption under it.
func (d *pdfDoc) charts(cs []Chart) {
	gap := chartGap
	w, h := pdfChartSize()
	capSty := style(7)
	for i := 0; i < len(cs); i += 2 {
		row := cs[i:min(i+2, len(cs))]
		capLines := 0
		for _, c := range row {
			capLines = max(capLines, len(wrap(capSty, c.Caption, w)))
		}
		if row[0].Caption == "" && (len(row) < 2 || row[1].Caption == "") {
			capLines = 0
		}
		total := h + vg.Length(capLines)*lineH(capSty) + 4*vg.Millimeter
		d.need(total)
		for j, c := range row {
			x := margin + vg.Length(j)*(w+gap)
			cv := draw.Canvas{Canvas: cp1252Canvas{d.c}, Rectangle: vg.Rectangle{Min: vg.Point{X: x, Y: d.y - h}, Max: vg.Point{X: x + w, Y: d.y}}}
			c.drawInto(cv)
			if c.Caption != "" {
				for k, l := range wrap(capSty, c.Caption, w) {
					d.dc.FillText(capSty, vg.Point{X: x, Y: d.y - h - vg.Length(k+1)*lineH(capSty)}, l)
				}
			}
		}
		d.y -= total
	}
}

// key draws every config's line style and name on one line (wrapping).
func (d *pdfDoc) key(configs []string) {
	sty := style(8)
	x := margin
	d.need(lineH(sty) * 2)
	d.y -= lineH(sty)
	for _, cfg := range configs {
		w := 12*vg.Millimeter + sty.Width(cfg) + 5*vg.Millimeter
		if x+w > pageW-margin {
			x = margin
			d.y -= lineH(sty) * 1.3
		}
		st := configStyle(cfg)
		y := d.y + sty.Font.Size*0.55
		d.dc.StrokeLine2(draw.LineStyle{Color: st.Color, Width: st.Width, Dashes: st.Dashes}, x, y, x+10*vg.Millimeter, y)
		if st.Glyph != nil {
			d.dc.DrawGlyph(draw.GlyphStyle{Color: st.Color, Radius: vg.Points(2.4), Shape: st.Glyph}, vg.Point{X: x + 5*vg.Millimeter, Y: y})
		}
		d.dc.FillText(sty, vg.Point{X: x + 12*vg.Millimeter, Y: d.y + sty.Font.Size*0.25}, cfg)
		x += w
	}
	d.y -= lineH(sty)
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

// writePDF lays the document out to be read: the findings and the
// recommendations on the first page, then the details, each part from a
// new page.
func writePDF(path string, res *Results, doc *document) error {
	d := newPDF()
	d.heading(1, res.Title, 0)
	d.para(style(8.5), margin, fmt.Sprintf("Started %s. Delay profile %s. Latencies in ms from each request's intended start (open loop).", res.Started, res.Delays))
	if len(doc.Findings) > 0 {
		d.line(style(13), margin, "Findings")
		d.y -= 1 * vg.Millimeter
		sty := style(10)
		for i, f := range doc.Findings {
			num := fmt.Sprintf("%d.", i+1)
			lines := wrap(sty, f, pageW-2*margin-7*vg.Millimeter)
			d.need(vg.Length(len(lines)) * lineH(sty))
			for j, l := range lines {
				d.y -= lineH(sty)
				if j == 0 {
					d.dc.FillText(sty, vg.Point{X: margin, Y: d.y + sty.Font.Size*0.25}, num)
				}
				d.dc.FillText(sty, vg.Point{X: margin + 7*vg.Millimeter, Y: d.y + sty.Font.Size*0.25}, l)
			}
			d.y -= 1.4 * vg.Millimeter
		}
		d.y -= 2 * vg.Millimeter
	}
	if len(doc.Recommendations) > 0 {
		d.need(lineH(style(13)) + 30*vg.Millimeter)
		d.line(style(13), margin, "If your workload is … choose …")
		d.y -= 1 * vg.Millimeter
		d.table(recTable(doc.Recommendations), 8.5)
	}
	// The key of the configs' styles goes under the table if it fits
	// there, else under the details' first heading (never alone on a page).
	keyPending := true
	if d.y-3*lineH(style(8)) >= margin {
		d.key(res.Configs())
		keyPending = false
	}
	for i, b := range doc.Details {
		switch {
		case b.Heading != "":
			room := 20 * vg.Millimeter
			if i+1 < len(doc.Details) && len(doc.Details[i+1].Charts) > 0 {
				room = d.chartRowH()
			}
			d.heading(b.Level, b.Heading, room)
			if keyPending {
				d.key(res.Configs())
				d.y -= 2 * vg.Millimeter
				keyPending = false
			}
		case b.Text != "" && b.Small:
			d.para(style(7), margin, b.Text)
		case b.Text != "":
			d.para(style(8.5), margin, b.Text)
		case b.Table != nil:
			d.table(b.Table, 7.5)
		case len(b.Charts) > 0:
			d.charts(b.Charts)
		}
	}
	return d.save(path)
}
