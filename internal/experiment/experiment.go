// Package experiment runs kvdb's main job: every replication config at
// every write ratio on embedded clusters, and under each fault scenario
// (kill a follower or node, kill the leader, partition, pause: see
// scenario.go), one load run each, and then the report. Per run it
// measures, from the history and a final read of every node's copies, the
// write-unavailability window, errors over time, acknowledged writes lost;
// per config the staleness curve, measured and predicted with PBS from the
// hops the nodes measured (staleness.go). It also collects a results
// folder back into report form, for `kvdb report`.
package experiment

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/kvdb/kvdb/internal/check"
	"github.com/kvdb/kvdb/internal/cluster"
	"github.com/kvdb/kvdb/internal/history"
	"github.com/kvdb/kvdb/internal/load"
	"github.com/kvdb/kvdb/internal/node"
	"github.com/kvdb/kvdb/internal/replication"
	"github.com/kvdb/kvdb/internal/report"
	"github.com/kvdb/kvdb/internal/transport"
)

// Config configures an experiment: every config in Configs runs steady
// (no fault) at every write ratio in Ratios, and every fault scenario in
// Scenarios at FaultRatio.
//
// The default durations and rates fit the whole default matrix — 8
// configs x (4 steady ratios + 4 fault scenarios) = 64 runs, and a
// staleness probe for each of the 3 configs with R+W<=N — in about 11
// minutes on a 2-core machine (10 m 48 s measured; under the 12 the issue
// allows), and keep each figure meaningful:
//
//   - 200 QPS: the paper profile's delays are sleeps, so the cluster is far
//     from saturated (a few percent of a core), and the rate buys samples.
//   - steady runs of 7 s: 1,400 requests each (14 writes at 1%, the ratio
//     that measures reads). Latency percentiles to p99 hold steady at
//     that count; p99.9 wants --full.
//   - staleness probes (probe.go) of 14,400 reads (R=1 configs, 12 s) or
//     7,200 (R>1, 24 s): about 1,200 or 600 reads in each of the 12
//     buckets of t, so the measured curve is within about one point of the
//     truth in each bucket (the RMSE's sampling floor, rmse_sampling, is
//     about 1 point) and a PBS gap of 2 points is visible. The steady
//     runs' reads (about 3,500 per config, most of them within a few
//     milliseconds of a write) could not show that: their floor was 4.
//   - fault runs of 8 s at 50% writes (100 writes/s: 25 per 250 ms bucket
//     of the timeline): 2 s of steady load, the fault at 2 s, healed at 5 s
//     — longer than an election (raft's 0.5 s timeouts elect in about 1 s)
//     plus a new leader's catch-up, so a failover completes inside the
//     fault — then 3 s to show the recovery: a restarted node catches up
//     and W=5 writes, 1.2 s each under the paper profile, are acknowledged
//     again.
//   - a 2.5 s request timeout: above the slowest healthy write (1.2 s at
//     W=5) with room, and short enough that a client gives up on a paused
//     node and tries another within the fault. A paused leader's writes
//     are therefore unavailable for at least the timeout, whatever the
//     cluster does meanwhile: that is what a client with this timeout sees.
//
// Quick (under 2 minutes): steady at 10% and 50% for 1.5 s, only
// kill-leader, 4 s with the fault from 1 s to 2.5 s, and probes of 2,400
// reads. Full: 30 s steady runs and 30 s fault runs (fault from 8 s to
// 18 s) for steadier tails, and probes of 48,000 reads.
type Config struct {
	// Configs are the cluster presets to run (default w5r1, w1r5, w3r3,
	// w1r1, leaderless, leaderless-w3r3, leaderless-w2r2,
	// leaderless-w1r1).
	Configs []string
	// Ratios are the steady runs' write ratios (default 0.01, 0.1, 0.5,
	// 0.9; Quick: 0.1, 0.5).
	Ratios []float64
	// Scenarios are the scenarios to run: steady (at every ratio) and the
	// faults (at FaultRatio) — kill-follower, kill-leader, partition,
	// pause (default all; Quick: steady, kill-leader).
	Scenarios []string
	// FaultRatio is the fault runs' write ratio (default 0.5).
	FaultRatio float64
	// Delays is the delay profile (default paper).
	Delays replication.Delays
	// DisableReadRepair turns the nodes' read repair off (R>1 reads then
	// leave the replicas they saw behind as they were): the setting under
	// which PBS's WARS model, which has no read repair, describes R>1
	// partial quorums.
	DisableReadRepair bool
	// Duration is each steady run's length (default 7s; Quick 1.5s; Full
	// 30s).
	Duration time.Duration
	// FaultDuration is each fault run's length (default 8s; Quick 4s;
	// Full 30s); the fault begins FaultAt into it (default 2s; Quick 1s;
	// Full 8s) and is healed at HealAt (default 5s; Quick 2.5s; Full 18s).
	FaultDuration, FaultAt, HealAt time.Duration
	// QPS is each run's target rate (default 200).
	QPS float64
	// RequestTimeout bounds each request of the load (default 2.5s).
	RequestTimeout time.Duration
	// SettleTimeout bounds the wait, after each run, for the cluster to
	// settle before every key is read from every node (default 5s; Quick
	// 2s; Full 10s).
	SettleTimeout time.Duration
	// Seed seeds every run's generator (run i uses Seed+i).
	Seed uint64
	// CheckTimeout bounds the linearizability check of one run (default
	// 10s; Quick 5s; Full 30s).
	CheckTimeout time.Duration
	// ProbeReads is how many reads each staleness probe places (probe.go):
	// one probe run per config whose quorums need not overlap (R+W<=N)
	// measures its staleness curve (default 14,400: 1,200 per bucket of t,
	// which leaves a sampling error of at most 1.4 points per bucket;
	// Quick 2,400; Full 48,000). Negative: no probes (the curve then comes
	// from the steady runs' reads).
	ProbeReads int
	// OutDir receives the results (default results/<timestamp>).
	OutDir string
	// Quick shortens the matrix and the runs to under two minutes; Full
	// lengthens the runs (both only change the defaults of zero fields).
	Quick, Full bool
	// Progress receives the progress display (default: none); Terminal
	// redraws in place.
	Progress io.Writer
	Terminal bool
	// Logger receives the embedded nodes' logs (default: discard).
	Logger *slog.Logger
}

