package bench

import (
	"fmt"
	"runtime"

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
