package report

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
)

// document is the report's content, laid out the same way in HTML, PDF
// and Markdown: the findings, the recommendations, then the details as a
// sequence of blocks (headings, paragraphs, tables, chart groups).
type document struct {
	Findings        []string
	Recommendations []Recommendation
	Details         []block
	// Analysis is the steady runs' generated analysis (also in Details).
	Analysis []Paragraph
}

// block is one piece of the details: a heading (Level 2 or 3), a
// paragraph, a table or a group of charts; exactly one is set.
type block struct {
	Heading string
	Level   int
	Text    string
	Small   bool // Text in a smaller type (reference material)
	Table   *table
	Charts  []Chart
}

// table is a table of text cells. ConfigCol is the column that names a
// config (drawn with the config's colour swatch), -1 for none; Wrap
// marks a table of long text cells (wrapped, not sized to their content).
type table struct {
	Header    []string
	Rows      [][]string
	ConfigCol int
	Wrap      bool
	// Runs, when set, holds each row's run: the HTML links a row's last
	// cell ("linearizable") to porcupine's visualization of its violation.
	Runs []*Run
}

// charts returns every chart of the document.
func (d *document) charts() []Chart {
	var out []Chart
	for _, b := range d.Details {
		out = append(out, b.Charts...)
	}
	return out
}

// recTable is the "if your workload is … choose …" table.
func recTable(recs []Recommendation) *table {
	t := &table{Header: []string{"If your workload is …", "choose", "because (measured)", "avoid"}, ConfigCol: 1, Wrap: true}
	for _, r := range recs {
		choose := r.Choose
		if choose == "" {
			choose = "(none measured)"
		}
		t.Rows = append(t.Rows, []string{r.Workload, choose, r.Because, r.Avoid})
	}
	return t
}

// compose builds the document from res: findings and recommendations
// from every run, the details per part.
func compose(res *Results) (*document, error) {
	d := &document{Findings: Findings(res), Recommendations: Recommendations(res)}
	steady := steadyResults(res)
	if err := d.faultDetails(res); err != nil {
		return nil, err
	}
	if err := d.stalenessDetails(res); err != nil {
		return nil, err
	}
	if len(steady.Runs) > 0 {
		d.Analysis = Analyze(steady)
		d.add(block{Heading: "Steady runs: latency, consistency, analysis", Level: 2})
		t := &table{Header: tableHeader, ConfigCol: 0}
		for i := range steady.Runs {
			t.Rows = append(t.Rows, tableRow(&steady.Runs[i]))
			t.Runs = append(t.Runs, &steady.Runs[i])
		}
		d.add(block{Table: t})
		for _, p := range append(slices.Clone(d.Analysis), generatorNote(steady)) {
			d.add(block{Heading: p.Heading, Level: 3}, block{Text: p.Text})
		}
		sections, err := charts(steady)
		if err != nil {
			return nil, err
		}
		for _, s := range sections {
			d.add(block{Heading: s.Heading, Level: 3}, block{Charts: s.Charts})
		}
	}
	return d, nil
}

func (d *document) add(bs ...block) { d.Details = append(d.Details, bs...) }

// faultDetails adds the fault scenarios: a matrix of windows and losses,
// every fault run's figures, and per scenario the refused requests over
// time and every run's timeline.
func (d *document) faultDetails(res *Results) error {
	scs := faultScenarios(res)
	if len(scs) == 0 {
		return nil
	}
	d.add(block{Heading: "Faults: how long writes stopped, what was lost", Level: 2})
	d.add(block{Text: faultIntro(res, scs)})
	d.add(block{Table: faultMatrix(res, scs)})
	for _, sc := range scs {
		runs := scenarioRuns(res, sc)
		d.add(block{Heading: scenarioTitle(sc), Level: 3})
		d.add(block{Table: faultTable(runs)})
		var cs []Chart
		for _, w := range []bool{true, false} {
			what := "Reads"
			if w {
				what = "Writes"
			}
			c, err := RefusedOverTime(fmt.Sprintf("refused-%s-%s", strings.ToLower(what), sc),
				fmt.Sprintf("%s refused over time: %s", what, sc), runs, w)
			if err != nil {
				return err
			}
			c.Caption = fmt.Sprintf("the share of the %s sent in each %.0f ms bucket that failed (refused, timed out or dropped); a full-height bar is 100%%. "+
				"Requests count in the bucket they were sent in, so a write in flight when the fault hit shows before it", strings.ToLower(what), bucketMs(runs[0]))
			cs = append(cs, c)
		}
		for _, r := range runs {
			if len(r.Ops) == 0 {
				continue
			}
			title := fmt.Sprintf("%s, %s: every operation", r.Config, sc)
			c, err := Timeline(fmt.Sprintf("timeline-%s-%s", sc, r.Config), title, r)
			if err != nil {
				return err
			}
			c.Caption = timelineCaption(r)
			cs = append(cs, c)
		}
		d.add(block{Charts: cs})
	}
	return nil
}

