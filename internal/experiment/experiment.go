// Package experiment runs kvdb's main job: every replication config at
// every write ratio on embedded clusters, one load run each, and then the
// report. It also collects a results folder back into report form, for
// `kvdb report`.
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
	"strconv"
	"strings"
	"time"

	"github.com/kvdb/kvdb/internal/check"
	"github.com/kvdb/kvdb/internal/cluster"
	"github.com/kvdb/kvdb/internal/load"
	"github.com/kvdb/kvdb/internal/node"
	"github.com/kvdb/kvdb/internal/replication"
	"github.com/kvdb/kvdb/internal/report"
)

// Config configures an experiment.
type Config struct {
	// Configs are the cluster presets to run (default w5r1, w1r5, w3r3,
	// leaderless, leaderless-w3r3).
	Configs []string
	// Ratios are the write ratios (default 0.01, 0.1, 0.5, 0.9).
	Ratios []float64
	// Delays is the delay profile (default paper).
	Delays replication.Delays
	// Duration is each load run's length (default 25s; Quick: 4s).
	Duration time.Duration
	// QPS is each run's target rate (default 40).
	QPS float64
	// Seed seeds every run's generator (run i uses Seed+i).
	Seed uint64
	// CheckTimeout bounds the linearizability check of one run (default
	// 20s; Quick: 5s).
	CheckTimeout time.Duration
	// OutDir receives the results (default results/<timestamp>).
	OutDir string
	// Quick shortens the runs so the whole matrix takes under two minutes.
	Quick bool
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
	defaultConfigs = []string{"w5r1", "w1r5", "w3r3", "leaderless", "leaderless-w3r3"}
	defaultRatios  = []float64{0.01, 0.1, 0.5, 0.9}
)

// SetDefaults fills zero fields.
func (c *Config) SetDefaults(now time.Time) {
	if len(c.Configs) == 0 {
		c.Configs = append([]string(nil), defaultConfigs...)
	}
	if len(c.Ratios) == 0 {
		c.Ratios = append([]float64(nil), defaultRatios...)
	}
	if c.Delays.Name == "" {
		c.Delays = replication.PaperDelays()
	}
	if c.Duration == 0 {
		c.Duration = 25 * time.Second
		if c.Quick {
			c.Duration = 4 * time.Second
		}
	}
	if c.QPS == 0 {
		c.QPS = 40
	}
	if c.Seed == 0 {
		c.Seed = 1
	}
	if c.CheckTimeout == 0 {
		c.CheckTimeout = 20 * time.Second
		if c.Quick {
			c.CheckTimeout = 5 * time.Second
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
	for _, r := range c.Ratios {
		if r < 0 || r > 1 {
			errs = append(errs, fmt.Errorf("write ratio %g outside 0..1", r))
		}
	}
	if c.Duration <= 0 || c.QPS <= 0 || c.CheckTimeout <= 0 {
		errs = append(errs, errors.New("duration, qps and check timeout must be positive"))
	}
	return errors.Join(errs...)
}

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
		Delays: cfg.Delays.String(), DurationS: cfg.Duration.Seconds(), QPS: cfg.QPS}
	if err := writeJSON(filepath.Join(cfg.OutDir, ManifestFile), man); err != nil {
		return nil, nil, err
	}
	p := newProgress(cfg.Progress, cfg.Terminal, len(cfg.Configs)*len(cfg.Ratios), cfg.Duration)
	fmt.Fprintf(cfg.Progress, "kvdb experiment: %d configs x %d write ratios, %s each at %g QPS, delays %s -> %s\n",
		len(cfg.Configs), len(cfg.Ratios), cfg.Duration, cfg.QPS, cfg.Delays, cfg.OutDir)
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

// runConfig starts one embedded cluster and runs every ratio against it.
func runConfig(ctx context.Context, cfg *Config, preset string, p *progress, i *int) error {
	c, err := cluster.Start(ctx, cluster.Config{Preset: preset, Node: node.Config{Replication: replication.Config{Delays: cfg.Delays}, Logger: cfg.Logger}})
	if err != nil {
		return err
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = c.Close(sctx)
	}()
	mode := load.ModeLeader
	if c.Preset().Mode == replication.Leaderless {
		mode = load.ModeLeaderless
	}
	for _, ratio := range cfg.Ratios {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		p.start(preset, ratio)
		lc := load.DefaultConfig()
		lc.Mode, lc.Nodes, lc.WriteRatio = mode, c.URLs(), ratio
		lc.Duration, lc.QPS, lc.Seed = cfg.Duration, cfg.QPS, cfg.Seed+uint64(*i)
		lc.OutDir = filepath.Join(cfg.OutDir, runDir(preset, ratio))
		lc.Check = check.Config{Timeout: cfg.CheckTimeout}
		lc.RunID = strings.ReplaceAll(runDir(preset, ratio), ".", "_")
		lc.Progress, lc.Terminal = p.w, cfg.Terminal
		sum, err := load.Run(ctx, lc)
		*i++
		if err != nil && sum == nil {
			return fmt.Errorf("%s at %s writes: %w", preset, pctLabel(ratio), err)
		}
		p.finish(sum)
		waitQuiet(ctx, c)
	}
	return nil
}

// waitQuiet waits (bounded) until no node has background replication in
// flight, so one run's tail does not leak into the next.
func waitQuiet(ctx context.Context, c *cluster.Cluster) {
	deadline := time.Now().Add(10 * time.Second)
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
