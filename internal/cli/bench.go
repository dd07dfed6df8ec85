//go:build !kvdb_node

package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/kvdb/kvdb/internal/bench"
	"github.com/kvdb/kvdb/internal/bench/driver"
)

// Quick and full-run defaults of `kvdb bench`.
const (
	benchDuration      = 10 * time.Second
	benchWarmup        = 2 * time.Second
	benchQuickDuration = 3 * time.Second
	benchQuickWarmup   = time.Second
	benchOpenInFlight  = 256
	benchMemoryKeys    = "1000000"
	// redis-benchmark requests per test (SET, GET) in a full and a quick
	// run.
	benchRedisBenchmarkN      = 100_000
	benchQuickRedisBenchmarkN = 20_000
)

// Bench runs kvdb beside Redis and etcd (`kvdb bench`), or measures the
// store's memory per key (`kvdb bench --memory`). Exit status: 0 when
// every run succeeded, 1 when a run failed or the command was interrupted
// (the rows obtained are still written), 2 for bad usage.
func Bench(ctx context.Context, args []string, env Env) int {
	fs := newFlagSet("bench", "[flags]", env.Stderr, false)
	drive := driver.DefaultConfig()
	drive.Duration, drive.Warmup = benchDuration, benchWarmup
	drive.RegisterFlags(fs)
	if f := fs.Lookup("write-ratio"); f != nil {
		f.Usage = "fraction of operations that are writes, 0..1, in every workload (default: each workload's own ratio)"
		f.DefValue = ""
	}
	var (
		workloads    string
		systems      string
		quick        bool
		out          string
		repo         string
		peerBench    string
		peersDir     string
		serializable bool
		cpuDir       string
		memory       bool
		memoryKeys   string
		memCompare   bool
		sweep        bool
		table        bool
		sweepRates   string
		sweepWls     string
		sweepDur     time.Duration
		redisBenchN  int
		inProcess    bool
		serveCluster string
		serveNodes   int
		peerTrans    string
	)
	fs.StringVar(&workloads, "workloads", "all", "comma-separated subset of: "+joinNames(bench.WorkloadNames())+" (all: every one but the extra w5r1-writes)")
	fs.StringVar(&systems, "systems", "all", "comma-separated subset of: "+joinNames(bench.Systems()))
	fs.BoolVar(&quick, "quick", false, fmt.Sprintf("short runs (%s + %s warm-up each) so that everything finishes in under 3 minutes", benchQuickDuration, benchQuickWarmup))
	fs.StringVar(&out, "out", "", "output `directory` for bench.json and bench.md (default results/bench-<yyyymmdd-hhmmss>)")
	fs.StringVar(&repo, "repo", "", "kvdb repository root, for scripts/bench-peers.sh and the bench/ module (default: found above the working directory)")
	fs.StringVar(&peerBench, "peerbench", "", "prebuilt kvdb-peerbench `binary` (default: go build it from bench/)")
	fs.StringVar(&peersDir, "peers-dir", "", "`directory` (on a tmpfs) for the peers' pid files, logs and etcd's data (default: a new one under /dev/shm)")
	fs.BoolVar(&serializable, "etcd-serializable", false, "etcd: serializable reads instead of the default linearizable ones")
	fs.StringVar(&cpuDir, "cpuprofile-dir", "", "write a CPU profile of the kvdb cluster for every kvdb run into this `directory` (with --kvdb-inprocess: of this whole process, the client labelled kvdb-bench=client)")
	fs.BoolVar(&memory, "memory", false, "measure the store's bytes per key instead, in this process (--memory-keys keys of --value-size bytes)")
	fs.StringVar(&memoryKeys, "memory-keys", benchMemoryKeys, "comma-separated key counts for --memory and --memory-compare")
	fs.BoolVar(&memCompare, "memory-compare", false, "after the runs, memory per key of a kvdb node (loaded over RESP pipelines; with kvdb-resp selected) beside Redis's INFO memory (with redis selected), at each --memory-keys")
	fs.BoolVar(&table, "table", true, "run the benchmark table (--table=false: only redis-benchmark, --sweep and --memory-compare)")
	fs.BoolVar(&sweep, "sweep", false, "after the runs, a rate sweep (open loop at increasing rates) per system; the knee is the highest rate with p99 under 10 ms")
	fs.StringVar(&sweepRates, "sweep-rates", "", "comma-separated open-loop `rates` for --sweep (default 2500,5000,7500,10000,15000,20000,25000,30000,40000,50000,60000)")
	fs.StringVar(&sweepWls, "sweep-workloads", "read-r1,w5r1-50", "comma-separated workloads for --sweep")
	fs.DurationVar(&sweepDur, "sweep-duration", bench.DefaultSweepDuration, "measured window of each --sweep step (after 2s warm-up)")
	fs.IntVar(&redisBenchN, "redis-benchmark", -1, fmt.Sprintf("`requests` per test for redis-benchmark -t set,get -c 50 against kvdb's RESP port and Redis (0: skip; default %d, %d with --quick)", benchRedisBenchmarkN, benchQuickRedisBenchmarkN))
	fs.BoolVar(&inProcess, "kvdb-inprocess", false, "run each kvdb cluster inside this process, beside the client, instead of in a child process")
	fs.StringVar(&peerTrans, "peer-transport", "", "kvdb nodes' node-to-node transport: stream or http (default: the node default, stream)")
	fs.Lookup("redis-benchmark").DefValue = "0" // -1 means "per --quick"; the usage text says it
	fs.StringVar(&serveCluster, "serve-cluster", "", "internal: be the child process that runs one kvdb cluster of this `preset` for a parent kvdb bench")
	fs.IntVar(&serveNodes, "serve-nodes", 0, "internal: with --serve-cluster, the cluster's size (default 5)")
	if err := parseFlags(fs, args, nil); err != nil {
		return usageExit(fs, env.Stderr, err)
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })

	if serveCluster != "" {
		if err := bench.ServeCluster(ctx, serveCluster, serveNodes, peerTrans, os.Stdin, env.Stdout); err != nil {
			fmt.Fprintf(env.Stderr, "kvdb bench --serve-cluster: %v\n", err)
			return 1
		}
		return 0
	}

	memKeys, err := parseCounts(memoryKeys)
	if err != nil || drive.ValueSize < 0 {
		return usageExit(fs, env.Stderr, fmt.Errorf("--memory-keys must list positive counts (%v) and --value-size not be negative", err))
	}
	if memory {
		var ms []bench.MemoryResult
		for _, n := range memKeys {
			m := bench.MeasureStoreMemory(n, drive.ValueSize)
			fmt.Fprintf(env.Stdout, "store memory: %s\n", m)
			ms = append(ms, m)
		}
		if out != "" {
			var v any = ms
			if len(ms) == 1 {
				v = ms[0]
			}
			if err := writeJSONFile(filepath.Join(out, "memory.json"), v); err != nil {
				fmt.Fprintf(env.Stderr, "kvdb bench: %v\n", err)
				return 1
			}
		}
		return 0
	}

	if redisBenchN < 0 {
		redisBenchN = benchRedisBenchmarkN
		if quick {
			redisBenchN = benchQuickRedisBenchmarkN
		}
	}
	if quick {
		if !given["duration"] {
			drive.Duration = benchQuickDuration
		}
		if !given["warmup"] {
			drive.Warmup = benchQuickWarmup
		}
	}
	if drive.Mode == driver.ModeOpen && !given["concurrency"] {
		drive.Concurrency = benchOpenInFlight
	}
	// Validate before SetDefaults, which would turn an explicit 0 (say
	// --concurrency 0) into the default instead of rejecting it.
	if err := drive.Validate(); err != nil {
		return usageExit(fs, env.Stderr, err)
	}
	drive.Grace = 0 // recomputed from the final duration
	drive.SetDefaults()
	cfg := bench.Config{
		Drive: drive, OverrideWriteRatio: given["write-ratio"], PeerBench: peerBench,
		PeersDir: peersDir, EtcdSerializable: serializable, CPUProfileDir: cpuDir, Progress: env.Stdout,
		RedisBenchmarkRequests: redisBenchN, SkipTable: !table, PeerTransport: peerTrans,
	}
	var memOut []bench.MemoryComparison
	if memCompare {
		cfg.MemoryKeys, cfg.MemoryOut = memKeys, &memOut
	}
	if sweep {
		sc := &bench.SweepConfig{Duration: sweepDur}
		if sweepRates != "" {
			if sc.Rates, err = bench.ParseRates(sweepRates); err != nil {
				return usageExit(fs, env.Stderr, fmt.Errorf("--sweep-rates: %w", err))
			}
		}
		if sc.Workloads, err = bench.SelectWorkloads(sweepWls); err != nil {
			return usageExit(fs, env.Stderr, fmt.Errorf("--sweep-workloads: %w", err))
		}
		if err := sc.Validate(); err != nil {
			return usageExit(fs, env.Stderr, err)
		}
		cfg.Sweep = sc
	}
	if !inProcess {
		if cfg.KVDBExe, err = os.Executable(); err != nil {
			fmt.Fprintf(env.Stderr, "kvdb bench: %v (use --kvdb-inprocess)\n", err)
			return 1
		}
	}
	if cfg.Workloads, err = bench.SelectWorkloads(workloads); err != nil {
		return usageExit(fs, env.Stderr, err)
	}
	if cfg.Systems, err = bench.SelectSystems(systems); err != nil {
		return usageExit(fs, env.Stderr, err)
	}
	needPeers := false
	for _, s := range cfg.Systems {
		needPeers = needPeers || s != bench.SystemKVDB
	}
	if needPeers && !(peerBench != "" && !slices.ContainsFunc(cfg.Systems, bench.IsPeer)) {
		if repo == "" {
			wd, _ := os.Getwd()
			if repo, err = bench.FindRepo(wd); err != nil {
				return usageExit(fs, env.Stderr, err)
			}
		}
		cfg.Repo = repo
	}
	if out == "" {
		out = filepath.Join("results", "bench-"+time.Now().Format("20060102-150405"))
	}

	start := time.Now()
	fmt.Fprintf(env.Stdout, "kvdb bench: %d workloads x %d systems -> %s\n", len(cfg.Workloads), len(cfg.Systems), out)
	meta := bench.NewMeta(cfg)
	fmt.Fprintf(env.Stdout, "load average: %s\n", meta.Load)
	rows, runErr := bench.Run(ctx, cfg)
	meta.Memory = memOut
	if len(memOut) > 0 {
		if err := writeJSONFile(filepath.Join(out, "memory.json"), memOut); err != nil {
			fmt.Fprintf(env.Stderr, "kvdb bench: %v\n", err)
			return 1
		}
	}
	if err := bench.WriteResults(out, rows, meta); err != nil {
		fmt.Fprintf(env.Stderr, "kvdb bench: %v\n", err)
		return 1
	}
	fmt.Fprintln(env.Stdout)
	bench.WriteText(env.Stdout, rows)
	fmt.Fprintf(env.Stdout, "\nresults: %s, %s (%s)\n", filepath.Join(out, bench.JSONFile), filepath.Join(out, bench.MarkdownFile), time.Since(start).Round(time.Second))
	if runErr != nil {
		fmt.Fprintf(env.Stderr, "kvdb bench: %v\n", runErr)
		return 1
	}
	return 0
}

// parseCounts parses a comma-separated list of positive integers.
func parseCounts(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(strings.ReplaceAll(f, "_", ""))
		if f == "" {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil || n < 1 {
			return nil, fmt.Errorf("%q is not a positive count", f)
		}
		out = append(out, n)
	}
	if len(out) == 0 {
		return nil, errors.New("no counts")
	}
	return out, nil
}

func joinNames(names []string) string {
	s := ""
	for i, n := range names {
		if i > 0 {
			s += ", "
		}
		s += n
	}
	return s
}

func writeJSONFile(path string, v any) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}
