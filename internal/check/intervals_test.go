package check

import (
	"testing"

	"github.com/kvdb/kvdb/internal/history"
)

func TestIntervals(t *testing.T) {
	ops := []history.Op{
		get(0, "x", "", 0, 404, 0, 10),             // no prior write
		set(1, "x", "a", 1, 201, 1000, 5000),       // write window 1..5 ms
		get(2, "x", "a", 1, 200, 3000, 3100),       // 2 ms after, during the write
		get(3, "x", "a", 1, 200, 11000, 11100),     // 10 ms after
		set(4, "y", "b", 1, 201, 0, 100),           //
		get(5, "y", "b", 1, 200, 500_100, 500_200), // 500.1 ms after
		set(6, "x", "c", 2, 503, 20000, 21000),     // failed writes still count as writes sent
		get(7, "x", "c", 2, 200, 20500, 20600),     // 0.5 ms after, during
	}
	st := Intervals(ops)
	if st.Count != 4 || st.ReadsWithoutWrite != 1 || st.ReadsDuringWrite != 2 {
		t.Fatalf("got %+v", st)
	}
	if st.MaxMs < 500 || st.MaxMs > 501 || st.P50Ms != 2 {
		t.Errorf("p50 %v max %v", st.P50Ms, st.MaxMs)
	}
	var total int64
	for _, b := range st.Buckets {
		total += b.Count
	}
	if total != 4 {
		t.Errorf("buckets %+v hold %d values, want 4", st.Buckets, total)
	}
	want := map[float64]int64{1: 1, 2: 1, 10: 1}
	for _, b := range st.Buckets {
		if n, ok := want[b.LeMs]; ok && n != b.Count {
			t.Errorf("bucket le %v: %d, want %d", b.LeMs, b.Count, n)
		}
	}
	if last := st.Buckets[len(st.Buckets)-1]; last.LeMs < 500 || last.LeMs > st.MaxMs || last.Count != 1 {
		t.Errorf("last bucket %+v, want the 500 ms interval", last)
	}
}

func TestPercentilesOfEmpty(t *testing.T) {
	if p := PercentilesOf(NewHistogram()); p != (Percentiles{}) {
		t.Fatalf("got %+v", p)
	}
}

func TestRecordClamps(t *testing.T) {
	h := NewHistogram()
	RecordUS(h, -5)
	RecordUS(h, 1<<62)
	if h.TotalCount() != 2 {
		t.Fatalf("count %d", h.TotalCount())
	}
}
