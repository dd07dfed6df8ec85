package check

import (
	"cmp"
	"math"
	"slices"

	"github.com/kvdb/kvdb/internal/history"
)

// StalenessSample is one read placed after the write it should return: the
// measured counterpart of one trial of PBS's model (package pbs).
type StalenessSample struct {
	// TUS is the time from the acknowledgement of the latest write of the
	// key acknowledged before the read was sent, to the read's send
	// (microseconds, > 0).
	TUS int64 `json:"t_us"`
	// Fresh reports whether the read returned that write or a newer one.
	Fresh bool `json:"fresh"`
}

// StalenessSamples places every successful read (200 or 404) after the
// latest write of its key acknowledged (201) before the read was sent —
// latest by acknowledgement — and says whether it was fresh. Reads sent
// before any write of their key was acknowledged have no such write and
// are left out, and so are unexplained reads (see Anomalies): there is no
// write to place them by.
//
// Fresh means not stale in FindAnomalies's sense, by real-time order and
// never by version numbers: the read returned a write that did not finish
// before some write acknowledged before the read was sent began. So it is
// fresh if it returned
//
//   - the latest acknowledged write itself;
//   - a write overlapping every acknowledged write it could be ordered
//     before (unordered in real time, so it may be the newer one in a
//     linearization);
//   - a write acknowledged after the read was sent, or whose outcome is
//     unknown, but sent before the read finished (it began before or
//     during the read, so it is concurrent with or newer than every write
//     acknowledged before the read: "that write or a newer one" in
//     real-time order).
//
// It is stale if it returned 404 (the initial absent state, older than
// every write) or a write that had finished before the latest of those
// acknowledged writes began, whatever its version. Every read that
// FindAnomalies counts as stale is a sample with Fresh false and vice
// versa, so the stale samples add up to Anomalies.StaleReads.
//
// Samples come out ordered by TUS.
func StalenessSamples(ops []history.Op) []StalenessSample {
	var out []StalenessSample
	for _, kops := range byKey(ops) {
		out = append(out, keyStaleness(kops)...)
	}
	slices.SortFunc(out, func(x, y StalenessSample) int {
		if c := cmp.Compare(x.TUS, y.TUS); c != 0 {
			return c
		}
		// Stale first among equal t: a deterministic order.
		switch {
		case x.Fresh == y.Fresh:
			return 0
		case !x.Fresh:
			return -1
		}
		return 1
	})
	return out
}

// keyStaleness is StalenessSamples for the sent operations of one key. The
// sweep is staleReads's: acknowledged writes in order of acknowledgement,
// reads in order of sending, tracking the latest acknowledged (for t) and
// the latest sent among those acknowledged (for the verdict).
func keyStaleness(kops []history.Op) []StalenessSample {
	reads, writes, acked := splitKeyOps(kops)
	if len(acked) == 0 || len(reads) == 0 {
		return nil
	}
	obs := observe(reads, writes)
	slices.SortFunc(obs, func(x, y observation) int { return cmp.Compare(x.read.SentUS, y.read.SentUS) })
	slices.SortFunc(acked, func(x, y history.Op) int { return cmp.Compare(x.DoneUS, y.DoneUS) })
	var (
		out      []StalenessSample
		next     int
		lastDone int64 = beforeAll // acknowledgement of the latest acknowledged write
		lastSent int64 = beforeAll // send of the latest-sent acknowledged write
	)
	for _, o := range obs {
		for ; next < len(acked) && acked[next].DoneUS < o.read.SentUS; next++ {
			lastDone = acked[next].DoneUS
			lastSent = max(lastSent, acked[next].SentUS)
		}
		if next == 0 {
			continue // no write acknowledged before the read
		}
		out = append(out, StalenessSample{TUS: o.read.SentUS - lastDone, Fresh: o.last >= lastSent})
	}
	return out
}

// StalenessPoint is one bucket of the measured staleness curve.
type StalenessPoint struct {
	// LoMs and HiMs bound the bucket: LoMs <= t < HiMs.
	LoMs float64 `json:"lo_ms"`
	HiMs float64 `json:"hi_ms"`
	// TMs is the mean t of the bucket's reads (ms), the midpoint of the
	// bucket when it has none.
	TMs float64 `json:"t_ms"`
	// Reads is the number of reads in the bucket.
	Reads int `json:"reads"`
	// Fresh is the fraction (0..1) of them that were fresh; 0 when Reads
	// is 0 (check Reads before using it).
	Fresh float64 `json:"fresh"`
}

// MeasuredStaleness is the measured curve: the probability that a read
// sent t after a write was acknowledged returns that write or a newer one
// (see StalenessSamples for the exact definitions), per bucket of t in
// milliseconds [edgesMs[i], edgesMs[i+1]). The edges are sorted and
// de-duplicated first (NaN left out); reads whose t falls outside them are
// not counted. It returns len(edges)-1 points, none for fewer than two
// distinct edges.
func MeasuredStaleness(ops []history.Op, edgesMs []float64) []StalenessPoint {
	return BucketStaleness(StalenessSamples(ops), edgesMs)
}

// BucketStaleness buckets samples as MeasuredStaleness does.
func BucketStaleness(samples []StalenessSample, edgesMs []float64) []StalenessPoint {
	edges := slices.DeleteFunc(slices.Clone(edgesMs), math.IsNaN)
	slices.Sort(edges)
	edges = slices.Compact(edges)
	if len(edges) < 2 {
		return nil
	}
	pts := make([]StalenessPoint, len(edges)-1)
	sumT := make([]float64, len(pts))
	for i := range pts {
		pts[i].LoMs, pts[i].HiMs = edges[i], edges[i+1]
	}
	for _, s := range samples {
		t := float64(s.TUS) / 1000
		// The bucket i with edges[i] <= t < edges[i+1].
		i, found := slices.BinarySearch(edges, t)
		if !found {
			i--
		}
		if i < 0 || i >= len(pts) {
			continue
		}
		pts[i].Reads++
		sumT[i] += t
		if s.Fresh {
			pts[i].Fresh++
		}
	}
	for i := range pts {
		p := &pts[i]
		if p.Reads == 0 {
			p.TMs = (p.LoMs + p.HiMs) / 2
			continue
		}
		p.TMs = sumT[i] / float64(p.Reads)
		p.Fresh /= float64(p.Reads)
	}
	return pts
}
