// Command kvdb-peerbench runs one benchmark workload against Redis or etcd
// with the same driver as `kvdb bench` (github.com/kvdb/kvdb/internal/bench/driver)
// and prints the result row as one JSON line on stdout. `kvdb bench` builds
// and runs it; it lives in a module of its own so that the main module does
// not depend on the Redis and etcd client libraries.
//
//	kvdb-peerbench --system redis|redis-wait4|etcd [--redis-addrs A,B,..]
//	    [--etcd-endpoints U,V,..] [--etcd-serializable] [--workload NAME]
//	    [--preload=false] [--progress] <workload flags: --mode --concurrency
//	    --rate --duration --warmup --write-ratio --keys --value-size ...>
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
	SystemEtcd       = "etcd"
)

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("kvdb-peerbench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg := driver.DefaultConfig()
	cfg.RegisterFlags(fs)
	var (
		system       = fs.String("system", "", "redis, redis-wait4 or etcd")
		redisAddrs   = fs.String("redis-addrs", os.Getenv("REDIS_ADDRS"), "Redis host:port list, primary first")
		etcdURLs     = fs.String("etcd-endpoints", os.Getenv("ETCD_ENDPOINTS"), "etcd client URLs")
		serializable = fs.Bool("etcd-serializable", false, "etcd: serializable reads instead of linearizable")
		workload     = fs.String("workload", "", "workload name for the result row")
		preload      = fs.Bool("preload", true, "write every key once before the run")
		progress     = fs.Bool("progress", false, "print a progress line to stderr every second")
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
	switch *system {
	case SystemRedis, SystemRedisWait4:
		addrs := splitList(*redisAddrs)
		wait := 0
		if *system == SystemRedisWait4 {
			wait = 4
		}
		r, err := peer.NewRedis(ctx, peer.RedisConfig{Addrs: addrs, Wait: wait, PoolSize: cfg.Concurrency, Timeout: dialTimeout})
		if err != nil {
			fmt.Fprintf(stderr, "kvdb-peerbench: %v\n", err)
			return 1
		}
		op, close = r.Op, r.Close
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
		fmt.Fprintf(stderr, "kvdb-peerbench: --system %q: want %s, %s or %s\n", *system, SystemRedis, SystemRedisWait4, SystemEtcd)
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

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
