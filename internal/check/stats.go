package check

import (
	"math"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
)

// Histogram bounds: values are microseconds, from 1 µs to 1 hour, with 3
// significant digits.
const (
	histMinUS  = 1
	histMaxUS  = int64(time.Hour / time.Microsecond)
	histDigits = 3
)

// NewHistogram returns an HDR histogram of microseconds (1 µs .. 1 h).
func NewHistogram() *hdrhistogram.Histogram {
	return hdrhistogram.New(histMinUS, histMaxUS, histDigits)
}

// RecordUS records a duration in microseconds, clamped into the
// histogram's range.
func RecordUS(h *hdrhistogram.Histogram, us int64) {
	_ = h.RecordValue(min(max(us, histMinUS), histMaxUS))
}

// Percentiles summarises a latency-like distribution in milliseconds.
type Percentiles struct {
	P50Ms  float64 `json:"p50_ms"`
	P90Ms  float64 `json:"p90_ms"`
	P95Ms  float64 `json:"p95_ms"`
	P99Ms  float64 `json:"p99_ms"`
	P999Ms float64 `json:"p999_ms"`
	MaxMs  float64 `json:"max_ms"`
	MeanMs float64 `json:"mean_ms"`
}

// PercentilesOf reads the percentiles of a histogram of microseconds. An
// empty histogram gives zeros.
func PercentilesOf(h *hdrhistogram.Histogram) Percentiles {
	if h.TotalCount() == 0 {
		return Percentiles{}
	}
	ms := func(us int64) float64 { return roundMs(float64(us)) }
	return Percentiles{
		P50Ms:  ms(h.ValueAtQuantile(50)),
		P90Ms:  ms(h.ValueAtQuantile(90)),
		P95Ms:  ms(h.ValueAtQuantile(95)),
		P99Ms:  ms(h.ValueAtQuantile(99)),
		P999Ms: ms(h.ValueAtQuantile(99.9)),
		MaxMs:  ms(h.Max()),
		MeanMs: roundMs(h.Mean()),
	}
}

// roundMs converts microseconds to milliseconds with µs precision.
func roundMs(us float64) float64 { return math.Round(us) / 1000 }
