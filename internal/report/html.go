package report

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"html/template"
	"os"
	"path/filepath"
)

type htmlChart struct {
	Title, Caption string
	PNG            template.URL
	File           string
}

type htmlSection struct {
	Heading string
	Charts  []htmlChart
}

type htmlPage struct {
	Title    string
	Started  string
	Delays   string
	Header   []string
	Rows     [][]template.HTML
	Analysis []Paragraph
	Notes    []Paragraph
	Sections []htmlSection
}

var pageTmpl = template.Must(template.New("report").Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{{.Title}}</title>
<style>
body{font-family:system-ui,-apple-system,"Segoe UI",Helvetica,Arial,sans-serif;margin:2em auto;max-width:1200px;color:#222;line-height:1.45;padding:0 1em}
h1{font-size:1.6em}h2{font-size:1.25em;margin-top:2em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;font-size:.82em;font-variant-numeric:tabular-nums}
th,td{border:1px solid #ccc;padding:.25em .45em;text-align:right}th{background:#f3f3f3}
td:first-child,th:first-child{text-align:left}
.charts{display:flex;flex-wrap:wrap;gap:1em}.charts figure{margin:0;flex:1 1 560px}
.charts img{width:100%;border:1px solid #eee}figcaption{font-size:.85em;color:#555}
.meta{color:#555}
</style></head><body>
<h1>{{.Title}}</h1>
<p class="meta">Started {{.Started}} · delay profile <b>{{.Delays}}</b> · latencies in ms, measured from each request's intended start (open loop) · floors are the delay profile's theoretical minimum</p>
<h2>Summary</h2>
<table><thead><tr>{{range .Header}}<th>{{.}}</th>{{end}}</tr></thead><tbody>
{{range .Rows}}<tr>{{range .}}<td>{{.}}</td>{{end}}</tr>
{{end}}</tbody></table>
<h2>Analysis</h2>
{{range .Analysis}}<h3>{{.Heading}}</h3><p>{{.Text}}</p>{{end}}
{{range .Notes}}<h3>{{.Heading}}</h3><p>{{.Text}}</p>{{end}}
{{range .Sections}}<h2>{{.Heading}}</h2><div class="charts">
{{range .Charts}}<figure><img src="{{.PNG}}" alt="{{.Title}}"><figcaption>{{.Title}}{{if .Caption}} — {{.Caption}}{{end}} (<a href="{{.File}}">SVG</a>)</figcaption></figure>
{{end}}</div>{{end}}
</body></html>
`))

// writeHTML writes the self-contained page: the charts are embedded as PNG
// data URIs, so the file works offline and alone.
func writeHTML(path string, res *Results, analysis, notes []Paragraph, sections []section, chartDir string) error {
	page := htmlPage{Title: res.Title, Started: res.Started, Delays: res.Delays, Header: tableHeader, Analysis: analysis, Notes: notes}
	for i := range res.Runs {
		page.Rows = append(page.Rows, htmlRow(filepath.Dir(path), &res.Runs[i]))
	}
	rel, err := filepath.Rel(filepath.Dir(path), chartDir)
	if err != nil {
		rel = chartDir
	}
	for _, s := range sections {
		hs := htmlSection{Heading: s.Heading}
		for _, c := range s.Charts {
			png, err := os.ReadFile(filepath.Join(chartDir, c.Name+".png"))
			if err != nil {
				return fmt.Errorf("embed chart: %w", err)
			}
			hs.Charts = append(hs.Charts, htmlChart{
				Title: c.Title, Caption: c.Caption, File: filepath.ToSlash(filepath.Join(rel, c.Name+".svg")),
				PNG: template.URL("data:image/png;base64," + base64.StdEncoding.EncodeToString(png)),
			})
		}
		page.Sections = append(page.Sections, hs)
	}
	var buf bytes.Buffer
	if err := pageTmpl.Execute(&buf, page); err != nil {
		return fmt.Errorf("render html: %w", err)
	}
	return os.WriteFile(path, buf.Bytes(), 0o644)
}

// vizFile is the load tester's visualization of a linearizability
// violation, beside a run's history.
const vizFile = "linearizability.html"

// htmlRow is tableRow with the verdict linked to porcupine's visualization
// of the violation when the run has one.
func htmlRow(dir string, r *Run) []template.HTML {
	cells := tableRow(r)
	out := make([]template.HTML, len(cells))
	for i, c := range cells {
		out[i] = template.HTML(template.HTMLEscapeString(c))
	}
	viz := filepath.Join(r.Dir, vizFile)
	if r.Linearizable != nil && !*r.Linearizable {
		if _, err := os.Stat(filepath.Join(dir, viz)); err == nil {
			last := len(out) - 1
			out[last] = template.HTML(fmt.Sprintf(`<a href="%s">%s</a>`, template.HTMLEscapeString(filepath.ToSlash(viz)), out[last]))
		}
	}
	return out
}
