package check

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/kvdb/kvdb/internal/history"
)

// failedSet is a set answered with a status that says it was not applied.
func failedSet(op history.Op, status int) history.Op {
	op.Status, op.Version, op.Error = status, 0, "rejected"
	return op
}

// TestRealTimeAnomalies checks that stale reads and inversions follow
// real-time order, whatever the versions say. The comment on each case
// gives what the version-based checker it replaced answered.
func TestRealTimeAnomalies(t *testing.T) {
	tests := []struct {
		name                    string
		ops                     []history.Op
		stale, inv, unexplained int
		verdict                 Verdict
	}{
		{
			// version-based: stale 0 (1028 is the highest version acknowledged).
			name: "later acknowledged write got a lower version",
			ops: []history.Op{
				set(0, "x", "a", 1028, 201, 0, 10),
				set(1, "x", "b", 1027, 201, 20, 30),
				get(2, "x", "a", 1028, 200, 40, 50),
			},
			stale: 1, verdict: NotLinearizable,
		},
		{
			// version-based: stale 2 (1027 < 1028).
			name: "lower-version write read after the higher one is fine",
			ops: []history.Op{
				set(0, "x", "a", 1028, 201, 0, 10),
				set(1, "x", "b", 1027, 201, 20, 30),
				get(2, "x", "b", 1027, 200, 40, 50),
				get(3, "x", "b", 1027, 200, 60, 70),
			},
			verdict: Linearizable,
		},
		{
			// version-based: stale 1, inversions 1 (the version-based
			// checker agreed here).
			name: "404 after an acknowledged write, even with another write in flight",
			ops: []history.Op{
				set(0, "x", "a", 1, 201, 0, 10),
				set(1, "x", "b", 2, 201, 15, 100),
				get(2, "x", "b", 2, 200, 20, 30),
				get(3, "x", "", 0, 404, 40, 50),
			},
			stale: 1, inv: 1, verdict: NotLinearizable,
		},
		{
			// version-based: stale 0 inversions 0.
			name: "reads concurrent with a write may return the old or the new value",
			ops: []history.Op{
				set(0, "x", "a", 1, 201, 0, 10),
				set(1, "x", "b", 2, 201, 20, 100),
				get(2, "x", "a", 1, 200, 30, 40),
				get(3, "x", "b", 2, 200, 50, 60),
				get(4, "x", "b", 2, 200, 55, 65),
			},
			verdict: Linearizable,
		},
		{
			// version-based: stale 1 (version 1 < 2 acknowledged before).
			name: "writes that overlap each other are unordered",
			ops: []history.Op{
				set(0, "x", "a", 2, 201, 0, 100),
				set(1, "x", "b", 1, 201, 50, 60),
				get(2, "x", "b", 1, 200, 200, 210),
			},
			verdict: Linearizable,
		},
		{
			// version-based: stale 1 inversions 1 (the last read returned
			// version 1 after version 2 was acknowledged and read).
			name: "unknown-outcome write read much later is not stale",
			ops: []history.Op{
				set(0, "x", "a", 1, 201, 0, 10),
				unknownSet(set(1, "x", "b", 0, 0, 20, 30), "timeout: deadline exceeded"),
				set(2, "x", "c", 2, 201, 100, 200),
				get(3, "x", "c", 2, 200, 300, 310),
				get(4, "x", "b", 1, 200, 10_000_000, 10_000_010),
			},
			verdict: Linearizable,
		},
		{
			// version-based: stale 0.
			name: "unknown-outcome (503) write that never applied",
			ops: []history.Op{
				set(0, "x", "a", 1, 201, 0, 10),
				func() history.Op {
					op := set(1, "x", "b", 0, 503, 20, 30)
					op.Error = "write quorum not reached: 2 of 5"
					return op
				}(),
				get(2, "x", "a", 1, 200, 40, 50),
			},
			verdict: Linearizable,
		},
		{
			// version-based: stale 1 inversions 0 (it flagged the read of
			// the concurrent write b, version 3 < 9, and missed the
			// inversion, version 9 > 3).
			name: "inversion by real time, versions disagree",
			ops: []history.Op{
				set(0, "x", "a", 9, 201, 0, 10),
				set(1, "x", "b", 3, 201, 20, 200),
				get(2, "x", "b", 3, 200, 30, 40),
				get(3, "x", "a", 9, 200, 50, 60),
			},
			inv: 1, verdict: NotLinearizable,
		},
		{
			// version-based: inversions 1 (3 < 9).
			name: "versions say inversion, real time says the writes were concurrent",
			ops: []history.Op{
				set(0, "x", "a", 9, 201, 0, 100),
				set(1, "x", "b", 3, 201, 0, 100),
				get(2, "x", "a", 9, 200, 10, 20),
				get(3, "x", "b", 3, 200, 30, 40),
			},
			verdict: Linearizable,
		},
		{
			// version-based: stale 1 inversions 1. Reads that disagree after
			// two concurrent writes both finished are neither stale nor an
			// inversion by these definitions (neither write precedes the
			// other); only porcupine sees it.
			name: "disagreeing reads after concurrent writes finished",
			ops: []history.Op{
				set(0, "x", "a", 9, 201, 0, 50),
				set(1, "x", "b", 3, 201, 0, 50),
				get(2, "x", "a", 9, 200, 60, 70),
				get(3, "x", "b", 3, 200, 80, 90),
			},
			verdict: NotLinearizable,
		},
		{
			// version-based: stale 0.
			name: "same value written twice, read matched by version",
			ops: []history.Op{
				set(0, "x", "v", 1, 201, 0, 10),
				set(1, "x", "w", 2, 201, 20, 30),
				set(2, "x", "v", 3, 201, 40, 50),
				get(3, "x", "v", 3, 200, 60, 70),
			},
			verdict: Linearizable,
		},
		{
			// version-based: stale 1 (version 1 < 3).
			name: "same value written twice, read returns the first by version",
			ops: []history.Op{
				set(0, "x", "v", 1, 201, 0, 10),
				set(1, "x", "w", 2, 201, 20, 30),
				set(2, "x", "v", 3, 201, 40, 50),
				get(3, "x", "v", 1, 200, 60, 70),
			},
			stale: 1, verdict: Linearizable, // porcupine sees values, not versions
		},
		{
			// version-based: stale 0. Without a version match the read
			// gets the benefit of the doubt: it may have returned the
			// last write.
			name: "same value written twice, version matches neither",
			ops: []history.Op{
				set(0, "x", "v", 1, 201, 0, 10),
				set(1, "x", "w", 2, 201, 20, 30),
				set(2, "x", "v", 3, 201, 40, 50),
				get(3, "x", "v", 7, 200, 60, 70),
			},
			verdict: Linearizable,
		},
		{
			// version-based: stale 1 inversions 1.
			name: "empty value is a value, not absence",
			ops: []history.Op{
				set(0, "x", "", 1, 201, 0, 10),
				get(1, "x", "", 1, 200, 20, 30),
				get(2, "x", "", 0, 404, 40, 50),
			},
			stale: 1, inv: 1, verdict: NotLinearizable,
		},
		{
			// version-based: stale 0 (no unexplained count).
			name: "read of a value never written",
			ops: []history.Op{
				set(0, "x", "a", 1, 201, 0, 10),
				get(1, "x", "old-run", 5, 200, 20, 30),
			},
			unexplained: 1, verdict: NotLinearizable,
		},
		{
			// version-based: stale 1 (version 0 < 1).
			name: "read of a rejected write's value",
			ops: []history.Op{
				set(0, "x", "a", 1, 201, 0, 10),
				failedSet(set(1, "x", "b", 0, 0, 20, 30), 400),
				get(2, "x", "b", 0, 200, 40, 50),
			},
			unexplained: 1, verdict: NotLinearizable,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := run(t, tt.ops, Config{})
			if res.StaleReads != tt.stale || res.Inversions != tt.inv || res.UnexplainedReads != tt.unexplained {
				t.Errorf("stale %d inversions %d unexplained %d, want %d %d %d",
					res.StaleReads, res.Inversions, res.UnexplainedReads, tt.stale, tt.inv, tt.unexplained)
			}
			if res.Linearizability.Verdict != tt.verdict {
				t.Errorf("verdict %q, want %q", res.Linearizability.Verdict, tt.verdict)
			}
		})
	}
}

