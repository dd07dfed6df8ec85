package report

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"html/template"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"

	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgsvg"
)

type htmlChart struct {
	Title, Caption string
	SVG            template.HTML
	File           string
}

type htmlTable struct {
	Header []string
	Rows   []htmlRow
	Wrap   bool
}

// htmlRow is a table row. A row whose first cell names a config carries
// the config's colour (Color, a CSS colour), drawn by the stylesheet as a
// swatch before the name: the cell itself stays "<td>name</td>".
type htmlRow struct {
	Color template.CSS
	Cells []template.HTML
}

type htmlBlock struct {
	Heading string
	ID      string // anchor of a heading
	Level   int
	Text    template.HTML
	Small   bool
	Table   *htmlTable
	Charts  []htmlChart
}

type htmlRec struct {
	Workload, Because, Avoid template.HTML
	Choose                   template.HTML
}

type htmlKey struct {
	Name string
	SVG  template.HTML
}

type htmlPage struct {
	Title    string
	Started  string
	Delays   string
	FontCSS  template.CSS
	Findings []template.HTML
	Recs     []htmlRec
	Keys     []htmlKey
	Details  []htmlBlock
	TOC      []htmlBlock // the details' level-2 headings
}

var pageTmpl = template.Must(template.New("report").Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{{.Title}}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
{{.FontCSS}}
body{font-family:system-ui,-apple-system,"Segoe UI",Helvetica,Arial,sans-serif;margin:2em auto;max-width:1200px;color:#222;line-height:1.45;padding:0 1em}
h1{font-size:1.6em;margin-bottom:.2em}h2{font-size:1.3em;margin-top:2em;border-bottom:1px solid #ddd}h3{font-size:1.08em;margin-top:1.6em}
table{border-collapse:collapse;font-size:.82em;font-variant-numeric:tabular-nums;margin:.6em 0}
th,td{border:1px solid #ccc;padding:.25em .45em;text-align:right;vertical-align:top}th{background:#f3f3f3}
td:first-child,th:first-child{text-align:left}
table.wrap td,table.wrap th{text-align:left}
.tablebox{overflow-x:auto}p.small{font-size:.85em;color:#444;margin:.3em 0}
.charts{display:grid;grid-template-columns:repeat(auto-fill,minmax(540px,1fr));gap:1.2em}
.charts figure{margin:0}.charts svg{width:100%;height:auto;display:block;border:1px solid #eee}
figcaption{font-size:.85em;color:#555}
.meta{color:#555;margin-top:0}
.findings{background:#f7f9fc;border:1px solid #dbe3ee;border-radius:6px;padding:.6em 1.4em .6em 1em}
.findings ol{margin:.3em 0;padding-left:1.6em}.findings li{margin:.45em 0;font-size:1.04em}
table.recs{font-size:.92em;width:100%}table.recs td:nth-child(2){white-space:nowrap;font-weight:600}
.cfg{white-space:nowrap;font-weight:600}tr.cfgrow td:first-child{font-weight:600;white-space:nowrap}
tr.cfgrow td:first-child::before{content:"";display:inline-block;width:.8em;height:.8em;border-radius:2px;margin-right:.3em;vertical-align:-.05em;background:var(--c)}.sw{display:inline-block;width:.8em;height:.8em;border-radius:2px;margin-right:.3em;vertical-align:-.05em}
.toc{font-size:.9em}.keys{display:flex;flex-wrap:wrap;gap:.4em 1.4em;font-size:.88em;color:#333;margin:.8em 0}.keys span{white-space:nowrap}.keys svg{vertical-align:middle;margin-right:.3em}
</style></head><body>
<h1>{{.Title}}</h1>
<p class="meta">Started {{.Started}} · delay profile <b>{{.Delays}}</b> · latencies in ms, measured from each request's intended start (open loop)</p>
{{if .Findings}}<section class="findings"><h2 style="border:0;margin-top:.4em">Findings</h2><ol>
{{range .Findings}}<li>{{.}}</li>
{{end}}</ol></section>{{end}}
{{if .Recs}}<h2>If your workload is … choose …</h2>
<table class="recs wrap"><thead><tr><th>If your workload is …</th><th>choose</th><th>because (measured)</th><th>avoid</th></tr></thead><tbody>
{{range .Recs}}<tr><td>{{.Workload}}</td><td>{{.Choose}}</td><td>{{.Because}}</td><td>{{.Avoid}}</td></tr>
{{end}}</tbody></table>{{end}}
<div class="keys">{{range .Keys}}<span>{{.SVG}}{{.Name}}</span>{{end}}</div>
{{if .TOC}}<p class="toc">Details: {{range $i, $h := .TOC}}{{if $i}} · {{end}}<a href="#{{$h.ID}}">{{$h.Heading}}</a>{{end}}</p>{{end}}
{{range .Details}}{{if .Heading}}{{if eq .Level 2}}<h2 id="{{.ID}}">{{.Heading}}</h2>{{else}}<h3 id="{{.ID}}">{{.Heading}}</h3>{{end}}{{end}}
{{- if .Text}}<p{{if .Small}} class="small"{{end}}>{{.Text}}</p>{{end}}
{{- with .Table}}<div class="tablebox"><table{{if .Wrap}} class="wrap"{{end}}><thead><tr>{{range .Header}}<th>{{.}}</th>{{end}}</tr></thead><tbody>
{{range .Rows}}<tr{{if .Color}} class="cfgrow" style="--c:{{.Color}}"{{end}}>{{range .Cells}}<td>{{.}}</td>{{end}}</tr>
{{end}}</tbody></table></div>{{end}}
{{- if .Charts}}<div class="charts">
{{range .Charts}}<figure>{{.SVG}}<figcaption><b>{{.Title}}</b>{{if .Caption}} — {{.Caption}}{{end}} (<a href="{{.File}}">SVG</a>)</figcaption></figure>
{{end}}</div>{{end}}
{{end}}
</body></html>
`))

// writeHTML writes the self-contained page: the charts are inline SVG
// (vector, drawn with the font the page embeds once), so the file works
// offline and alone.
func writeHTML(path string, res *Results, doc *document) error {
	page := htmlPage{Title: res.Title, Started: res.Started, Delays: res.Delays}
	css, err := fontFaceCSS()
	if err != nil {
		return err
	}
	page.FontCSS = css
	configs := res.Configs()
	for _, f := range doc.Findings {
		page.Findings = append(page.Findings, markConfigs(f, configs))
	}
	for _, r := range doc.Recommendations {
		choose := template.HTML("(none measured)")
		if r.Choose != "" {
			choose = configCell(r.Choose)
		}
		page.Recs = append(page.Recs, htmlRec{Workload: template.HTML(template.HTMLEscapeString(r.Workload)), Choose: choose,
			Because: markConfigs(r.Because, configs), Avoid: markConfigs(r.Avoid, configs)})
	}
	for _, cfg := range configs {
		page.Keys = append(page.Keys, htmlKey{Name: cfg, SVG: keySVG(cfg)})
	}
	chartRel := "charts"
	for _, b := range doc.Details {
		hb := htmlBlock{Heading: b.Heading, ID: anchor(b.Heading), Level: b.Level, Text: markConfigs(b.Text, nil), Small: b.Small}
		if b.Heading != "" && b.Level == 2 {
			page.TOC = append(page.TOC, hb)
		}
		if t := b.Table; t != nil {
			ht := &htmlTable{Header: t.Header, Wrap: t.Wrap}
			for ri, row := range t.Rows {
				var hr htmlRow
				for i, c := range row {
					switch {
					case i == t.ConfigCol && i == 0:
						hr.Color = template.CSS(cssColor(c))
						hr.Cells = append(hr.Cells, template.HTML(template.HTMLEscapeString(c)))
					case i == t.ConfigCol:
						hr.Cells = append(hr.Cells, configCell(c))
					default:
						hr.Cells = append(hr.Cells, figureCell(c))
					}
				}
				if ri < len(t.Runs) {
					last := len(hr.Cells) - 1
					hr.Cells[last] = violationLink(filepath.Dir(path), t.Runs[ri], hr.Cells[last])
				}
				ht.Rows = append(ht.Rows, hr)
			}
			hb.Table = ht
		}
		for _, c := range b.Charts {
			svg, err := c.inlineSVG()
			if err != nil {
				return err
			}
			hb.Charts = append(hb.Charts, htmlChart{Title: c.Title, Caption: c.Caption, SVG: svg,
				File: filepath.ToSlash(filepath.Join(chartRel, c.Name+".svg"))})
		}
		page.Details = append(page.Details, hb)
	}
	var buf bytes.Buffer
	if err := pageTmpl.Execute(&buf, page); err != nil {
		return fmt.Errorf("render html: %w", err)
	}
	return os.WriteFile(path, buf.Bytes(), 0o644)
}

// anchor makes a heading's id: lower case, words joined by "-".
func anchor(heading string) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(heading) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			if dash && b.Len() > 0 {
				b.WriteByte('-')
			}
			b.WriteRune(r)
			dash = false
		} else {
			dash = true
		}
	}
	return b.String()
}

// figureCell escapes a table cell; a short one (a figure with its unit,
// "2.16 s", "150.0 (150)") does not break across lines.
func figureCell(c string) template.HTML {
	esc := template.HTMLEscapeString(c)
	if len(c) <= 16 && strings.Count(c, " ") <= 2 {
		esc = strings.ReplaceAll(esc, " ", "&nbsp;")
	}
	return template.HTML(esc)
}

// configCell is a config's name with its colour swatch.
func configCell(cfg string) template.HTML {
	return template.HTML(fmt.Sprintf(`<span class="cfg"><i class="sw" style="background:%s"></i>%s</span>`, cssColor(cfg), template.HTMLEscapeString(cfg)))
}

// markConfigs escapes text and puts a swatch before every config name in
// it (whole names only: "leaderless" is not marked inside
// "leaderless-w3r3"). configs nil: text is only escaped.
func markConfigs(text string, configs []string) template.HTML {
	if len(configs) == 0 {
		return template.HTML(template.HTMLEscapeString(text))
	}
	names := slices.Clone(configs)
	slices.SortFunc(names, func(a, b string) int { return len(b) - len(a) })
	part := func(c byte) bool {
		return c == '-' || c == '_' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
	}
	var b strings.Builder
	last := 0
	for i := 0; i < len(text); i++ {
		if i > 0 && part(text[i-1]) {
			continue
		}
		for _, n := range names {
			if strings.HasPrefix(text[i:], n) && (i+len(n) == len(text) || !part(text[i+len(n)])) {
				b.WriteString(template.HTMLEscapeString(text[last:i]))
				b.WriteString(string(configCell(n)))
				i += len(n) - 1
				last = i + 1
				break
			}
		}
	}
	b.WriteString(template.HTMLEscapeString(text[last:]))
	return template.HTML(b.String())
}

// keySVG is a config's line style as a small inline SVG (colour, dashes,
// width, marker), for the key above the details.
func keySVG(cfg string) template.HTML {
	st := configStyle(cfg)
	var dash string
	if len(st.Dashes) > 0 {
		var ds []string
		for _, d := range st.Dashes {
			ds = append(ds, fmt.Sprintf("%.1f", d.Points()))
		}
		dash = fmt.Sprintf(` stroke-dasharray="%s"`, strings.Join(ds, " "))
	}
	return template.HTML(fmt.Sprintf(`<svg width="40" height="12" viewBox="0 0 40 12"><line x1="1" y1="6" x2="39" y2="6" stroke="%s" stroke-width="%.1f"%s/><circle cx="20" cy="6" r="3" fill="%s"/></svg>`,
		cssColor(cfg), st.Width.Points(), dash, cssColor(cfg)))
}

// inlineSVG renders the chart as an SVG element for the page: no XML
// prolog, scaled to its container by its viewBox.
func (c Chart) inlineSVG() (template.HTML, error) {
	cv := vgsvg.New(chartW, chartH)
	c.drawInto(draw.New(cv))
	var buf bytes.Buffer
	if _, err := cv.WriteTo(&buf); err != nil {
		return "", fmt.Errorf("chart %s: %w", c.Name, err)
	}
	s := buf.String()
	if i := strings.Index(s, "<svg"); i >= 0 {
		s = s[i:]
	}
	s = svgSize.ReplaceAllString(s, `<svg role="img" aria-label="`+template.HTMLEscapeString(c.Title)+`" preserveAspectRatio="xMidYMid meet"`)
	return template.HTML(s), nil
}

var svgSize = regexp.MustCompile(`^<svg width="[^"]*" height="[^"]*"`)

var (
	fontOnce sync.Once
	fontCSS  template.CSS
	fontErr  error
)

// fontFaceCSS embeds chartFont once in the page, so that every inline SVG
// draws its text with the face gonum measured it with.
func fontFaceCSS() (template.CSS, error) {
	fontOnce.Do(func() {
		var b strings.Builder
		for _, f := range []font.Font{chartFont} {
			face := font.DefaultCache.Lookup(f, vg.Points(12))
			var raw bytes.Buffer
			if _, err := face.Face.WriteSourceTo(nil, &raw); err != nil {
				fontErr = fmt.Errorf("embed font: %w", err)
				return
			}
			fmt.Fprintf(&b, "@font-face{font-family:\"Liberation %s\";font-style:normal;font-weight:normal;src:url(data:font/ttf;base64,%s) format(\"truetype\")}\n",
				f.Variant, base64.StdEncoding.EncodeToString(raw.Bytes()))
		}
		fontCSS = template.CSS(b.String())
	})
	return fontCSS, fontErr
}

// vizFile is the load tester's visualization of a linearizability
// violation, beside a run's history.
const vizFile = "linearizability.html"

// violationLink returns the last cell of r's row linked to porcupine's
// visualization of its linearizability violation, if r has one beside
// its history.
func violationLink(dir string, r *Run, cell template.HTML) template.HTML {
	if r == nil || r.Linearizable == nil || *r.Linearizable || r.Dir == "" {
		return cell
	}
	viz := filepath.Join(r.Dir, vizFile)
	if _, err := os.Stat(filepath.Join(dir, viz)); err != nil {
		return cell
	}
	return template.HTML(fmt.Sprintf(`<a href="%s">%s</a>`, template.HTMLEscapeString(filepath.ToSlash(viz)), cell))
}
