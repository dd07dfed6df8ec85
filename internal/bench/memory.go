package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/kvdb/kvdb/internal/bench/driver"
	"github.com/kvdb/kvdb/internal/store"
)

// MemoryResult is the heap cost of a filled store.
type MemoryResult struct {
	Keys      int `json:"keys"`
	ValueSize int `json:"value_size"`
	// HeapBytes is the live heap the store added (HeapAlloc after a full
	// GC, minus the same before it was created).
	HeapBytes uint64 `json:"heap_bytes"`
	// BytesPerKey is HeapBytes / Keys; PayloadPerKey is the average key
	// plus value length; OverheadPerKey is the difference (map slots,
	// string headers, version, shard tables).
	BytesPerKey    float64 `json:"bytes_per_key"`
	PayloadPerKey  float64 `json:"payload_per_key"`
	OverheadPerKey float64 `json:"overhead_per_key"`
}

func (m MemoryResult) String() string {
	return fmt.Sprintf("%d keys with %d-byte values: %.1f MiB live heap, %.1f bytes/key (payload %.1f key+value bytes, overhead %.1f bytes/key)",
		m.Keys, m.ValueSize, float64(m.HeapBytes)/(1<<20), m.BytesPerKey, m.PayloadPerKey, m.OverheadPerKey)
}

// MeasureStoreMemory fills a fresh store.New(0) with keys keys of
// valueSize-byte values through Apply, as replication does, and measures
// the live heap it holds. Every key and value is a string of its own, as
// if decoded from its own request, so nothing is shared that a server
// would not share.
func MeasureStoreMemory(keys, valueSize int) MemoryResult {
	before := liveHeap()
	s := store.New(0)
	var payload int
	value := driver.Value(valueSize, 0)
	for i := range keys {
		k := driver.KeyName(i)
		value[0] = 'a' + byte(i%26)
		v := string(value) // a fresh copy per key
		s.Apply(k, v, uint64(i+1))
		payload += len(k) + len(v)
	}
	after := liveHeap()
	runtime.KeepAlive(s)
	var heap uint64
	if after > before {
		heap = after - before
	}
	m := MemoryResult{Keys: keys, ValueSize: valueSize, HeapBytes: heap}
	if keys > 0 {
		m.BytesPerKey = float64(heap) / float64(keys)
		m.PayloadPerKey = float64(payload) / float64(keys)
		m.OverheadPerKey = m.BytesPerKey - m.PayloadPerKey
	}
	return m
}

// liveHeap returns HeapAlloc after two full collections (the second
// finishes sweeping what the first freed).
func liveHeap() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// MemoryComparison is kvdb's memory per key beside Redis's for the same
// keys and values, loaded through each one's fastest client path.
type MemoryComparison struct {
	Keys          int     `json:"keys"`
	ValueSize     int     `json:"value_size"`
	PayloadPerKey float64 `json:"payload_per_key"`
	// KVDB: one node (a 1-node w1r1 cluster in its own process), its live
	// heap after a full GC and its RSS, before and after the load.
	KVDBHeapBefore  uint64  `json:"kvdb_heap_before"`
	KVDBHeapAfter   uint64  `json:"kvdb_heap_after"`
	KVDBRSSBefore   uint64  `json:"kvdb_rss_before"`
	KVDBRSSAfter    uint64  `json:"kvdb_rss_after"`
	KVDBHeapPerKey  float64 `json:"kvdb_heap_per_key"`
	KVDBRSSPerKey   float64 `json:"kvdb_rss_per_key"`
	KVDBLoadSeconds float64 `json:"kvdb_load_seconds"`
	// Redis: the primary's INFO memory used_memory before (after
	// FLUSHALL) and after the load (its replicas caught up).
	RedisUsedBefore   int64   `json:"redis_used_memory_before"`
	RedisUsedAfter    int64   `json:"redis_used_memory_after"`
	RedisPerKey       float64 `json:"redis_per_key"`
	RedisLoadSeconds  float64 `json:"redis_load_seconds"`
	RedisMeasured     bool    `json:"redis_measured"`
	KVDBMeasured      bool    `json:"kvdb_measured"`
	LoadPath          string  `json:"load_path"`
	KVDBOverRedisHeap float64 `json:"kvdb_heap_over_redis,omitempty"`
}

