package check

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kvdb/kvdb/internal/history"
)

// set and get build hand-written operations; times are microseconds.
func set(seq int64, key, value string, version uint64, status int, sent, done int64) history.Op {
	return history.Op{Client: int(seq), Seq: seq, Op: history.OpSet, Key: key, Value: value, Version: version,
		Status: status, Node: "n1", IntendedUS: sent, SentUS: sent, DoneUS: done}
}

func get(seq int64, key, value string, version uint64, status int, sent, done int64) history.Op {
	return history.Op{Client: int(seq), Seq: seq, Op: history.OpGet, Key: key, Value: value, Version: version,
		Status: status, Node: "n2", IntendedUS: sent, SentUS: sent, DoneUS: done}
}

func unknownSet(op history.Op, errText string) history.Op {
	op.Status, op.Version, op.Error = 0, 0, errText
	return op
}

func run(t *testing.T, ops []history.Op, cfg Config) Result {
	t.Helper()
	res, err := Run(context.Background(), ops, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func TestHandWrittenHistories(t *testing.T) {
	tests := []struct {
		name       string
		ops        []history.Op
		stale, inv int
		verdict    Verdict
	}{
		{
			name: "sequential write then read",
			ops: []history.Op{
				set(0, "x", "a", 1, 201, 0, 10),
				get(1, "x", "a", 1, 200, 20, 30),
			},
			verdict: Linearizable,
		},
		{
			name: "read concurrent with write may see either",
			ops: []history.Op{
				set(0, "x", "a", 1, 201, 0, 100),
				get(1, "x", "", 0, 404, 10, 20),
				get(2, "x", "a", 1, 200, 30, 40),
			},
			verdict: Linearizable,
		},
		{
			name: "read of absent key before any write",
			ops: []history.Op{
				get(0, "x", "", 0, 404, 0, 5),
				set(1, "x", "a", 1, 201, 10, 20),
			},
			verdict: Linearizable,
		},
		{
			name: "stale read after acknowledged write",
			ops: []history.Op{
				set(0, "x", "a", 1, 201, 0, 10),
				set(1, "x", "b", 2, 201, 20, 30),
				get(2, "x", "a", 1, 200, 40, 50),
			},
			stale: 1, verdict: NotLinearizable,
		},
		{
			name: "404 after acknowledged write is stale",
			ops: []history.Op{
				set(0, "x", "a", 1, 201, 0, 10),
				get(1, "x", "", 0, 404, 11, 12),
			},
			stale: 1, verdict: NotLinearizable,
		},
		{
			name: "inversion inside the write window",
			ops: []history.Op{
				set(0, "x", "a", 1, 201, 0, 100),
				get(1, "x", "a", 1, 200, 10, 20),
				get(2, "x", "", 0, 404, 30, 40),
			},
			inv: 1, verdict: NotLinearizable,
		},
		{
			name: "overlapping reads may disagree",
			ops: []history.Op{
				set(0, "x", "a", 1, 201, 0, 100),
				get(1, "x", "a", 1, 200, 10, 50),
				get(2, "x", "", 0, 404, 30, 40),
			},
			verdict: Linearizable,
		},
		{
			name: "keys are independent",
			ops: []history.Op{
				set(0, "x", "a", 1, 201, 0, 10),
				get(1, "y", "", 0, 404, 20, 30),
				get(2, "x", "a", 1, 200, 20, 30),
			},
			verdict: Linearizable,
		},
		{
			// The read returns the highest version, yet a write
			// acknowledged later (with a lower version) is lost: stale.
			name: "lost update: later write overwritten by an earlier one",
			ops: []history.Op{
				set(0, "x", "a", 5, 201, 0, 10),
				set(1, "x", "b", 3, 201, 20, 30),
				get(2, "x", "a", 5, 200, 40, 50),
			},
			stale: 1, verdict: NotLinearizable,
		},
		{
			name: "unknown-outcome write may apply late",
			ops: []history.Op{
				set(0, "x", "a", 1, 201, 0, 10),
				unknownSet(set(1, "x", "b", 0, 0, 20, 30), "timeout: deadline exceeded"),
				get(2, "x", "a", 1, 200, 40, 50),
				get(3, "x", "b", 2, 200, 60, 70),
			},
			verdict: Linearizable,
		},
		{
			name: "unknown-outcome write (503) may never apply",
			ops: []history.Op{
				func() history.Op {
					op := set(0, "x", "a", 0, 503, 0, 10)
					op.Error = "write quorum not reached: 2 of 5"
					return op
				}(),
				get(1, "x", "", 0, 404, 20, 30),
			},
			verdict: Linearizable,
		},
		{
			name: "definitely failed write is dropped",
			ops: []history.Op{
				set(0, "x", "a", 0, 400, 0, 10),
				get(1, "x", "a", 1, 200, 20, 30),
			},
			verdict: NotLinearizable, // reads a value nobody wrote
		},
		{
			name: "failed reads are ignored",
			ops: []history.Op{
				set(0, "x", "a", 1, 201, 0, 10),
				func() history.Op { op := get(1, "x", "", 0, 503, 20, 30); op.Error = "read quorum"; return op }(),
			},
			verdict: Linearizable,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := run(t, tt.ops, Config{})
			if res.StaleReads != tt.stale || res.Inversions != tt.inv {
				t.Errorf("stale %d inversions %d, want %d %d", res.StaleReads, res.Inversions, tt.stale, tt.inv)
			}
			if res.Linearizability.Verdict != tt.verdict {
				t.Errorf("verdict %q, want %q (%+v)", res.Linearizability.Verdict, tt.verdict, res.Linearizability)
			}
			if b := res.Linearizable; b == nil || *b != (tt.verdict == Linearizable) {
				t.Errorf("linearizable = %v", b)
			}
		})
	}
}

func TestAnomalyExamples(t *testing.T) {
	ops := []history.Op{
		set(0, "x", "a", 1, 201, 0, 10),
		set(1, "x", "b", 2, 201, 20, 30),
		get(2, "x", "a", 1, 200, 1030, 1040),
		get(3, "x", "b", 2, 200, 1050, 1060),
		get(4, "x", "a", 1, 200, 1070, 1080),
	}
	a := FindAnomalies(ops, 1)
	if a.Reads != 3 || a.StaleReads != 2 || a.Inversions != 1 {
		t.Fatalf("got %+v", a)
	}
	want := Anomaly{Key: "x", Seq: 2, Node: "n2", Got: 1, GotWriteSeq: 0, Newer: 2, NewerSeq: 1, LagMs: 1}
	if len(a.StaleExamples) != 1 || a.StaleExamples[0] != want {
		t.Errorf("stale examples %+v, want [%+v]", a.StaleExamples, want)
	}
	if len(a.InversionExamples) != 1 || a.InversionExamples[0].Seq != 4 || a.InversionExamples[0].NewerSeq != 3 {
		t.Errorf("inversion examples %+v", a.InversionExamples)
	}
}

func TestDroppedAndUnsentOpsIgnored(t *testing.T) {
	ops := []history.Op{
		set(0, "x", "a", 1, 201, 0, 10),
		{Client: -1, Seq: 1, Op: history.OpGet, Key: "x", IntendedUS: 20, Dropped: true, Error: "dropped"},
	}
	res := run(t, ops, Config{})
	if res.Reads != 0 || res.WriteRead.Count != 0 || res.Linearizability.Operations != 1 {
		t.Fatalf("got %+v", res)
	}
}

func TestForeignReadsCounted(t *testing.T) {
	res := run(t, []history.Op{get(0, "x", "old-run", 9, 200, 0, 10)}, Config{})
	if res.Linearizability.ForeignReads != 1 || res.Linearizability.Verdict != NotLinearizable {
		t.Fatalf("got %+v", res.Linearizability)
	}
}

func TestUnknownWritesCounted(t *testing.T) {
	ops := []history.Op{
		unknownSet(set(0, "x", "a", 0, 0, 0, 10), "network: connection reset"),
		get(1, "x", "a", 1, 200, 100, 110),
	}
	res := run(t, ops, Config{})
	if res.Linearizability.UnknownWrites != 1 || res.Linearizability.Verdict != Linearizable {
		t.Fatalf("got %+v", res.Linearizability)
	}
}

func TestSkipLinearizability(t *testing.T) {
	res := run(t, []history.Op{set(0, "x", "a", 1, 201, 0, 10)}, Config{SkipLinearizability: true})
	if res.Linearizability.Verdict != NotChecked || res.Linearizable != nil {
		t.Fatalf("got %+v", res)
	}
}

func TestCancelledContextIsUnknown(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	res, err := Run(ctx, []history.Op{set(0, "x", "a", 1, 201, 0, 10)}, Config{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Linearizability.Verdict != Unknown || res.Linearizable != nil || !strings.Contains(res.Linearizability.Reason, "cancelled") {
		t.Fatalf("got %+v", res.Linearizability)
	}
}

func TestVisualizationWritten(t *testing.T) {
	path := filepath.Join(t.TempDir(), "viz.html")
	ops := []history.Op{
		set(0, "x", "a", 1, 201, 0, 100),
		get(1, "x", "a", 1, 200, 10, 20),
		get(2, "x", "", 0, 404, 30, 40),
		set(3, "y", "b", 1, 201, 0, 10),
	}
	res := run(t, ops, Config{VizPath: path})
	if res.Linearizability.Visualization != path || len(res.Linearizability.IllegalKeys) != 1 || res.Linearizability.IllegalKeys[0] != "x" {
		t.Fatalf("got %+v", res.Linearizability)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), "<html") || !strings.Contains(string(b), `get() -\u003e absent`) {
		t.Error("visualization does not look like porcupine's HTML with our descriptions")
	}
}

func TestConfigValidate(t *testing.T) {
	cfg := Config{Timeout: -time.Second}
	if _, err := Run(context.Background(), nil, cfg); err == nil {
		t.Fatal("negative timeout accepted")
	}
}

func TestEmptyHistoryIsLinearizable(t *testing.T) {
	res := run(t, nil, Config{})
	if res.Linearizability.Verdict != Linearizable || res.WriteRead.Count != 0 {
		t.Fatalf("got %+v", res)
	}
}

func TestTimeoutIsUnknown(t *testing.T) {
	res := run(t, []history.Op{set(0, "x", "a", 1, 201, 0, 10)}, Config{Timeout: time.Nanosecond})
	if res.Linearizability.Verdict != Unknown || res.Linearizability.KeysChecked != 0 || res.Linearizability.Reason == "" {
		t.Fatalf("got %+v", res.Linearizability)
	}
}
