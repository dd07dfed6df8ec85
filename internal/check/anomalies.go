package check

import (
	"cmp"
	"math"
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
	// UnexplainedReads is the number of successful reads that returned a
	// value no write that may have taken effect had written (sent) by the
	// time the read finished: never written in the history (porcupine's
	// foreign reads), or written only by definitely failed writes. They
	// are neither stale nor inversions, as there is no write to place them
	// by; porcupine finds their keys illegal.
	UnexplainedReads int `json:"unexplained_reads"`
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
	// GotWriteSeq is the sequence number of the write whose value it
	// returned (or of the one delete its 404 can be explained by); -1 when
	// it returned the initial absent state, or the value was written more
	// than once and the version does not single one write out.
	GotWriteSeq int64 `json:"got_write_seq"`
	// Newer is the version of the newer data, by real time, that the read
	// missed: for a stale read, that of an acknowledged write that began
	// after the write the read returned had finished, and finished before
	// the read was sent (the operation NewerSeq); for an inversion, the
	// version returned by a read that finished before this one was sent
	// and returned such a write (the read NewerSeq). Versions need not
	// agree with real time: Newer may be lower than Got.
	Newer    uint64 `json:"newer_version"`
	NewerSeq int64  `json:"newer_seq"`
	// LagMs is how long before the read was sent that operation finished.
	LagMs float64 `json:"lag_ms"`
}

// Extremes of time (µs) for writes that have no start or end: the absent
// initial state ended before everything, and a write with an unknown
// outcome may take effect at any time after it was sent.
const (
	beforeAll = math.MinInt64
	afterAll  = math.MaxInt64
)

// observation places the data a successful read returned in real time.
// When the read's value names a single write, first and last are that
// write's send time and acknowledgement time (afterAll for an unknown
// outcome). A 404 returned the initial absent state (both beforeAll) or a
// delete (see observe). When
// the value names several writes (see observe), first is the earliest
// send and last the latest acknowledgement among them, so that each check
// gives the read the benefit of the doubt.
type observation struct {
	read        history.Op
	first, last int64
	writeSeq    int64 // -1 when absent or not a single write
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
		reads, writes, acked := splitKeyOps(kops)
		a.Reads += len(reads)
		obs := observe(reads, writes)
		a.UnexplainedReads += len(reads) - len(obs)
		stale := staleReads(obs, acked)
		inv := inversions(obs)
		a.StaleReads += len(stale)
		a.Inversions += len(inv)
		a.StaleExamples = append(a.StaleExamples, stale...)
		a.InversionExamples = append(a.InversionExamples, inv...)
	}
	a.StaleExamples = firstExamples(a.StaleExamples, maxExamples)
	a.InversionExamples = firstExamples(a.InversionExamples, maxExamples)
	return a
}

// observe finds the write each read (all of one key) returned, among the
// writes that may have taken effect (acknowledged or unknown outcome),
// leaving out reads whose value none of them wrote before the read
// finished.
//
// A run writes every value once, so the value names the write. Hand-made
// or foreign histories may repeat a value (the empty string included);
// then the writes of that value sent before the read finished are narrowed
// to those whose version is the read's version, if any, and the read is
// placed by all that remain (see observation).
func observe(reads, writes []history.Op) []observation {
	byValue := make(map[string][]history.Op)
	var dels []history.Op
	for _, w := range writes {
		if w.IsDelete() {
			dels = append(dels, w)
			continue
		}
		byValue[w.Value] = append(byValue[w.Value], w)
	}
	out := make([]observation, 0, len(reads))
	for _, r := range reads {
		if !r.Found() {
			out = append(out, observeAbsent(r, writes, dels))
			continue
		}
		var cands, sameVersion []history.Op
		for _, w := range byValue[r.Value] {
			if w.SentUS >= r.DoneUS {
				continue // sent after the read finished: not what it saw
			}
			cands = append(cands, w)
			if w.Version != 0 && w.Version == r.Version {
				sameVersion = append(sameVersion, w)
			}
		}
		if len(cands) > 1 && len(sameVersion) > 0 {
			cands = sameVersion
		}
		if len(cands) == 0 {
			continue
		}
		o := observation{read: r, first: afterAll, last: beforeAll, writeSeq: -1}
		for _, w := range cands {
			o.first = min(o.first, w.SentUS)
			o.last = max(o.last, writeEnd(w))
		}
		if len(cands) == 1 {
			o.writeSeq = cands[0].Seq
		}
		out = append(out, o)
	}
	return out
}

