package check

import (
	"cmp"
	"slices"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"

	"github.com/kvdb/kvdb/internal/history"
)

// IntervalStats is the distribution of intervals between a write and a
// later read of the same key: for every read that was sent, the time from
// sending the latest write of its key sent before it to sending the read.
// It measures how local in time the workload is, and how many reads land
// inside a write's replication window.
type IntervalStats struct {
	// Count is the number of reads with an earlier write of their key.
	Count int `json:"count"`
	// ReadsWithoutWrite is the number of reads of keys not yet written.
	ReadsWithoutWrite int `json:"reads_without_prior_write"`
	// ReadsDuringWrite is the number of reads sent while that latest write
	// was still in flight (before its response).
	ReadsDuringWrite int `json:"reads_during_write"`
	Percentiles
	// Buckets is a coarse histogram: Count reads with interval at most
	// LeMs (and above the previous bucket's bound). The last bucket's
	// bound may be the maximum.
	Buckets []Bucket `json:"buckets,omitempty"`
	// Histogram is the full distribution (microseconds); not serialized.
	Histogram *hdrhistogram.Histogram `json:"-"`
}

// Bucket is one bar of a coarse histogram.
type Bucket struct {
	LeMs  float64 `json:"le_ms"`
	Count int64   `json:"count"`
}

// bucketBoundsMs are the coarse histogram's upper bounds (1-2-5 steps).
var bucketBoundsMs = []float64{1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000, 50000}

// Intervals measures write-to-read intervals in ops.
func Intervals(ops []history.Op) IntervalStats {
	st := IntervalStats{Histogram: NewHistogram()}
	for _, kops := range byKey(ops) {
		var writes []history.Op
		reads := make([]history.Op, 0, len(kops))
		for _, op := range kops {
			if op.IsWrite() {
				writes = append(writes, op)
			} else {
				reads = append(reads, op)
			}
		}
		st.addKey(reads, writes)
	}
	st.Percentiles = PercentilesOf(st.Histogram)
	st.Buckets = Buckets(st.Histogram, bucketBoundsMs)
	return st
}

func (st *IntervalStats) addKey(reads, writes []history.Op) {
	bySent := func(x, y history.Op) int { return cmp.Compare(x.SentUS, y.SentUS) }
	slices.SortFunc(reads, bySent)
	slices.SortFunc(writes, bySent)
	next := 0
	for _, r := range reads {
		for next < len(writes) && writes[next].SentUS <= r.SentUS {
			next++
		}
		if next == 0 {
			st.ReadsWithoutWrite++
			continue
		}
		w := writes[next-1]
		st.Count++
		RecordUS(st.Histogram, r.SentUS-w.SentUS)
		if r.SentUS < w.DoneUS {
			st.ReadsDuringWrite++
		}
	}
}

// Buckets counts a histogram of microseconds into buckets with the given
// ascending upper bounds in milliseconds. Bounds at or above the maximum are
// left out; a last bucket up to the maximum holds the rest, if any. Values
// are placed by the lower end of their HDR bucket (0.1% resolution).
func Buckets(h *hdrhistogram.Histogram, boundsMs []float64) []Bucket {
	if h.TotalCount() == 0 {
		return nil
	}
	counts := make([]int64, len(boundsMs)+1)
	for _, bar := range h.Distribution() {
		if bar.Count == 0 {
			continue
		}
		i, _ := slices.BinarySearchFunc(boundsMs, bar.From, func(b float64, us int64) int {
			return cmp.Compare(b*1000, float64(us))
		})
		counts[i] += bar.Count
	}
	var out []Bucket
	var below int64
	for i, b := range boundsMs {
		if b*1000 >= float64(h.Max()) {
			break
		}
		out = append(out, Bucket{LeMs: b, Count: counts[i]})
		below += counts[i]
	}
	if rest := h.TotalCount() - below; rest > 0 {
		out = append(out, Bucket{LeMs: roundMs(float64(h.Max())), Count: rest})
	}
	return out
}
