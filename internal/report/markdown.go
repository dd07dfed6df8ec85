package report

import (
	"fmt"
	"os"
	"strings"
)

// writeMarkdown writes the document's text and tables as Markdown, for
// notes and terminals: the findings, the recommendations, then the
// details without their charts.
func writeMarkdown(path string, res *Results, doc *document) error {
	var b strings.Builder
	fmt.Fprintf(&b, "# %s\n\nStarted %s, delay profile %s. Latencies in ms from each request's intended start (open loop).\n\n", res.Title, res.Started, res.Delays)
	if len(doc.Findings) > 0 {
		b.WriteString("## Findings\n\n")
		for i, f := range doc.Findings {
			fmt.Fprintf(&b, "%d. %s\n", i+1, f)
		}
		b.WriteString("\n")
	}
	if len(doc.Recommendations) > 0 {
		b.WriteString("## If your workload is … choose …\n\n")
		mdTable(&b, recTable(doc.Recommendations))
	}
	for _, blk := range doc.Details {
		switch {
		case blk.Heading != "":
			fmt.Fprintf(&b, "%s %s\n\n", strings.Repeat("#", blk.Level), blk.Heading)
		case blk.Text != "":
			b.WriteString(blk.Text + "\n\n")
		case blk.Table != nil:
			mdTable(&b, blk.Table)
		case len(blk.Charts) > 0:
			var names []string
			for _, c := range blk.Charts {
				names = append(names, fmt.Sprintf("[%s](charts/%s.svg)", c.Title, c.Name))
			}
			b.WriteString("Charts: " + strings.Join(names, " · ") + "\n\n")
		}
	}
	return os.WriteFile(path, []byte(b.String()), 0o644)
}

func mdTable(b *strings.Builder, t *table) {
	cell := func(s string) string { return strings.ReplaceAll(s, "|", `\|`) }
	row := func(cells []string) {
		out := make([]string, len(cells))
		for i, c := range cells {
			out[i] = cell(c)
		}
		b.WriteString("| " + strings.Join(out, " | ") + " |\n")
	}
	row(t.Header)
	b.WriteString("|" + strings.Repeat("---|", len(t.Header)) + "\n")
	for _, r := range t.Rows {
		row(r)
	}
	b.WriteString("\n")
}
