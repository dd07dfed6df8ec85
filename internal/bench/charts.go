package bench

import (
	"fmt"
	"slices"

	"github.com/kvdb/kvdb/internal/bench/driver"
	"github.com/kvdb/kvdb/internal/report"
)

// Chart files inside --out (each as .png and .svg): the table's ops/s as
// bars, and per swept workload p99 against the offered rate.
const throughputChart = "throughput"

// sweepChart is the stem of workload w's sweep chart.
func sweepChart(w string) string { return "sweep-" + w }

// benchCharts builds the charts of rows: ops/s per workload and system
// (the table's rows), and for each swept workload every system's p99
// against the target rate, with the sweep's p99 limit as a line.
func benchCharts(rows []driver.Result, sc *SweepConfig) ([]report.Chart, error) {
	var charts []report.Chart
	if t := index(mainRows(rows)); len(t.workloads) > 0 {
		var series []report.BarSeries
		for _, s := range t.systems {
			vals := make([]float64, len(t.workloads))
			for i, w := range t.workloads {
				if r, ok := t.get(w, s); ok {
					vals[i] = r.OpsPerSec
				}
			}
			series = append(series, report.BarSeries{Name: s, Values: vals})
		}
		c, err := report.Bars(throughputChart, "Throughput per workload (closed loop)", "workload", "operations per second", t.workloads, series)
		if err != nil {
			return nil, err
		}
		charts = append(charts, c)
	}
	var sweep []driver.Result
	for _, r := range rows {
		if r.Phase == PhaseSweep {
			sweep = append(sweep, r)
		}
	}
	t := index(sweep)
	for _, w := range t.workloads {
		var lines []report.Line
		var rates []float64 // every line's, for the limit line's span
		for _, s := range t.systems {
			var l report.Line
			for _, r := range sweep {
				if r.Workload == w && r.System == s {
					l.X, l.Y = append(l.X, r.TargetRate), append(l.Y, r.P99Ms)
				}
			}
			if len(l.X) == 0 {
				continue
			}
			l.Name, l.Style = s, s
			if k := knee(sweep, w, s); k > 0 {
				l.Name = fmt.Sprintf("%s (knee %.0f/s)", s, k)
			}
			lines = append(lines, l)
			rates = append(rates, l.X...)
		}
		if sc != nil && len(rates) > 0 {
			lines = append(lines, report.Line{Name: fmt.Sprintf("p99 limit %g ms", sc.P99LimitMs), Style: report.ReferenceStyle,
				X: []float64{slices.Min(rates), slices.Max(rates)}, Y: []float64{sc.P99LimitMs, sc.P99LimitMs}})
		}
		c, err := report.Lines(sweepChart(w), fmt.Sprintf("Rate sweep, %s: p99 against the offered rate (open loop)", w),
			"target rate (operations per second)", "p99 latency (ms, log)", true, lines)
		if err != nil {
			return nil, err
		}
		charts = append(charts, c)
	}
	return charts, nil
}

// knee returns the rate of workload w's knee for system s (0: none).
func knee(sweep []driver.Result, w, s string) float64 {
	for _, r := range sweep {
		if r.Workload == w && r.System == s && r.Knee {
			return r.TargetRate
		}
	}
	return 0
}