// observeAbsent places a 404: it returned the initial absent state or a
// delete sent before the read finished. The initial state counts only while
// no write of the key was acknowledged before the read was sent; if it does
// not and no delete may have been seen, the read is placed at the initial
// state (before everything: stale if a write was acknowledged before it).
// Otherwise the read is placed by every candidate, giving it the benefit of
// the doubt as for a repeated value.
func observeAbsent(r history.Op, writes, dels []history.Op) observation {
	initial := true
	for _, w := range writes {
		if w.Outcome() == history.WriteAcked && w.DoneUS < r.SentUS {
			initial = false
			break
		}
	}
	o := observation{read: r, first: afterAll, last: beforeAll, writeSeq: -1}
	if initial {
		o.first = beforeAll
	}
	var seen []history.Op
	for _, d := range dels {
		if d.SentUS < r.DoneUS {
			seen = append(seen, d)
			o.first = min(o.first, d.SentUS)
			o.last = max(o.last, writeEnd(d))
		}
	}
	if len(seen) == 0 {
		return observation{read: r, first: beforeAll, last: beforeAll, writeSeq: -1}
	}
	if len(seen) == 1 && !initial {
		o.writeSeq = seen[0].Seq
	}
	return o
}

// writeEnd is when a write that may have taken effect is known to have
// done so: its acknowledgement, or never for an unknown outcome.
func writeEnd(w history.Op) int64 {
	if w.Outcome() == history.WriteAcked {
		return w.DoneUS
	}
	return afterAll
}

// staleReads returns an Anomaly for each read that returned a write
// finished before some acknowledged write began that itself finished
// before the read was sent (acked: all of one key).
func staleReads(obs []observation, acked []history.Op) []Anomaly {
	obs = slices.Clone(obs)
	slices.SortFunc(obs, func(x, y observation) int { return cmp.Compare(x.read.SentUS, y.read.SentUS) })
	acked = slices.Clone(acked)
	slices.SortFunc(acked, func(x, y history.Op) int { return cmp.Compare(x.DoneUS, y.DoneUS) })
	var (
		out  []Anomaly
		best *history.Op // of the writes acknowledged so far, the last sent
		next int
	)
	for _, o := range obs {
		for ; next < len(acked) && acked[next].DoneUS < o.read.SentUS; next++ {
			if best == nil || acked[next].SentUS > best.SentUS {
				best = &acked[next]
			}
		}
		if best != nil && best.SentUS > o.last {
			out = append(out, anomaly(o, best.Version, best.Seq, best.DoneUS))
		}
	}
	return out
}

// inversions returns an Anomaly for each read that returned a write
// finished before the write returned by some read that finished before it
// was sent had begun.
func inversions(obs []observation) []Anomaly {
	reads := slices.Clone(obs)
	slices.SortFunc(reads, func(x, y observation) int { return cmp.Compare(x.read.SentUS, y.read.SentUS) })
	prior := slices.Clone(obs)
	slices.SortFunc(prior, func(x, y observation) int { return cmp.Compare(x.read.DoneUS, y.read.DoneUS) })
	var (
		out  []Anomaly
		best *observation // of the reads finished so far, the one that saw the latest-sent write
		next int
	)
	for _, o := range reads {
		for ; next < len(prior) && prior[next].read.DoneUS < o.read.SentUS; next++ {
			if best == nil || prior[next].first > best.first {
				best = &prior[next]
			}
		}
		if best != nil && best.first > o.last {
			out = append(out, anomaly(o, readVersion(best.read), best.read.Seq, best.read.DoneUS))
		}
	}
	return out
}

func anomaly(o observation, newer uint64, newerSeq, newerDoneUS int64) Anomaly {
	r := o.read
	return Anomaly{
		Key: r.Key, Seq: r.Seq, Node: r.Node, ServedBy: r.ServedBy,
		Got: readVersion(r), GotWriteSeq: o.writeSeq, Newer: newer, NewerSeq: newerSeq,
		LagMs: float64(r.SentUS-newerDoneUS) / 1000,
	}
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

// splitKeyOps sorts one key's operations into the successful reads, the
// writes that may have taken effect (acknowledged or of unknown outcome)
// and, among them, the acknowledged ones.
func splitKeyOps(kops []history.Op) (reads, writes, acked []history.Op) {
	for _, op := range kops {
		switch {
		case op.IsRead() && op.OK():
			reads = append(reads, op)
		case op.IsWrite() && op.Outcome() == history.WriteAcked:
			acked = append(acked, op)
			writes = append(writes, op)
		case op.IsWrite() && op.Outcome() == history.WriteUnknown:
			writes = append(writes, op)
		}
	}
	return reads, writes, acked
}
