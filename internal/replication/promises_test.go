package replication

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"testing"
	"time"
)

// linkOf returns node rep's fake link to the member id.
func linkOf(t *testing.T, rep *Engine, id string) *fakePeer {
	t.Helper()
	for _, l := range coreOf(rep).links {
		if l.ID() == id {
			return l.Peer.(*fakePeer)
		}
	}
	t.Fatalf("no link to %s", id)
	return nil
}

// A write that begins after another write of the same key was acknowledged
// always wins, whichever node coordinates each. The regression: leaderless
// W=3 under a sequential profile, n5 writes "first" and is acknowledged by
// n1 and n2; n4, which has not seen it yet, then writes "second". Without the
// version query n4's Lamport clock issued a lower version than "first", the
// replicas holding "first" counted as acknowledgements, and every node ended
// with "first".
func TestLaterWriteWins(t *testing.T) {
	for _, tt := range []struct {
		name         string
		mode         Mode
		w            int
		first, later int // coordinators (indexes)
	}{
		{"leaderless W3", Leaderless, 3, 4, 3},
		{"leaderless W2", Leaderless, 2, 4, 3},
		{"leaderless W1", Leaderless, 1, 4, 3},
		{"leaderless W5", Leaderless, 5, 4, 3},
		{"leader-follower W3", LeaderFollower, 3, 0, 0},
		{"leader-follower W1", LeaderFollower, 1, 0, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			nodes := newLinkedCluster(t, 5, func(c *Config) {
				c.Mode, c.W = tt.mode, tt.w
				c.Delays = Delays{Name: "custom", Sequential: true, Gap: 10 * time.Millisecond, Apply: 10 * time.Millisecond, Read: 5 * time.Millisecond}
			})
			first, err := nodes[tt.first].Write(bg(), "K", "first", Options{})
			if err != nil {
				t.Fatalf("first write: %v", err)
			}
			second, err := nodes[tt.later].Write(bg(), "K", "second", Options{})
			if err != nil {
				t.Fatalf("second write: %v", err)
			}
			if second.Version <= first.Version {
				t.Fatalf("the later write got version %d, not above the acknowledged %d", second.Version, first.Version)
			}
			waitFor(t, "background replication", func() bool {
				for _, n := range nodes {
					if n.Pending() > 0 || n.Hints() > 0 {
						return false
					}
				}
				return true
			})
			for i, n := range nodes {
				if e, _ := n.LocalRead("K"); e.Value != "second" {
					t.Errorf("node %d holds %+v, want the later acknowledged write", i+1, e)
				}
			}
		})
	}
}

// The version query needs N-W+1 replicas; without them the write is refused
// before anything is applied.
func TestVersionQueryNeedsQuorum(t *testing.T) {
	tc := newTestCluster(t, 5, func(c *Config) { c.Mode, c.W = Leaderless, 3 })
	for _, id := range []string{"n2", "n3", "n4"} {
		tc.peer(id).setMode(peerFail)
	}
	_, err := tc.rep.Write(bg(), "k", "v", Options{})
	var qe *QuorumError
	if !errors.As(err, &qe) || qe.Phase != "version query" || qe.Required != 3 {
		t.Fatalf("write = %v, want a version-query quorum error needing 3", err)
	}
	if _, ok := tc.rep.LocalRead("k"); ok {
		t.Fatal("a write refused in its query phase was applied locally")
	}
}

// A quorum read (R+W>N) that returns a version held by fewer than W
// replicas writes it back to W before answering, so a later quorum read
// cannot miss it. The regression: n2 alone holds v1 (a write in flight);
// n5 reads n2 and n3 and returns v1; then n4 reads n1 and n3. Before the
// write-back, n3 got v1 only from a background repair, so n4's read could
// answer 404 after n5's had answered v1: an inversion.
func TestQuorumReadWritesBack(t *testing.T) {
	nodes := newLinkedCluster(t, 5, func(c *Config) { c.W, c.R = 3, 3 })
	if err := nodes[1].ApplyReplicas(bg(), []Update{{Key: "k", Value: "v1", Version: 1}}); err != nil {
		t.Fatal(err)
	}
	// n5 reaches only n2 and n3 for reads; n1 and n4 hang. n3 is slow to
	// apply, so a background repair would still be in flight at the answer.
	for _, id := range []string{"n1", "n4"} {
		linkOf(t, nodes[4], id).setMode(peerHang)
	}
	linkOf(t, nodes[4], "n3").applyDelay = 50 * time.Millisecond
	res, err := nodes[4].Read(bg(), "k", Options{})
	if err != nil || res.Value != "v1" {
		t.Fatalf("first read = %+v, %v; want v1", res, err)
	}
	held := 0
	for _, n := range nodes {
		if e, ok := n.LocalRead("k"); ok && e.Version == 1 {
			held++
		}
	}
	if held < 3 {
		t.Fatalf("the read answered v1 while %d replicas held it, want >= W=3", held)
	}
	// n4 reads n1 and n3 only.
	for _, id := range []string{"n2", "n5"} {
		linkOf(t, nodes[3], id).setMode(peerHang)
	}
	res, err = nodes[3].Read(bg(), "k", Options{})
	if err != nil || res.Value != "v1" {
		t.Fatalf("later read = %+v, %v; want v1 (the earlier read returned it)", res, err)
	}
}

