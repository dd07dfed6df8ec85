package check

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/kvdb/kvdb/internal/history"
)

// Times in these histories are microseconds; 1 ms = 1000.
func TestStalenessSamples(t *testing.T) {
	tests := []struct {
		name string
		ops  []history.Op
		want []StalenessSample
	}{
		{
			name: "a read before any acknowledgement is skipped",
			ops: []history.Op{
				get(0, "x", "", 0, 404, 0, 100),
				set(1, "x", "a", 1, 201, 50, 2000),
				get(2, "x", "a", 1, 200, 1000, 1100), // sent before the ack
				get(3, "y", "", 0, 404, 3000, 3100),  // key never written
			},
		},
		{
			name: "the latest acknowledged write read 5 ms later is fresh",
			ops: []history.Op{
				set(0, "x", "a", 1, 201, 0, 1000),
				get(1, "x", "a", 1, 200, 6000, 6100),
			},
			want: []StalenessSample{{TUS: 5000, Fresh: true}},
		},
		{
			name: "a 404 after an acknowledgement is stale",
			ops: []history.Op{
				set(0, "x", "a", 1, 201, 0, 1000),
				get(1, "x", "", 0, 404, 3000, 3100),
			},
			want: []StalenessSample{{TUS: 2000, Fresh: false}},
		},
		{
			name: "an older write is stale, whatever its version",
			ops: []history.Op{
				set(0, "x", "a", 9, 201, 0, 1000),
				set(1, "x", "b", 2, 201, 2000, 3000),
				get(2, "x", "a", 9, 200, 4000, 4100),
				get(3, "x", "b", 2, 200, 4500, 4600),
			},
			want: []StalenessSample{{TUS: 1000, Fresh: false}, {TUS: 1500, Fresh: true}},
		},
		{
			name: "a write in flight when the read began is newer: fresh",
			ops: []history.Op{
				set(0, "x", "a", 1, 201, 0, 1000),
				set(1, "x", "b", 2, 201, 1500, 9000),                                         // acknowledged after the read
				unknownSet(set(2, "x", "c", 3, 0, 1600, 9000), "timeout: deadline exceeded"), // never acknowledged
				get(3, "x", "b", 2, 200, 2000, 2100),
				get(4, "x", "c", 3, 200, 2000, 2200),
				set(5, "x", "d", 4, 201, 2150, 9000), // sent during the read
				get(6, "x", "d", 4, 200, 2100, 2300),
			},
			want: []StalenessSample{{TUS: 1000, Fresh: true}, {TUS: 1000, Fresh: true}, {TUS: 1100, Fresh: true}},
		},
		{
			name: "writes that overlap are unordered; t counts from the latest acknowledgement",
			ops: []history.Op{
				set(0, "x", "a", 2, 201, 0, 5000),    // long write
				set(1, "x", "b", 1, 201, 1000, 2000), // inside it
				get(2, "x", "a", 2, 200, 7000, 7100),
				get(3, "x", "b", 1, 200, 8000, 8100),
			},
			want: []StalenessSample{{TUS: 2000, Fresh: true}, {TUS: 3000, Fresh: true}},
		},
		{
			name: "a write that finished before the latest-sent acknowledged write began is stale",
			ops: []history.Op{
				set(0, "x", "a", 1, 201, 0, 1000),
				set(1, "x", "b", 2, 201, 500, 5000), // overlaps a and c
				set(2, "x", "c", 3, 201, 1500, 2000),
				get(3, "x", "a", 1, 200, 6000, 6100), // a finished before c began
				get(4, "x", "b", 2, 200, 6000, 6100),
			},
			want: []StalenessSample{{TUS: 1000, Fresh: false}, {TUS: 1000, Fresh: true}},
		},
		{
			name: "failed reads, dropped and failed writes, unexplained values are left out",
			ops: []history.Op{
				set(0, "x", "a", 1, 201, 0, 1000),
				failedSet(set(1, "x", "z", 5, 409, 1100, 1200), 409),
				{Seq: 2, Op: history.OpSet, Key: "x", Value: "q", Dropped: true, IntendedUS: 1200},
				get(3, "x", "z", 5, 200, 2000, 2100), // only a failed write wrote z
				get(4, "x", "nobody", 7, 200, 2000, 2100),
				{Seq: 5, Op: history.OpGet, Key: "x", Status: 503, Error: "read quorum not reached", SentUS: 2000, DoneUS: 2100},
				get(6, "x", "a", 1, 200, 3000, 3100),
			},
			want: []StalenessSample{{TUS: 2000, Fresh: true}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := StalenessSamples(tc.ops)
			if !slices.Equal(got, tc.want) {
				t.Errorf("samples %v, want %v\n%s", got, tc.want, dump(tc.ops))
			}
		})
	}
}