// perKey returns (after - before) / keys, or 0 when memory shrank.
func perKey(before, after uint64, keys int) float64 {
	if keys <= 0 || after <= before {
		return 0
	}
	return float64(after-before) / float64(keys)
}

// payloadPerKey is the average key length plus valueSize over keys keys
// named by driver.KeyName.
func payloadPerKey(keys, valueSize int) float64 {
	if keys <= 0 {
		return 0
	}
	var n int
	for i := range keys {
		n += len(driver.KeyName(i))
	}
	return float64(n)/float64(keys) + float64(valueSize)
}

// finish computes the per-key figures and the ratio.
func (m *MemoryComparison) finish() {
	m.PayloadPerKey = payloadPerKey(m.Keys, m.ValueSize)
	if m.KVDBMeasured {
		m.KVDBHeapPerKey = perKey(m.KVDBHeapBefore, m.KVDBHeapAfter, m.Keys)
		m.KVDBRSSPerKey = perKey(m.KVDBRSSBefore, m.KVDBRSSAfter, m.Keys)
	}
	if m.RedisMeasured && m.RedisUsedBefore >= 0 && m.RedisUsedAfter >= 0 {
		m.RedisPerKey = perKey(uint64(m.RedisUsedBefore), uint64(m.RedisUsedAfter), m.Keys)
	}
	if m.KVDBMeasured && m.RedisMeasured && m.RedisPerKey > 0 {
		m.KVDBOverRedisHeap = m.KVDBHeapPerKey / m.RedisPerKey
	}
}

// Memory-comparison load settings: SETs per pipeline and connections.
const (
	memoryFillBatch = 1000
	memoryFillConns = 8
)

// runMemory measures, for each key count, kvdb's and Redis's memory per
// key (see MemoryComparison), kvdb with kvdb-resp selected, Redis with
// redis selected.
func runMemory(ctx context.Context, cfg Config, peers *Peers, peerBin string) ([]MemoryComparison, error) {
	pr := cfg.Progress
	var (
		out  []MemoryComparison
		errs []error
	)
	doKVDB := slices.Contains(cfg.Systems, SystemKVDBRESP)
	doRedis := peers != nil && peers.Env["REDIS_ADDRS"] != ""
	for _, n := range cfg.MemoryKeys {
		m := MemoryComparison{Keys: n, ValueSize: cfg.Drive.ValueSize,
			LoadPath: fmt.Sprintf("RESP: go-redis pipelines of %d SETs over %d connections to one address (kvdb: a 1-node w1r1 cluster; Redis: the primary, 4 replicas attached)", memoryFillBatch, memoryFillConns)}
		if doKVDB {
			fmt.Fprintf(pr, "memory: kvdb, %d keys of %d bytes into a 1-node cluster over RESP\n", n, m.ValueSize)
			if err := memoryKVDB(ctx, cfg, peerBin, &m); err != nil {
				errs = append(errs, fmt.Errorf("memory kvdb %d keys: %w", n, err))
			}
		}
		if doRedis {
			fmt.Fprintf(pr, "memory: redis, %d keys of %d bytes into the primary\n", n, m.ValueSize)
			fr, err := runFill(ctx, cfg, peerBin, SystemRedis, peers.Env["REDIS_ADDRS"], n, true)
			if err != nil {
				errs = append(errs, fmt.Errorf("memory redis %d keys: %w", n, err))
			} else {
				m.RedisUsedBefore, m.RedisUsedAfter, m.RedisLoadSeconds, m.RedisMeasured = fr.UsedMemoryBefore, fr.UsedMemoryAfter, fr.Seconds, true
			}
		}
		m.finish()
		fmt.Fprintf(pr, "  => %d keys: kvdb %.1f B/key heap (%.1f RSS, loaded in %.1fs), redis %.1f B/key used_memory (loaded in %.1fs)\n",
			n, m.KVDBHeapPerKey, m.KVDBRSSPerKey, m.KVDBLoadSeconds, m.RedisPerKey, m.RedisLoadSeconds)
		out = append(out, m)
	}
	return out, errors.Join(errs...)
}

