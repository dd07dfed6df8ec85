//go:build !kvdb_node

package cli

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/kvdb/kvdb/internal/experiment"
	"github.com/kvdb/kvdb/internal/replication"
	"github.com/kvdb/kvdb/internal/report"
)

// Experiment runs every config at every write ratio and under every fault
// scenario, and builds the report.
func Experiment(ctx context.Context, args []string, env Env) int {
	fs := newFlagSet("experiment", "[flags]", env.Stderr, false)
	var (
		cfg        experiment.Config
		configs    string
		ratios     string
		scenarios  string
		faultRatio float64
		delays     = replication.PaperDelays()
		seed       uint64
	)
	fs.StringVar(&configs, "configs", "", "comma-separated configs (default "+strings.Join(experiment.DefaultConfigs(), ",")+")")
	fs.StringVar(&ratios, "ratios", "", "comma-separated write ratios in percent of the steady runs (default 1,10,50,90; 10,50 with --quick)")
	fs.StringVar(&scenarios, "scenarios", "", "comma-separated scenarios: "+strings.Join(experiment.Scenarios, ", ")+" (default all; steady,kill-leader with --quick)")
	fs.Float64Var(&faultRatio, "fault-ratio", 50, "write ratio in percent of the fault runs")
	fs.Var((*delaysValue)(&delays), "delays", "delay `profile`: paper, none, paper*F or gap=D,apply=D,read=D[,sequential=BOOL]")
	fs.DurationVar(&cfg.Duration, "duration", 0, "length of each steady run (default 7s; 1.5s with --quick, 30s with --full)")
	fs.DurationVar(&cfg.FaultDuration, "fault-duration", 0, "length of each fault run (default 8s; 4s with --quick, 30s with --full)")
	fs.DurationVar(&cfg.FaultAt, "fault-at", 0, "when the fault starts in a fault run (default 2s; 1s with --quick, 8s with --full)")
	fs.DurationVar(&cfg.HealAt, "heal-at", 0, "when the fault is healed (default 5s; 2.5s with --quick, 18s with --full)")
	fs.Float64Var(&cfg.QPS, "qps", 200, "target requests per second of each run")
	fs.DurationVar(&cfg.RequestTimeout, "request-timeout", 0, "bound on each request of the load (default 2.5s)")
	readRepair := true
	fs.BoolVar(&readRepair, "read-repair", true, "read repair on the nodes (off: R>1 reads leave the replicas they saw behind as they were, as PBS's model assumes)")
	fs.IntVar(&cfg.ProbeReads, "probe-reads", 0, "reads of each staleness probe, one per config with R+W<=N (default 14400; 2400 with --quick, 48000 with --full; -1: no probes)")
	fs.BoolVar(&cfg.Quick, "quick", false, "a small matrix of short runs, in under two minutes")
	fs.BoolVar(&cfg.Full, "full", false, "longer, steadier runs (30s each)")
	fs.StringVar(&cfg.OutDir, "out", "", "results folder (default results/<timestamp>)")
	fs.Uint64Var(&seed, "seed", 1, "random seed of the first run (run i uses seed+i)")
	fs.DurationVar(&cfg.CheckTimeout, "check-timeout", 0, "bound on each run's linearizability check (default 10s; 5s with --quick, 30s with --full)")
	if err := parseFlags(fs, args, nil); err != nil {
		return usageExit(fs, env.Stderr, err)
	}
	if faultRatio < 0 || faultRatio > 100 {
		return usageExit(fs, env.Stderr, fmt.Errorf("fault-ratio %g: want a percentage 0..100", faultRatio))
	}
	cfg.FaultRatio = faultRatio / 100
	cfg.DisableReadRepair = !readRepair
	cfg.Scenarios = splitList(scenarios)
	var err error
	if ratios != "" {
		if cfg.Ratios, err = parseRatios(ratios); err != nil {
			return usageExit(fs, env.Stderr, err)
		}
	}
	cfg.Configs = splitList(configs)
	cfg.Delays, cfg.Seed = delays, seed
	cfg.Progress, cfg.Terminal = env.Stdout, env.IsTerminal
	_, out, err := experiment.Run(ctx, cfg)
	if out != nil {
		fmt.Fprintf(env.Stdout, "\nreport: %s\n        %s\ncharts: %s\n", out.HTML, out.PDF, out.ChartDir)
	}
	if errors.Is(err, experiment.ErrInvalidConfig) {
		return usageExit(fs, env.Stderr, err)
	}
	if err != nil {
		fmt.Fprintf(env.Stderr, "kvdb experiment: %v\n", indent(err))
		return 1
	}
	return 0
}

// Report rebuilds the report from a results folder.
func Report(ctx context.Context, args []string, env Env) int {
	fs := newFlagSet("report", "DIR", env.Stderr, false)
	if err := fs.Parse(args); err != nil {
		return usageExit(fs, env.Stderr, err)
	}
	if fs.NArg() != 1 {
		return usageExit(fs, env.Stderr, errors.New("want exactly one results folder"))
	}
	start := time.Now()
	res, err := experiment.Collect(fs.Arg(0))
	if err != nil {
		fmt.Fprintf(env.Stderr, "kvdb report: %v\n", err)
		return 1
	}
	out, err := report.Build(res, fs.Arg(0))
	if err != nil {
		fmt.Fprintf(env.Stderr, "kvdb report: %v\n", err)
		return 1
	}
	fmt.Fprintf(env.Stdout, "report of %d runs in %s: %s, %s, charts in %s\n", len(res.Runs), time.Since(start).Round(time.Millisecond), out.HTML, out.PDF, out.ChartDir)
	return 0
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// parseRatios reads percentages: "1,10,50,90" -> 0.01, 0.1, 0.5, 0.9.
func parseRatios(s string) ([]float64, error) {
	var out []float64
	for _, p := range splitList(s) {
		v, err := strconv.ParseFloat(strings.TrimSuffix(p, "%"), 64)
		if err != nil || v < 0 || v > 100 {
			return nil, fmt.Errorf("write ratio %q: want a percentage 0..100", p)
		}
		out = append(out, v/100)
	}
	if len(out) == 0 {
		return nil, errors.New("no write ratios")
	}
	return out, nil
}
