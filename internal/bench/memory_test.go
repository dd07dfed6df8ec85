package bench

import "testing"

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