// memoryKVDB loads a fresh 1-node cluster and measures its process.
func memoryKVDB(ctx context.Context, cfg Config, peerBin string, m *MemoryComparison) (err error) {
	k, err := startKVDB(ctx, cfg, "w1r1", 1)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, k.close()) }()
	before, err := k.mem()
	if err != nil {
		return err
	}
	fr, err := runFill(ctx, cfg, peerBin, SystemKVDBRESP, strings.Join(k.info.respLeaderFirst(), ","), m.Keys, false)
	if err != nil {
		return err
	}
	after, err := k.mem()
	if err != nil {
		return err
	}
	m.KVDBHeapBefore, m.KVDBHeapAfter = before.HeapBytes, after.HeapBytes
	m.KVDBRSSBefore, m.KVDBRSSAfter = before.RSSBytes, after.RSSBytes
	m.KVDBLoadSeconds, m.KVDBMeasured = fr.Seconds, true
	if cfg.CPUProfileDir != "" {
		path, err := filepath.Abs(filepath.Join(cfg.CPUProfileDir, fmt.Sprintf("heap-%d.pprof", m.Keys)))
		if err == nil {
			err = k.heapProf(path)
		}
		if err != nil {
			return fmt.Errorf("heap profile: %w", err)
		}
		fmt.Fprintf(cfg.Progress, "  heap profile of the kvdb node -> %s\n", path)
	}
	return nil
}

// fillResult is kvdb-peerbench --fill's JSON line.
type fillResult struct {
	Keys             int     `json:"keys"`
	Seconds          float64 `json:"seconds"`
	KeysPerSec       float64 `json:"keys_per_sec"`
	UsedMemoryBefore int64   `json:"used_memory_before"`
	UsedMemoryAfter  int64   `json:"used_memory_after"`
}

// runFill runs kvdb-peerbench --fill.
func runFill(ctx context.Context, cfg Config, peerBin, system, addrs string, keys int, flush bool) (fillResult, error) {
	var fr fillResult
	args := []string{"--system", system, "--redis-addrs", addrs, "--fill", strconv.Itoa(keys),
		"--fill-batch", strconv.Itoa(memoryFillBatch), "--concurrency", strconv.Itoa(memoryFillConns),
		"--value-size", strconv.Itoa(cfg.Drive.ValueSize), "--op-timeout", "60s", fmt.Sprintf("--flushall=%t", flush)}
	cmd := exec.CommandContext(ctx, peerBin, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, cfg.Progress
	cmd.WaitDelay = 10 * time.Second
	if err := cmd.Run(); err != nil {
		return fr, fmt.Errorf("%s %s: %w", filepath.Base(peerBin), strings.Join(args, " "), err)
	}
	if err := json.Unmarshal(bytes.TrimSpace(out.Bytes()), &fr); err != nil {
		return fr, fmt.Errorf("%s --fill output: %w", filepath.Base(peerBin), err)
	}
	return fr, nil
}

// memoryMarkdown renders the comparison.
func memoryMarkdown(ms []MemoryComparison) string {
	if len(ms) == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteString("\n## Memory per key\n\n")
	fmt.Fprintf(&b, "Loaded through %s. kvdb: growth of the node process's live heap (after a full GC) and of its RSS, divided by the keys; Redis: growth of INFO memory `used_memory` on the primary after FLUSHALL, divided by the keys.\n\n", ms[0].LoadPath)
	writeRow(&b, []string{"keys", "value bytes", "payload B/key", "kvdb heap B/key", "kvdb RSS B/key", "redis used_memory B/key", "kvdb heap / redis", "kvdb load", "redis load"})
	writeRow(&b, []string{"---:", "---:", "---:", "---:", "---:", "---:", "---:", "---:", "---:"})
	for _, m := range ms {
		f := func(x float64, ok bool) string {
			if !ok {
				return "—"
			}
			return fmt.Sprintf("%.1f", x)
		}
		secs := func(x float64, ok bool) string {
			if !ok || x <= 0 {
				return "—"
			}
			return fmt.Sprintf("%.1f s (%.0f keys/s)", x, float64(m.Keys)/x)
		}
		writeRow(&b, []string{fmt.Sprint(m.Keys), fmt.Sprint(m.ValueSize), fmt.Sprintf("%.1f", m.PayloadPerKey),
			f(m.KVDBHeapPerKey, m.KVDBMeasured), f(m.KVDBRSSPerKey, m.KVDBMeasured), f(m.RedisPerKey, m.RedisMeasured),
			fmtRatio(m.KVDBOverRedisHeap, m.KVDBOverRedisHeap > 0), secs(m.KVDBLoadSeconds, m.KVDBMeasured), secs(m.RedisLoadSeconds, m.RedisMeasured)})
	}
	return b.String()
}