// Every stale sample is a stale read of FindAnomalies and vice versa.
func TestStalenessAgreesWithAnomalies(t *testing.T) {
	rng := rand.New(rand.NewPCG(13, 17))
	for i := range 5000 {
		ops := randomHistory(rng)
		stale := 0
		for _, s := range StalenessSamples(ops) {
			if !s.Fresh {
				stale++
			}
			if s.TUS <= 0 {
				t.Fatalf("history %d: t = %d µs, want > 0\n%s", i, s.TUS, dump(ops))
			}
		}
		if a := FindAnomalies(ops, 0); a.StaleReads != stale {
			t.Fatalf("history %d: %d stale samples, FindAnomalies found %d stale reads\n%s", i, stale, a.StaleReads, dump(ops))
		}
	}
}

func TestMeasuredStalenessBuckets(t *testing.T) {
	var ops []history.Op
	seq := int64(0)
	next := func() int64 { seq++; return seq }
	// One write per key acknowledged at 1000 µs, one read per key at
	// 1000 + t; reads with t in [5, 10) ms: 3 fresh, 1 stale; [10, 20):
	// 1 fresh; exactly 20 ms and beyond: outside; 0.5 ms: [0, 5).
	add := func(key string, tUS int64, fresh bool) {
		ops = append(ops, set(next(), key, key+"-v", 1, 201, 0, 1000))
		if fresh {
			ops = append(ops, get(next(), key, key+"-v", 1, 200, 1000+tUS, 1000+tUS+100))
		} else {
			ops = append(ops, get(next(), key, "", 0, 404, 1000+tUS, 1000+tUS+100))
		}
	}
	add("a", 5000, true) // on the edge: the bucket it opens
	add("b", 6000, true)
	add("c", 9999, true)
	add("d", 7000, false)
	add("e", 10000, true)
	add("f", 20000, true) // the last edge is exclusive
	add("g", 500, false)
	// Edges unsorted, with a duplicate and a NaN: sorted and cleaned.
	got := MeasuredStaleness(ops, []float64{10, 0, 5, 20, 5, math.NaN()})
	want := []StalenessPoint{
		{LoMs: 0, HiMs: 5, TMs: 0.5, Reads: 1, Fresh: 0},
		{LoMs: 5, HiMs: 10, TMs: (5 + 6 + 9.999 + 7) / 4, Reads: 4, Fresh: 0.75},
		{LoMs: 10, HiMs: 20, TMs: 10, Reads: 1, Fresh: 1},
	}
	if len(got) != len(want) {
		t.Fatalf("points %+v, want %+v", got, want)
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.LoMs != w.LoMs || g.HiMs != w.HiMs || g.Reads != w.Reads || g.Fresh != w.Fresh || math.Abs(g.TMs-w.TMs) > 1e-9 {
			t.Errorf("point %d: %+v, want %+v", i, g, w)
		}
	}
	// An empty bucket: no reads, t at its midpoint, fresh 0.
	got = MeasuredStaleness(ops, []float64{100, 200})
	if len(got) != 1 || got[0].Reads != 0 || got[0].TMs != 150 || got[0].Fresh != 0 {
		t.Errorf("empty bucket: %+v", got)
	}
	for _, edges := range [][]float64{nil, {1}, {2, 2}} {
		if got := MeasuredStaleness(ops, edges); got != nil {
			t.Errorf("edges %v: %+v, want none", edges, got)
		}
	}
}
