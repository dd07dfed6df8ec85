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

// Experiment runs every config at every write ratio and builds the report.
func Experiment(ctx context.Context, args []string, env Env) int {
	fs := newFlagSet("experiment", "[flags]", env.Stderr, false)
	var (
		cfg     experiment.Config
		configs = "w5r1,w1r5,w3r3,leaderless,leaderless-w3r3"
		ratios  = "1,10,50,90"
		delays  = replication.PaperDelays()
		seed    uint64
	)
	fs.StringVar(&configs, "configs", configs, "comma-separated configs: w5r1, w1r5, w3r3, leaderless, leaderless-w3r3")
	fs.StringVar(&ratios, "ratios", ratios, "comma-separated write ratios in percent")
	fs.Var((*delaysValue)(&delays), "delays", "delay `profile`: paper, none, paper*F or gap=D,apply=D,read=D[,sequential=BOOL]")
	fs.DurationVar(&cfg.Duration, "duration", 0, "length of each load run (default 25s, 4s with --quick)")
	fs.Float64Var(&cfg.QPS, "qps", 40, "target requests per second of each run")
	fs.BoolVar(&cfg.Quick, "quick", false, "short runs: the whole matrix in under two minutes")
	fs.StringVar(&cfg.OutDir, "out", "", "results folder (default results/<timestamp>)")
	fs.Uint64Var(&seed, "seed", 1, "random seed of the first run (run i uses seed+i)")
	fs.DurationVar(&cfg.CheckTimeout, "check-timeout", 0, "bound on each run's linearizability check (default 20s, 5s with --quick)")
	if err := parseFlags(fs, args, nil); err != nil {
		return usageExit(fs, env.Stderr, err)
	}
	var err error
	if cfg.Ratios, err = parseRatios(ratios); err != nil {
		return usageExit(fs, env.Stderr, err)
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
