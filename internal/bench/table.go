package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/kvdb/kvdb/internal/bench/driver"
)

// Output file names inside --out.
const (
	JSONFile     = "bench.json"
	MarkdownFile = "bench.md"
)

// WriteResults writes dir/bench.json (the rows, a JSON list), dir/bench.md
// (the tables) and the charts bench.md shows (PNG and SVG: ops/s per
// workload and system, and each swept workload's p99 against the rate).
func WriteResults(dir string, rows []driver.Result, meta Meta) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if rows == nil {
		rows = []driver.Result{}
	}
	js, err := json.MarshalIndent(rows, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, JSONFile), append(js, '\n'), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, MarkdownFile), []byte(Markdown(rows, meta)), 0o644); err != nil {
		return err
	}
	charts, err := benchCharts(rows, meta.Sweep)
	if err != nil {
		return err
	}
	for _, c := range charts {
		if err := c.Save(dir); err != nil {
			return err
		}
	}
	return nil
}

// ReadResults reads a bench.json.
func ReadResults(path string) ([]driver.Result, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var rows []driver.Result
	if err := json.Unmarshal(b, &rows); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return rows, nil
}

// mainRows returns the benchmark table's rows (no sweep steps, no
// redis-benchmark rows).
func mainRows(rows []driver.Result) []driver.Result {
	var out []driver.Result
	for _, r := range rows {
		if r.Phase == "" {
			out = append(out, r)
		}
	}
	return out
}

// table indexes rows by workload and system, keeping first-seen order.
type table struct {
	workloads, systems []string
	rows               map[[2]string]driver.Result
}

func index(rows []driver.Result) table {
	t := table{rows: map[[2]string]driver.Result{}}
	for _, r := range rows {
		if !slices.Contains(t.workloads, r.Workload) {
			t.workloads = append(t.workloads, r.Workload)
		}
		if !slices.Contains(t.systems, r.System) {
			t.systems = append(t.systems, r.System)
		}
		t.rows[[2]string{r.Workload, r.System}] = r
	}
	// Systems in the canonical order, unknown ones after.
	order := Systems()
	slices.SortStableFunc(t.systems, func(a, b string) int {
		ia, ib := slices.Index(order, a), slices.Index(order, b)
		if ia < 0 {
			ia = len(order)
		}
		if ib < 0 {
			ib = len(order)
		}
		return ia - ib
	})
	return t
}

func (t table) get(workload, system string) (driver.Result, bool) {
	r, ok := t.rows[[2]string{workload, system}]
	return r, ok
}

// Ratio returns kvdb's ops/s divided by system's for the workload, and
// whether both rows exist with a positive rate.
func Ratio(rows []driver.Result, workload, system string) (float64, bool) {
	t := index(rows)
	return t.ratio(workload, system, func(r driver.Result) float64 { return r.OpsPerSec })
}

// LatencyRatio returns kvdb's p99 divided by system's (below 1: kvdb's
// tail is shorter).
func LatencyRatio(rows []driver.Result, workload, system string) (float64, bool) {
	t := index(rows)
	return t.ratio(workload, system, func(r driver.Result) float64 { return r.P99Ms })
}

func (t table) ratio(workload, system string, f func(driver.Result) float64) (float64, bool) {
	return t.ratioOf(workload, SystemKVDB, system, f)
}

// ratioOf returns f(a) / f(b) for the workload's rows of systems a and b.
func (t table) ratioOf(workload, a, system string, f func(driver.Result) float64) (float64, bool) {
	k, ok1 := t.get(workload, a)
	p, ok2 := t.get(workload, system)
	if !ok1 || !ok2 || f(p) <= 0 || f(k) <= 0 {
		return 0, false
	}
	return f(k) / f(p), true
}

func fmtRatio(x float64, ok bool) string {
	if !ok {
		return "—"
	}
	return fmt.Sprintf("%.2f", x)
}

func workloadTitle(name string) string {
	for _, w := range workloads {
		if w.Name == name {
			return w.Title
		}
	}
	return ""
}

