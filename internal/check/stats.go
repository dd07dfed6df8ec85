package check

import (
	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"

	"github.com/kvdb/kvdb/internal/latency"
)

// The histogram setup is package latency's, shared with the benchmark
// driver: microseconds, 1 µs .. 1 h, 3 significant digits.

// NewHistogram returns an HDR histogram of microseconds (1 µs .. 1 h).
func NewHistogram() *hdrhistogram.Histogram { return latency.NewHistogram() }

// RecordUS records a duration in microseconds, clamped into the
// histogram's range.
func RecordUS(h *hdrhistogram.Histogram, us int64) { latency.RecordUS(h, us) }

// Percentiles summarises a latency-like distribution in milliseconds.
type Percentiles = latency.Percentiles

// PercentilesOf reads the percentiles of a histogram of microseconds. An
// empty histogram gives zeros.
func PercentilesOf(h *hdrhistogram.Histogram) Percentiles { return latency.PercentilesOf(h) }

// roundMs converts microseconds to milliseconds with µs precision.
func roundMs(us float64) float64 { return latency.RoundMs(us) }
