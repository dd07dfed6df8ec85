package report

import (
	"fmt"
	"os"
	"strings"
)

// writeMarkdown writes the summary table and the analysis as Markdown, for
// notes and terminals.
func writeMarkdown(path string, res *Results, analysis, notes []Paragraph) error {
	var b strings.Builder
	fmt.Fprintf(&b, "# %s\n\nStarted %s, delay profile %s. Latencies in ms from each request's intended start; floors are the profile's theoretical minimum.\n\n", res.Title, res.Started, res.Delays)
	b.WriteString("| " + strings.Join(tableHeader, " | ") + " |\n|")
	for range tableHeader {
		b.WriteString("---|")
	}
	b.WriteString("\n")
	for i := range res.Runs {
		b.WriteString("| " + strings.Join(tableRow(&res.Runs[i]), " | ") + " |\n")
	}
	for _, p := range append(analysis, notes...) {
		fmt.Fprintf(&b, "\n## %s\n\n%s\n", p.Heading, p.Text)
	}
	return os.WriteFile(path, []byte(b.String()), 0o644)
}
