package consensus

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

func TestFSMApply(t *testing.T) {
	var calls [][2]int
	f := &fsm{n: 5, w: 5, r: 1, log: slog.New(slog.DiscardHandler), hook: func(w, r int) { calls = append(calls, [2]int{w, r}) }}
	for _, tc := range []struct {
		name string
		log  raft.Log
		err  bool
		w, r int
	}{
		{"set", raft.Log{Type: raft.LogCommand, Data: encodeSetQuorum(3, 3)}, false, 3, 3},
		{"empty", raft.Log{Type: raft.LogCommand}, true, 3, 3},
		{"unknown tag", raft.Log{Type: raft.LogCommand, Data: []byte{0x7f, 1, 1}}, true, 3, 3},
		{"truncated", raft.Log{Type: raft.LogCommand, Data: []byte{cmdSetQuorum, 2}}, true, 3, 3},
		{"bad varint", raft.Log{Type: raft.LogCommand, Data: []byte{cmdSetQuorum, 0xff, 0xff}}, true, 3, 3},
		{"trailing bytes", raft.Log{Type: raft.LogCommand, Data: append(encodeSetQuorum(1, 1), 0)}, true, 3, 3},
		{"huge", raft.Log{Type: raft.LogCommand, Data: encodeSetQuorum(1<<40, 1)}, true, 3, 3},
		{"out of range", raft.Log{Type: raft.LogCommand, Data: encodeSetQuorum(6, 1)}, true, 3, 3},
		{"zero", raft.Log{Type: raft.LogCommand, Data: encodeSetQuorum(1, 0)}, true, 3, 3},
		{"not a command", raft.Log{Type: raft.LogNoop, Data: encodeSetQuorum(1, 1)}, false, 3, 3},
		{"set again", raft.Log{Type: raft.LogCommand, Data: encodeSetQuorum(1, 5)}, false, 1, 5},
	} {
		resp := f.Apply(&tc.log)
		if err, _ := resp.(error); (err != nil) != tc.err {
			t.Fatalf("%s: response %v", tc.name, resp)
		}
		if w, r := f.quorum(); w != tc.w || r != tc.r {
			t.Fatalf("%s: quorum %d/%d, want %d/%d", tc.name, w, r, tc.w, tc.r)
		}
	}
	if len(calls) != 2 || calls[0] != [2]int{3, 3} || calls[1] != [2]int{1, 5} {
		t.Fatalf("hook calls %v", calls)
	}
	if err, _ := f.Apply(&raft.Log{Type: raft.LogCommand, Data: encodeSetQuorum(9, 9)}).(error); !errors.Is(err, ErrInvalid) {
		t.Fatalf("out of range: %v, want ErrInvalid", err)
	}
}

type sink struct {
	bytes.Buffer
	cancelled bool
}

func (s *sink) ID() string    { return "test" }
func (s *sink) Cancel() error { s.cancelled = true; return nil }
func (s *sink) Close() error  { return nil }

func TestFSMSnapshotRestore(t *testing.T) {
	a := &fsm{n: 3, w: 2, r: 3, log: slog.New(slog.DiscardHandler)}
	snap, err := a.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	var s sink
	if err := snap.Persist(&s); err != nil {
		t.Fatal(err)
	}
	snap.Release()
	if got := strings.TrimSpace(s.String()); got != `{"w":2,"r":3}` {
		t.Fatalf("snapshot %s", got)
	}
	var hooked [2]int
	b := &fsm{n: 3, w: 3, r: 1, log: slog.New(slog.DiscardHandler), hook: func(w, r int) { hooked = [2]int{w, r} }}
	if err := b.Restore(io.NopCloser(strings.NewReader(s.String()))); err != nil {
		t.Fatal(err)
	}
	if w, r := b.quorum(); w != 2 || r != 3 || hooked != [2]int{2, 3} {
		t.Fatalf("restored %d/%d, hook %v", w, r, hooked)
	}
	for _, bad := range []string{"", "{", `{"w":0,"r":1}`, `{"w":4,"r":1}`} {
		if err := b.Restore(io.NopCloser(strings.NewReader(bad))); err == nil {
			t.Fatalf("restore of %q succeeded", bad)
		}
	}
	if w, r := b.quorum(); w != 2 || r != 3 {
		t.Fatalf("a failed restore changed the quorum: %d/%d", w, r)
	}
}

func TestHCLogAdapter(t *testing.T) {
	var buf bytes.Buffer
	l := newHCLog(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo})), "raft")
	l.Trace("trace line")
	l.Debug("debug line")
	if l.IsDebug() || l.IsTrace() || !l.IsInfo() || !l.IsError() {
		t.Fatal("levels wrong at info")
	}
	l.With("peer", "node2").Named("net").Warn("failed to contact", "time", 3)
	l.Info("entering follower state")
	out := buf.String()
	if strings.Contains(out, "trace line") || strings.Contains(out, "debug line") {
		t.Fatalf("debug/trace logged at info:\n%s", out)
	}
	for _, want := range []string{"level=WARN", "logger=raft.net", "peer=node2", "time=3", "failed to contact", "level=INFO"} {
		if !strings.Contains(out, want) {
			t.Fatalf("missing %q in:\n%s", want, out)
		}
	}
	if l.GetLevel() != hclog.Info {
		t.Fatalf("GetLevel %v", l.GetLevel())
	}
	l.SetLevel(hclog.Error)
	buf.Reset()
	l.Warn("dropped")
	l.Error("kept")
	if strings.Contains(buf.String(), "dropped") || !strings.Contains(buf.String(), "kept") {
		t.Fatalf("SetLevel(Error):\n%s", buf.String())
	}

	buf.Reset()
	d := newHCLog(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})), "raft")
	d.Trace("trace line")
	d.Debug("debug line")
	if !strings.Contains(buf.String(), "trace line") || !strings.Contains(buf.String(), "debug line") {
		t.Fatalf("debug/trace dropped at debug:\n%s", buf.String())
	}
	d.StandardLogger(nil).Print("std line")
	if !strings.Contains(buf.String(), "std line") {
		t.Fatal("standard logger lost a line")
	}
}
