package history

import (
	"bytes"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

func TestWriteReadRoundTrip(t *testing.T) {
	ops := []Op{
		{Client: 0, Seq: 0, Op: OpSet, Key: "k/1 ü", Value: "<v&>", Version: 7, Status: 201, Node: "http://a", ServedBy: "node1", IntendedUS: 10, SentUS: 11, DoneUS: 20},
		{Client: 1, Seq: 1, Op: OpGet, Key: "k", Value: "", Status: 404, Node: "http://b", IntendedUS: 12, SentUS: 13, DoneUS: 14, Error: "not found"},
		{Client: -1, Seq: 2, Op: OpGet, Key: "k", IntendedUS: 15, Dropped: true, Error: "dropped: max in flight"},
	}
	path := filepath.Join(t.TempDir(), "h.ndjson")
	w, err := Create(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, op := range ops {
		if err := w.Write(op); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	got, err := ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(ops) {
		t.Fatalf("read %d ops, want %d", len(got), len(ops))
	}
	for i := range ops {
		if got[i] != ops[i] {
			t.Errorf("op %d: got %+v, want %+v", i, got[i], ops[i])
		}
	}
}

func TestWriterConcurrent(t *testing.T) {
	var buf bytes.Buffer
	w := NewWriter(&buf)
	var wg sync.WaitGroup
	for c := range 8 {
		wg.Go(func() {
			for i := range 100 {
				_ = w.Write(Op{Client: c, Seq: int64(i), Op: OpGet, Key: "k"})
			}
		})
	}
	wg.Wait()
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	ops, err := Read(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if len(ops) != 800 {
		t.Fatalf("got %d ops, want 800", len(ops))
	}
}

func TestReadErrors(t *testing.T) {
	tests := map[string]string{
		"bad json":  `{"op":"set","key":"k"` + "\n",
		"bad op":    `{"op":"put","key":"k"}`,
		"empty key": `{"op":"get","key":""}`,
		"time":      `{"op":"get","key":"k","sent_us":10,"done_us":5}`,
	}
	for name, in := range tests {
		t.Run(name, func(t *testing.T) {
			in := "\n" + `{"op":"get","key":"ok"}` + "\n" + in
			_, err := Read(strings.NewReader(in))
			if err == nil || !strings.Contains(err.Error(), "line 3") {
				t.Fatalf("err = %v, want an error on line 3", err)
			}
		})
	}
}

func TestReadSkipsBlankLinesAndNoTrailingNewline(t *testing.T) {
	in := "\n  \n" + `{"op":"get","key":"a"}` + "\r\n\n" + `{"op":"set","key":"b","value":"x"}`
	ops, err := Read(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	if len(ops) != 2 || ops[1].Value != "x" {
		t.Fatalf("got %+v", ops)
	}
}

func TestClassification(t *testing.T) {
	tests := []struct {
		name    string
		op      Op
		ok      bool
		class   string
		outcome WriteOutcome
	}{
		{"set acked", Op{Op: OpSet, Status: 201, SentUS: 1}, true, "", WriteAcked},
		{"set quorum", Op{Op: OpSet, Status: 503, SentUS: 1, Error: "write quorum not reached"}, false, "503", WriteUnknown},
		{"set timeout", Op{Op: OpSet, SentUS: 1, Error: "timeout: deadline"}, false, ClassTimeout, WriteUnknown},
		{"set refused", Op{Op: OpSet, SentUS: 1, Error: "network: refused"}, false, ClassNetwork, WriteUnknown},
		{"set redirect", Op{Op: OpSet, Status: 307, SentUS: 1}, false, "307", WriteFailed},
		{"set bad input", Op{Op: OpSet, Status: 400, SentUS: 1}, false, "400", WriteFailed},
		{"set dropped", Op{Op: OpSet, Dropped: true}, false, ClassDropped, WriteFailed},
		{"set bad body", Op{Op: OpSet, Status: 201, SentUS: 1, Error: "bad json"}, false, ClassBadResponse, WriteAcked},
		{"get found", Op{Op: OpGet, Status: 200, SentUS: 1}, true, "", 0},
		{"get absent", Op{Op: OpGet, Status: 404, SentUS: 1}, true, "", 0},
		{"get quorum", Op{Op: OpGet, Status: 503, SentUS: 1}, false, "503", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.op.OK(); got != tt.ok {
				t.Errorf("OK = %v, want %v", got, tt.ok)
			}
			if got := tt.op.ErrorClass(); got != tt.class {
				t.Errorf("ErrorClass = %q, want %q", got, tt.class)
			}
			if tt.op.IsWrite() {
				if got := tt.op.Outcome(); got != tt.outcome {
					t.Errorf("Outcome = %v, want %v", got, tt.outcome)
				}
			}
		})
	}
}

func TestDurations(t *testing.T) {
	op := Op{IntendedUS: 1000, SentUS: 1500, DoneUS: 4000}
	if op.Latency().Microseconds() != 3000 || op.ServiceTime().Microseconds() != 2500 || op.SendDelay().Microseconds() != 500 {
		t.Fatalf("latency %v service %v delay %v", op.Latency(), op.ServiceTime(), op.SendDelay())
	}
}
