package experiment

import (
	"cmp"
	"math"
	"slices"

	"github.com/kvdb/kvdb/internal/check"
	"github.com/kvdb/kvdb/internal/history"
)

// inversionAges measures the inconsistency window a run exposed: for every
// inversion, how long before the read was sent the latest write of its key
// had been sent (ms). A write still travelling replica to replica is what
// lets one read see it and a later read miss it, so these ages show how
// long that window stays open.
func inversionAges(ops []history.Op) []float64 {
	writes := map[string][]int64{} // key -> send times of its writes
	for _, op := range ops {
		if op.IsWrite() && !op.Dropped {
			writes[op.Key] = append(writes[op.Key], op.SentUS)
		}
	}
	for _, ts := range writes {
		slices.Sort(ts)
	}
	bySeq := map[int64]history.Op{}
	for _, op := range ops {
		if op.IsRead() {
			bySeq[op.Seq] = op
		}
	}
	an := check.FindAnomalies(ops, math.MaxInt)
	var ages []float64
	for _, a := range an.InversionExamples {
		r, ok := bySeq[a.Seq]
		ts := writes[a.Key]
		if !ok || len(ts) == 0 {
			continue
		}
		// the latest write of the key sent before the read
		i, _ := slices.BinarySearchFunc(ts, r.SentUS, cmp.Compare[int64])
		if i == 0 {
			continue
		}
		ages = append(ages, float64(r.SentUS-ts[i-1])/1000)
	}
	return ages
}
