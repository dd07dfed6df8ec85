package experiment

import (
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/kvdb/kvdb/internal/history"
	"github.com/kvdb/kvdb/internal/load"
	"github.com/kvdb/kvdb/internal/report"
)

// t0US is the synthetic histories' start (µs on the history's clock).
const t0US = int64(1_700_000_000_000_000)

// at is ms after t0 on the history's clock.
func at(ms float64) int64 { return t0US + int64(ms*1000) }

// synth builds synthetic histories: one write every 20 ms (key k<i%5>)
// and one read every 20 ms, 10 ms after each write, whose outcome and
// latency a scenario decides.
type synth struct {
	ops []history.Op
	seq int64
}

func (s *synth) add(op history.Op) history.Op {
	op.Seq, op.Client = s.seq, int(s.seq)
	s.seq++
	if op.IntendedUS == 0 {
		op.IntendedUS = op.SentUS
	}
	if op.Value == "" && op.IsWrite() {
		op.Value = fmt.Sprintf("v%d", op.Seq)
	}
	s.ops = append(s.ops, op)
	return op
}

// write adds a write of key sent at sentMs, done at doneMs with status
// (0 and errText for no answer).
func (s *synth) write(key string, sentMs, doneMs float64, status int, errText string) history.Op {
	if status != 201 && errText == "" {
		errText = "refused"
	}
	return s.add(history.Op{Op: history.OpSet, Key: key, Status: status, SentUS: at(sentMs), DoneUS: at(doneMs), Error: errText})
}

func (s *synth) read(key string, sentMs, doneMs float64, status int, errText string) history.Op {
	if status != 200 && status != 404 && errText == "" {
		errText = "refused"
	}
	return s.add(history.Op{Op: history.OpGet, Key: key, Status: status, SentUS: at(sentMs), DoneUS: at(doneMs), Error: errText})
}

// scenarioHistory runs a load of 5 s with a fault from 2 s to 3.5 s: a
// write every 20 ms answered by outcome(sentMs) = (status, latency ms,
// error text), and a read every 20 ms answered 200 in 1 ms unless
// readFails(sentMs).
func scenarioHistory(outcome func(ms float64) (int, float64, string), readFails func(ms float64) bool) *synth {
	s := &synth{}
	for ms := 0.0; ms < 5000; ms += 20 {
		st, lat, e := outcome(ms)
		s.write(fmt.Sprintf("k%d", int(ms/20)%5), ms, ms+lat, st, e)
		if readFails != nil && readFails(ms+10) {
			s.read("k0", ms+10, ms+11, 0, "network: connection refused")
		} else {
			s.read("k0", ms+10, ms+11, 200, "")
		}
	}
	return s
}

