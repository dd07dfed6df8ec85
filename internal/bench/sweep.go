package bench

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/kvdb/kvdb/internal/bench/driver"
)

// Phases of rows that are not the benchmark table's.
const (
	PhaseSweep          = "sweep"
	PhaseRedisBenchmark = "redis-benchmark"
)

// Defaults of SweepConfig.
const (
	DefaultSweepP99LimitMs   = 10.0
	DefaultSweepMinAchieved  = 0.9
	DefaultSweepMaxErrorRate = 0.001
	DefaultSweepDuration     = 3 * time.Second
	DefaultSweepWarmup       = 2 * time.Second
	DefaultSweepInFlight     = 64
	DefaultSweepMinRequests  = 15000
)

// DefaultSweepRates are the open-loop rates a sweep steps through.
var DefaultSweepRates = []float64{2500, 5000, 7500, 10000, 15000, 20000, 25000, 30000, 40000, 50000, 60000}

// DefaultSweepWorkloads are the workloads swept by default.
var DefaultSweepWorkloads = []string{"read-r1", "w5r1-50"}

// SweepConfig configures a rate sweep: for each workload and system, open
// loop runs at increasing rates until two in a row fail the limits, and
// the knee — the highest rate whose step passed.
type SweepConfig struct {
	// Rates are the target rates in ops/s, run in increasing order
	// (default DefaultSweepRates).
	Rates []float64
	// Workloads to sweep (default DefaultSweepWorkloads).
	Workloads []Workload
	// Duration and Warmup of each step (default 3s and 2s).
	Duration, Warmup time.Duration
	// MinRequests lengthens a step's measured window to at least this many
	// requests at its rate (default 15000), so that its p99 rests on 150
	// requests or more: at a low rate a fixed 3 s would leave one stall of
	// the machine 1 % of the step.
	MinRequests int
	// InFlight caps requests in flight (the open loop's Concurrency;
	// default 64: enough for 60,000 ops/s at 1 ms, and the peer client
	// opens that many connections per node before each step).
	InFlight int
	// P99LimitMs is the p99 a step must stay under (default 10 ms).
	P99LimitMs float64
	// MinAchieved is the share of the target rate a step must achieve
	// (default 0.9): a system that cannot keep up drops or delays
	// requests, whatever its p99.
	MinAchieved float64
	// MaxErrorRate is the share of failed operations a step may have
	// (default 0.001).
	MaxErrorRate float64
}

// SetDefaults fills zero fields.
func (c *SweepConfig) SetDefaults() {
	if len(c.Rates) == 0 {
		c.Rates = slices.Clone(DefaultSweepRates)
	}
	if c.Workloads == nil {
		for _, n := range DefaultSweepWorkloads {
			ws, _ := SelectWorkloads(n)
			c.Workloads = append(c.Workloads, ws...)
		}
	}
	if c.Duration == 0 {
		c.Duration = DefaultSweepDuration
	}
	if c.Warmup == 0 {
		c.Warmup = DefaultSweepWarmup
	}
	if c.InFlight == 0 {
		c.InFlight = DefaultSweepInFlight
	}
	if c.MinRequests == 0 {
		c.MinRequests = DefaultSweepMinRequests
	}
	if c.P99LimitMs == 0 {
		c.P99LimitMs = DefaultSweepP99LimitMs
	}
	if c.MinAchieved == 0 {
		c.MinAchieved = DefaultSweepMinAchieved
	}
	if c.MaxErrorRate == 0 {
		c.MaxErrorRate = DefaultSweepMaxErrorRate
	}
}

// Validate reports invalid settings.
func (c *SweepConfig) Validate() error {
	var errs []error
	for _, r := range c.Rates {
		if !(r > 0) {
			errs = append(errs, fmt.Errorf("sweep rate %g: must be positive", r))
		}
	}
	if c.Duration < 0 || c.Warmup < 0 || c.InFlight < 0 || c.MinRequests < 0 || c.P99LimitMs < 0 || c.MinAchieved < 0 || c.MinAchieved > 1 || c.MaxErrorRate < 0 {
		errs = append(errs, errors.New("sweep: negative duration, in-flight, limit or error rate, or achieved share outside 0..1"))
	}
	return errors.Join(errs...)
}

