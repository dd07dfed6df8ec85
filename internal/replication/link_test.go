package replication

import (
	"fmt"
	"testing"
	"time"

	"github.com/kvdb/kvdb/internal/store"
)

// A hung peer never has more than MaxInFlightPerPeer messages in flight
// (or queued for batching): the rest become hints at once, so writes do
// not pile up behind it.
func TestInFlightPerPeerIsBounded(t *testing.T) {
	for _, batching := range []bool{false, true} {
		t.Run(fmt.Sprintf("batching=%t", batching), func(t *testing.T) {
			tc := newTestCluster(t, 3, func(c *Config) {
				c.W, c.MaxInFlightPerPeer, c.PeerTimeout, c.DisableBatching = 1, 4, time.Minute, !batching
			})
			hung := tc.peer("n2")
			hung.setMode(peerHang)
			for i := range 50 {
				if _, err := tc.rep.Write(bg(), fmt.Sprintf("k%d", i), "v", Options{}); err != nil {
					t.Fatalf("write %d: %v", i, err)
				}
			}
			waitFor(t, "the healthy peer to get every write", func() bool { return tc.peer("n3").st.Len() == 50 })
			// Unbatched: at most 4 messages in flight. Batched: at most 4
			// batches in flight and 4 updates queued.
			want := 46
			if batching {
				want = 50 - 4 - 4*MaxBatchUpdates
				want = max(want, 1)
			}
			waitFor(t, "writes beyond the bound to become hints", func() bool { return tc.rep.Hints() >= want })
			if got := hung.inFlight.Load(); got > 4 {
				t.Fatalf("%d messages in flight to the hung peer, bound 4", got)
			}
		})
	}
}

// Hints keep only the newest update per key and are delivered when the
// peer answers again.
func TestHintsCoalesceAndDeliver(t *testing.T) {
	tc := newTestCluster(t, 3, func(c *Config) { c.W = 2; c.RetryFor = time.Minute })
	down := tc.peer("n3")
	down.setMode(peerFail)
	var last WriteResult
	for i := range 10 {
		res, err := tc.rep.Write(bg(), "same", fmt.Sprintf("v%d", i), Options{})
		if err != nil {
			t.Fatal(err)
		}
		last = res
	}
	waitFor(t, "one hint for the one key", func() bool { return tc.rep.Hints() == 1 })
	down.setMode(peerOK)
	waitFor(t, "the hint delivered", allHave("same", last.Version, down))
	waitFor(t, "no hints left", func() bool { return tc.rep.Hints() == 0 })
}

// With hinted handoff off a missed update is dropped, not retried.
func TestHintedHandoffOff(t *testing.T) {
	tc := newTestCluster(t, 3, func(c *Config) { c.W = 2; c.DisableHintedHandoff = true })
	down := tc.peer("n3")
	down.setMode(peerFail)
	if _, err := tc.rep.Write(bg(), "k", "v", Options{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the write task to end", func() bool { return tc.rep.Pending() == 0 })
	if tc.rep.Hints() != 0 || down.replicates.Load() != 1 {
		t.Fatalf("hints %d, attempts %d; want 0 hints and 1 attempt", tc.rep.Hints(), down.replicates.Load())
	}
}

// A node that starts with catch-up on is not ready, and refuses client
// reads, writes and peer reads, until it has copied a ready peer's state.
func TestCatchUpCopiesFromReadyPeer(t *testing.T) {
	reps := newLinkedCluster(t, 3, func(c *Config) { c.Mode = Leaderless })
	if _, err := reps[0].Write(bg(), "k", "v", Options{}); err != nil {
		t.Fatal(err)
	}
	// A fresh replica of n3 over the same linked peers, catch-up on.
	fresh := newLinkedNode(t, reps, 2, func(c *Config) { c.Mode = Leaderless })
	if fresh.Ready() {
		t.Fatal("a node with catch-up on is ready before catching up")
	}
	if _, err := fresh.Read(bg(), "k", Options{}); err != ErrNotReady {
		t.Fatalf("Read while catching up = %v, want ErrNotReady", err)
	}
	if _, _, err := fresh.ReadReplica(bg(), "k"); err != ErrNotReady {
		t.Fatalf("ReadReplica while catching up = %v, want ErrNotReady", err)
	}
	if err := fresh.CatchUp(bg()); err != nil {
		t.Fatal(err)
	}
	if e, ok := fresh.LocalRead("k"); !ok || e.Value != "v" {
		t.Fatalf("after catch-up: %+v %t", e, ok)
	}
	if res, err := fresh.Write(bg(), "k", "v2", Options{}); err != nil || res.Version <= 1 {
		t.Fatalf("write after catch-up: %+v %v (version must exceed those copied)", res, err)
	}
}

// newLinkedNode builds a fresh (empty) replica of member idx+1 whose fake
// peers deliver to the other nodes of reps. It is closed when the test ends.
func newLinkedNode(t *testing.T, reps []*Engine, idx int, mut func(*Config)) *Engine {
	t.Helper()
	n := len(reps)
	cfg := Config{Self: fmt.Sprintf("n%d", idx+1), Members: members(n), PeerTimeout: 5 * time.Second}
	if mut != nil {
		mut(&cfg)
	}
	var peers []Peer
	for j := range n {
		if j != idx {
			p := newFakePeer(fmt.Sprintf("n%d", j+1), nil)
			p.target = reps[j]
			peers = append(peers, p)
		}
	}
	r, err := New(cfg, store.New(8), peers)
	if err != nil {
		t.Fatal(err)
	}
	r.Start()
	t.Cleanup(func() { _ = r.Close(bg()) })
	return r
}