// Each scenario's figures on a synthetic history with a known answer.
func TestScenarioFigures(t *testing.T) {
	const faultMs, healMs, windowMs = 2000.0, 3500.0, 5000.0
	inFault := func(ms float64) bool { return ms >= faultMs && ms < healMs }
	tests := []struct {
		name       string
		outcome    func(ms float64) (int, float64, string)
		readFails  func(ms float64) bool
		window     float64 // write_unavailable_ms
		sentMs     float64 // first acknowledged write's send, from the fault
		noAck      float64
		recovered  bool
		writeErrs  map[string]int
		readErrs   map[string]int
		timelineAt float64 // a bucket inside the fault: no write OK there
	}{
		{
			// kill-leader: writes refused (network, then 503 during the
			// election) until a new leader acknowledges one sent at 3100.
			name: "kill-leader",
			outcome: func(ms float64) (int, float64, string) {
				switch {
				case ms >= faultMs && ms < 2500:
					return 0, 1, "network: connection refused"
				case ms >= 2500 && ms < 3100:
					return 503, 2, "leader unavailable"
				}
				return 201, 5, ""
			},
			window: 1105, sentMs: 1100, noAck: 1000, recovered: true,
			writeErrs: map[string]int{"network": 25, "503": 30}, readErrs: map[string]int{},
			timelineAt: 2500,
		},
		{
			// pause: writes sent in the pause hang until 50 ms after the
			// resume at 3500 and are then acknowledged, so the first
			// acknowledgement after the fault is the write sent at the
			// resume (5 ms), not the first one that hung.
			name: "pause",
			outcome: func(ms float64) (int, float64, string) {
				if inFault(ms) {
					return 201, healMs + 50 - ms, ""
				}
				return 201, 5, ""
			},
			readFails: inFault,
			window:    1505, sentMs: 1500, noAck: 1500, recovered: true,
			writeErrs: map[string]int{}, readErrs: map[string]int{"network": 75},
			timelineAt: -1,
		},
		{
			// kill-node, leaderless: a fifth of the writes fail, the rest
			// go on: writes never stop.
			name: "kill-node",
			outcome: func(ms float64) (int, float64, string) {
				if inFault(ms) && int(ms/20)%5 == 0 {
					return 0, 1, "network: connection refused"
				}
				return 201, 3, ""
			},
			window: 23, sentMs: 20, noAck: 0, recovered: true,
			writeErrs: map[string]int{"network": 15}, readErrs: map[string]int{},
			timelineAt: -1,
		},
		{
			// W=5 with a node down until the end: nothing acknowledged
			// after the fault.
			name: "never recovered",
			outcome: func(ms float64) (int, float64, string) {
				if ms >= faultMs {
					return 503, 1200, "quorum not reached"
				}
				return 201, 1200, ""
			},
			// the last write sent before the fault is acknowledged at 3180;
			// after that nothing is (the buckets from 3250 to 5000).
			window: 3000, sentMs: -1, noAck: 1750, recovered: false,
			writeErrs: map[string]int{"503": 150}, readErrs: map[string]int{},
			timelineAt: 3000,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := scenarioHistory(tc.outcome, tc.readFails)
			u := WriteUnavailability(s.ops, t0US, at(faultMs), windowMs)
			if !near(u.WindowMs, tc.window) || !near(u.FirstAckedSentMs, tc.sentMs) || !near(u.NoAckMs, tc.noAck) || u.Recovered != tc.recovered {
				t.Errorf("unavailability %+v, want window %v, first acknowledged sent at %v, no ack %v, recovered %v",
					u, tc.window, tc.sentMs, tc.noAck, tc.recovered)
			}
			reads, writes := ErrorsByStatus(s.ops)
			if !maps.Equal(writes, tc.writeErrs) || !maps.Equal(reads, tc.readErrs) {
				t.Errorf("errors by status: writes %v reads %v, want %v and %v", writes, reads, tc.writeErrs, tc.readErrs)
			}
			tl := Timeline(s.ops, t0US, windowMs)
			if len(tl) != 20 {
				t.Fatalf("%d buckets, want 20", len(tl))
			}
			var ok, failed, acks int
			for _, b := range tl {
				ok += b.WritesOK + b.ReadsOK
				failed += b.WritesFailed + b.ReadsFailed
				acks += b.WriteAcks
			}
			wantFailed := 0
			for _, n := range tc.writeErrs {
				wantFailed += n
			}
			for _, n := range tc.readErrs {
				wantFailed += n
			}
			if ok+failed != len(s.ops) || failed != wantFailed {
				t.Errorf("timeline counts %d ok, %d failed; want %d in all, %d failed", ok, failed, len(s.ops), wantFailed)
			}
			if tc.timelineAt >= 0 {
				b := tl[int(tc.timelineAt/BucketMs)]
				if b.WritesOK != 0 || b.WritesFailed == 0 {
					t.Errorf("bucket at %v ms: %+v, want only failed writes", tc.timelineAt, b)
				}
			}
		})
	}
}

func near(a, b float64) bool { return a-b < 0.01 && b-a < 0.01 }

// Acknowledged writes held, partially held and lost, by real-time order,
// against final copies with a known answer.
func TestAckedFate(t *testing.T) {
	s := &synth{}
	// a: w1 then w2, both acknowledged; node1 holds w2, node2 still w1:
	// w1 is held everywhere (w2 is later), w2 only partly.
	w1 := s.write("a", 0, 10, 201, "")
	w2 := s.write("a", 20, 30, 201, "")
	// b: w3 acknowledged, then w4 of unknown outcome (503); node1 holds w4,
	// which may take effect after w3: w3 is held there; node2 has nothing.
	w3 := s.write("b", 0, 10, 201, "")
	w4 := s.write("b", 20, 30, 503, "quorum not reached")
	// c: w5 acknowledged, then nothing holds it (a W=1 leader killed):
	// lost; node2's copy is a value nobody wrote (no write holds it).
	s.write("c", 0, 10, 201, "")
	// d: w6 and w7 overlap in time; each node holds one of them: both
	// held (either may be the later).
	w6 := s.write("d", 100, 200, 201, "")
	w7 := s.write("d", 150, 250, 201, "")
	// e: w8 acknowledged and held, w9 refused (307: never applied).
	w8 := s.write("e", 0, 10, 201, "")
	s.write("e", 20, 21, 307, "not the leader")
	// f: a key nobody read back (not in the copies): no verdict.
	s.write("f", 0, 10, 201, "")
	has := func(w history.Op) Copy { return Copy{Found: true, Value: w.Value, Version: uint64(w.Seq)} }
	final := FinalCopies{
		Nodes: []string{"node1", "node2", "node3"},
		Copies: map[string][]Copy{
			"a": {has(w2), has(w1), {Err: "timeout"}},
			"b": {has(w4), {}, has(w3)},
			"c": {{}, {Found: true, Value: "not written"}, {}},
			"d": {has(w6), has(w7), has(w7)},
			"e": {has(w8), has(w8), has(w8)},
		},
	}
	d := AckedFate(s.ops, final)
	want := Durability{Acked: 8, Lost: 1, Partial: 2, NodesChecked: 2}
	if d != want {
		t.Errorf("AckedFate = %+v, want %+v", d, want)
	}
}