// ErrInvalidConfig wraps configuration errors (bad usage).
var ErrInvalidConfig = errors.New("invalid experiment configuration")

// DefaultConfigs and DefaultRatios are the matrix (docs/design.md, "The experiment").
var (
	defaultConfigs = []string{"w5r1", "w1r5", "w3r3", "w1r1", "leaderless", "leaderless-w3r3", "leaderless-w2r2", "leaderless-w1r1"}
	defaultRatios  = []float64{0.01, 0.1, 0.5, 0.9}
)

// DefaultConfigs returns the default matrix's configs.
func DefaultConfigs() []string { return slices.Clone(defaultConfigs) }

// SetDefaults fills zero fields.
func (c *Config) SetDefaults(now time.Time) {
	pick := func(normal, quick, full time.Duration) time.Duration {
		switch {
		case c.Quick:
			return quick
		case c.Full:
			return full
		}
		return normal
	}
	if len(c.Configs) == 0 {
		c.Configs = DefaultConfigs()
	}
	if len(c.Ratios) == 0 {
		c.Ratios = slices.Clone(defaultRatios)
		if c.Quick {
			c.Ratios = []float64{0.1, 0.5}
		}
	}
	if len(c.Scenarios) == 0 {
		c.Scenarios = slices.Clone(Scenarios)
		if c.Quick {
			c.Scenarios = []string{ScenarioSteady, ScenarioKillLeader}
		}
	}
	if c.FaultRatio == 0 {
		c.FaultRatio = 0.5
	}
	if c.Delays.Name == "" {
		c.Delays = replication.PaperDelays()
	}
	if c.Duration == 0 {
		c.Duration = pick(7*time.Second, 1500*time.Millisecond, 30*time.Second)
	}
	if c.FaultDuration == 0 {
		c.FaultDuration = pick(8*time.Second, 4*time.Second, 30*time.Second)
	}
	if c.FaultAt == 0 {
		c.FaultAt = pick(2*time.Second, time.Second, 8*time.Second)
	}
	if c.HealAt == 0 {
		c.HealAt = pick(5*time.Second, 2500*time.Millisecond, 18*time.Second)
	}
	if c.QPS == 0 {
		c.QPS = 200
	}
	if c.RequestTimeout == 0 {
		c.RequestTimeout = 2500 * time.Millisecond
	}
	if c.SettleTimeout == 0 {
		c.SettleTimeout = pick(5*time.Second, 2*time.Second, 10*time.Second)
	}
	if c.Seed == 0 {
		c.Seed = 1
	}
	if c.CheckTimeout == 0 {
		c.CheckTimeout = pick(10*time.Second, 5*time.Second, 30*time.Second)
	}
	if c.ProbeReads == 0 {
		c.ProbeReads = 14_400
		switch {
		case c.Quick:
			c.ProbeReads = 2_400
		case c.Full:
			c.ProbeReads = 48_000
		}
	}
	if c.OutDir == "" {
		c.OutDir = filepath.Join("results", now.Format("20060102-150405"))
	}
	if c.Progress == nil {
		c.Progress = io.Discard
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// Validate reports every invalid setting.
func (c *Config) Validate() error {
	var errs []error
	for _, name := range c.Configs {
		if _, err := cluster.LookupPreset(name); err != nil {
			errs = append(errs, err)
		}
	}
	for _, r := range append(slices.Clone(c.Ratios), c.FaultRatio) {
		if r < 0 || r > 1 {
			errs = append(errs, fmt.Errorf("write ratio %g outside 0..1", r))
		}
	}
	for _, s := range c.Scenarios {
		if !slices.Contains(Scenarios, s) {
			errs = append(errs, fmt.Errorf("unknown scenario %q: want one of %s", s, strings.Join(Scenarios, ", ")))
		}
	}
	if c.Quick && c.Full {
		errs = append(errs, errors.New("quick and full exclude each other"))
	}
	if c.Duration <= 0 || c.QPS <= 0 || c.CheckTimeout <= 0 || c.RequestTimeout <= 0 || c.SettleTimeout <= 0 {
		errs = append(errs, errors.New("duration, qps, request timeout, settle timeout and check timeout must be positive"))
	}
	if c.hasFaults() && !(c.FaultAt > 0 && c.FaultAt < c.HealAt && c.HealAt < c.FaultDuration) {
		errs = append(errs, fmt.Errorf("fault at %s, healed at %s, in runs of %s: want 0 < fault < heal < run length", c.FaultAt, c.HealAt, c.FaultDuration))
	}
	return errors.Join(errs...)
}

func (c *Config) hasFaults() bool {
	return slices.ContainsFunc(c.Scenarios, func(s string) bool { return s != ScenarioSteady })
}

// runSpec is one run of the matrix.
type runSpec struct {
	preset, scenario string
	ratio            float64
}

// dir names the run's folder: "w5r1-w10" for steady 10% writes,
// "w5r1-kill-leader-w50" for a fault run.
func (r runSpec) dir() string {
	if r.scenario == ScenarioSteady {
		return runDir(r.preset, r.ratio)
	}
	return runDir(r.preset+"-"+r.scenario, r.ratio)
}

func (r runSpec) label() string {
	if r.scenario == scenarioProbe {
		return r.preset + " staleness probe"
	}
	if r.scenario == ScenarioSteady {
		return r.preset + " at " + pctLabel(r.ratio) + " writes"
	}
	return r.preset + " " + r.scenario + " at " + pctLabel(r.ratio) + " writes"
}

// matrix lists the runs of one config: steady at every ratio, then each
// fault scenario.
func (c *Config) matrix(preset string) []runSpec {
	var out []runSpec
	if slices.Contains(c.Scenarios, ScenarioSteady) {
		for _, r := range c.Ratios {
			out = append(out, runSpec{preset, ScenarioSteady, r})
		}
	}
	for _, s := range Scenarios[1:] {
		if slices.Contains(c.Scenarios, s) {
			out = append(out, runSpec{preset, s, c.FaultRatio})
		}
	}
	if p, err := cluster.LookupPreset(preset); err == nil && c.ProbeReads > 0 && probed(p, cluster.DefaultConfig().N) {
		out = append(out, runSpec{preset: preset, scenario: scenarioProbe})
	}
	return out
}

// scenarioProbe marks a config's staleness probe in the matrix (it is no
// load run: see probe.go).
const scenarioProbe = "staleness-probe"

// runDir names one run's folder: "w5r1-w10" for 10% writes.
func runDir(preset string, ratio float64) string {
	return preset + "-w" + strconv.FormatFloat(ratio*100, 'g', 4, 64)
}

// Run runs the whole matrix and builds the report. It returns the results
// collected and the report's files; an interrupted experiment still
// reports the runs it finished.
func Run(ctx context.Context, cfg Config) (*report.Results, *report.Output, error) {
	cfg.SetDefaults(time.Now())
	if err := cfg.Validate(); err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	if err := os.MkdirAll(cfg.OutDir, 0o755); err != nil {
		return nil, nil, err
	}
	man := Manifest{Started: time.Now().Format(time.RFC3339), Configs: cfg.Configs, Ratios: cfg.Ratios,
		Delays: cfg.Delays.String(), DurationS: cfg.Duration.Seconds(), QPS: cfg.QPS,
		Scenarios: cfg.Scenarios, FaultRatio: cfg.FaultRatio, FaultDurationS: cfg.FaultDuration.Seconds(),
		FaultAtS: cfg.FaultAt.Seconds(), HealAtS: cfg.HealAt.Seconds(), RequestTimeoutS: cfg.RequestTimeout.Seconds()}
	if err := writeJSON(filepath.Join(cfg.OutDir, ManifestFile), man); err != nil {
		return nil, nil, err
	}
	var specs []runSpec
	var planned time.Duration
	for _, preset := range cfg.Configs {
		for _, s := range cfg.matrix(preset) {
			specs = append(specs, s)
			planned += cfg.runLength(s)
		}
	}
	p := newProgress(cfg.Progress, cfg.Terminal, len(specs), planned/time.Duration(max(len(specs), 1)))
	fmt.Fprintf(cfg.Progress, "kvdb experiment: %d configs x (%d steady write ratios, %ds each + %d fault scenarios at %s writes, %ds each) = %d runs at %g QPS, delays %s -> %s\n",
		len(cfg.Configs), len(cfg.Ratios)*btoi(slices.Contains(cfg.Scenarios, ScenarioSteady)), int(cfg.Duration.Seconds()),
		len(cfg.matrix("x"))-len(cfg.Ratios)*btoi(slices.Contains(cfg.Scenarios, ScenarioSteady)), pctLabel(cfg.FaultRatio), int(cfg.FaultDuration.Seconds()),
		len(specs), cfg.QPS, cfg.Delays, cfg.OutDir)
	var runErr error
	i := 0
	for _, preset := range cfg.Configs {
		if err := runConfig(ctx, &cfg, preset, p, &i); err != nil {
			runErr = err
			break
		}
	}
	p.done()
	res, err := Collect(cfg.OutDir)
	if err != nil {
		return nil, nil, errors.Join(runErr, err)
	}
	out, err := report.Build(res, cfg.OutDir)
	return res, out, errors.Join(runErr, err)
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// runLength is a run's planned load time.
func (c *Config) runLength(s runSpec) time.Duration {
	if s.scenario == scenarioProbe {
		p, _ := cluster.LookupPreset(s.preset)
		ps := c.probeFor(p, cluster.DefaultConfig().N)
		return ps.duration + ps.window
	}
	if s.scenario == ScenarioSteady {
		return c.Duration
	}
	return c.FaultDuration
}

// startCluster starts an embedded cluster of preset with fault injection.
func startCluster(ctx context.Context, cfg *Config, preset string) (*cluster.Cluster, *transport.Faults, error) {
	faults := transport.NewFaults()
	c, err := cluster.Start(ctx, cluster.Config{Preset: preset, Faults: faults,
		Node: node.Config{Replication: replication.Config{Delays: cfg.Delays, DisableReadRepair: cfg.DisableReadRepair}, Logger: cfg.Logger}})
	return c, faults, err
}

func closeCluster(c *cluster.Cluster) {
	sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_ = c.Close(sctx)
}

// runConfig runs one config's steady runs on one embedded cluster, then
// each fault run on a fresh one (a fault changes who leads and what each
// node holds).
func runConfig(ctx context.Context, cfg *Config, preset string, p *progress, i *int) error {
	var steady, faulty []runSpec
	probe := false
	for _, s := range cfg.matrix(preset) {
		switch s.scenario {
		case ScenarioSteady:
			steady = append(steady, s)
		case scenarioProbe:
			probe = true
		default:
			faulty = append(faulty, s)
		}
	}
	if len(steady) > 0 {
		c, faults, err := startCluster(ctx, cfg, preset)
		if err != nil {
			return err
		}
		for _, s := range steady {
			if err := runOne(ctx, cfg, c, faults, s, p, i); err != nil {
				closeCluster(c)
				return err
			}
		}
		if probe {
			// The probe writes keys of its own: the steady runs' cluster
			// serves it as well as a fresh one, without another start.
			err = probeOne(ctx, cfg, c, p, i)
			probe = false
		}
		closeCluster(c)
		if err != nil {
			return err
		}
	}
	for _, s := range faulty {
		c, faults, err := startCluster(ctx, cfg, preset)
		if err != nil {
			return err
		}
		err = runOne(ctx, cfg, c, faults, s, p, i)
		closeCluster(c)
		if err != nil {
			return err
		}
	}
	if probe {
		c, _, err := startCluster(ctx, cfg, preset)
		if err != nil {
			return err
		}
		err = probeOne(ctx, cfg, c, p, i)
		closeCluster(c)
		return err
	}
	return nil
}

// probeOne runs the staleness probe of c's config, once its steady runs'
// background replication is done.
func probeOne(ctx context.Context, cfg *Config, c *cluster.Cluster, p *progress, i *int) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	p.start(c.Preset().Name + " staleness probe")
	waitQuiet(ctx, c, cfg.SettleTimeout)
	rec, err := runProbe(ctx, cfg, c)
	*i++
	if err != nil {
		return err
	}
	p.finishProbe(rec)
	return nil
}

// readFrom is where a preset's reads go: w1r1's to the followers (the
// replicas a leader's W=1 write reaches last: where its staleness shows),
// every other config's to all nodes.
func readFrom(p cluster.Preset) string {
	if p.Mode == replication.LeaderFollower && p.W == 1 && p.R == 1 {
		return load.ReadFollowers
	}
	return load.ReadAll
}

// runOne runs one load run against c (with its fault, if any), then lets
// the cluster settle and reads every acknowledged key from every node, and
// records the run's hop samples.
func runOne(ctx context.Context, cfg *Config, c *cluster.Cluster, faults *transport.Faults, s runSpec, p *progress, i *int) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	p.start(s.label())
	mode := load.ModeLeader
	if c.Preset().Mode == replication.Leaderless {
		mode = load.ModeLeaderless
	}
	lc := load.DefaultConfig()
	lc.Mode, lc.Nodes, lc.WriteRatio, lc.ReadFrom, lc.FollowLeader = mode, c.URLs(), s.ratio, readFrom(c.Preset()), true
	lc.Duration, lc.QPS, lc.Seed, lc.Timeout = cfg.runLength(s), cfg.QPS, cfg.Seed+uint64(*i), cfg.RequestTimeout
	lc.OutDir = filepath.Join(cfg.OutDir, s.dir())
	lc.Check = check.Config{Timeout: cfg.CheckTimeout}
	lc.RunID = strings.ReplaceAll(s.dir(), ".", "_")
	lc.Progress, lc.Terminal = p.w, cfg.Terminal
	var driver *faultDriver
	if s.scenario != ScenarioSteady {
		driver = newFaultDriver(c, faults, s.scenario, cfg.FaultAt, cfg.HealAt)
		lc.OnStart = driver.start
	}
	mark := markHops(c)
	sum, err := load.Run(ctx, lc)
	*i++
	rec := ScenarioRecord{Scenario: s.scenario}
	if driver != nil {
		rec = driver.finish()
	}
	rec.ReadRepairOff = cfg.DisableReadRepair
	if err != nil && sum == nil {
		return fmt.Errorf("%s: %w", s.label(), err)
	}
	if werr := writeJSON(filepath.Join(lc.OutDir, ScenarioFile), rec); werr != nil {
		return werr
	}
	ops, herr := history.ReadFile(filepath.Join(lc.OutDir, load.HistoryFile))
	if herr != nil {
		return herr
	}
	final := settleAndRead(ctx, c, ackedKeys(ops), cfg.SettleTimeout)
	if werr := writeJSON(filepath.Join(lc.OutDir, FinalFile), final); werr != nil {
		return werr
	}
	if werr := writeJSON(filepath.Join(lc.OutDir, HopsFile), collectHops(c, mark)); werr != nil {
		return werr
	}
	p.finish(sum, runFigures(ops, sum, rec, &final))
	return nil
}

// waitQuiet waits (at most bound) until no node has background replication
// in flight, so one run's tail does not leak into the next.
func waitQuiet(ctx context.Context, c *cluster.Cluster, bound time.Duration) {
	deadline := time.Now().Add(bound)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		busy := 0
		for _, n := range c.Nodes() {
			busy += n.Pending()
		}
		if busy == 0 {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func pctLabel(r float64) string { return strconv.FormatFloat(r*100, 'g', 4, 64) + "%" }

func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}
