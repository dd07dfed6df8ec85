package pbs_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/kvdb/kvdb/internal/check"
	"github.com/kvdb/kvdb/internal/history"
	"github.com/kvdb/kvdb/internal/pbs"
)

// simulate records the history of a simulated cluster that replicates as
// the package comment describes, written as a client would see it, with
// replicas that hold versioned copies: per key, an old write replicated
// everywhere long ago, then a new write coordinated by a random node, then
// one read at a random node t after the new write's acknowledgement.
func simulate(m pbs.Model, keys int, maxT time.Duration, seed uint64) []history.Op {
	rng := rand.New(rand.NewPCG(seed, 99))
	us := func(d time.Duration) int64 { return d.Microseconds() }
	var ops []history.Op
	var seq int64
	op := func(o history.Op) {
		o.Seq, o.Client = seq, int(seq)
		seq++
		ops = append(ops, o)
	}
	for k := range keys {
		key := fmt.Sprintf("k%d", k)
		base := time.Duration(k) * time.Hour // keys never interfere
		op(history.Op{Op: history.OpSet, Key: key, Value: key + "-old", Version: 1, Status: 201, SentUS: us(base), DoneUS: us(base + time.Millisecond)})
		// The new write, applied by its coordinator at start.
		start := base + time.Minute
		coord := rng.IntN(m.N)
		applied := make([]time.Duration, m.N) // when each node holds version 2
		applied[coord] = start
		var peers []int
		for i := range m.N {
			if i != coord {
				peers = append(peers, i)
			}
		}
		var acks []time.Duration
		clock := start
		for _, p := range peers {
			send := start
			if m.Sequential {
				send = clock
			}
			applied[p] = send + m.Write.Sample(rng)
			outcome := applied[p] + m.Ack.Sample(rng) + m.Gap
			clock = outcome
			acks = append(acks, outcome)
		}
		commit := start
		if m.W > 1 {
			if !m.Sequential {
				slices.Sort(acks)
			}
			commit = acks[m.W-2]
		}
		op(history.Op{Op: history.OpSet, Key: key, Value: key + "-new", Version: 2, Status: 201, SentUS: us(start), DoneUS: us(commit)})
		// The read, at the coordinator or a uniform peer.
		reader := coord
		if rng.Float64() >= m.ReadAtCoordinator {
			reader = peers[rng.IntN(len(peers))]
		}
		readStart := commit + time.Microsecond + time.Duration(rng.Int64N(int64(maxT)))
		readStart = readStart.Truncate(time.Microsecond)
		version := func(node int, at time.Duration) int {
			if applied[node] <= at {
				return 2
			}
			return 1
		}
		best := version(reader, readStart)
		end := readStart
		if m.R > 1 {
			type answer struct {
				arrive time.Duration
				v      int
			}
			var answers []answer
			for i := range m.N {
				if i == reader {
					continue
				}
				readAt := readStart + m.ReadReq.Sample(rng)
				answers = append(answers, answer{readAt + m.ReadResp.Sample(rng), version(i, readAt)})
			}
			slices.SortStableFunc(answers, func(a, b answer) int { return int(a.arrive - b.arrive) })
			for _, a := range answers[:m.R-1] {
				best = max(best, a.v)
				end = max(end, a.arrive)
			}
		}
		value := key + "-old"
		if best == 2 {
			value = key + "-new"
		}
		op(history.Op{Op: history.OpGet, Key: key, Value: value, Version: uint64(best), Status: 200, SentUS: us(readStart), DoneUS: us(end) + 1})
	}
	return ops
}

// The measured curve of a simulated history (check.MeasuredStaleness)
// agrees with the prediction within 2 percentage points RMSE, the paper's
// bar against Cassandra.
func TestPredictionMatchesSimulatedHistory(t *testing.T) {
	ms := time.Millisecond
	expo := func(mean time.Duration) pbs.Dist {
		return pbs.Func(func(r *rand.Rand) time.Duration { return time.Duration(r.ExpFloat64() * float64(mean)) })
	}
	for _, tc := range []struct {
		name string
		m    pbs.Model
		maxT time.Duration
	}{
		{"parallel W1R1 at peers", pbs.Model{N: 5, W: 1, R: 1, Write: expo(5 * ms), Ack: expo(ms)}, 30 * ms},
		{"parallel W2R2 leaderless", pbs.Model{N: 5, W: 2, R: 2, ReadAtCoordinator: 0.2,
			Write: expo(5 * ms), Ack: expo(2 * ms), ReadReq: expo(ms), ReadResp: expo(ms)}, 15 * ms},
		{"sequential W1R1 paper-like", pbs.Model{N: 5, W: 1, R: 1, Sequential: true, Gap: 20 * ms, ReadAtCoordinator: 0.2,
			Write: pbs.Func(func(r *rand.Rand) time.Duration { return 10*ms + time.Duration(r.ExpFloat64()*float64(ms)) }), Ack: expo(ms / 2)}, 120 * ms},
		{"sequential W2R2", pbs.Model{N: 5, W: 2, R: 2, Sequential: true, Gap: 20 * ms, ReadAtCoordinator: 0.2,
			Write: expo(10 * ms), Ack: expo(ms), ReadReq: expo(5 * ms), ReadResp: expo(ms)}, 100 * ms},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ops := simulate(tc.m, 40_000, tc.maxT, 1)
			// Compare per bucket of t: the measured fraction fresh against
			// the prediction averaged over the same reads' t (the curve is
			// not linear within a bucket).
			samples := check.StalenessSamples(ops)
			ts := make([]time.Duration, len(samples))
			for i, s := range samples {
				ts[i] = time.Duration(s.TUS) * time.Microsecond
			}
			perRead, err := tc.m.Predict(ts, 200_000, 2)
			if err != nil {
				t.Fatal(err)
			}
			const buckets = 10
			width := tc.maxT / buckets
			var measured, predicted []float64
			for b := range buckets {
				var n, fresh int
				var p float64
				for i, s := range samples {
					if ts[i] >= time.Duration(b)*width && ts[i] < time.Duration(b+1)*width {
						n++
						p += perRead[i]
						if s.Fresh {
							fresh++
						}
					}
				}
				if n > 0 {
					measured = append(measured, float64(fresh)/float64(n))
					predicted = append(predicted, p/float64(n))
				}
			}
			rmse := pbs.RMSE(measured, predicted)
			t.Logf("RMSE %.2f points\nmeasured  %.3f\npredicted %.3f", rmse, measured, predicted)
			if !(rmse <= 2) {
				t.Errorf("RMSE %.2f percentage points, want at most 2", rmse)
			}
			if math.IsNaN(rmse) || slices.Min(measured) > 0.99 {
				t.Errorf("the case shows no staleness to predict: measured %v", measured)
			}
		})
	}
}
