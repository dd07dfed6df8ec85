package experiment

import (
	"math"

	"github.com/kvdb/kvdb/internal/history"
	"github.com/kvdb/kvdb/internal/load"
	"github.com/kvdb/kvdb/internal/report"
)

// BucketMs is the width of the timeline's buckets (ms): at the default 200
// QPS and 50% writes 25 writes and 25 reads fall in each, so one bucket
// with no acknowledgement is a real gap, not chance.
const BucketMs = 250

// Timeline counts a run's operations per BucketMs bucket of their intended
// time (the open-loop schedule's; a request is sent within a few ms of
// it), from t0 (µs on the history's clock) to the end of the sending
// window (windowMs), and the write acknowledgements arriving in each
// bucket. Dropped requests (the in-flight cap) count as failed.
func Timeline(ops []history.Op, t0US int64, windowMs float64) []report.TimeBucket {
	n := int(math.Ceil(windowMs / BucketMs))
	if n <= 0 {
		return nil
	}
	tl := make([]report.TimeBucket, n)
	for i := range tl {
		tl[i].StartMs = float64(i * BucketMs)
	}
	at := func(us int64) int {
		i := int(math.Floor(float64(us-t0US) / 1000 / BucketMs))
		if i < 0 || i >= n {
			return -1
		}
		return i
	}
	for _, op := range ops {
		if i := at(op.IntendedUS); i >= 0 {
			b := &tl[i]
			switch {
			case op.IsWrite() && op.OK():
				b.WritesOK++
			case op.IsWrite():
				b.WritesFailed++
			case op.OK():
				b.ReadsOK++
			default:
				b.ReadsFailed++
			}
		}
		if op.IsWrite() && op.OK() {
			if i := at(op.DoneUS); i >= 0 {
				tl[i].WriteAcks++
			}
		}
	}
	return tl
}

// Unavailability is what a fault did to writes, from the history.
type Unavailability struct {
	// WindowMs is the write-unavailability window: from the fault's start
	// to the first acknowledgement of a write sent at or after it (the
	// moment a client learns writes work again; it includes that write's
	// own latency, so the config's steady write latency is its floor). If
	// no such write was acknowledged it runs to the end of the sending
	// window and Recovered is false.
	WindowMs  float64
	Recovered bool
	// FirstAckedSentMs is when that first acknowledged write was sent,
	// from the fault's start (-1 if none).
	FirstAckedSentMs float64
	// NoAckMs is the total time, from the fault's start to the end of the
	// sending window, in BucketMs buckets in which no write
	// acknowledgement arrived: how long writes made no progress at all,
	// across every gap.
	NoAckMs float64
}

// WriteUnavailability measures the write-unavailability window and the
// time with no acknowledged write after a fault that began at faultUS, in
// a run whose sending window is [t0US, t0US+windowMs] (µs on the history's
// clock).
func WriteUnavailability(ops []history.Op, t0US, faultUS int64, windowMs float64) Unavailability {
	endUS := t0US + int64(windowMs*1000)
	u := Unavailability{FirstAckedSentMs: -1}
	first := int64(math.MaxInt64)
	var firstSent int64
	for _, op := range ops {
		if op.IsWrite() && op.Outcome() == history.WriteAcked && op.SentUS >= faultUS && op.DoneUS < first {
			first, firstSent = op.DoneUS, op.SentUS
		}
	}
	if first != math.MaxInt64 {
		u.WindowMs, u.Recovered = float64(first-faultUS)/1000, true
		u.FirstAckedSentMs = float64(firstSent-faultUS) / 1000
	} else {
		u.WindowMs = float64(max(endUS-faultUS, 0)) / 1000
	}
	u.NoAckMs = NoAckMs(ops, faultUS, endUS)
	return u
}

// NoAckMs is the total length of the BucketMs buckets from fromUS to toUS
// (the last one cut at toUS) in which no write acknowledgement arrived.
func NoAckMs(ops []history.Op, fromUS, toUS int64) float64 {
	if toUS <= fromUS {
		return 0
	}
	width := int64(BucketMs * 1000)
	n := int((toUS - fromUS + width - 1) / width)
	acked := make([]bool, n)
	for _, op := range ops {
		if op.IsWrite() && op.Outcome() == history.WriteAcked && op.DoneUS >= fromUS && op.DoneUS < toUS {
			acked[(op.DoneUS-fromUS)/width] = true
		}
	}
	var total int64
	for i, a := range acked {
		if !a {
			total += min(width, toUS-fromUS-int64(i)*width)
		}
	}
	return float64(total) / 1000
}

// ErrorsByStatus counts ops' failed reads and failed writes by class (an
// HTTP status, "timeout", "network", "dropped", "bad_response").
func ErrorsByStatus(ops []history.Op) (reads, writes map[string]int) {
	reads, writes = map[string]int{}, map[string]int{}
	for _, op := range ops {
		if c := op.ErrorClass(); c != "" {
			if op.IsWrite() {
				writes[c]++
			} else {
				reads[c]++
			}
		}
	}
	return reads, writes
}

