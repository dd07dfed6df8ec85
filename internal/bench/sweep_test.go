package bench

import (
	"strings"
	"testing"
	"time"

	"github.com/kvdb/kvdb/internal/bench/driver"
)

func step(rate, ops, p99 float64, errs int64) driver.Result {
	return driver.Result{Mode: driver.ModeOpen, TargetRate: rate, OpsPerSec: ops, P99Ms: p99, Ops: int64(ops) * 3, Errors: errs}
}

func TestKnee(t *testing.T) {
	sc := SweepConfig{}
	sc.SetDefaults()
	for _, c := range []struct {
		name  string
		steps []driver.Result
		want  int
	}{
		{"none", nil, -1},
		{"first fails", []driver.Result{step(5000, 5000, 12, 0)}, -1},
		{"all pass", []driver.Result{step(5000, 5000, 1, 0), step(10000, 10000, 2, 0)}, 1},
		{"p99 at the limit fails", []driver.Result{step(5000, 5000, 1, 0), step(10000, 10000, 10, 0)}, 0},
		{"rate not achieved", []driver.Result{step(5000, 5000, 1, 0), step(10000, 8000, 2, 0)}, 0},
		{"90% achieved passes", []driver.Result{step(5000, 5000, 1, 0), step(10000, 9000, 2, 0)}, 1},
		{"errors fail", []driver.Result{step(5000, 5000, 1, 0), step(10000, 10000, 2, 100)}, 0},
		{"one failure is a hiccup", []driver.Result{step(5000, 5000, 1, 0), step(10000, 10000, 30, 0), step(20000, 20000, 2, 0)}, 2},
		{"two failures in a row end it", []driver.Result{step(5000, 5000, 1, 0), step(10000, 10000, 30, 0), step(20000, 20000, 30, 0), step(40000, 40000, 2, 0)}, 0},
		{"first fails, second passes", []driver.Result{step(5000, 5000, 12, 0), step(10000, 10000, 2, 0)}, 1},
		{"no operations", []driver.Result{{Mode: driver.ModeOpen, TargetRate: 5000, Dropped: 15000}}, -1},
	} {
		if got := sc.Knee(c.steps); got != c.want {
			t.Errorf("%s: knee %d, want %d", c.name, got, c.want)
		}
	}
}

func TestMarkSweepAndMarkdown(t *testing.T) {
	sc := SweepConfig{Rates: []float64{5000, 10000, 20000}}
	sc.SetDefaults()
	w, _ := SelectWorkloads("read-r1")
	a := sc.markSweep([]driver.Result{step(5000, 5000, 1, 0), step(10000, 10000, 3, 0), step(20000, 15000, 40, 0)}, w[0], SystemKVDBRESP)
	b := sc.markSweep([]driver.Result{step(5000, 5000, 1, 0), step(10000, 10000, 3, 0), step(20000, 20000, 4, 0)}, w[0], SystemRedis)
	if !a[1].Knee || a[0].Knee || a[2].Knee || a[0].Phase != PhaseSweep || a[0].System != SystemKVDBRESP || a[0].Workload != "read-r1" {
		t.Fatalf("marked: %+v", a)
	}
	md := sweepMarkdown(append(a, b...), sc)
	for _, want := range []string{"### read-r1", "| rate (ops/s) | kvdb-resp | redis |", "| **knee** | **10000** | **≥ 20000** (the highest rate tried) |", "40.000 * (15000 ops/s)", "**3.000**"} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
	// Sweep rows stay out of the benchmark table.
	if got := Markdown(append(a, b...), Meta{Sweep: &sc}); strings.Contains(got, "| read-r1 (100% reads, R=1) |") {
		t.Errorf("sweep rows in the main table:\n%s", got)
	}
}

func TestParseRates(t *testing.T) {
	got, err := ParseRates("20k, 5000,10000,5000")
	if err != nil || len(got) != 3 || got[0] != 5000 || got[1] != 10000 || got[2] != 20000 {
		t.Errorf("ParseRates: %v %v", got, err)
	}
	for _, bad := range []string{"", "0", "-5", "x", ","} {
		if _, err := ParseRates(bad); err == nil {
			t.Errorf("ParseRates(%q) accepted", bad)
		}
	}
}

func TestSweepConfigValidate(t *testing.T) {
	sc := SweepConfig{Rates: []float64{100, -1}}
	sc.SetDefaults()
	if err := sc.Validate(); err == nil {
		t.Error("negative rate accepted")
	}
	sc = SweepConfig{MinAchieved: 2}
	sc.SetDefaults()
	if err := sc.Validate(); err == nil {
		t.Error("achieved share 2 accepted")
	}
}

func TestSweepStepDuration(t *testing.T) {
	sc := SweepConfig{}
	sc.SetDefaults()
	for rate, want := range map[float64]time.Duration{1000: 15 * time.Second, 2500: 6 * time.Second, 5000: 3 * time.Second, 40000: 3 * time.Second} {
		if got := sc.stepDuration(rate); got != want {
			t.Errorf("rate %g: %s, want %s", rate, got, want)
		}
	}
	w, _ := SelectWorkloads("w5r1-50")
	d := sc.sweepDrive(driver.DefaultConfig(), w[0], 2500, false)
	if d.Mode != driver.ModeOpen || d.Rate != 2500 || d.Duration != 6*time.Second || d.Concurrency != DefaultSweepInFlight || d.WriteRatio != 0.5 || d.Grace <= 0 {
		t.Errorf("step drive %+v", d)
	}
}
