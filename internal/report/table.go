package report

import (
	"fmt"
	"strconv"
)

// Columns of the summary table, shared by the HTML and the PDF.
var tableHeader = []string{
	"config", "writes", "reads", "read p50", "read floor", "read p99", "read p99.9", "read max",
	"writes n", "write p50", "write floor", "write p99", "write max", "QPS (target)", "errors",
	"stale", "inversions", "linearizable",
}

// tableRow formats one run for the summary table.
func tableRow(r *Run) []string {
	f := func(v float64) string { return strconv.FormatFloat(v, 'f', 1, 64) }
	if r.Read.P50 < 10 || r.Write.P50 < 10 {
		f = func(v float64) string {
			if v < 10 {
				return strconv.FormatFloat(v, 'f', 2, 64)
			}
			return strconv.FormatFloat(v, 'f', 1, 64)
		}
	}
	lin := "not checked"
	if r.Linearizable != nil {
		lin = "no"
		if *r.Linearizable {
			lin = "yes"
		}
	}
	return []string{
		r.Config, pct(r.WriteRatio), strconv.Itoa(r.Read.Count), f(r.Read.P50), f(r.FloorReadMs), f(r.Read.P99), f(r.Read.P999), f(r.Read.Max),
		strconv.Itoa(r.Write.Count), f(r.Write.P50), f(r.FloorWriteMs), f(r.Write.P99), f(r.Write.Max),
		fmt.Sprintf("%.1f (%.0f)", r.AchievedQPS, r.TargetQPS), strconv.Itoa(r.Read.Errors + r.Write.Errors),
		strconv.Itoa(r.StaleReads), strconv.Itoa(r.Inversions), lin,
	}
}
