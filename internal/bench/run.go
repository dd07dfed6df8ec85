package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/kvdb/kvdb/internal/bench/driver"
	"github.com/kvdb/kvdb/internal/cluster"
	"github.com/kvdb/kvdb/internal/node"
	"github.com/kvdb/kvdb/internal/replication"
)

// Config configures a side-by-side run.
type Config struct {
	// Drive is the workload shape shared by every system. Its WriteRatio
	// is used only when OverrideWriteRatio is set; otherwise each
	// workload's own ratio applies.
	Drive              driver.Config
	OverrideWriteRatio bool
	// Workloads and Systems select what runs (default: all).
	Workloads []Workload
	Systems   []string
	// Repo is the repository root, where scripts/bench-peers.sh and the
	// bench/ module are (needed only for the peers).
	Repo string
	// PeerBench is a prebuilt kvdb-peerbench; empty builds one into a
	// temporary directory.
	PeerBench string
	// PeersDir holds the peers' pid files, logs and etcd's data; it
	// should be on a tmpfs. Empty: a fresh directory under /dev/shm (or
	// the temp dir when there is no /dev/shm).
	PeersDir string
	// EtcdSerializable makes etcd's reads serializable instead of
	// linearizable.
	EtcdSerializable bool
	// KVDBExe, if set, is the kvdb binary: each kvdb cluster then runs in
	// a child process (`KVDBExe bench --serve-cluster PRESET`), as the
	// peers run in theirs. Empty: the cluster runs in this process.
	KVDBExe string
	// CPUProfileDir, if set, receives a CPU profile of the kvdb cluster
	// for every kvdb run's warm-up and measured window,
	// cpu-<workload>.pprof: of the child process, or of this whole process
	// when the cluster runs in it (the client is labelled kvdb-bench=client).
	CPUProfileDir string
	// Progress receives progress lines (default: discard).
	Progress io.Writer
}

// SetDefaults fills zero fields.
func (c *Config) SetDefaults() {
	c.Drive.SetDefaults()
	if c.Workloads == nil {
		c.Workloads = Workloads()
	}
	if c.Systems == nil {
		c.Systems = Systems()
	}
	if c.Progress == nil {
		c.Progress = io.Discard
	}
}

// Validate reports invalid settings.
func (c *Config) Validate() error {
	var errs []error
	if err := c.Drive.Validate(); err != nil {
		errs = append(errs, err)
	}
	if len(c.Workloads) == 0 || len(c.Systems) == 0 {
		errs = append(errs, errors.New("no workload or no system selected"))
	}
	for _, s := range c.Systems {
		if isPeer(s) && c.Repo == "" {
			errs = append(errs, fmt.Errorf("system %s needs the repository (scripts/bench-peers.sh, bench/): set Repo", s))
			break
		}
	}
	return errors.Join(errs...)
}

// Run runs every selected workload against every selected system, one
// after another, and returns the rows it got. A run that fails is reported
// in the error and left out of the rows; the others still run.
func Run(ctx context.Context, cfg Config) ([]driver.Result, error) {
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	pr := cfg.Progress
	var peers *Peers
	var peerBin string
	if which := peerServers(cfg.Systems); len(which) > 0 {
		var cleanup func()
		var err error
		peers, peerBin, cleanup, err = setUpPeers(ctx, cfg, which)
		if err != nil {
			return nil, err
		}
		defer cleanup()
	}

	var (
		rows      []driver.Result
		errs      []error
		preloaded = map[string]bool{}
		total     = len(cfg.Workloads) * len(cfg.Systems)
		n         = 0
	)
	for _, w := range cfg.Workloads {
		drive := cfg.Drive
		if !cfg.OverrideWriteRatio {
			drive.WriteRatio = w.WriteRatio
		}
		for _, sys := range cfg.Systems {
			if ctx.Err() != nil {
				return rows, errors.Join(append(errs, ctx.Err())...)
			}
			n++
			fmt.Fprintf(pr, "[%d/%d] %s (%s) — %s: %s\n", n, total, w.Name, w.Title, sys, describe(drive))
			var (
				res driver.Result
				err error
			)
			if sys == SystemKVDB {
				res, err = runKVDB(ctx, cfg, w, drive)
			} else {
				server := serverOf(sys)
				res, err = PeerRun{
					Bin: peerBin, System: sys, Workload: w.Name, Drive: drive, Env: peers.Env,
					Preload: !preloaded[server], EtcdSerializable: cfg.EtcdSerializable, Progress: pr,
				}.Run(ctx)
				if err == nil {
					preloaded[server] = true
				}
			}
			if err != nil {
				fmt.Fprintf(pr, "  %s %s: FAILED: %v\n", w.Name, sys, err)
				errs = append(errs, fmt.Errorf("%s %s: %w", w.Name, sys, err))
				continue
			}
			res.Workload, res.System = w.Name, sys
			fmt.Fprintf(pr, "  => %s %s: %.0f ops/s, p50 %.3f ms, p99 %.3f ms, p99.9 %.3f ms, %d errors\n",
				w.Name, sys, res.OpsPerSec, res.P50Ms, res.P99Ms, res.P999Ms, res.Errors)
			rows = append(rows, res)
		}
	}
	return rows, errors.Join(errs...)
}

