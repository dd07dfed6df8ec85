package latency

import (
	"testing"
	"time"
)

func TestRecordClampsAndPercentiles(t *testing.T) {
	h := NewHistogram()
	if p := PercentilesOf(h); p != (Percentiles{}) || QuantileMs(h, 50) != 0 {
		t.Fatalf("empty histogram: %+v", p)
	}
	for us := int64(1); us <= 1000; us++ {
		RecordUS(h, us)
	}
	RecordUS(h, 0)                                   // clamped up to 1 µs
	RecordUS(h, int64(2*time.Hour/time.Microsecond)) // clamped down to 1 h
	p := PercentilesOf(h)
	if p.P50Ms < 0.49 || p.P50Ms > 0.51 || p.P99Ms < 0.98 || p.P99Ms > 1.0 {
		t.Errorf("percentiles %+v, want p50 ~0.5ms, p99 ~0.99ms", p)
	}
	if want := float64(time.Hour.Milliseconds()); p.MaxMs < want*0.999 || p.MaxMs > want*1.001 {
		t.Errorf("max %gms, want the 1 h clamp", p.MaxMs)
	}
	if h.TotalCount() != 1002 || h.Min() != MinUS {
		t.Errorf("count %d min %d", h.TotalCount(), h.Min())
	}
	if RoundMs(1234.4) != 1.234 {
		t.Errorf("RoundMs(1234.4) = %g", RoundMs(1234.4))
	}
}
