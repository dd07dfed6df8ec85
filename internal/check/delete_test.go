package check

import (
	"testing"

	"github.com/kvdb/kvdb/internal/history"
)

// del is a delete answered with status (200 acknowledges it).
func del(seq int64, key string, version uint64, status int, sent, done int64) history.Op {
	return history.Op{Client: int(seq), Seq: seq, Op: history.OpDel, Key: key, Version: version,
		Status: status, Node: "n1", IntendedUS: sent, SentUS: sent, DoneUS: done}
}

// Deletes write "absent": a 404 after an acknowledged delete is fresh, the
// deleted value after it is stale, a 404 after a later set is stale, and
// porcupine's register model agrees.
func TestDeletes(t *testing.T) {
	tests := []struct {
		name       string
		ops        []history.Op
		stale, inv int
		verdict    Verdict
	}{
		{
			name: "404 after an acknowledged delete is fresh",
			ops: []history.Op{
				set(0, "x", "a", 1, 201, 0, 10),
				del(1, "x", 2, 200, 20, 30),
				get(2, "x", "", 0, 404, 40, 50),
			},
			verdict: Linearizable,
		},
		{
			name: "the deleted value after the delete is stale",
			ops: []history.Op{
				set(0, "x", "a", 1, 201, 0, 10),
				del(1, "x", 2, 200, 20, 30),
				get(2, "x", "a", 1, 200, 40, 50),
			},
			stale: 1, verdict: NotLinearizable,
		},
		{
			name: "404 after a set that followed the delete is stale",
			ops: []history.Op{
				del(0, "x", 1, 200, 0, 10),
				set(1, "x", "b", 2, 201, 20, 30),
				get(2, "x", "", 0, 404, 40, 50),
			},
			stale: 1, verdict: NotLinearizable,
		},
		{
			name: "reads concurrent with a delete may see the value or absent",
			ops: []history.Op{
				set(0, "x", "a", 1, 201, 0, 10),
				del(1, "x", 2, 200, 20, 100),
				get(2, "x", "", 0, 404, 30, 40),
				get(3, "x", "", 0, 404, 50, 60),
			},
			verdict: Linearizable,
		},
		{
			name: "value read after a read saw the delete is an inversion",
			ops: []history.Op{
				set(0, "x", "a", 1, 201, 0, 10),
				del(1, "x", 2, 200, 20, 100),
				get(2, "x", "", 0, 404, 30, 40),
				get(3, "x", "a", 1, 200, 50, 60),
			},
			inv: 1, verdict: NotLinearizable,
		},
		{
			name: "unknown-outcome delete may take effect late",
			ops: []history.Op{
				set(0, "x", "a", 1, 201, 0, 10),
				func() history.Op {
					op := del(1, "x", 0, 503, 20, 30)
					op.Error = "delete quorum not reached"
					return op
				}(),
				get(2, "x", "a", 1, 200, 40, 50),
				get(3, "x", "", 0, 404, 60, 70),
			},
			verdict: Linearizable,
		},
		{
			name: "a failed (400) delete never took effect",
			ops: []history.Op{
				set(0, "x", "a", 1, 201, 0, 10),
				func() history.Op { op := del(1, "x", 0, 400, 20, 30); op.Error = "bad"; return op }(),
				get(2, "x", "", 0, 404, 40, 50),
			},
			stale: 1, verdict: NotLinearizable,
		},
		{
			name: "delete of a missing key, then set and read",
			ops: []history.Op{
				del(0, "x", 1, 200, 0, 10),
				get(1, "x", "", 0, 404, 20, 30),
				set(2, "x", "b", 2, 201, 40, 50),
				get(3, "x", "b", 2, 200, 60, 70),
			},
			verdict: Linearizable,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := run(t, tt.ops, Config{})
			if res.StaleReads != tt.stale || res.Inversions != tt.inv || res.UnexplainedReads != 0 {
				t.Errorf("stale %d inversions %d unexplained %d, want %d %d 0", res.StaleReads, res.Inversions, res.UnexplainedReads, tt.stale, tt.inv)
			}
			if res.Linearizability.Verdict != tt.verdict {
				t.Errorf("verdict %q, want %q", res.Linearizability.Verdict, tt.verdict)
			}
		})
	}
}

func TestDeleteOpClassification(t *testing.T) {
	for _, tt := range []struct {
		op      history.Op
		ok      bool
		outcome history.WriteOutcome
	}{
		{del(0, "x", 1, 200, 0, 1), true, history.WriteAcked},
		{del(0, "x", 0, 201, 0, 1), false, history.WriteFailed},
		{del(0, "x", 0, 503, 0, 1), false, history.WriteUnknown},
		{del(0, "x", 0, 0, 0, 1), false, history.WriteUnknown},
		{del(0, "x", 0, 307, 0, 1), false, history.WriteFailed},
	} {
		if !tt.op.IsWrite() || !tt.op.IsDelete() || tt.op.OK() != tt.ok || tt.op.Outcome() != tt.outcome || tt.op.Validate() != nil {
			t.Errorf("%+v: write %v delete %v ok %v outcome %v validate %v", tt.op, tt.op.IsWrite(), tt.op.IsDelete(), tt.op.OK(), tt.op.Outcome(), tt.op.Validate())
		}
	}
}