func timelineCaption(r *Run) string {
	var b strings.Builder
	if f := r.Fault; f != nil {
		fmt.Fprintf(&b, "%s (%s): %s. ", f.Target, f.Role, f.Action)
	}
	if r.WriteUnavailableMs != nil {
		fmt.Fprintf(&b, "Writes unavailable %s", windowOf(r))
		if r.NoAckMs > 0 {
			fmt.Fprintf(&b, ", no acknowledgement for %s in all", dur(r.NoAckMs))
		}
		b.WriteString(". ")
	}
	if r.FinalCheck {
		fmt.Fprintf(&b, "%d of %d acknowledged writes lost.", r.AckedLost, r.AckedWrites)
	}
	return strings.TrimSpace(b.String())
}

// faultIntro describes the fault runs' setup from their figures.
func faultIntro(res *Results, scs []string) string {
	var runs []*Run
	for _, sc := range scs {
		runs = append(runs, scenarioRuns(res, sc)...)
	}
	r := runs[0]
	var b strings.Builder
	fmt.Fprintf(&b, "Each fault run sends %.0f requests per second (%s writes) for %.0f s to a fresh cluster", r.TargetQPS, pct(r.WriteRatio), r.DurationSec)
	if r.Fault != nil {
		fmt.Fprintf(&b, "; the fault starts %s into the run", dur(r.Fault.StartMs))
		if r.Fault.EndMs != nil {
			fmt.Fprintf(&b, " and is healed at %s", dur(*r.Fault.EndMs))
		}
	}
	b.WriteString(". The write-unavailability window runs from the fault's start to the first acknowledgement of a write sent after it (so it includes that write's latency); " +
		"\"no ack\" is the total time, in timeline buckets, in which no write was acknowledged. " +
		"After the load every key was read from every node's own copy: an acknowledged write no node held is lost, one some nodes held is partial.")
	return b.String()
}

// faultMatrix is configs against scenarios: each cell the window and the
// acknowledged writes lost.
func faultMatrix(res *Results, scs []string) *table {
	t := &table{Header: []string{"config"}, ConfigCol: 0}
	for _, sc := range scs {
		t.Header = append(t.Header, sc+": writes unavailable · lost")
	}
	for _, cfg := range res.Configs() {
		row := []string{cfg}
		any := false
		for _, sc := range scs {
			cell := "–"
			for _, r := range scenarioRuns(res, sc) {
				if r.Config != cfg {
					continue
				}
				any = true
				w := "–"
				if r.WriteUnavailableMs != nil {
					w = windowOf(r)
					if r.Fault != nil && !r.Fault.Recovered {
						w = dur(*r.WriteUnavailableMs) + " (not recovered)"
					}
				}
				lost := "not checked"
				if r.FinalCheck {
					lost = strconv.Itoa(r.AckedLost) + " lost"
				}
				cell = w + " · " + lost
			}
			row = append(row, cell)
		}
		if any {
			t.Rows = append(t.Rows, row)
		}
	}
	return t
}