// A write-back that cannot reach W replicas fails the read rather than
// returning a version a later read could miss.
func TestQuorumReadWriteBackNeedsQuorum(t *testing.T) {
	tc := newTestCluster(t, 5, func(c *Config) { c.W, c.R = 3, 3 })
	tc.peer("n2").st.Apply("k", "v1", 1)
	for _, id := range []string{"n4", "n5"} {
		tc.peer(id).setMode(peerHang)
	}
	tc.peer("n3").applyDelay = time.Minute // answers reads, never acknowledges an update in time
	ctx, cancel := context.WithTimeout(bg(), 200*time.Millisecond)
	defer cancel()
	res, err := tc.rep.Read(ctx, "k", Options{})
	var qe *QuorumError
	if !errors.As(err, &qe) || qe.Phase != "write-back" || qe.Acks != 2 || qe.Required != 3 {
		t.Fatalf("read = %+v, %v; want a write-back quorum error with 2 of 3", res, err)
	}
}

// Versions from peers are validated: none can wrap or jam the clock.
func TestForgedVersionsRefused(t *testing.T) {
	for _, mode := range []Mode{LeaderFollower, Leaderless} {
		t.Run(string(mode), func(t *testing.T) {
			tc := newTestCluster(t, 5, func(c *Config) { c.Mode = mode })
			bad := []uint64{0, math.MaxUint64, math.MaxUint64 >> 1, (maxCounter + 1) << coreOf(tc.rep).clock.shift}
			if mode == Leaderless {
				bad = append(bad, 1<<nodeBits|7) // node index 7 of 5
			}
			for _, v := range bad {
				err := tc.rep.ApplyReplicas(bg(), []Update{{Key: "ok", Value: "x", Version: 1 << nodeBits}, {Key: "junk", Value: "x", Version: v}})
				if !errors.Is(err, ErrInvalid) {
					t.Errorf("version %d: ApplyReplicas = %v, want ErrInvalid", v, err)
				}
			}
			if _, ok := tc.rep.LocalRead("junk"); ok {
				t.Fatal("a forged version was stored")
			}
			if _, ok := tc.rep.LocalRead("ok"); ok {
				t.Fatal("a batch with a forged version was partly applied")
			}
			res, err := tc.rep.Write(bg(), "after", "v", Options{})
			if err != nil || res.Version == 0 || res.Version > 1<<(nodeBits+1) {
				t.Fatalf("write after forged versions = %+v, %v", res, err)
			}
		})
	}
}

// fakeJournal fails the appends it is told to and records the rest.
type fakeJournal struct {
	mu       sync.Mutex
	failNext int
	sticky   error
	appended []Update
	calls    int
}

func (j *fakeJournal) Append(us ...Update) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.calls++
	if j.failNext > 0 {
		j.failNext--
		return errors.New("injected append failure")
	}
	j.appended = append(j.appended, us...)
	return nil
}

func (j *fakeJournal) Err() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.sticky
}

// Log before visible: an update whose append failed is neither visible nor
// acknowledged, and its retry is logged.
func TestJournalBeforeVisible(t *testing.T) {
	j := &fakeJournal{failNext: 1}
	tc := newTestCluster(t, 3, func(c *Config) { c.Journal = j })
	if _, err := tc.rep.Write(bg(), "k", "v", Options{}); !errors.Is(err, ErrStorage) {
		t.Fatalf("write with a failing log = %v, want ErrStorage", err)
	}
	if e, ok := tc.rep.LocalRead("k"); ok {
		t.Fatalf("an update the log refused is visible: %+v", e)
	}
	u := Update{Key: "r", Value: "x", Version: 7}
	j.failNext = 1
	if err := tc.rep.ApplyReplicas(bg(), []Update{u}); !errors.Is(err, ErrStorage) {
		t.Fatalf("replica apply with a failing log = %v, want ErrStorage", err)
	}
	if err := tc.rep.ApplyReplicas(bg(), []Update{u}); err != nil {
		t.Fatalf("retry: %v", err)
	}
	if len(j.appended) != 1 || j.appended[0] != u {
		t.Fatalf("the retry was acknowledged without being logged: log holds %+v", j.appended)
	}
}

// Once the journal has failed (a failed fsync), the node acknowledges
// nothing, not even an update it already holds.
func TestJournalFailureStopsAcks(t *testing.T) {
	j := &fakeJournal{}
	tc := newTestCluster(t, 3, func(c *Config) { c.Journal = j })
	u := Update{Key: "k", Value: "v", Version: 3}
	if err := tc.rep.ApplyReplicas(bg(), []Update{u}); err != nil {
		t.Fatal(err)
	}
	j.sticky = fmt.Errorf("wal: fsync: %w", errors.New("EIO"))
	for what, err := range map[string]error{
		"replica apply of a held update": tc.rep.ApplyReplicas(bg(), []Update{u}),
		"replica apply of a new update":  tc.rep.ApplyReplicas(bg(), []Update{{Key: "n", Value: "v", Version: 4}}),
	} {
		if !errors.Is(err, ErrStorage) {
			t.Errorf("%s after a failed fsync = %v, want ErrStorage", what, err)
		}
	}
	if _, err := tc.rep.Write(bg(), "w", "v", Options{}); !errors.Is(err, ErrStorage) {
		t.Errorf("write after a failed fsync = %v, want ErrStorage", err)
	}
}
