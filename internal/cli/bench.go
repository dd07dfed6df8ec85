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
	benchMemoryKeys    = 1_000_000
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
		memoryKeys   int
		inProcess    bool
		serveCluster string
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
	fs.BoolVar(&memory, "memory", false, "measure the store's bytes per key instead (--memory-keys keys of --value-size bytes)")
	fs.IntVar(&memoryKeys, "memory-keys", benchMemoryKeys, "keys for --memory")
	fs.BoolVar(&inProcess, "kvdb-inprocess", false, "run each kvdb cluster inside this process, beside the client, instead of in a child process")
	fs.StringVar(&serveCluster, "serve-cluster", "", "internal: be the child process that runs one kvdb cluster of this `preset` for a parent kvdb bench")
	if err := parseFlags(fs, args, nil); err != nil {
		return usageExit(fs, env.Stderr, err)
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })

	if serveCluster != "" {
		if err := bench.ServeCluster(ctx, serveCluster, os.Stdin, env.Stdout); err != nil {
			fmt.Fprintf(env.Stderr, "kvdb bench --serve-cluster: %v\n", err)
			return 1
		}
		return 0
	}

	if memory {
		if memoryKeys < 1 || drive.ValueSize < 0 {
			return usageExit(fs, env.Stderr, errors.New("--memory-keys must be positive and --value-size not negative"))
		}
		m := bench.MeasureStoreMemory(memoryKeys, drive.ValueSize)
		fmt.Fprintf(env.Stdout, "store memory: %s\n", m)
		if out != "" {
			if err := writeJSONFile(filepath.Join(out, "memory.json"), m); err != nil {
				fmt.Fprintf(env.Stderr, "kvdb bench: %v\n", err)
				return 1
			}
		}
		return 0
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
	}
	var err error
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
	if needPeers {
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
	rows, runErr := bench.Run(ctx, cfg)
	meta := bench.NewMeta(cfg)
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