// TestStaleExampleNamesTheWrites checks the example of a stale read: the
// acknowledged write that superseded the one it returned, by real time.
func TestStaleExampleNamesTheWrites(t *testing.T) {
	ops := []history.Op{
		set(0, "x", "a", 30, 201, 0, 10),
		set(1, "x", "b", 20, 201, 100, 200),
		set(2, "x", "c", 10, 201, 300, 400),
		get(3, "x", "b", 20, 200, 1400, 1500),
	}
	a := FindAnomalies(ops, 10)
	want := Anomaly{Key: "x", Seq: 3, Node: "n2", Got: 20, GotWriteSeq: 1, Newer: 10, NewerSeq: 2, LagMs: 1}
	if a.StaleReads != 1 || len(a.StaleExamples) != 1 || a.StaleExamples[0] != want {
		t.Fatalf("got %+v, want one example %+v", a, want)
	}
}

// TestAnomaliesMatchDefinition compares FindAnomalies with a direct,
// quadratic reading of the definitions on random small histories.
func TestAnomaliesMatchDefinition(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 2000 {
		ops := randomHistory(rng)
		got := FindAnomalies(ops, len(ops))
		stale, inv, unexplained := naiveAnomalies(ops)
		if got.StaleReads != stale || got.Inversions != inv || got.UnexplainedReads != unexplained {
			t.Fatalf("history %d: stale %d inversions %d unexplained %d, want %d %d %d\n%s",
				i, got.StaleReads, got.Inversions, got.UnexplainedReads, stale, inv, unexplained, dump(ops))
		}
	}
}

