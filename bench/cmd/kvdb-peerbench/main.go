// Command kvdb-peerbench runs one benchmark workload against Redis or etcd
// with the same driver as `kvdb bench` (github.com/kvdb/kvdb/internal/bench/driver)
// and prints the result row as one JSON line on stdout. `kvdb bench` builds
// and runs it; it lives in a module of its own so that the main module does
// not depend on the Redis and etcd client libraries.
//
//	kvdb-peerbench --system redis|redis-wait4|kvdb-resp|etcd [--redis-addrs A,B,..]
//	    [--etcd-endpoints U,V,..] [--etcd-serializable] [--workload NAME]
//	    [--preload=false] [--progress] [--write-all] <workload flags: --mode
//	    --concurrency --rate --duration --warmup --write-ratio --keys
//	    --value-size ...>
//	kvdb-peerbench --system redis|kvdb-resp --fill N [--flushall]
//	    [--fill-batch 1000] [--concurrency C] [--value-size S]
//
// kvdb-resp is a kvdb cluster over its Redis-protocol ports, driven by the
// very same go-redis code as redis: --redis-addrs lists the leader first
// (writes go there; followers would answer READONLY), or, with
// --write-all, a leaderless cluster's nodes, each taking writes in turn.
//
// --fill loads N keys through pipelines (the fastest path both servers
// have) instead of running a workload, and prints one JSON line: keys,
// seconds, keys_per_sec and the first address's INFO memory used_memory
// before and after (for Redis, after its replicas caught up).
//
// Addresses default to $REDIS_ADDRS and $ETCD_ENDPOINTS, as printed by
// scripts/bench-peers.sh start. Exit status 0 success, 1 failure, 2 bad
// usage.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/kvdb/kvdb/bench/peer"
	"github.com/kvdb/kvdb/internal/bench/driver"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// Systems this client drives.
const (
	SystemRedis      = "redis"
	SystemRedisWait4 = "redis-wait4"
	SystemKVDBRESP   = "kvdb-resp"
	SystemEtcd       = "etcd"
)

