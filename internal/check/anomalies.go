package check

import (
	"cmp"
	"slices"

	"github.com/kvdb/kvdb/internal/history"
)

// Anomalies counts stale reads and inversions (see the package comment).
type Anomalies struct {
	// Reads is the number of successful reads examined.
	Reads int `json:"reads_checked"`
	// StaleReads is the number of stale reads.
	StaleReads int `json:"stale_reads"`
	// Inversions is the number of reads that returned older data than a
	// read that finished before they began.
	Inversions int `json:"inversions"`
	// StaleExamples and InversionExamples are the first few of each.
	StaleExamples     []Anomaly `json:"stale_examples,omitempty"`
	InversionExamples []Anomaly `json:"inversion_examples,omitempty"`
}

// Anomaly is one stale read or inversion.
type Anomaly struct {
	Key string `json:"key"`
	// Seq, Node and ServedBy identify the offending read.
	Seq      int64  `json:"seq"`
	Node     string `json:"node"`
	ServedBy string `json:"served_by,omitempty"`
	// Got is the version it returned (0 = absent).
	Got uint64 `json:"got_version"`
	// Newer is the newer version already acknowledged (stale read) or
	// already read (inversion), by the operation with sequence NewerSeq.
	Newer    uint64 `json:"newer_version"`
	NewerSeq int64  `json:"newer_seq"`
	// LagMs is how long before the read was sent that operation finished.
	LagMs float64 `json:"lag_ms"`
}

// readVersion is the version a successful read returned; 404 is 0.
func readVersion(op history.Op) uint64 {
	if op.Status == 404 {
		return 0
	}
	return op.Version
}

// FindAnomalies counts stale reads and inversions in ops, keeping up to
// maxExamples examples of each.
func FindAnomalies(ops []history.Op, maxExamples int) Anomalies {
	var a Anomalies
	for _, kops := range byKey(ops) {
		var reads, acked []history.Op
		for _, op := range kops {
			switch {
			case op.IsRead() && op.OK():
				reads = append(reads, op)
			case op.IsWrite() && op.Outcome() == history.WriteAcked && op.Version > 0:
				acked = append(acked, op)
			}
		}
		a.Reads += len(reads)
		stale := newerBefore(reads, acked, func(o history.Op) uint64 { return o.Version })
		inv := newerBefore(reads, reads, readVersion)
		a.StaleReads += len(stale)
		a.Inversions += len(inv)
		a.StaleExamples = append(a.StaleExamples, stale...)
		a.InversionExamples = append(a.InversionExamples, inv...)
	}
	a.StaleExamples = firstExamples(a.StaleExamples, maxExamples)
	a.InversionExamples = firstExamples(a.InversionExamples, maxExamples)
	return a
}

// newerBefore returns, for each read, an Anomaly when some op in prior
// (all of one key) finished before the read was sent and carries a higher
// version than the read returned.
func newerBefore(reads, prior []history.Op, version func(history.Op) uint64) []Anomaly {
	reads = slices.Clone(reads)
	slices.SortFunc(reads, func(x, y history.Op) int { return cmp.Compare(x.SentUS, y.SentUS) })
	prior = slices.Clone(prior)
	slices.SortFunc(prior, func(x, y history.Op) int { return cmp.Compare(x.DoneUS, y.DoneUS) })
	var (
		out  []Anomaly
		best *history.Op // the highest-version op finished so far
		next int
	)
	for _, r := range reads {
		for ; next < len(prior) && prior[next].DoneUS < r.SentUS; next++ {
			if best == nil || version(prior[next]) > version(*best) {
				best = &prior[next]
			}
		}
		if best != nil && readVersion(r) < version(*best) {
			out = append(out, Anomaly{
				Key: r.Key, Seq: r.Seq, Node: r.Node, ServedBy: r.ServedBy,
				Got: readVersion(r), Newer: version(*best), NewerSeq: best.Seq,
				LagMs: float64(r.SentUS-best.DoneUS) / 1000,
			})
		}
	}
	return out
}

// firstExamples keeps the n earliest anomalies, ordered by sequence.
func firstExamples(xs []Anomaly, n int) []Anomaly {
	slices.SortFunc(xs, func(x, y Anomaly) int { return cmp.Compare(x.Seq, y.Seq) })
	if len(xs) > n {
		xs = xs[:n]
	}
	return slices.Clip(xs)
}

// byKey groups the ops that were sent (not dropped) by key, keeping their
// order.
func byKey(ops []history.Op) map[string][]history.Op {
	m := make(map[string][]history.Op)
	for _, op := range ops {
		if op.Dropped {
			continue
		}
		m[op.Key] = append(m[op.Key], op)
	}
	return m
}