// Durability is the fate of a run's acknowledged writes, from the copies
// every node held after the run settled (FinalCopies).
type Durability struct {
	// Acked is the number of acknowledged writes.
	Acked int
	// Lost counts acknowledged writes that no node holds — neither the
	// write nor a later one of its key (see Holds) — among the nodes that
	// answered: gone.
	Lost int
	// Partial counts acknowledged writes that some of those nodes hold and
	// others do not: the replicas did not converge, and a read served by
	// one that lacks the write (R=1 at that node) misses it.
	Partial int
	// NodesChecked is how many nodes answered for every key (a node that
	// failed to answer for a key is left out for that key).
	NodesChecked int
}

// AckedFate classifies every acknowledged write of ops against the final
// copies: held (by every node that answered), partial or lost.
//
// A node holds an acknowledged write w if its copy of w's key is w itself
// or a write that w does not precede in real time: w is lost there only
// if the copy is absent, or is a write acknowledged before w was sent
// (an older write, whatever its version), or a value no write of the run
// wrote. A write of unknown outcome may take effect at any time after it
// was sent, so holding one never loses w.
func AckedFate(ops []history.Op, final FinalCopies) Durability {
	byValue := map[string]history.Op{}
	for _, op := range ops {
		if op.IsWrite() && !op.Dropped && op.SentUS != 0 {
			byValue[op.Key+"\x00"+op.Value] = op
		}
	}
	d := Durability{NodesChecked: len(final.Nodes)}
	for _, w := range ops {
		if !w.IsWrite() || w.Outcome() != history.WriteAcked {
			continue
		}
		d.Acked++
		copies, ok := final.Copies[w.Key]
		if !ok {
			continue // not read: no verdict
		}
		held, missing := 0, 0
		for _, c := range copies {
			switch {
			case c.Err != "":
				continue
			case holds(c, w, byValue):
				held++
			default:
				missing++
			}
		}
		switch {
		case held == 0 && missing > 0:
			d.Lost++
		case missing > 0:
			d.Partial++
		}
	}
	failed := map[int]bool{}
	for _, cs := range final.Copies {
		for i, c := range cs {
			if c.Err != "" {
				failed[i] = true
			}
		}
	}
	d.NodesChecked -= len(failed)
	return d
}

// holds reports whether copy c holds w or a write that w does not precede.
func holds(c Copy, w history.Op, byValue map[string]history.Op) bool {
	if !c.Found {
		return false
	}
	x, ok := byValue[w.Key+"\x00"+c.Value]
	if !ok {
		return false
	}
	if x.Seq == w.Seq {
		return true
	}
	precedes := x.Outcome() == history.WriteAcked && x.DoneUS < w.SentUS
	return !precedes
}

// msFrom converts a µs time on the history's clock to ms from t0.
func msFrom(t0US, us int64) float64 { return float64(us-t0US) / 1000 }

// figures are one run's fault and durability figures.
type figures struct {
	fault         *report.Fault // nil: steady
	unavailableMs *float64      // nil: steady
	noAckMs       float64
	durability    Durability
	finalCheck    bool
	converged     bool
	settledMs     float64
}

// runFigures derives a run's figures from its history, its summary (t0 and
// window), its scenario record and the final copies (nil: none read).
func runFigures(ops []history.Op, sum *load.Summary, rec ScenarioRecord, final *FinalCopies) figures {
	var f figures
	t0 := sum.Started.UnixMicro()
	endUS := t0 + int64(sum.WindowS*1e6)
	if rec.Scenario != "" && rec.Scenario != ScenarioSteady && rec.StartUS != 0 {
		u := WriteUnavailability(ops, t0, rec.StartUS, sum.WindowS*1000)
		f.fault = &report.Fault{Target: rec.Target, Role: rec.Role, Action: rec.Action,
			StartMs: msFrom(t0, rec.StartUS), Recovered: u.Recovered, Error: rec.Error}
		if rec.EndUS != 0 {
			e := msFrom(t0, rec.EndUS)
			f.fault.EndMs = &e
		}
		if u.FirstAckedSentMs >= 0 {
			v := u.FirstAckedSentMs
			f.fault.FirstAckedSentMs = &v
		}
		w := u.WindowMs
		f.unavailableMs, f.noAckMs = &w, u.NoAckMs
	} else {
		// A steady run: from its first acknowledgement (a W=5 write takes
		// 1.2 s under the paper profile, so none arrives before that).
		first := int64(math.MaxInt64)
		for _, op := range ops {
			if op.IsWrite() && op.Outcome() == history.WriteAcked {
				first = min(first, op.DoneUS)
			}
		}
		if first != math.MaxInt64 {
			f.noAckMs = NoAckMs(ops, first, endUS)
		}
	}
	if final != nil {
		f.durability = AckedFate(ops, *final)
		f.finalCheck, f.converged, f.settledMs = true, final.Converged, final.SettledMs
	} else {
		for _, op := range ops {
			if op.IsWrite() && op.Outcome() == history.WriteAcked {
				f.durability.Acked++
			}
		}
	}
	return f
}
