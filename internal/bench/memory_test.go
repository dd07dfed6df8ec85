package bench

import (
	"strings"
	"testing"

	"github.com/kvdb/kvdb/internal/bench/driver"
)

func TestMeasureStoreMemory(t *testing.T) {
	m := MeasureStoreMemory(20000, 100)
	if m.Keys != 20000 || m.PayloadPerKey != 111 { // "key" + 8 digits + 100 bytes
		t.Errorf("%+v", m)
	}
	// The store holds every byte of payload, plus some overhead; a figure
	// below the payload means the measurement missed it, one far above
	// means it counted something else.
	if m.BytesPerKey < m.PayloadPerKey || m.BytesPerKey > 10*m.PayloadPerKey {
		t.Errorf("bytes/key %.1f for a %.0f-byte payload", m.BytesPerKey, m.PayloadPerKey)
	}
}

// BenchmarkStoreMemory reports the store's live heap per key at one
// million keys with 100-byte values (issue 7, item 4):
//
//	go test -run '^$' -bench StoreMemory -benchtime 1x ./internal/bench/
func BenchmarkStoreMemory(b *testing.B) {
	var m MemoryResult
	for b.Loop() {
		m = MeasureStoreMemory(1_000_000, 100)
	}
	b.ReportMetric(m.BytesPerKey, "B/key")
	b.ReportMetric(m.OverheadPerKey, "overhead-B/key")
	b.ReportMetric(float64(m.HeapBytes)/(1<<20), "heap-MiB")
}

func TestMemoryComparisonArithmetic(t *testing.T) {
	m := MemoryComparison{Keys: 1000, ValueSize: 100,
		KVDBHeapBefore: 10_000, KVDBHeapAfter: 10_000 + 200_000, KVDBRSSBefore: 1 << 20, KVDBRSSAfter: 1<<20 + 400_000, KVDBMeasured: true,
		RedisUsedBefore: 900_000, RedisUsedAfter: 900_000 + 160_000, RedisMeasured: true}
	m.finish()
	if m.KVDBHeapPerKey != 200 || m.KVDBRSSPerKey != 400 || m.RedisPerKey != 160 || m.KVDBOverRedisHeap != 1.25 {
		t.Errorf("%+v", m)
	}
	// driver.KeyName(0..999): the payload is the mean key length + value.
	want := 0.0
	for i := range 1000 {
		want += float64(len(driver.KeyName(i)))
	}
	if got := m.PayloadPerKey; got != want/1000+100 {
		t.Errorf("payload %g, want %g", got, want/1000+100)
	}
	// Memory that shrank counts as nothing; an unmeasured side no ratio.
	m = MemoryComparison{Keys: 10, KVDBHeapBefore: 100, KVDBHeapAfter: 50, KVDBMeasured: true}
	m.finish()
	if m.KVDBHeapPerKey != 0 || m.KVDBOverRedisHeap != 0 || perKey(1, 2, 0) != 0 {
		t.Errorf("%+v", m)
	}
	md := memoryMarkdown([]MemoryComparison{m})
	if !strings.Contains(md, "| 10 | 0 |") || !strings.Contains(md, "| — |") {
		t.Errorf("markdown:\n%s", md)
	}
}

func TestParseVmRSS(t *testing.T) {
	status := "Name:\tkvdb\nVmPeak:\t  99 kB\nVmRSS:\t   2048 kB\nThreads: 9\n"
	if got := parseVmRSS(status); got != 2048<<10 {
		t.Errorf("VmRSS %d", got)
	}
	if parseVmRSS("Name: x\n") != 0 || parseVmRSS("VmRSS: lots kB\n") != 0 {
		t.Error("garbage parsed")
	}
}