func describe(d driver.Config) string {
	load := fmt.Sprintf("closed loop, %d clients", d.Concurrency)
	if d.Mode == driver.ModeOpen {
		load = fmt.Sprintf("open loop at %g ops/s (at most %d in flight)", d.Rate, d.Concurrency)
	}
	return fmt.Sprintf("%s, %.0f%% writes, %s + %s warm-up", load, d.WriteRatio*100, d.Duration, d.Warmup)
}

// serverOf names the peer server a system runs on.
func serverOf(system string) string {
	if system == SystemRedis || system == SystemRedisWait4 {
		return "redis"
	}
	return system
}

// peerServers lists the peer servers the systems need ("redis", "etcd").
func peerServers(systems []string) []string {
	var out []string
	seen := map[string]bool{}
	for _, s := range systems {
		if isPeer(s) && !seen[serverOf(s)] {
			seen[serverOf(s)] = true
			out = append(out, serverOf(s))
		}
	}
	return out
}

// setUpPeers builds the peer client and starts the peer servers; cleanup
// stops them (even after ctx ended) and removes the temporary files.
func setUpPeers(ctx context.Context, cfg Config, which []string) (p *Peers, bin string, cleanup func(), err error) {
	pr := cfg.Progress
	tmp, err := os.MkdirTemp("", "kvdb-bench-")
	if err != nil {
		return nil, "", nil, err
	}
	removeTmp := func() { os.RemoveAll(tmp) }
	bin = cfg.PeerBench
	if bin == "" {
		bin = filepath.Join(tmp, "kvdb-peerbench")
		fmt.Fprintf(pr, "building the peer client: go build -C %s -o %s %s\n", PeerModuleDir, bin, PeerCmd)
		start := time.Now()
		if err := BuildPeerBench(ctx, cfg.Repo, bin, pr); err != nil {
			removeTmp()
			return nil, "", nil, err
		}
		fmt.Fprintf(pr, "  built in %s\n", time.Since(start).Round(100*time.Millisecond))
	}
	dir := cfg.PeersDir
	if dir == "" {
		base := ""
		if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
			base = "/dev/shm"
		}
		d, err := os.MkdirTemp(base, "kvdb-bench-peers-")
		if err != nil {
			removeTmp()
			return nil, "", nil, err
		}
		// The script creates it and refuses a directory with live peers.
		os.Remove(d)
		dir = d
	}
	fmt.Fprintf(pr, "starting peers (%s) with %s in %s\n", strings.Join(which, ", "), PeersScript, dir)
	start := time.Now()
	p, err = StartPeers(ctx, filepath.Join(cfg.Repo, PeersScript), dir, which, pr)
	if err != nil {
		removeTmp()
		return nil, "", nil, err
	}
	fmt.Fprintf(pr, "  peers up in %s: %s\n", time.Since(start).Round(100*time.Millisecond), formatEnv(p.Env))
	return p, bin, func() {
		fmt.Fprintln(pr, "stopping peers")
		if err := p.Stop(context.WithoutCancel(ctx)); err != nil {
			fmt.Fprintf(pr, "  %v\n", err)
		}
		removeTmp()
	}, nil
}

func formatEnv(env map[string]string) string {
	var parts []string
	for _, k := range []string{"REDIS_ADDRS", "ETCD_ENDPOINTS"} {
		if v := env[k]; v != "" {
			parts = append(parts, k+"="+v)
		}
	}
	return strings.Join(parts, " ")
}

