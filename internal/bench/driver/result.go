package driver

import (
	"math"
	"time"

	"github.com/kvdb/kvdb/internal/latency"
)

// Result is one row of a benchmark: one workload against one system. Its
// JSON form is the row of bench.json; latencies are in milliseconds and
// cover successful operations of the measured window (errors are only
// counted). In the open loop they are measured from each request's
// intended start time.
type Result struct {
	Workload    string  `json:"workload"`
	System      string  `json:"system"`
	Mode        string  `json:"mode"`
	Concurrency int     `json:"concurrency"`
	TargetRate  float64 `json:"target_rate,omitempty"`
	WriteRatio  float64 `json:"write_ratio"`
	ValueSize   int     `json:"value_size"`
	Keys        int     `json:"keys"`
	// DurationS is the measured window in seconds: from the end of the
	// warm-up to the last measured operation's answer.
	DurationS float64 `json:"duration_s"`
	// Ops counts the successful operations of the window; Reads and Writes
	// split them.
	Ops    int64 `json:"ops"`
	Reads  int64 `json:"reads"`
	Writes int64 `json:"writes"`
	// Errors counts failed operations of the window.
	Errors int64 `json:"errors"`
	// OpsPerSec is Ops / DurationS.
	OpsPerSec float64 `json:"ops_per_sec"`
	P50Ms     float64 `json:"p50_ms"`
	P90Ms     float64 `json:"p90_ms"`
	P99Ms     float64 `json:"p99_ms"`
	P999Ms    float64 `json:"p999_ms"`
	MaxMs     float64 `json:"max_ms"`
	MeanMs    float64 `json:"mean_ms"`
	// Per operation kind (zero when the kind did not occur).
	ReadP50Ms  float64 `json:"read_p50_ms"`
	ReadP99Ms  float64 `json:"read_p99_ms"`
	WriteP50Ms float64 `json:"write_p50_ms"`
	WriteP99Ms float64 `json:"write_p99_ms"`
	// Open loop: requests of the schedule never sent (the system fell too
	// far behind) and requests sent later than the late threshold.
	Dropped int64 `json:"dropped,omitempty"`
	Late    int64 `json:"late,omitempty"`
	// ClientCPUPct is the CPU the client process used over the run
	// (warm-up included), in percent of one core: a load generator near
	// the machine's core count is itself the bottleneck. (When the
	// system runs inside the client's process, it is counted too.)
	ClientCPUPct float64 `json:"client_cpu_pct,omitempty"`
	// FirstError is the first failure seen, warm-up included.
	FirstError string `json:"first_error,omitempty"`
	// Interrupted is true when the run was cut short by its context.
	Interrupted bool `json:"interrupted,omitempty"`
	// Phase is empty for the benchmark table's rows; "sweep" marks a step
	// of a rate sweep (open loop at TargetRate), "redis-benchmark" a row
	// of redis-benchmark's own measurement (Ops, OpsPerSec, MeanMs, P50Ms,
	// P99Ms, MaxMs only).
	Phase string `json:"phase,omitempty"`
	// Knee marks the sweep step at the highest rate whose p99 stayed
	// under the sweep's limit (bench.SweepConfig.Knee).
	Knee bool `json:"knee,omitempty"`
	// Notes says what the system's numbers mean (consistency of reads,
	// where writes go...).
	Notes string `json:"notes,omitempty"`
}

func (d *driver) result(workers []*worker) Result {
	cfg := d.cfg
	res := Result{
		Mode: cfg.Mode, Concurrency: cfg.Concurrency, WriteRatio: cfg.WriteRatio,
		ValueSize: cfg.ValueSize, Keys: cfg.Keys,
	}
	if cfg.Mode == ModeOpen {
		res.TargetRate = cfg.Rate
		res.Dropped = d.total - d.sent.Load()
	}
	reads, writes := newHistogram(), newHistogram()
	var lastEnd time.Time
	for _, w := range workers {
		reads.Merge(w.reads)
		writes.Merge(w.writes)
		res.Reads += w.nReads
		res.Writes += w.nWrite
		res.Errors += w.errs
		res.Late += w.late
		if w.firstErr != nil && res.FirstError == "" {
			res.FirstError = w.firstErr.Error()
		}
		if w.lastEnd.After(lastEnd) {
			lastEnd = w.lastEnd
		}
	}
	res.Ops = res.Reads + res.Writes
	window := cfg.Duration
	if !lastEnd.IsZero() && lastEnd.After(d.measureFrom) {
		window = lastEnd.Sub(d.measureFrom)
	}
	res.DurationS = round(window.Seconds(), 3)
	res.OpsPerSec = round(float64(res.Ops)/window.Seconds(), 1)
	all := newHistogram()
	all.Merge(reads)
	all.Merge(writes)
	p := latency.PercentilesOf(all)
	res.P50Ms, res.P90Ms, res.P99Ms, res.P999Ms = p.P50Ms, p.P90Ms, p.P99Ms, p.P999Ms
	res.MaxMs, res.MeanMs = p.MaxMs, p.MeanMs
	res.ReadP50Ms, res.ReadP99Ms = latency.QuantileMs(reads, 50), latency.QuantileMs(reads, 99)
	res.WriteP50Ms, res.WriteP99Ms = latency.QuantileMs(writes, 50), latency.QuantileMs(writes, 99)
	return res
}

func round(x float64, digits int) float64 {
	p := math.Pow(10, float64(digits))
	return math.Round(x*p) / p
}