// Markdown renders the rows: a throughput table with the kvdb/peer ratio
// per workload, a latency table, and what each system does.
func Markdown(all []driver.Result, meta Meta) string {
	var b strings.Builder
	rows := mainRows(all)
	t := index(rows)
	peers := slices.DeleteFunc(slices.Clone(t.systems), isKVDB)
	hasKVDB := slices.Contains(t.systems, SystemKVDB)

	b.WriteString("# kvdb bench\n\n")
	d := meta.Drive
	load := fmt.Sprintf("closed loop, %d concurrent clients per system", d.Concurrency)
	if d.Mode == driver.ModeOpen {
		load = fmt.Sprintf("open loop at %g ops/s per system (at most %d in flight; latency from the intended start)", d.Rate, d.Concurrency)
	}
	ratio := "each workload's own write ratio"
	if meta.OverrideWriteRatio {
		ratio = fmt.Sprintf("%.0f%% writes in every workload (--write-ratio)", d.WriteRatio*100)
	}
	fmt.Fprintf(&b, "%s; %s measured after %s warm-up; %d keys written before the run, %d-byte values, %s.\n",
		load, d.Duration, d.Warmup, d.Keys, d.ValueSize, ratio)
	if meta.CPUs > 0 {
		fmt.Fprintf(&b, "Machine: %s/%s, %d CPUs, %s", meta.GOOS, meta.GOARCH, meta.CPUs, meta.Go)
		for _, s := range []string{"redis", "etcd"} {
			if v := meta.Versions[s]; v != "" {
				fmt.Fprintf(&b, "; %s", v)
			}
		}
		if !meta.Date.IsZero() {
			fmt.Fprintf(&b, "; %s", meta.Date.Format("2006-01-02 15:04 MST"))
		}
		b.WriteString(". Every system runs on this one machine, beside its client.\n")
	}
	if meta.Load != "" {
		fmt.Fprintf(&b, "Load average (1, 5, 15 min) at the start: %s.\n", meta.Load)
	}

	b.WriteString("\n## Throughput (ops/s)\n\n")
	if hasKVDB && len(peers) > 0 {
		b.WriteString("`kvdb/X` is kvdb's ops/s divided by X's: above 1, kvdb does more operations per second.\n\n")
	}
	header := []string{"workload"}
	header = append(header, t.systems...)
	if hasKVDB {
		for _, p := range peers {
			header = append(header, "kvdb/"+p)
		}
	}
	writeRow(&b, header)
	align := []string{"---"}
	for range header[1:] {
		align = append(align, "---:")
	}
	writeRow(&b, align)
	for _, w := range t.workloads {
		cells := []string{w}
		if title := workloadTitle(w); title != "" {
			cells[0] = fmt.Sprintf("%s (%s)", w, title)
		}
		for _, s := range t.systems {
			if r, ok := t.get(w, s); ok {
				cells = append(cells, fmt.Sprintf("%.0f", r.OpsPerSec))
			} else {
				cells = append(cells, "—")
			}
		}
		if hasKVDB {
			for _, p := range peers {
				cells = append(cells, fmtRatio(t.ratio(w, p, func(r driver.Result) float64 { return r.OpsPerSec })))
			}
		}
		writeRow(&b, cells)
	}
	if len(t.workloads) > 0 {
		fmt.Fprintf(&b, "\n![ops/s per workload and system](%s.svg)\n", throughputChart)
	}

	b.WriteString("\n## Latency (ms)\n\n")
	b.WriteString("Percentiles of successful operations in the measured window")
	if d.Mode == driver.ModeOpen {
		b.WriteString(", from each request's intended start")
	}
	b.WriteString(". `client CPU` is the load generator's CPU over the run, in % of one core (the machine has ")
	if meta.CPUs > 0 {
		fmt.Fprintf(&b, "%d", meta.CPUs)
	} else {
		b.WriteString("its")
	}
	b.WriteString(" cores, shared with the servers). `kvdb/X p99` is kvdb's p99 divided by X's: below 1, kvdb's tail is shorter.\n\n")
	writeRow(&b, []string{"workload", "system", "ops/s", "p50", "p99", "p99.9", "max", "read p50", "write p50", "errors", "client CPU", "kvdb/X ops/s", "kvdb/X p99"})
	writeRow(&b, []string{"---", "---", "---:", "---:", "---:", "---:", "---:", "---:", "---:", "---:", "---:", "---:", "---:"})
	for _, w := range t.workloads {
		for _, s := range t.systems {
			r, ok := t.get(w, s)
			if !ok {
				continue
			}
			opsRatio, latRatio := "", ""
			if isPeer(s) && hasKVDB {
				opsRatio = fmtRatio(t.ratio(w, s, func(r driver.Result) float64 { return r.OpsPerSec }))
				latRatio = fmtRatio(t.ratio(w, s, func(r driver.Result) float64 { return r.P99Ms }))
			}
			errs := fmt.Sprint(r.Errors)
			if r.Dropped > 0 {
				errs += fmt.Sprintf(" (+%d dropped)", r.Dropped)
			}
			writeRow(&b, []string{w, s, fmt.Sprintf("%.0f", r.OpsPerSec), ms(r.P50Ms), ms(r.P99Ms), ms(r.P999Ms), ms(r.MaxMs),
				msIf(r.ReadP50Ms, r.Reads), msIf(r.WriteP50Ms, r.Writes), errs, cpuPct(r.ClientCPUPct), opsRatio, latRatio})
		}
	}

	b.WriteString(goalsMarkdown(Goals(rows)))
	b.WriteString(redisBenchmarkMarkdown(all))
	if meta.Sweep != nil {
		b.WriteString(sweepMarkdown(all, *meta.Sweep))
	}
	b.WriteString(memoryMarkdown(meta.Memory))

	notes := map[string]string{}
	for _, r := range rows {
		if r.Notes != "" && notes[r.System] == "" {
			notes[r.System] = r.Notes
		}
		if r.Notes != "" && isKVDB(r.System) {
			notes[r.System+"/"+r.Workload] = r.Notes
		}
	}
	b.WriteString("\n## What each system does\n\n")
	for _, s := range t.systems {
		if isKVDB(s) {
			for _, w := range t.workloads {
				if n := notes[s+"/"+w]; n != "" {
					fmt.Fprintf(&b, "- **%s**, %s: %s\n", s, w, n)
				}
			}
			continue
		}
		if n := notes[s]; n != "" {
			fmt.Fprintf(&b, "- **%s**: %s\n", s, n)
		}
	}
	return b.String()
}