// FillResult is the JSON line of --fill.
type FillResult struct {
	System           string  `json:"system"`
	Keys             int     `json:"keys"`
	ValueSize        int     `json:"value_size"`
	Seconds          float64 `json:"seconds"`
	KeysPerSec       float64 `json:"keys_per_sec"`
	Conns            int     `json:"conns"`
	Batch            int     `json:"batch"`
	UsedMemoryBefore int64   `json:"used_memory_before"`
	UsedMemoryAfter  int64   `json:"used_memory_after"`
	// ReplicasCaughtUp is how many replicas WAIT counted after the fill
	// (Redis only).
	ReplicasCaughtUp int64 `json:"replicas_caught_up,omitempty"`
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("kvdb-peerbench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg := driver.DefaultConfig()
	cfg.RegisterFlags(fs)
	var (
		system       = fs.String("system", "", "redis, redis-wait4, kvdb-resp or etcd")
		redisAddrs   = fs.String("redis-addrs", os.Getenv("REDIS_ADDRS"), "Redis host:port list, primary first")
		etcdURLs     = fs.String("etcd-endpoints", os.Getenv("ETCD_ENDPOINTS"), "etcd client URLs")
		serializable = fs.Bool("etcd-serializable", false, "etcd: serializable reads instead of linearizable")
		workload     = fs.String("workload", "", "workload name for the result row")
		preload      = fs.Bool("preload", true, "write every key once before the run")
		progress     = fs.Bool("progress", false, "print a progress line to stderr every second")
		writeAll     = fs.Bool("write-all", false, "redis, kvdb-resp: writes round robin over every address (a leaderless kvdb cluster)")
		fill         = fs.Int("fill", 0, "redis, kvdb-resp: load this many keys through pipelines into the first address instead of a workload; print keys/s and INFO memory")
		fillBatch    = fs.Int("fill-batch", 1000, "--fill: SETs per pipeline")
		flushAll     = fs.Bool("flushall", false, "--fill: FLUSHALL first (redis)")
	)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "kvdb-peerbench: unexpected arguments %q\n", fs.Args())
		return 2
	}
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		fmt.Fprintf(stderr, "kvdb-peerbench: %v\n", err)
		return 2
	}
	dialTimeout := 5 * time.Second
	var (
		op    driver.Op
		close func() error
		notes string
	)
	if *fill < 0 || *fillBatch < 1 || (*fill > 0 && *system != SystemRedis && *system != SystemKVDBRESP) {
		fmt.Fprintf(stderr, "kvdb-peerbench: --fill needs --system redis or kvdb-resp, a count >= 0 and --fill-batch >= 1\n")
		return 2
	}
	switch *system {
	case SystemRedis, SystemRedisWait4, SystemKVDBRESP:
		addrs := splitList(*redisAddrs)
		wait := 0
		if *system == SystemRedisWait4 {
			wait = 4
		}
		r, err := peer.NewRedis(ctx, peer.RedisConfig{Addrs: addrs, Wait: wait, WriteAll: *writeAll, PoolSize: cfg.Concurrency, Timeout: dialTimeout})
		if err != nil {
			fmt.Fprintf(stderr, "kvdb-peerbench: %v\n", err)
			return 1
		}
		if *fill > 0 {
			defer r.Close()
			return runFill(ctx, r, *system, *fill, cfg.ValueSize, cfg.Concurrency, *fillBatch, *flushAll, len(addrs)-1, stdout, stderr)
		}
		op, close = r.Op, r.Close
		if *system == SystemKVDBRESP {
			writes := "SET on the leader's RESP port (answered OK once W copies hold it)"
			if *writeAll {
				writes = "SET round robin over every node's RESP port (each coordinates; OK once W copies hold it)"
			}
			notes = fmt.Sprintf("kvdb over RESP with go-redis, the same client code as redis: GET round robin over all %d nodes; %s", len(addrs), writes)
			break
		}
		notes = fmt.Sprintf("Redis primary + %d replicas; GET round robin over all %d (replica reads may be stale); SET on the primary", len(addrs)-1, len(addrs))
		if wait > 0 {
			notes += fmt.Sprintf(", each followed by WAIT %d 0 on the same connection (answered once %d replicas have it)", wait, wait)
		} else {
			notes += ", replicated asynchronously"
		}
	case SystemEtcd:
		urls := splitList(*etcdURLs)
		e, err := peer.NewEtcd(ctx, peer.EtcdConfig{Endpoints: urls, Serializable: *serializable, Timeout: dialTimeout})
		if err != nil {
			fmt.Fprintf(stderr, "kvdb-peerbench: %v\n", err)
			return 1
		}
		op, close = e.Op, e.Close
		reads := "linearizable Get (ReadIndex via the leader)"
		if *serializable {
			reads = "serializable Get (local member, may be stale)"
		}
		notes = fmt.Sprintf("etcd %d members, data on tmpfs; Put through raft; %s", len(urls), reads)
	default:
		fmt.Fprintf(stderr, "kvdb-peerbench: --system %q: want %s, %s, %s or %s\n", *system, SystemRedis, SystemRedisWait4, SystemKVDBRESP, SystemEtcd)
		return 2
	}
	defer close()

	if *preload {
		start := time.Now()
		if err := driver.Preload(ctx, op, cfg.Keys, cfg.ValueSize, cfg.Concurrency, cfg.OpTimeout); err != nil {
			fmt.Fprintf(stderr, "kvdb-peerbench: %s: %v\n", *system, err)
			return 1
		}
		fmt.Fprintf(stderr, "  %s: preloaded %d keys in %s\n", *system, cfg.Keys, time.Since(start).Round(time.Millisecond))
	}
	if *progress {
		name := *system
		cfg.Progress = func(p driver.Progress) {
			fmt.Fprintln(stderr, driver.ProgressLine(*workload, name, p))
		}
	}
	res, err := driver.Run(ctx, cfg, op)
	res.Workload, res.System, res.Notes = *workload, *system, notes
	if res.Mode != "" {
		if jerr := json.NewEncoder(stdout).Encode(res); jerr != nil {
			fmt.Fprintf(stderr, "kvdb-peerbench: %v\n", jerr)
			return 1
		}
	}
	if err != nil {
		fmt.Fprintf(stderr, "kvdb-peerbench: %v\n", err)
		return 1
	}
	return 0
}

// runFill is --fill: pipelined SETs into the first address, timed, with
// INFO memory's used_memory before and after.
func runFill(ctx context.Context, r *peer.Redis, system string, keys, valueSize, conns, batch int, flush bool, replicas int, stdout, stderr io.Writer) int {
	fail := func(err error) int {
		fmt.Fprintf(stderr, "kvdb-peerbench: %s --fill: %v\n", system, err)
		return 1
	}
	if flush {
		if err := r.FlushAll(ctx); err != nil {
			return fail(err)
		}
	}
	res := FillResult{System: system, Keys: keys, ValueSize: valueSize, Conns: conns, Batch: batch}
	var err error
	if res.UsedMemoryBefore, err = r.UsedMemory(ctx); err != nil {
		return fail(err)
	}
	start := time.Now()
	if err := r.Fill(ctx, keys, valueSize, conns, batch); err != nil {
		return fail(err)
	}
	res.Seconds = time.Since(start).Seconds()
	res.KeysPerSec = float64(keys) / res.Seconds
	if system == SystemRedis && replicas > 0 {
		// Replicas' output buffers count in used_memory until they drain.
		if res.ReplicasCaughtUp, err = r.WaitReplicas(ctx, "kvdb-peerbench-fill-done", replicas, time.Minute); err != nil {
			return fail(err)
		}
	}
	if res.UsedMemoryAfter, err = r.UsedMemory(ctx); err != nil {
		return fail(err)
	}
	fmt.Fprintf(stderr, "  %s: filled %d keys in %.1fs (%.0f keys/s)\n", system, keys, res.Seconds, res.KeysPerSec)
	if err := json.NewEncoder(stdout).Encode(res); err != nil {
		return fail(err)
	}
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
