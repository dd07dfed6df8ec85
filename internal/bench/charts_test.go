package bench

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kvdb/kvdb/internal/bench/driver"
)

// The charts bench.md links are written beside it: the table's ops/s,
// and one sweep chart per swept workload with every system's line.
func TestWriteResultsCharts(t *testing.T) {
	dir := t.TempDir()
	rows := sampleRows()
	for i, rate := range []float64{2500, 5000, 10000} {
		rows = append(rows,
			driver.Result{Workload: "read-r1", System: SystemKVDBRESP, Phase: PhaseSweep, TargetRate: rate, OpsPerSec: rate, P99Ms: float64(1 + i), Knee: i == 2},
			driver.Result{Workload: "read-r1", System: SystemRedis, Phase: PhaseSweep, TargetRate: rate, OpsPerSec: rate, P99Ms: float64(2 + 5*i), Knee: i == 1})
	}
	var sc SweepConfig
	sc.SetDefaults()
	if err := WriteResults(dir, rows, Meta{Drive: driver.DefaultConfig(), Sweep: &sc}); err != nil {
		t.Fatal(err)
	}
	md, err := os.ReadFile(filepath.Join(dir, MarkdownFile))
	if err != nil {
		t.Fatal(err)
	}
	for _, stem := range []string{throughputChart, sweepChart("read-r1")} {
		if !strings.Contains(string(md), "("+stem+".svg)") {
			t.Errorf("bench.md does not show %s.svg", stem)
		}
		for _, ext := range []string{".png", ".svg"} {
			fi, err := os.Stat(filepath.Join(dir, stem+ext))
			if err != nil || fi.Size() < 1000 {
				t.Errorf("%s%s: %v (%v)", stem, ext, fi, err)
			}
		}
	}
	svg, _ := os.ReadFile(filepath.Join(dir, sweepChart("read-r1")+".svg"))
	for _, want := range []string{"kvdb-resp (knee 10000/s)", "redis (knee 5000/s)", "p99 limit 10 ms"} {
		if !strings.Contains(string(svg), want) {
			t.Errorf("sweep chart lacks %q", want)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, sweepChart("w5r1-50")+".svg")); !os.IsNotExist(err) {
		t.Errorf("a chart for a workload that was not swept: %v", err)
	}
}

// No rows: no charts, and no links to them.
func TestWriteResultsNoCharts(t *testing.T) {
	dir := t.TempDir()
	if err := WriteResults(dir, nil, Meta{}); err != nil {
		t.Fatal(err)
	}
	if md, _ := os.ReadFile(filepath.Join(dir, MarkdownFile)); strings.Contains(string(md), ".svg") {
		t.Errorf("bench.md links charts of nothing:\n%s", md)
	}
	if _, err := os.Stat(filepath.Join(dir, throughputChart+".svg")); !os.IsNotExist(err) {
		t.Errorf("throughput chart of no rows: %v", err)
	}
}
