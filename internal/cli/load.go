package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"strings"
	"time"

	"github.com/kvdb/kvdb/internal/load"
)

// Load runs the open-loop load tester against a running cluster and
// writes the history, summary and histograms into an output directory.
// Exit status: 0 when the run completed (whatever consistency it found),
// 1 when it could not run or was interrupted (partial results are still
// written), 2 for bad usage.
func Load(ctx context.Context, args []string, env Env) int {
	fs := newFlagSet("load", "[flags]", env.Stderr, false)
	cfg := load.DefaultConfig()
	cfg.Check.SetDefaults()
	check, logLevel := true, "warn"
	loadFlags(fs, &cfg, &check, &logLevel)
	if err := parseFlags(fs, args, nil); err != nil {
		return usageExit(fs, env.Stderr, err)
	}
	log, err := newLogger(env.Stderr, logLevel)
	if err != nil {
		return usageExit(fs, env.Stderr, err)
	}
	if cfg.Mode == "leader-follower" {
		cfg.Mode = load.ModeLeader
	}
	cfg.Check.SkipLinearizability = !check
	cfg.Logger, cfg.Progress, cfg.Terminal = log, env.Stdout, env.IsTerminal
	// Validate before SetDefaults, which would turn an explicit 0 (say
	// -qps 0) into the default instead of rejecting it.
	if err := cfg.Validate(); err != nil {
		return usageExit(fs, env.Stderr, err)
	}
	cfg.SetDefaults(time.Now())
	fmt.Fprintf(env.Stdout, "kvdb load: %s mode, %d nodes, %g QPS for %s, %.0f%% writes, reads from %s -> %s\n",
		cfg.Mode, len(cfg.Nodes), cfg.QPS, cfg.Duration, cfg.WriteRatio*100, cfg.ReadFrom, cfg.OutDir)
	sum, err := load.Run(ctx, cfg)
	if sum != nil {
		sum.WriteTable(env.Stdout)
		fmt.Fprintf(env.Stdout, "results: %s\n", cfg.OutDir)
	}
	switch {
	case errors.Is(err, load.ErrInvalidConfig):
		return usageExit(fs, env.Stderr, err)
	case err != nil:
		fmt.Fprintf(env.Stderr, "kvdb load: %v\n", err)
		return 1
	case sum.Interrupted:
		fmt.Fprintln(env.Stderr, "kvdb load: interrupted; partial results written")
		return 1
	}
	return 0
}

// loadFlags registers load's flags on fs, with cfg's values as defaults.
func loadFlags(fs *flag.FlagSet, cfg *load.Config, check *bool, logLevel *string) {
	fs.StringVar(&cfg.Mode, "mode", cfg.Mode, "leader (writes to the first node, the leader) or leaderless (writes to every node)")
	fs.Float64Var(&cfg.WriteRatio, "write-ratio", cfg.WriteRatio, "fraction of requests that are writes, 0..1")
	fs.Float64Var(&cfg.DeleteRatio, "delete-ratio", cfg.DeleteRatio, "fraction of writes that are deletes, 0..1 (a delete picks its key as a read does)")
	fs.Var(secondsFlag{&cfg.Duration}, "duration", "how long to send requests: seconds (60) or a Go `duration` (30s, 2m)")
	fs.Float64Var(&cfg.QPS, "qps", cfg.QPS, "target requests per second; request i is sent at t0 + i/qps (open loop)")
	fs.Var(nodesFlag{&cfg.Nodes}, "nodes", "comma-separated node `URLs`; in leader mode the first is the leader")
	fs.StringVar(&cfg.ReadFrom, "read-from", cfg.ReadFrom, "where reads go: all, leader (the first node) or followers (the others)")
	fs.IntVar(&cfg.Keys.Keys, "keys", cfg.Keys.Keys, "size of the key space")
	fs.IntVar(&cfg.Keys.HotKeys, "hot-keys", cfg.Keys.HotKeys, "locality: how many recently written keys reads and rewrites draw from")
	fs.Float64Var(&cfg.Keys.HotRead, "hot-read", cfg.Keys.HotRead, "locality: probability a read picks a recently written key (else uniform)")
	fs.Float64Var(&cfg.Keys.HotWrite, "hot-write", cfg.Keys.HotWrite, "locality: probability a write rewrites a recently written key (else uniform)")
	fs.Float64Var(&cfg.Keys.Recency, "recency", cfg.Keys.Recency, "locality: decay over the recent keys, (0,1]; the i-th newest is picked with weight (1-recency)^i")
	fs.IntVar(&cfg.MaxInFlight, "max-inflight", cfg.MaxInFlight, "cap on requests in flight; requests due beyond it are dropped and counted")
	fs.Uint64Var(&cfg.Seed, "seed", cfg.Seed, "random seed for operations, keys and nodes")
	fs.Var(secondsFlag{&cfg.Timeout}, "timeout", "per-request timeout (seconds or a Go `duration`)")
	fs.DurationVar(&cfg.LateThreshold, "late-threshold", cfg.LateThreshold, "a request sent later than this after its intended time counts as late")
	fs.Var(secondsFlag{&cfg.ReadyWait}, "wait", "how long to wait at the start for every node to answer /health ready (seconds or a Go `duration`)")
	fs.StringVar(&cfg.OutDir, "out", "", "output directory (default results/load-<yyyymmdd-hhmmss>)")
	fs.BoolVar(check, "check", *check, "run the porcupine linearizability check at the end (stale reads and inversions are always counted)")
	fs.Var(secondsFlag{&cfg.Check.Timeout}, "check-timeout", "time budget of the linearizability check (seconds or a Go `duration`); past it the verdict is unknown")
	fs.StringVar(logLevel, "log-level", *logLevel, "debug, info, warn or error")
}

// secondsFlag is a duration flag that also takes a plain number of
// seconds.
type secondsFlag struct{ d *time.Duration }

func (f secondsFlag) String() string {
	if f.d == nil {
		return ""
	}
	return f.d.String()
}

func (f secondsFlag) Set(s string) error {
	d, err := load.ParseDuration(s)
	if err != nil {
		return err
	}
	*f.d = d
	return nil
}

// nodesFlag is a comma-separated list of node URLs.
type nodesFlag struct{ nodes *[]string }

func (f nodesFlag) String() string {
	if f.nodes == nil {
		return ""
	}
	return strings.Join(*f.nodes, ",")
}

func (f nodesFlag) Set(s string) error {
	nodes, err := load.ParseNodes(s)
	if err != nil {
		return err
	}
	*f.nodes = nodes
	return nil
}
