package bench

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kvdb/kvdb/internal/bench/driver"
)

// shortDrive is a workload short enough for a unit test run.
func shortDrive() driver.Config {
	d := driver.DefaultConfig()
	d.Concurrency, d.Keys, d.Duration, d.Warmup = 4, 200, 300*time.Millisecond, 50*time.Millisecond
	d.OpTimeout = 5 * time.Second
	return d
}

func TestRunKVDBInProcess(t *testing.T) {
	var progress strings.Builder
	cfg := Config{
		Drive:     shortDrive(),
		Workloads: []Workload{workloads[1], workloads[4]}, // w5r1-50, leaderless
		Systems:   []string{SystemKVDB},
		Progress:  &progress,
	}
	rows, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatalf("%v\n%s", err, progress.String())
	}
	if len(rows) != 2 {
		t.Fatalf("%d rows, want 2", len(rows))
	}
	for i, want := range []string{"w5r1-50", "leaderless-w5r1-50"} {
		r := rows[i]
		if r.Workload != want || r.System != SystemKVDB || r.Ops == 0 || r.Errors != 0 || r.Reads == 0 || r.Writes == 0 {
			t.Errorf("row %d: %+v", i, r)
		}
		if r.WriteRatio != 0.5 || !strings.Contains(r.Notes, "delays none") {
			t.Errorf("row %d does not describe its workload: ratio %g notes %q", i, r.WriteRatio, r.Notes)
		}
	}
	if !strings.Contains(progress.String(), "[1/2] w5r1-50") || !strings.Contains(progress.String(), "preloaded 200 keys") {
		t.Errorf("progress:\n%s", progress.String())
	}
}

// TestRunWithPeers drives all four systems through the real peers
// (scripts/bench-peers.sh, redis-server, etcd, the bench/ module's
// client). It needs those installed (the script installs them with
// apt-get) and is skipped unless KVDB_PEER_BENCH=1.
func TestRunWithPeers(t *testing.T) {
	if os.Getenv("KVDB_PEER_BENCH") != "1" {
		t.Skip("set KVDB_PEER_BENCH=1 to run against Redis and etcd")
	}
	wd, _ := os.Getwd()
	repo, err := FindRepo(wd)
	if err != nil {
		t.Fatal(err)
	}
	var progress strings.Builder
	cfg := Config{
		Drive:     shortDrive(),
		Workloads: []Workload{workloads[1]},
		Repo:      repo,
		Progress:  &progress,
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	rows, err := Run(ctx, cfg)
	if err != nil {
		t.Fatalf("%v\n%s", err, progress.String())
	}
	if len(rows) != len(Systems()) {
		t.Fatalf("%d rows:\n%s", len(rows), progress.String())
	}
	for _, r := range rows {
		if r.Ops == 0 || r.Errors != 0 {
			t.Errorf("%s: %+v", r.System, r)
		}
		if _, ok := Ratio(rows, r.Workload, r.System); !ok && r.System != SystemKVDBRESP {
			t.Errorf("no ratio for %s", r.System)
		}
	}
	dir := t.TempDir()
	if err := WriteResults(dir, rows, NewMeta(cfg)); err != nil {
		t.Fatal(err)
	}
	md, _ := os.ReadFile(filepath.Join(dir, MarkdownFile))
	t.Logf("\n%s\n%s", progress.String(), md)
}

// TestRunKVDBRESPWithRedis drives kvdb over RESP and Redis with the same
// peer client, then runs redis-benchmark against both, a two-step sweep
// and a small memory comparison. Like TestRunWithPeers it needs the peers
// (KVDB_PEER_BENCH=1).
func TestRunKVDBRESPWithRedis(t *testing.T) {
	if os.Getenv("KVDB_PEER_BENCH") != "1" {
		t.Skip("set KVDB_PEER_BENCH=1 to run against Redis")
	}
	wd, _ := os.Getwd()
	repo, err := FindRepo(wd)
	if err != nil {
		t.Fatal(err)
	}
	var progress strings.Builder
	var mem []MemoryComparison
	cfg := Config{
		Drive:                  shortDrive(),
		Workloads:              []Workload{workloads[0], workloads[4]}, // read-r1, leaderless (writes to every node)
		Systems:                []string{SystemKVDBRESP, SystemRedis},
		Repo:                   repo,
		RedisBenchmarkRequests: 2000,
		Sweep:                  &SweepConfig{Rates: []float64{500, 1000}, Duration: 300 * time.Millisecond, Warmup: 100 * time.Millisecond, InFlight: 16, P99LimitMs: 1000, Workloads: []Workload{workloads[0]}},
		MemoryKeys:             []int{20000},
		MemoryOut:              &mem,
		Progress:               &progress,
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	rows, err := Run(ctx, cfg)
	if err != nil {
		t.Fatalf("%v\n%s", err, progress.String())
	}
	count := map[string]int{}
	for _, r := range rows {
		count[r.Phase+"/"+r.System]++
		if r.Phase == "" && (r.Ops == 0 || r.Errors != 0) {
			t.Errorf("%s %s: %+v", r.Workload, r.System, r)
		}
		if r.Phase == PhaseRedisBenchmark && r.OpsPerSec <= 0 {
			t.Errorf("redis-benchmark row %+v", r)
		}
	}
	want := map[string]int{"/kvdb-resp": 2, "/redis": 2, "redis-benchmark/kvdb-resp": 2, "redis-benchmark/redis": 2, "sweep/kvdb-resp": 2, "sweep/redis": 2}
	for k, n := range want {
		if count[k] != n {
			t.Errorf("%d rows of %s, want %d (all: %v)\n%s", count[k], k, n, count, progress.String())
		}
	}
	if g := Goals(rows); len(g) != 2 || !g[0].Measured {
		t.Errorf("goals %+v", g)
	}
	if len(mem) != 1 || !mem[0].KVDBMeasured || !mem[0].RedisMeasured || mem[0].KVDBHeapPerKey <= 0 || mem[0].RedisPerKey <= 0 {
		t.Errorf("memory %+v", mem)
	}
	meta := NewMeta(cfg)
	meta.Memory = mem
	md := Markdown(rows, meta)
	for _, s := range []string{"## kvdb over RESP against Redis", "## redis-benchmark", "## Rate sweep", "## Memory per key"} {
		if !strings.Contains(md, s) {
			t.Errorf("bench.md lacks %q", s)
		}
	}
	t.Logf("\n%s\n%s", progress.String(), md)
}