// faultTable lists the figures of one scenario's runs.
func faultTable(runs []*Run) *table {
	t := &table{Header: []string{"config", "target", "writes unavailable", "no ack", "acked", "lost", "partial", "converged",
		"write errors by status", "read errors by status", "stale", "linearizable"}, ConfigCol: 0}
	for _, r := range runs {
		target, window := "–", "–"
		if r.Fault != nil {
			target = r.Fault.Target + " (" + r.Fault.Role + ")"
		}
		if r.WriteUnavailableMs != nil {
			window = dur(*r.WriteUnavailableMs)
			if r.Fault != nil && !r.Fault.Recovered {
				window += " (not recovered)"
			}
		}
		lost, partial, conv := "–", "–", "–"
		if r.FinalCheck {
			lost, partial = strconv.Itoa(r.AckedLost), strconv.Itoa(r.AckedPartial)
			conv = map[bool]string{true: "yes", false: "no"}[r.Converged]
		}
		t.Rows = append(t.Rows, []string{r.Config, target, window, dur(r.NoAckMs), strconv.Itoa(r.AckedWrites), lost, partial, conv,
			statusCounts(r.WriteErrorsByStatus), statusCounts(r.ReadErrorsByStatus), strconv.Itoa(r.StaleReads), linText(r)})
		t.Runs = append(t.Runs, r)
	}
	return t
}

// statusCounts formats errors by status: "503×90 network×68".
func statusCounts(m map[string]int) string {
	if len(m) == 0 {
		return "0"
	}
	keys := slices.Sorted(maps.Keys(m))
	slices.SortStableFunc(keys, func(a, b string) int { return m[b] - m[a] })
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s×%d", k, m[k]))
	}
	return strings.Join(parts, " ")
}

func linText(r *Run) string {
	if r.Linearizable == nil {
		return "not checked"
	}
	if *r.Linearizable {
		return "yes"
	}
	return "no"
}

// probeMethod describes the staleness probes, if any config had one.
func probeMethod(res *Results) string {
	var probed []string
	var info *ProbeInfo
	for _, cfg := range res.Configs() {
		if st := res.Staleness[cfg]; st != nil && st.Source == SourceProbe && st.Probe != nil {
			probed = append(probed, cfg)
			if info == nil {
				info = st.Probe
			}
		}
	}
	if len(probed) == 0 {
		return ""
	}
	return fmt.Sprintf("The curves of %s come from a staleness probe each, as PBS's authors validated theirs against Cassandra: every probe writes a fresh key once, "+
		"then reads it at set times after the acknowledgement, spread evenly over %.0f ms (R=1: 12 reads per probe at 100 probes a second; R>1: one read per probe, "+
		"since a read that repairs would freshen the reads after it, at 300 a second). So every read has exactly one write to return, as in WARS, and every bucket of t gets "+
		"about the same number of reads. The other configs' curves, and the \"mixed workload\" column, use the steady runs' reads: hot keys with several writes in flight "+
		"(a read of any of them counts as fresh, which a model of one write cannot predict) and, with R>1, read repair (which WARS leaves out), so there the model is a bound, not a fit. "+
		"WARS draws every hop independently from its distribution: a machine too busy to keep the delays steady (hops far above the profile's sleeps) correlates them, "+
		"and the fit degrades.", list(probed), info.WindowMs)
}

// probeHops lists a probe's measured hops, p50 and p99, as the model's
// input: tails far above the delay profile's sleeps mean a machine too
// busy for WARS's independent draws.
func probeHops(p *ProbeInfo) string {
	if p == nil || len(p.Hops) == 0 {
		return ""
	}
	var parts []string
	for _, k := range []string{"write", "ack", "read", "response"} {
		if h, ok := p.Hops[k]; ok {
			parts = append(parts, fmt.Sprintf("%s %s / %s", k, msText(h.P50), msText(h.P99)))
		}
	}
	return " The probe's hops, p50 / p99 (ms): " + strings.Join(parts, ", ") + "."
}

func msText(v float64) string {
	if v < 10 {
		return strconv.FormatFloat(v, 'f', 1, 64)
	}
	return strconv.FormatFloat(v, 'f', 0, 64)
}