// ParseRates parses a comma-separated list of rates ("5000,10k,20000").
func ParseRates(s string) ([]float64, error) {
	var out []float64
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		mult := 1.0
		if v, ok := strings.CutSuffix(strings.ToLower(f), "k"); ok {
			f, mult = v, 1000
		}
		x, err := strconv.ParseFloat(f, 64)
		if err != nil || !(x > 0) {
			return nil, fmt.Errorf("rate %q: want a positive number", f)
		}
		out = append(out, x*mult)
	}
	if len(out) == 0 {
		return nil, errors.New("no rates")
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// stepPasses reports whether a sweep step kept its p99 under the limit,
// achieved enough of its target and had few enough errors.
func (c SweepConfig) stepPasses(r driver.Result) bool {
	if r.Ops == 0 || r.Interrupted {
		return false
	}
	if r.P99Ms >= c.P99LimitMs {
		return false
	}
	if r.TargetRate > 0 && r.OpsPerSec < c.MinAchieved*r.TargetRate {
		return false
	}
	return float64(r.Errors) <= c.MaxErrorRate*float64(r.Ops+r.Errors)
}

// sweepStopAfter is how many failed steps in a row end a system's sweep:
// one failure on a shared machine may be a hiccup (a 10 ms stall of the
// scheduler is a p99 miss); two in a row are the system.
const sweepStopAfter = 2

// Knee returns the index of the knee among steps (in increasing rate
// order): the highest rate whose step passed, before sweepStopAfter
// failures in a row; -1 if none passed.
func (c SweepConfig) Knee(steps []driver.Result) int {
	knee, failed := -1, 0
	for i, s := range steps {
		if !c.stepPasses(s) {
			if failed++; failed >= sweepStopAfter {
				break
			}
			continue
		}
		knee, failed = i, 0
	}
	return knee
}

// sweepDrive is the open-loop drive of one step.
func (c SweepConfig) sweepDrive(base driver.Config, w Workload, rate float64, override bool) driver.Config {
	d := base
	if !override {
		d.WriteRatio = w.WriteRatio
	}
	d.Mode, d.Rate, d.Concurrency = driver.ModeOpen, rate, c.InFlight
	d.Duration, d.Warmup, d.Grace = c.stepDuration(rate), c.Warmup, 0
	d.Progress = nil
	d.SetDefaults()
	return d
}

// stepDuration is the measured window at rate: Duration, or longer to
// hold MinRequests requests.
func (c SweepConfig) stepDuration(rate float64) time.Duration {
	d := c.Duration
	if rate > 0 && c.MinRequests > 0 {
		need := time.Duration(float64(c.MinRequests) / rate * float64(time.Second)).Round(100 * time.Millisecond)
		d = max(d, need)
	}
	return d
}

// markSweep tags the steps of one system's sweep and marks its knee.
func (c SweepConfig) markSweep(steps []driver.Result, w Workload, system string) []driver.Result {
	for i := range steps {
		steps[i].Phase, steps[i].Workload, steps[i].System = PhaseSweep, w.Name, system
	}
	if k := c.Knee(steps); k >= 0 {
		steps[k].Knee = true
	}
	return steps
}

// runSweep sweeps every selected workload and system; peers must be up
// for the peer systems.
func runSweep(ctx context.Context, cfg Config, peers *Peers, peerBin string, preloaded map[string]bool) ([]driver.Result, error) {
	sc := cfg.Sweep
	pr := cfg.Progress
	var (
		rows []driver.Result
		errs []error
	)
	for _, w := range sc.Workloads {
		for _, sys := range cfg.Systems {
			if ctx.Err() != nil {
				return rows, errors.Join(append(errs, ctx.Err())...)
			}
			fmt.Fprintf(pr, "sweep %s — %s: open loop at %v ops/s until p99 >= %g ms\n", w.Name, sys, sc.Rates, sc.P99LimitMs)
			steps, err := sweepSystem(ctx, cfg, w, sys, peers, peerBin, preloaded)
			steps = sc.markSweep(steps, w, sys)
			for _, s := range steps {
				knee := ""
				if s.Knee {
					knee = "  <- knee"
				}
				fmt.Fprintf(pr, "  sweep %s %s @ %g: %.0f ops/s, p99 %.3f ms, %d errors, %d dropped%s\n", w.Name, sys, s.TargetRate, s.OpsPerSec, s.P99Ms, s.Errors, s.Dropped, knee)
			}
			rows = append(rows, steps...)
			if err != nil {
				fmt.Fprintf(pr, "  sweep %s %s: FAILED: %v\n", w.Name, sys, err)
				errs = append(errs, fmt.Errorf("sweep %s %s: %w", w.Name, sys, err))
			}
		}
	}
	return rows, errors.Join(errs...)
}

// sweepSystem runs one system's steps, stopping after the first that
// fails.
func sweepSystem(ctx context.Context, cfg Config, w Workload, sys string, peers *Peers, peerBin string, preloaded map[string]bool) (steps []driver.Result, err error) {
	sc := cfg.Sweep
	// Each step is run by a callback so that the kvdb cluster (started
	// once per system and workload) stays up across steps.
	var step func(d driver.Config, first bool) (driver.Result, error)
	switch sys {
	case SystemKVDB, SystemKVDBRESP:
		k, err := startKVDB(ctx, cfg, w.Preset, 0)
		if err != nil {
			return nil, err
		}
		defer func() { err = errors.Join(err, k.close()) }()
		var t *KVDBTarget
		step = func(d driver.Config, first bool) (driver.Result, error) {
			if sys == SystemKVDBRESP {
				rows, err := driveKVDBRESP(ctx, cfg, k, w, []driver.Config{d}, peerBin, first, false)
				if len(rows) == 0 {
					return driver.Result{}, err
				}
				return rows[0], err
			}
			if first {
				// One target (and connection pool) for every step.
				t = NewKVDBTarget(leaderFirst(k.info.URLs, k.info.Leader), k.leaderless(), d.Concurrency)
				if err := t.WaitReady(ctx, 30*time.Second); err != nil {
					return driver.Result{}, err
				}
				if err := driver.Preload(ctx, t.Op, d.Keys, d.ValueSize, min(d.Concurrency, 64), d.OpTimeout); err != nil {
					return driver.Result{}, err
				}
			}
			return driver.Run(ctx, d, t.Op)
		}
		defer func() {
			if t != nil {
				t.Close()
			}
		}()
	default:
		step = func(d driver.Config, _ bool) (driver.Result, error) {
			server := serverOf(sys)
			res, err := PeerRun{
				Bin: peerBin, System: sys, Workload: w.Name, Drive: d, Env: peers.Env,
				Preload: !preloaded[server], EtcdSerializable: cfg.EtcdSerializable, Progress: discardProgress{},
			}.Run(ctx)
			if err == nil {
				preloaded[server] = true
			}
			return res, err
		}
	}
	// A priming step at the lowest rate, not recorded: the preload, a
	// fresh process's first connections and heap growth stay out of the
	// first measured step.
	prime := sc.sweepDrive(cfg.Drive, w, sc.Rates[0], cfg.OverrideWriteRatio)
	prime.Duration, prime.Warmup = time.Second, 0
	prime.SetDefaults()
	if _, err := step(prime, true); err != nil {
		return nil, fmt.Errorf("priming step: %w", err)
	}
	failed := 0
	for _, rate := range sc.Rates {
		d := sc.sweepDrive(cfg.Drive, w, rate, cfg.OverrideWriteRatio)
		res, err := step(d, false)
		if err == nil && res.Mode != "" && !sc.stepPasses(res) {
			// Once more: a stall of the shared machine (another process's
			// burst) can fail a step that the system passes.
			first := res
			res, err = step(d, false)
			res.Notes = strings.TrimSpace(fmt.Sprintf("%s (rerun: the first attempt did %.0f ops/s, p99 %.3f ms)", res.Notes, first.OpsPerSec, first.P99Ms))
		}
		if res.Mode != "" {
			steps = append(steps, res)
		}
		if err != nil {
			return steps, err
		}
		if failed++; sc.stepPasses(res) {
			failed = 0
		}
		if failed >= sweepStopAfter {
			break
		}
	}
	return steps, nil
}

// discardProgress drops a peer client's progress lines (a sweep prints
// one summary line per step instead).
type discardProgress struct{}

func (discardProgress) Write(p []byte) (int, error) { return len(p), nil }

// leaderFirst returns urls with the leader's first.
func leaderFirst(urls []string, leader int) []string {
	out := slices.Clone(urls)
	if leader > 0 && leader < len(out) {
		out[0], out[leader] = out[leader], out[0]
	}
	return out
}

// sweepMarkdown renders the sweep: per workload a table of rate → p99 per
// system (— where the system was not run at that rate, * where the step
// failed the limits), and the knees.
func sweepMarkdown(rows []driver.Result, sc SweepConfig) string {
	var sweep []driver.Result
	for _, r := range rows {
		if r.Phase == PhaseSweep {
			sweep = append(sweep, r)
		}
	}
	if len(sweep) == 0 {
		return ""
	}
	var b strings.Builder
	fmt.Fprintf(&b, "\n## Rate sweep (open loop)\n\n")
	fmt.Fprintf(&b, "Each step: open loop at the target rate, %s measured (longer where needed for %d requests) after %s warm-up, at most %d requests in flight, latency from the intended start. "+
		"p99 in ms per target rate; a step passes when p99 < %g ms, at least %.0f%% of the target is achieved and at most %.1f%% of the operations fail "+
		"(`*` marks a step that did not; a step that does not is run once more and the rerun counts, so that a stall of the shared machine does not end a sweep; the sweep stops after %d such steps in a row). The **knee** is the highest rate whose step passed.\n",
		sc.Duration, sc.MinRequests, sc.Warmup, sc.InFlight, sc.P99LimitMs, sc.MinAchieved*100, sc.MaxErrorRate*100, sweepStopAfter)
	var wls, systems []string
	var rates []float64
	for _, r := range sweep {
		if !slices.Contains(wls, r.Workload) {
			wls = append(wls, r.Workload)
		}
		if !slices.Contains(systems, r.System) {
			systems = append(systems, r.System)
		}
		if !slices.Contains(rates, r.TargetRate) {
			rates = append(rates, r.TargetRate)
		}
	}
	slices.Sort(rates)
	order := Systems()
	slices.SortStableFunc(systems, func(a, b string) int { return slices.Index(order, a) - slices.Index(order, b) })
	for _, w := range wls {
		fmt.Fprintf(&b, "\n### %s\n\n", w)
		writeRow(&b, append([]string{"rate (ops/s)"}, systems...))
		writeRow(&b, append([]string{"---:"}, slices.Repeat([]string{"---:"}, len(systems))...))
		for _, rate := range rates {
			cells := []string{fmt.Sprintf("%.0f", rate)}
			any := false
			for _, s := range systems {
				cell := "—"
				for _, r := range sweep {
					if r.Workload == w && r.System == s && r.TargetRate == rate {
						cell = ms(r.P99Ms)
						if !sc.stepPasses(r) {
							cell += fmt.Sprintf(" * (%.0f ops/s)", r.OpsPerSec)
						}
						if r.Knee {
							cell = "**" + cell + "**"
						}
						any = true
					}
				}
				cells = append(cells, cell)
			}
			if any {
				writeRow(&b, cells)
			}
		}
		cells := []string{"**knee**"}
		for _, s := range systems {
			cell := "below the lowest rate"
			for _, r := range sweep {
				if r.Workload == w && r.System == s && r.Knee {
					cell = fmt.Sprintf("**%.0f**", r.TargetRate)
					if r.TargetRate >= sc.Rates[len(sc.Rates)-1] {
						cell = fmt.Sprintf("**≥ %.0f** (the highest rate tried)", r.TargetRate)
					}
				}
			}
			cells = append(cells, cell)
		}
		writeRow(&b, cells)
		fmt.Fprintf(&b, "\n![p99 against the target rate, %s](%s.svg)\n", w, sweepChart(w))
	}
	return b.String()
}
