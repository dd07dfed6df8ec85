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
	"slices"
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
	// PeerTransport is the kvdb nodes' node-to-node transport
	// (node.PeerStream, node.PeerHTTP; "": the node default, the stream).
	PeerTransport string
	// CPUProfileDir, if set, receives a CPU profile of the kvdb cluster
	// for every kvdb run's warm-up and measured window,
	// cpu-<workload>.pprof: of the child process, or of this whole process
	// when the cluster runs in it (the client is labelled kvdb-bench=client);
	// kvdb-resp runs write cpu-<workload>-resp.pprof, and the memory
	// comparison a heap profile of the loaded node, heap-<keys>.pprof.
	CPUProfileDir string
	// SkipTable skips the benchmark table's runs (only redis-benchmark,
	// the sweep and the memory comparison run).
	SkipTable bool
	// RedisBenchmarkRequests, if positive, runs `redis-benchmark -t set,get
	// -n RedisBenchmarkRequests -c 50` after the table against kvdb's
	// RESP port (a w5r1 cluster's leader, with kvdb-resp selected) and
	// against the Redis primary (with redis or redis-wait4 selected).
	RedisBenchmarkRequests int
	// Sweep, if set, runs a rate sweep after the table (and
	// redis-benchmark) for every selected system.
	Sweep *SweepConfig
	// MemoryKeys, if set, measures memory per key at each of these key
	// counts after everything else (MemoryComparison): kvdb with
	// kvdb-resp selected, Redis with redis selected. The result goes to
	// Run's MemoryOut.
	MemoryKeys []int
	// MemoryOut receives the memory comparison.
	MemoryOut *[]MemoryComparison
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
	if c.Sweep != nil {
		c.Sweep.SetDefaults()
	}
}