// runKVDB starts a cluster for the workload (delays off) in a child
// process (cfg.KVDBExe) or in this one, preloads the keys and drives it.
func runKVDB(ctx context.Context, cfg Config, w Workload, drive driver.Config) (res driver.Result, err error) {
	pr := cfg.Progress
	var (
		info                clusterInfo
		where               string
		startProf, stopProf func(path string) error
	)
	if cfg.KVDBExe != "" {
		cp, err := startClusterProc(ctx, cfg.KVDBExe, w.Preset, pr)
		if err != nil {
			return res, err
		}
		defer func() { err = errors.Join(err, cp.Close()) }()
		info, where = cp.info, "in a child process"
		startProf = cp.StartProfile
		stopProf = func(string) error { return cp.StopProfile() }
	} else {
		c, err := cluster.Start(ctx, cluster.Config{Preset: w.Preset, Node: node.Config{Replication: replication.Config{Delays: replication.NoDelays()}}})
		if err != nil {
			return res, err
		}
		defer func() {
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			defer cancel()
			err = errors.Join(err, c.Close(cctx))
		}()
		p := c.Preset()
		info = clusterInfo{URLs: c.URLs(), Preset: p.Name, Mode: string(p.Mode), W: p.W, R: p.R}
		where = "in this process, beside the client"
		var stop func()
		startProf = func(path string) (err error) { stop, err = startCPUProfile(path); return err }
		stopProf = func(string) error { stop(); return nil }
	}
	leaderless := info.Mode == string(replication.Leaderless)
	t := NewKVDBTarget(info.URLs, leaderless, drive.Concurrency)
	defer t.Close()
	// The client side runs under a profiler label, inherited by the
	// goroutines it starts (those of its HTTP connections included), so
	// that an in-process profile splits into the cluster
	// (-tagignore=kvdb-bench=client) and the load generator
	// (-tagfocus=kvdb-bench=client).
	pprof.Do(ctx, pprof.Labels("kvdb-bench", "client"), func(ctx context.Context) {
		if err = t.WaitReady(ctx, 30*time.Second); err != nil {
			return
		}
		start := time.Now()
		if err = driver.Preload(ctx, t.Op, drive.Keys, drive.ValueSize, drive.Concurrency, drive.OpTimeout); err != nil {
			return
		}
		fmt.Fprintf(pr, "  %s: preloaded %d keys in %s\n", SystemKVDB, drive.Keys, time.Since(start).Round(time.Millisecond))
		if cfg.CPUProfileDir != "" {
			path, perr := filepath.Abs(filepath.Join(cfg.CPUProfileDir, "cpu-"+w.Name+".pprof"))
			if perr == nil {
				perr = startProf(path)
			}
			if perr != nil {
				err = fmt.Errorf("cpu profile: %w", perr)
				return
			}
			fmt.Fprintf(pr, "  %s: CPU profile of the cluster -> %s\n", SystemKVDB, path)
			defer func() { err = errors.Join(err, stopProf(path)) }()
		}
		drive.Progress = func(p driver.Progress) { fmt.Fprintln(pr, driver.ProgressLine(w.Name, SystemKVDB, p)) }
		res, err = driver.Run(ctx, drive, t.Op)
	})
	if err != nil && res.Mode == "" {
		return res, err
	}
	writes := "writes to the leader"
	if leaderless {
		writes = "writes round robin to every node (each coordinates)"
	}
	res.Notes = fmt.Sprintf("kvdb %s (%s, N=%d W=%d R=%d), delays none, 5 nodes %s; %s, reads round robin to every node",
		info.Preset, info.Mode, len(info.URLs), info.W, info.R, where, writes)
	return res, err
}

func startCPUProfile(path string) (stop func(), err error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, err
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}

// Meta describes the conditions of a run, for the tables.
type Meta struct {
	Drive              driver.Config
	OverrideWriteRatio bool
	Date               time.Time
	GOOS, GOARCH, Go   string
	CPUs               int
	// Versions of the peer servers, as they report them.
	Versions map[string]string
}

// NewMeta describes the machine and the peers installed on it.
func NewMeta(cfg Config) Meta {
	m := Meta{Drive: cfg.Drive, OverrideWriteRatio: cfg.OverrideWriteRatio, Date: time.Now(),
		GOOS: runtime.GOOS, GOARCH: runtime.GOARCH, Go: runtime.Version(), CPUs: runtime.NumCPU(),
		Versions: map[string]string{}}
	for _, s := range peerServers(cfg.Systems) {
		bin := map[string]string{"redis": "redis-server", "etcd": "etcd"}[s]
		if out, err := exec.Command(bin, "--version").Output(); err == nil {
			first, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
			first, _, _ = strings.Cut(first, " sha=") // redis-server's build details
			m.Versions[s] = first
		}
	}
	return m
}