func cpuPct(x float64) string {
	if x <= 0 {
		return "—"
	}
	return fmt.Sprintf("%.0f%%", x)
}

func ms(x float64) string { return fmt.Sprintf("%.3f", x) }

func msIf(x float64, n int64) string {
	if n == 0 {
		return "—"
	}
	return ms(x)
}

func writeRow(b *strings.Builder, cells []string) {
	b.WriteString("| " + strings.Join(cells, " | ") + " |\n")
}

// WriteText prints the rows as an aligned table for a terminal.
func WriteText(w io.Writer, rows []driver.Result) {
	t := index(mainRows(rows))
	hasKVDB := slices.Contains(t.systems, SystemKVDB)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "workload\tsystem\tops/s\tp50 ms\tp99 ms\tp99.9 ms\terrors\tclient CPU\tkvdb/X ops/s\tkvdb/X p99\t")
	for _, wl := range t.workloads {
		for _, s := range t.systems {
			r, ok := t.get(wl, s)
			if !ok {
				continue
			}
			opsRatio, latRatio := "", ""
			if isPeer(s) && hasKVDB {
				opsRatio = fmtRatio(t.ratio(wl, s, func(r driver.Result) float64 { return r.OpsPerSec }))
				latRatio = fmtRatio(t.ratio(wl, s, func(r driver.Result) float64 { return r.P99Ms }))
			}
			fmt.Fprintf(tw, "%s\t%s\t%.0f\t%.3f\t%.3f\t%.3f\t%d\t%s\t%s\t%s\t\n", wl, s, r.OpsPerSec, r.P50Ms, r.P99Ms, r.P999Ms, r.Errors, cpuPct(r.ClientCPUPct), opsRatio, latRatio)
		}
	}
	tw.Flush()
}
