package bench

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/kvdb/kvdb/internal/bench/driver"
)

// Defaults of the redis-benchmark runs.
const (
	DefaultRedisBenchmarkRequests = 100_000
	RedisBenchmarkClients         = 50
)

// RedisBenchmark runs `redis-benchmark -t set,get -n requests -c 50
// --csv` against addr and returns one row per test (SET, GET): Phase
// redis-benchmark, Workload "redis-benchmark-set" / "-get", the given
// system, and redis-benchmark's own figures.
func RedisBenchmark(ctx context.Context, addr, system string, requests int, log io.Writer) ([]driver.Result, error) {
	host, port, ok := strings.Cut(addr, ":")
	if !ok {
		return nil, fmt.Errorf("redis-benchmark: address %q: want host:port", addr)
	}
	bin, err := exec.LookPath("redis-benchmark")
	if err != nil {
		return nil, fmt.Errorf("redis-benchmark not installed (Debian package redis-tools; scripts/bench-peers.sh installs redis-server, which brings it): %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	args := []string{"-h", host, "-p", port, "-t", "set,get", "-n", strconv.Itoa(requests), "-c", strconv.Itoa(RedisBenchmarkClients), "--csv"}
	cmd := exec.CommandContext(ctx, bin, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, log
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("redis-benchmark %s: %w", strings.Join(args, " "), err)
	}
	rows, err := ParseRedisBenchmarkCSV(out.String())
	if err != nil {
		return nil, err
	}
	for i := range rows {
		rows[i].System = system
		rows[i].Concurrency = RedisBenchmarkClients
		rows[i].Notes = "redis-benchmark " + strings.Join(args, " ")
	}
	return rows, nil
}

// ParseRedisBenchmarkCSV parses redis-benchmark's --csv output (7.x: a
// header "test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms",
// "p95_latency_ms","p99_latency_ms","max_latency_ms", then one line per
// test). Columns are found by name; rps and the latencies it has are
// filled in.
func ParseRedisBenchmarkCSV(text string) ([]driver.Result, error) {
	r := csv.NewReader(strings.NewReader(text))
	r.FieldsPerRecord = -1
	recs, err := r.ReadAll()
	if err != nil {
		return nil, fmt.Errorf("redis-benchmark output: %w", err)
	}
	if len(recs) < 2 {
		return nil, errors.New("redis-benchmark output: no result lines")
	}
	col := map[string]int{}
	for i, h := range recs[0] {
		col[strings.TrimSpace(h)] = i
	}
	if _, ok := col["test"]; !ok {
		return nil, fmt.Errorf("redis-benchmark output: no \"test\" column in %q", recs[0])
	}
	if _, ok := col["rps"]; !ok {
		return nil, fmt.Errorf("redis-benchmark output: no \"rps\" column in %q", recs[0])
	}
	num := func(rec []string, name string) (float64, error) {
		i, ok := col[name]
		if !ok || i >= len(rec) {
			return 0, nil
		}
		return strconv.ParseFloat(strings.TrimSpace(rec[i]), 64)
	}
	var rows []driver.Result
	for _, rec := range recs[1:] {
		if len(rec) == 0 || (len(rec) == 1 && strings.TrimSpace(rec[0]) == "") {
			continue
		}
		test := strings.TrimSpace(rec[col["test"]])
		row := driver.Result{Phase: PhaseRedisBenchmark, Workload: "redis-benchmark-" + strings.ToLower(test), Mode: driver.ModeClosed}
		if test == "SET" {
			row.WriteRatio = 1
		}
		for _, f := range []struct {
			name string
			dst  *float64
		}{{"rps", &row.OpsPerSec}, {"avg_latency_ms", &row.MeanMs}, {"p50_latency_ms", &row.P50Ms}, {"p99_latency_ms", &row.P99Ms}, {"max_latency_ms", &row.MaxMs}} {
			v, err := num(rec, f.name)
			if err != nil {
				return nil, fmt.Errorf("redis-benchmark output: %s %s: %w", test, f.name, err)
			}
			*f.dst = v
		}
		rows = append(rows, row)
	}
	if len(rows) == 0 {
		return nil, errors.New("redis-benchmark output: no result lines")
	}
	return rows, nil
}

// redisBenchmarkMarkdown renders the redis-benchmark rows side by side.
func redisBenchmarkMarkdown(rows []driver.Result) string {
	var rb []driver.Result
	for _, r := range rows {
		if r.Phase == PhaseRedisBenchmark {
			rb = append(rb, r)
		}
	}
	if len(rb) == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteString("\n## redis-benchmark\n\n")
	fmt.Fprintf(&b, "`redis-benchmark -t set,get -n N -c %d --csv` (its defaults otherwise: 3-byte values, one key, no pipelining), "+
		"against the leader of a kvdb w5r1 cluster with `--delays none` over RESP (SET answered once all 5 nodes hold it) and against the Redis primary (4 replicas attached, replicated asynchronously), in the same run.\n\n", RedisBenchmarkClients)
	writeRow(&b, []string{"test", "target", "requests/s", "avg ms", "p50 ms", "p99 ms", "max ms", "kvdb-resp / redis"})
	writeRow(&b, []string{"---", "---", "---:", "---:", "---:", "---:", "---:", "---:"})
	for _, r := range rb {
		ratio := ""
		if r.System == SystemKVDBRESP {
			for _, p := range rb {
				if p.System == SystemRedis && p.Workload == r.Workload && p.OpsPerSec > 0 {
					ratio = fmt.Sprintf("%.2f", r.OpsPerSec/p.OpsPerSec)
				}
			}
		}
		test := strings.ToUpper(strings.TrimPrefix(r.Workload, "redis-benchmark-"))
		writeRow(&b, []string{test, r.System, fmt.Sprintf("%.0f", r.OpsPerSec), ms(r.MeanMs), ms(r.P50Ms), ms(r.P99Ms), ms(r.MaxMs), ratio})
	}
	return b.String()
}
