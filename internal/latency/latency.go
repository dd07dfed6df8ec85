// Package latency is the one HDR histogram setup of kvdb's measurements:
// the load tester and the checker (internal/load, internal/check) and the
// benchmark driver (internal/bench/driver, `kvdb bench` and its peer
// client) all record latencies with it, so their percentiles mean the same
// thing. Values are microseconds from 1 µs to 1 hour with 3 significant
// digits (github.com/HdrHistogram/hdrhistogram-go); values outside are
// clamped. Percentiles are read back in milliseconds with µs precision.
package latency

import (
	"math"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
)

// Histogram bounds: values are microseconds.
const (
	MinUS  = 1
	MaxUS  = int64(time.Hour / time.Microsecond)
	Digits = 3
)

// NewHistogram returns an HDR histogram of microseconds (1 µs .. 1 h).
func NewHistogram() *hdrhistogram.Histogram {
	return hdrhistogram.New(MinUS, MaxUS, Digits)
}

// RecordUS records a duration in microseconds, clamped into the
// histogram's range.
func RecordUS(h *hdrhistogram.Histogram, us int64) {
	_ = h.RecordValue(min(max(us, MinUS), MaxUS))
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
	return Percentiles{
		P50Ms:  QuantileMs(h, 50),
		P90Ms:  QuantileMs(h, 90),
		P95Ms:  QuantileMs(h, 95),
		P99Ms:  QuantileMs(h, 99),
		P999Ms: QuantileMs(h, 99.9),
		MaxMs:  RoundMs(float64(h.Max())),
		MeanMs: RoundMs(h.Mean()),
	}
}

// QuantileMs returns the q-th percentile (0..100) of a histogram of
// microseconds in milliseconds; 0 when it is empty.
func QuantileMs(h *hdrhistogram.Histogram, q float64) float64 {
	if h.TotalCount() == 0 {
		return 0
	}
	return RoundMs(float64(h.ValueAtQuantile(q)))
}

// RoundMs converts microseconds to milliseconds with µs precision.
func RoundMs(us float64) float64 { return math.Round(us) / 1000 }