// stalenessDetails adds the staleness part: a table per config and the
// measured-versus-predicted charts of the R+W<=N configs.
func (d *document) stalenessDetails(res *Results) error {
	if len(res.Staleness) == 0 {
		return nil
	}
	d.add(block{Heading: "Staleness over time since acknowledgement: measured and predicted (PBS)", Level: 2})
	d.add(block{Text: "For a read sent t ms after the latest write of its key was acknowledged, the probability that it returns that write or a newer one: measured from the histories, " +
		"and predicted with PBS (Bailis et al., VLDB 2012: the WARS model, Monte Carlo over the one-way times of the write, its acknowledgement, the read and its response, " +
		"each measured by the nodes in the same run). RMSE is the gap between the two curves in percentage points over the buckets with enough reads; " +
		"the sampling RMSE is the gap the number of reads alone would leave."})
	if probeText := probeMethod(res); probeText != "" {
		d.add(block{Text: probeText})
	}
	t := &table{Header: []string{"config", "R+W vs N", "curve measured by", "reads placed on the curve", "stale reads (steady runs)", "RMSE (pts)", "sampling RMSE (pts)", "mixed workload RMSE (pts)"}, ConfigCol: 0}
	var models []string
	var weak []string
	for _, cfg := range res.Configs() {
		st := res.Staleness[cfg]
		if st == nil {
			continue
		}
		r := configRun(res, cfg)
		rel := fmt.Sprintf("%d+%d > %d", r.R, r.W, r.N)
		if !rwOverlap(r) {
			rel = fmt.Sprintf("%d+%d ≤ %d", r.R, r.W, r.N)
			weak = append(weak, cfg)
		}
		f := func(v *float64) string {
			if v == nil {
				return "–"
			}
			return fmt.Sprintf("%.1f", *v)
		}
		stale := "–"
		if n, reads, ok := staleTotals(res, cfg); ok {
			stale = fmt.Sprintf("%s (%s of %s)", percent(float64(n)/float64(reads)), thousands(n), thousands(reads))
		}
		by, wl := fmt.Sprintf("%d steady runs", st.Runs), f(st.RMSE)
		if st.Source == SourceProbe && st.Probe != nil {
			by, wl = fmt.Sprintf("probe: %s writes, %s each", thousands(st.Probe.Writes), plural(st.Probe.ReadsPerWrite, "read")), "–"
			if st.Workload != nil {
				wl = f(st.Workload.RMSE)
			}
		}
		t.Rows = append(t.Rows, []string{cfg, rel, by, thousands(st.Reads), stale, f(st.RMSE), f(st.SamplingRMSE), wl})
		if st.Model != "" {
			m := sentence(st.Model)
			if h := probeHops(st.Probe); h != "" {
				m = strings.TrimSuffix(m, ".") + "." + h
			}
			models = append(models, cfg+": "+m)
		}
	}
	d.add(block{Table: t})
	var cs []Chart
	all, err := MeasuredStaleness("staleness-measured", "Measured P(fresh) over t, every config", res)
	if err != nil {
		return err
	}
	all.Caption = "buckets with enough reads only; configs whose quorums overlap stay at 100%"
	cs = append(cs, all)
	for _, cfg := range weak {
		st := res.Staleness[cfg]
		title := "P(fresh) over t: " + cfg + ", measured vs PBS"
		c, err := StalenessChart("staleness-"+cfg, title, cfg, st)
		if err != nil {
			return err
		}
		cs = append(cs, c)
	}
	d.add(block{Charts: cs})
	var notes []string
	for _, cfg := range res.Configs() {
		if st := res.Staleness[cfg]; st != nil && st.Note != "" && !slices.Contains(notes, st.Note) {
			notes = append(notes, st.Note)
		}
	}
	for _, n := range notes {
		d.add(block{Text: "Note: " + sentence(n)})
	}
	if len(models) > 0 {
		d.add(block{Heading: "The PBS model of each config", Level: 3})
		for _, m := range models {
			d.add(block{Text: m, Small: true})
		}
	}
	return nil
}

// sentence ends s with a full stop unless it ends with punctuation.
func sentence(s string) string {
	s = strings.TrimSpace(s)
	if s == "" || strings.ContainsAny(s[len(s)-1:], ".!?)") {
		return s
	}
	return s + "."
}