// runFigures fills a fault run's report fields from the history, the
// summary's window and the scenario record; a steady run has none.
func TestRunFigures(t *testing.T) {
	s := scenarioHistory(func(ms float64) (int, float64, string) {
		if ms >= 2000 && ms < 3000 {
			return 0, 1, "network: connection refused"
		}
		return 201, 5, ""
	}, nil)
	sum := &load.Summary{Started: time.UnixMicro(t0US), WindowS: 5}
	rec := ScenarioRecord{Scenario: ScenarioKillLeader, Target: "node1", Role: "leader", Action: "killed node1", StartUS: at(2000), EndUS: at(3500)}
	f := runFigures(s.ops, sum, rec, nil)
	want := report.Fault{Target: "node1", Role: "leader", Action: "killed node1", StartMs: 2000, Recovered: true}
	if f.fault == nil || f.unavailableMs == nil || f.fault.EndMs == nil || *f.fault.EndMs != 3500 ||
		f.fault.FirstAckedSentMs == nil || *f.fault.FirstAckedSentMs != 1000 || *f.unavailableMs != 1005 {
		t.Fatalf("figures %+v fault %+v", f, f.fault)
	}
	got := *f.fault
	got.EndMs, got.FirstAckedSentMs = nil, nil
	if got != want || f.noAckMs != 1000 || f.durability.Acked != 200 || f.finalCheck {
		t.Errorf("fault %+v (want %+v), no ack %v, acked %d, final check %v", got, want, f.noAckMs, f.durability.Acked, f.finalCheck)
	}
	steady := runFigures(s.ops, sum, ScenarioRecord{Scenario: ScenarioSteady}, &FinalCopies{})
	if steady.fault != nil || steady.unavailableMs != nil || steady.noAckMs != 1000 || !steady.finalCheck {
		t.Errorf("steady figures %+v", steady)
	}
	// A steady run counts from its first acknowledgement: here the first
	// write is acknowledged 1.2 s after it was sent, and from then on
	// every bucket has one.
	slow := scenarioHistory(func(float64) (int, float64, string) { return 201, 1200, "" }, nil)
	if f := runFigures(slow.ops, sum, ScenarioRecord{Scenario: ScenarioSteady}, nil); f.noAckMs != 0 {
		t.Errorf("steady figures of a run whose writes take 1.2 s: %+v", f)
	}
}

// singleWriteReads keeps the reads of a key with one write in flight and
// drops those whose latest acknowledged write overlapped another, or that
// a newer write could have reached.
func TestSingleWriteReads(t *testing.T) {
	s := &synth{}
	// a: one write, a read after it: kept.
	s.write("a", 0, 10, 201, "")
	keepA := s.read("a", 50, 51, 200, "")
	// b: two overlapping writes, a read after both: dropped.
	s.write("b", 0, 30, 201, "")
	s.write("b", 20, 40, 201, "")
	s.read("b", 50, 51, 200, "")
	// c: a write, then a newer one sent while the read is in flight:
	// dropped; a read before any write: kept (nothing to place it by).
	keepC := s.read("c", 0, 1, 404, "")
	s.write("c", 10, 20, 201, "")
	s.read("c", 50, 60, 200, "")
	s.write("c", 55, 70, 201, "")
	// d: a write, then one of unknown outcome sent before the first was
	// acknowledged: they overlap (the unknown one never ends): dropped.
	s.write("d", 0, 10, 201, "")
	s.write("d", 5, 6, 503, "quorum not reached")
	s.read("d", 50, 51, 200, "")
	var kept []int64
	for _, op := range singleWriteReads(s.ops) {
		if op.IsRead() {
			kept = append(kept, op.Seq)
		}
	}
	if want := []int64{keepA.Seq, keepC.Seq}; !slices.Equal(kept, want) {
		t.Errorf("kept reads %v, want %v", kept, want)
	}
	if n := len(singleWriteReads(s.ops)); n != len(s.ops)-3 {
		t.Errorf("%d ops kept of %d, want every write kept", n, len(s.ops))
	}
}