// randomHistory makes a few operations on two keys with small values (so
// they repeat), random versions and overlapping times.
func randomHistory(rng *rand.Rand) []history.Op {
	n := 2 + rng.IntN(10)
	ops := make([]history.Op, 0, n)
	for i := range n {
		key := []string{"x", "y"}[rng.IntN(2)]
		sent := int64(rng.IntN(100))
		done := sent + int64(rng.IntN(40))
		value := []string{"", "a", "b", "c"}[rng.IntN(4)]
		version := uint64(rng.IntN(4))
		seq := int64(i)
		if rng.IntN(2) == 0 {
			op := set(seq, key, value, version, 201, sent, done)
			switch rng.IntN(6) {
			case 0:
				op = unknownSet(op, "timeout: deadline exceeded")
			case 1:
				op = failedSet(op, 409)
			}
			ops = append(ops, op)
			continue
		}
		op := get(seq, key, value, version, 200, sent, done)
		switch rng.IntN(5) {
		case 0:
			op.Status, op.Value, op.Version = 404, "", 0
		case 1:
			op.Status, op.Error = 503, "read quorum not reached"
		}
		ops = append(ops, op)
	}
	return ops
}

func dump(ops []history.Op) string {
	var s string
	for _, op := range ops {
		s += fmt.Sprintf("  %s %s %q v%d %d [%d,%d]\n", op.Op, op.Key, op.Value, op.Version, op.Status, op.SentUS, op.DoneUS)
	}
	return s
}

// naiveAnomalies applies the definitions of the package comment pair by
// pair.
func naiveAnomalies(ops []history.Op) (stale, inv, unexplained int) {
	const inf = int64(1) << 62
	type span struct{ start, end int64 } // a write's; end inf = unknown outcome
	// observed returns the spans of the writes a read may have returned.
	observed := func(r history.Op) []span {
		if r.Status == 404 {
			return []span{{-inf, -inf}}
		}
		var all, sameVersion []span
		for _, w := range ops {
			if !w.IsWrite() || w.Key != r.Key || w.Value != r.Value || w.SentUS >= r.DoneUS {
				continue
			}
			var s span
			switch w.Outcome() {
			case history.WriteAcked:
				s = span{w.SentUS, w.DoneUS}
			case history.WriteUnknown:
				s = span{w.SentUS, inf}
			default:
				continue
			}
			all = append(all, s)
			if w.Version != 0 && w.Version == r.Version {
				sameVersion = append(sameVersion, s)
			}
		}
		if len(all) > 1 && len(sameVersion) > 0 {
			return sameVersion
		}
		return all
	}
	for _, r := range ops {
		if !r.IsRead() || !r.OK() {
			continue
		}
		obs := observed(r)
		if len(obs) == 0 {
			unexplained++
			continue
		}
		// stale: every write it may have returned finished before some
		// acknowledged write began that finished before the read began.
		isStale := true
		for _, x := range obs {
			superseded := false
			for _, y := range ops {
				if y.IsWrite() && y.Key == r.Key && y.Outcome() == history.WriteAcked && y.DoneUS < r.SentUS && y.SentUS > x.end {
					superseded = true
				}
			}
			isStale = isStale && superseded
		}
		if isStale {
			stale++
		}
		// inversion: some read that finished before this one began
		// returned a write that began after every write this one may
		// have returned had finished.
		inverted := false
		for _, a := range ops {
			if !a.IsRead() || !a.OK() || a.Key != r.Key || a.DoneUS >= r.SentUS {
				continue
			}
			aobs := observed(a)
			if len(aobs) == 0 {
				continue
			}
			all := true
			for _, x := range aobs {
				for _, y := range obs {
					all = all && x.start > y.end
				}
			}
			inverted = inverted || all
		}
		if inverted {
			inv++
		}
	}
	return stale, inv, unexplained
}
