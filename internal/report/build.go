package report

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
)

// section is a group of charts under one heading.
type section struct {
	Heading string
	Charts  []Chart
}

// Output names the files a report build wrote.
type Output struct {
	HTML, PDF, JSON, Markdown string
	ChartDir                  string
	Charts                    []string // chart files (PNG and SVG)
}

// Build renders every chart into dir/charts and writes dir/report.html,
// dir/report.pdf, dir/report.json and dir/report.md.
func Build(res *Results, dir string) (*Output, error) {
	if len(res.Runs) == 0 {
		return nil, fmt.Errorf("report: no runs to report")
	}
	chartDir := filepath.Join(dir, "charts")
	if err := os.MkdirAll(chartDir, 0o755); err != nil {
		return nil, err
	}
	if err := loadOps(res, dir); err != nil {
		return nil, err
	}
	doc, err := compose(res)
	if err != nil {
		return nil, err
	}
	out := &Output{HTML: filepath.Join(dir, "report.html"), PDF: filepath.Join(dir, "report.pdf"),
		JSON: filepath.Join(dir, "report.json"), Markdown: filepath.Join(dir, "report.md"), ChartDir: chartDir}
	for _, c := range doc.charts() {
		if err := c.Save(chartDir); err != nil {
			return nil, err
		}
		out.Charts = append(out.Charts, filepath.Join(chartDir, c.Name+".png"), filepath.Join(chartDir, c.Name+".svg"))
	}
	analysis := doc.Analysis
	if err := writeHTML(out.HTML, res, doc); err != nil {
		return nil, err
	}
	if err := writePDF(out.PDF, res, doc); err != nil {
		return nil, err
	}
	if err := writeMarkdown(out.Markdown, res, doc); err != nil {
		return nil, err
	}
	b, err := json.MarshalIndent(struct {
		Title     string                `json:"title"`
		Started   string                `json:"started"`
		Delays    string                `json:"delays"`
		Runs      []Run                 `json:"runs"`
		Staleness map[string]*Staleness `json:"staleness,omitempty"`
		Analysis  []Paragraph           `json:"analysis"`
		// Findings and Recommendations open the report (findings.go,
		// recommend.go).
		Findings        []string         `json:"findings"`
		Recommendations []Recommendation `json:"recommendations"`
	}{res.Title, res.Started, res.Delays, res.Runs, res.Staleness, analysis, doc.Findings, doc.Recommendations}, "", "  ")
	if err != nil {
		return nil, err
	}
	return out, os.WriteFile(out.JSON, b, 0o644)
}

func charts(res *Results) ([]section, error) {
	var sections []section
	for _, ratio := range res.Ratios() {
		var runs []*Run
		for _, cfg := range res.Configs() {
			if r := res.Find(cfg, ratio); r != nil {
				runs = append(runs, r)
			}
		}
		tag := strconv.FormatFloat(ratio*100, 'g', 4, 64)
		s := section{Heading: "Write ratio " + pct(ratio)}
		rd, err := LatencySpectrum("latency-read-"+tag, "Read latency by percentile, "+pct(ratio)+" writes", runs, func(r *Run) []Point { return r.ReadSpectrum })
		if err != nil {
			return nil, err
		}
		wr, err := LatencySpectrum("latency-write-"+tag, "Write latency by percentile, "+pct(ratio)+" writes", runs, func(r *Run) []Point { return r.WriteSpectrum })
		if err != nil {
			return nil, err
		}
		iv, err := IntervalCDF("intervals-"+tag, "Write-to-read intervals of the same key, "+pct(ratio)+" writes", runs)
		if err != nil {
			return nil, err
		}
		s.Charts = append(s.Charts, rd, wr, iv)
		sections = append(sections, s)
	}
	across := section{Heading: "Across write ratios"}
	for _, spec := range []struct {
		name, title string
		value       func(*Run) (float64, bool)
	}{
		{"p50-read", "Read latency p50 by config", func(r *Run) (float64, bool) { return r.Read.P50, okCount(r.Read) > 0 }},
		{"p99-read", "Read latency p99 by config", func(r *Run) (float64, bool) { return r.Read.P99, okCount(r.Read) > 0 }},
		{"p50-write", "Write latency p50 by config", func(r *Run) (float64, bool) { return r.Write.P50, okCount(r.Write) > 0 }},
		{"p99-write", "Write latency p99 by config", func(r *Run) (float64, bool) { return r.Write.P99, okCount(r.Write) > 0 }},
	} {
		c, err := AcrossRatios(spec.name, spec.title, res, spec.value)
		if err != nil {
			return nil, err
		}
		across.Charts = append(across.Charts, c)
	}
	for _, spec := range []struct {
		name, title string
		count       func(*Run) float64
	}{
		{"stale-reads", "Stale reads by config", func(r *Run) float64 { return float64(r.StaleReads) }},
		{"inversions", "Inversions by config", func(r *Run) float64 { return float64(r.Inversions) }},
	} {
		c, err := CountsByConfig(spec.name, spec.title, "count", res, spec.count)
		if err != nil {
			return nil, err
		}
		across.Charts = append(across.Charts, c)
	}
	win, err := InversionWindow("inconsistency-window", "Inversions by age of the write in flight, all ratios", res)
	if err != nil {
		return nil, err
	}
	win.Caption = "a read that returns older data than a read finished before it, counted by how long before it the key's latest write was sent"
	across.Charts = append(across.Charts, win)
	return append(sections, across), nil
}

// generatorNote explains from the generator's parameters and the measured
// intervals how reads and writes of a key stay close in time.
func generatorNote(res *Results) Paragraph {
	text := res.Generator
	iv := res.Intervals
	if iv.Count == 0 {
		text += " No read of a previously written key was recorded, so no interval was measured."
		return Paragraph{Heading: "How reads stay close to writes", Text: text}
	}
	var dur float64
	for i := range res.Runs {
		dur = max(dur, res.Runs[i].DurationSec)
	}
	text += fmt.Sprintf(" Measured over all %d reads of keys written earlier in their run, the interval from the latest write of the key to the read had median %s, p90 %s and p99 %s; %.0f%% came within one second, in runs of %.0f s.",
		iv.Count, ms(iv.P50), ms(iv.P90), ms(iv.P99), 100*iv.Within1s, dur)
	return Paragraph{Heading: "How reads stay close to writes", Text: text}
}