// Validate reports invalid settings.
func (c *Config) Validate() error {
	var errs []error
	if err := c.Drive.Validate(); err != nil {
		errs = append(errs, err)
	}
	if c.Sweep != nil {
		if err := c.Sweep.Validate(); err != nil {
			errs = append(errs, err)
		}
	}
	if c.PeerTransport != "" && c.PeerTransport != node.PeerStream && c.PeerTransport != node.PeerHTTP {
		errs = append(errs, fmt.Errorf("peer transport %q: want %s or %s", c.PeerTransport, node.PeerStream, node.PeerHTTP))
	}
	if c.RedisBenchmarkRequests < 0 {
		errs = append(errs, errors.New("redis-benchmark requests must not be negative"))
	}
	if len(c.Workloads) == 0 || len(c.Systems) == 0 {
		errs = append(errs, errors.New("no workload or no system selected"))
	}
	for _, s := range c.Systems {
		if (isPeer(s) || (s == SystemKVDBRESP && c.PeerBench == "")) && c.Repo == "" {
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
	if which := peerServers(cfg.Systems); len(which) > 0 || needsPeerClient(cfg.Systems) {
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
	workloads := cfg.Workloads
	if cfg.SkipTable {
		workloads = nil
	}
	for _, w := range workloads {
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
			switch sys {
			case SystemKVDB:
				res, err = runKVDB(ctx, cfg, w, drive)
			case SystemKVDBRESP:
				res, err = runKVDBRESP(ctx, cfg, w, drive, peerBin)
			default:
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
	if cfg.RedisBenchmarkRequests > 0 {
		rb, err := runRedisBenchmarks(ctx, cfg, peers)
		rows = append(rows, rb...)
		if err != nil {
			errs = append(errs, err)
		}
	}
	if cfg.Sweep != nil {
		sw, err := runSweep(ctx, cfg, peers, peerBin, preloaded)
		rows = append(rows, sw...)
		if err != nil {
			errs = append(errs, err)
		}
	}
	if len(cfg.MemoryKeys) > 0 {
		mem, err := runMemory(ctx, cfg, peers, peerBin)
		if cfg.MemoryOut != nil {
			*cfg.MemoryOut = mem
		}
		if err != nil {
			errs = append(errs, err)
		}
	}
	return rows, errors.Join(errs...)
}

// runRedisBenchmarks runs redis-benchmark against a w5r1 kvdb cluster's
// leader over RESP (with kvdb-resp selected) and the Redis primary (with
// redis selected).
func runRedisBenchmarks(ctx context.Context, cfg Config, peers *Peers) (rows []driver.Result, err error) {
	pr := cfg.Progress
	var errs []error
	if slices.Contains(cfg.Systems, SystemKVDBRESP) {
		fmt.Fprintf(pr, "redis-benchmark -t set,get -n %d -c %d against kvdb w5r1 (delays none), the leader's RESP port\n", cfg.RedisBenchmarkRequests, RedisBenchmarkClients)
		err := func() (err error) {
			k, err := startKVDB(ctx, cfg, "w5r1", 0)
			if err != nil {
				return err
			}
			defer func() { err = errors.Join(err, k.close()) }()
			rb, err := RedisBenchmark(ctx, k.info.respLeaderFirst()[0], SystemKVDBRESP, cfg.RedisBenchmarkRequests, pr)
			for i := range rb {
				rb[i].Notes = "kvdb w5r1 (N=5 W=5 R=1), delays none, the leader's RESP port; " + rb[i].Notes
			}
			rows = append(rows, rb...)
			return err
		}()
		if err != nil {
			errs = append(errs, err)
		}
	}
	if peers != nil && peers.Env["REDIS_ADDRS"] != "" {
		primary, _, _ := strings.Cut(peers.Env["REDIS_ADDRS"], ",")
		fmt.Fprintf(pr, "redis-benchmark -t set,get -n %d -c %d against the Redis primary %s\n", cfg.RedisBenchmarkRequests, RedisBenchmarkClients, primary)
		rb, err := RedisBenchmark(ctx, primary, SystemRedis, cfg.RedisBenchmarkRequests, pr)
		for i := range rb {
			rb[i].Notes = "Redis primary with 4 replicas (asynchronous); " + rb[i].Notes
		}
		rows = append(rows, rb...)
		if err != nil {
			errs = append(errs, err)
		}
	}
	for _, r := range rows {
		fmt.Fprintf(pr, "  => %s %s: %.0f requests/s, p50 %.3f ms, p99 %.3f ms\n", r.Workload, r.System, r.OpsPerSec, r.P50Ms, r.P99Ms)
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
	if len(which) == 0 {
		return &Peers{Env: map[string]string{}}, bin, removeTmp, nil
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

// kvdbCluster is a running kvdb cluster for the benchmark, in a child
// process or in this one.
type kvdbCluster struct {
	info  clusterInfo
	where string
	// startProf and stopProf run a CPU profile of the cluster.
	startProf, stopProf func(path string) error
	// mem measures the cluster's process; heapProf writes its heap
	// profile.
	mem      func() (ProcMem, error)
	heapProf func(path string) error
	close    func() error
}

// startKVDB starts a cluster of the preset (delays off, RESP on) with
// nodes nodes (0: 5), in a child process when cfg.KVDBExe is set.
func startKVDB(ctx context.Context, cfg Config, preset string, nodes int) (*kvdbCluster, error) {
	if cfg.KVDBExe != "" {
		cp, err := startClusterProc(ctx, cfg.KVDBExe, preset, nodes, cfg.PeerTransport, cfg.Progress)
		if err != nil {
			return nil, err
		}
		return &kvdbCluster{
			info: cp.info, where: "in a child process",
			startProf: cp.StartProfile,
			stopProf:  func(string) error { return cp.StopProfile() },
			mem:       cp.Mem,
			heapProf:  cp.HeapProfile,
			close:     cp.Close,
		}, nil
	}
	c, err := cluster.Start(ctx, clusterConfig(preset, nodes, cfg.PeerTransport))
	if err != nil {
		return nil, err
	}
	closeC := func() error {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		return c.Close(cctx)
	}
	if err := c.WaitReady(ctx, 60*time.Second); err != nil {
		return nil, errors.Join(err, closeC())
	}
	p := c.Preset()
	var stop func()
	return &kvdbCluster{
		info:  clusterInfo{URLs: c.URLs(), RESPAddrs: c.RESPAddrs(), Leader: c.Leader(), Preset: p.Name, Mode: string(p.Mode), W: p.W, R: p.R},
		where: "in this process, beside the client",
		startProf: func(path string) (err error) {
			stop, err = startCPUProfile(path)
			return err
		},
		stopProf: func(string) error { stop(); return nil },
		mem:      func() (ProcMem, error) { return measureProcMem(), nil },
		heapProf: writeHeapProfile,
		close:    closeC,
	}, nil
}

func (k *kvdbCluster) leaderless() bool { return k.info.Mode == string(replication.Leaderless) }

// profiled runs f under a CPU profile of the cluster into
// cfg.CPUProfileDir/cpu-<name>.pprof (f alone when there is no directory).
func (k *kvdbCluster) profiled(cfg Config, name string, f func() error) (err error) {
	if cfg.CPUProfileDir == "" {
		return f()
	}
	path, err := filepath.Abs(filepath.Join(cfg.CPUProfileDir, "cpu-"+name+".pprof"))
	if err == nil {
		err = k.startProf(path)
	}
	if err != nil {
		return fmt.Errorf("cpu profile: %w", err)
	}
	fmt.Fprintf(cfg.Progress, "  CPU profile of the kvdb cluster -> %s\n", path)
	defer func() { err = errors.Join(err, k.stopProf(path)) }()
	return f()
}

// runKVDB starts a cluster for the workload (delays off) in a child
// process (cfg.KVDBExe) or in this one, preloads the keys and drives it
// over HTTP.
func runKVDB(ctx context.Context, cfg Config, w Workload, drive driver.Config) (res driver.Result, err error) {
	k, err := startKVDB(ctx, cfg, w.Preset, 0)
	if err != nil {
		return res, err
	}
	defer func() { err = errors.Join(err, k.close()) }()
	rows, err := driveKVDB(ctx, cfg, k, w, []driver.Config{drive}, cfg.CPUProfileDir != "")
	if len(rows) > 0 {
		res = rows[0]
	}
	return res, err
}

// driveKVDB preloads the cluster and runs each drive in turn against it
// over HTTP (the public client); it returns one row per drive run.
func driveKVDB(ctx context.Context, cfg Config, k *kvdbCluster, w Workload, drives []driver.Config, profile bool) (rows []driver.Result, err error) {
	pr := cfg.Progress
	info := k.info
	leaderless := k.leaderless()
	urls := slices.Clone(info.URLs)
	if info.Leader > 0 && info.Leader < len(urls) {
		urls[0], urls[info.Leader] = urls[info.Leader], urls[0]
	}
	t := NewKVDBTarget(urls, leaderless, drives[0].Concurrency)
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
		d0 := drives[0]
		start := time.Now()
		if err = driver.Preload(ctx, t.Op, d0.Keys, d0.ValueSize, d0.Concurrency, d0.OpTimeout); err != nil {
			return
		}
		fmt.Fprintf(pr, "  %s: preloaded %d keys in %s\n", SystemKVDB, d0.Keys, time.Since(start).Round(time.Millisecond))
		for _, drive := range drives {
			drive.Progress = func(p driver.Progress) { fmt.Fprintln(pr, driver.ProgressLine(w.Name, SystemKVDB, p)) }
			run := func() error {
				var rerr error
				var res driver.Result
				res, rerr = driver.Run(ctx, drive, t.Op)
				if res.Mode != "" {
					rows = append(rows, res)
				}
				return rerr
			}
			if profile {
				err = k.profiled(cfg, w.Name, run)
			} else {
				err = run()
			}
			if err != nil {
				return
			}
		}
	})
	writes := "writes to the leader"
	if leaderless {
		writes = "writes round robin to every node (each coordinates)"
	}
	for i := range rows {
		rows[i].Notes = fmt.Sprintf("kvdb %s (%s, N=%d W=%d R=%d), delays none, node-to-node %s, 5 nodes %s; HTTP through the public Go client; %s, reads round robin to every node",
			info.Preset, info.Mode, len(info.URLs), info.W, info.R, peerTransportName(cfg.PeerTransport), k.where, writes)
	}
	return rows, err
}

// runKVDBRESP starts a cluster for the workload and drives it over its
// RESP ports with the peer client (go-redis, the code that drives Redis).
func runKVDBRESP(ctx context.Context, cfg Config, w Workload, drive driver.Config, peerBin string) (res driver.Result, err error) {
	k, err := startKVDB(ctx, cfg, w.Preset, 0)
	if err != nil {
		return res, err
	}
	defer func() { err = errors.Join(err, k.close()) }()
	rows, err := driveKVDBRESP(ctx, cfg, k, w, []driver.Config{drive}, peerBin, true, cfg.CPUProfileDir != "")
	if len(rows) > 0 {
		res = rows[0]
	}
	return res, err
}

// driveKVDBRESP runs each drive in turn against the cluster's RESP ports
// through kvdb-peerbench --system kvdb-resp (the first run preloads when
// preload is set).
func driveKVDBRESP(ctx context.Context, cfg Config, k *kvdbCluster, w Workload, drives []driver.Config, peerBin string, preload, profile bool) ([]driver.Result, error) {
	var rows []driver.Result
	for i, drive := range drives {
		run := PeerRun{
			Bin: peerBin, System: SystemKVDBRESP, Workload: w.Name, Drive: drive,
			Env:     map[string]string{"REDIS_ADDRS": strings.Join(k.info.respLeaderFirst(), ",")},
			Preload: preload && i == 0, WriteAll: k.leaderless(), Progress: cfg.Progress,
		}
		var res driver.Result
		f := func() (err error) { res, err = run.Run(ctx); return err }
		var err error
		if profile {
			err = k.profiled(cfg, w.Name+"-resp", f)
		} else {
			err = f()
		}
		if res.Mode != "" {
			res.Notes = fmt.Sprintf("kvdb %s (%s, N=%d W=%d R=%d), delays none, node-to-node %s, 5 nodes %s; %s",
				k.info.Preset, k.info.Mode, len(k.info.URLs), k.info.W, k.info.R, peerTransportName(cfg.PeerTransport), k.where, res.Notes)
			rows = append(rows, res)
		}
		if err != nil {
			return rows, err
		}
	}
	return rows, nil
}

// peerTransportName names the nodes' transport for the notes.
func peerTransportName(t string) string {
	if t == "" {
		t = node.DefaultConfig().PeerTransport
	}
	return t
}

// LoadAverage returns the 1, 5 and 15 minute load averages
// (/proc/loadavg; "" where there is none).
func LoadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], ", ")
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
	// Load is the load average when the run began (/proc/loadavg).
	Load string
	// Sweep is the sweep's configuration, when one ran.
	Sweep *SweepConfig
	// Memory holds the memory comparison, when one ran.
	Memory []MemoryComparison
}

// NewMeta describes the machine and the peers installed on it.
func NewMeta(cfg Config) Meta {
	m := Meta{Drive: cfg.Drive, OverrideWriteRatio: cfg.OverrideWriteRatio, Date: time.Now(),
		GOOS: runtime.GOOS, GOARCH: runtime.GOARCH, Go: runtime.Version(), CPUs: runtime.NumCPU(),
		Versions: map[string]string{}, Load: LoadAverage(), Sweep: cfg.Sweep}
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
