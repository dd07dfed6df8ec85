package replication

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

// fakeElector is an election whose view the test sets.
type fakeElector struct {
	mu       sync.Mutex
	view     Leadership
	proposed [][2]int
}

func (f *fakeElector) set(v Leadership) {
	f.mu.Lock()
	f.view = v
	f.mu.Unlock()
}

func (f *fakeElector) Leadership() Leadership {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.view
}

func (f *fakeElector) Term() uint64 { return f.Leadership().Term }

func (f *fakeElector) Barrier(context.Context) error { return nil }

func (f *fakeElector) ProposeQuorum(_ context.Context, w, r int) (uint64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.view.Self {
		return 0, ErrNotLeader
	}
	f.proposed = append(f.proposed, [2]int{w, r})
	return uint64(len(f.proposed)), nil
}

// v is the version counter c of term t.
func v(t, c uint64) uint64 { return t<<termShift | c }

func electedCluster(t *testing.T, w int, view Leadership, mut func(*Config)) (*testCluster, *fakeElector) {
	t.Helper()
	el := &fakeElector{view: view}
	tc := newTestCluster(t, 5, func(c *Config) {
		c.Elector = el
		c.W = w
		c.LeaderCatchUpWait = 300 * time.Millisecond
		if mut != nil {
			mut(c)
		}
	})
	return tc, el
}

// A replica refuses fresh writes from a term older than it knows, takes
// repairs of any term, and learns newer terms from what it applies.
func TestStaleTermRefused(t *testing.T) {
	tc, _ := electedCluster(t, 5, Leadership{Leader: "n2", Term: 3}, nil)
	e := tc.rep
	err := e.ApplyReplicas(bg(), []Update{{Key: "a", Value: "old", Version: v(2, 1), Term: 2}})
	if !errors.Is(err, ErrStaleTerm) || !errors.Is(err, ErrRefused) {
		t.Fatalf("term-2 write at a term-3 replica: %v, want ErrStaleTerm (a permanent refusal)", err)
	}
	if _, ok := e.LocalRead("a"); ok {
		t.Fatal("a refused write was applied")
	}
	if err := e.ApplyReplicas(bg(), []Update{{Key: "a", Value: "repair", Version: v(2, 5)}}); err != nil {
		t.Fatalf("repair of a term-2 version: %v", err)
	}
	if err := e.ApplyReplicas(bg(), []Update{{Key: "b", Value: "x", Version: v(3, 1), Term: 3}}); err != nil {
		t.Fatalf("current-term write: %v", err)
	}
	// A term-4 write teaches the replica term 4: term 3 is stale from then on.
	if err := e.ApplyReplicas(bg(), []Update{{Key: "c", Value: "x", Version: v(4, 1), Term: 4}}); err != nil {
		t.Fatalf("newer-term write: %v", err)
	}
	if err := e.ApplyReplicas(bg(), []Update{{Key: "d", Value: "x", Version: v(3, 2), Term: 3}}); !errors.Is(err, ErrStaleTerm) {
		t.Fatalf("term-3 write after term 4 was seen: %v, want ErrStaleTerm", err)
	}
	// So does a repair carrying a term-5 version.
	if err := e.ApplyReplicas(bg(), []Update{{Key: "e", Value: "x", Version: v(5, 1)}}); err != nil {
		t.Fatal(err)
	}
	if err := e.ApplyReplicas(bg(), []Update{{Key: "f", Value: "x", Version: v(4, 2), Term: 4}}); !errors.Is(err, ErrStaleTerm) {
		t.Fatalf("term-4 write after holding a term-5 version: %v, want ErrStaleTerm", err)
	}
	// A fresh write whose version is not of its term is malformed.
	if err := e.ApplyReplicas(bg(), []Update{{Key: "g", Value: "x", Version: v(6, 1), Term: 7}}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("term 7 with a term-6 version: %v, want ErrInvalid", err)
	}
}

// A snapshot taken for a new term fences its source first: nothing of an
// older term lands there after it.
func TestSnapshotFences(t *testing.T) {
	tc, _ := electedCluster(t, 5, Leadership{Leader: "n2", Term: 2}, nil)
	e := tc.rep
	if err := e.ApplyReplicas(bg(), []Update{{Key: "a", Value: "x", Version: v(2, 1), Term: 2}}); err != nil {
		t.Fatal(err)
	}
	n := 0
	if err := e.Snapshot(3, func(Update) error { n++; return nil }); err != nil || n != 1 {
		t.Fatalf("snapshot = %d entries, %v", n, err)
	}
	if err := e.ApplyReplicas(bg(), []Update{{Key: "b", Value: "x", Version: v(2, 2), Term: 2}}); !errors.Is(err, ErrStaleTerm) {
		t.Fatalf("term-2 write after a term-3 snapshot: %v, want ErrStaleTerm", err)
	}
}

// A fixed-leader cluster has no terms: a version carrying one is forged.
func TestStaticLeaderRefusesTerms(t *testing.T) {
	tc := newTestCluster(t, 5, nil)
	if err := tc.rep.ApplyReplicas(bg(), []Update{{Key: "a", Value: "x", Version: v(1, 1)}}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("termed version at a fixed-leader node: %v, want ErrInvalid", err)
	}
}

// A new leader copies N-W+1 nodes (itself included) before it accepts
// writes, refusing them meanwhile, then issues versions of its term, above
// every version of earlier terms.
func TestNewLeaderCatchesUpFirst(t *testing.T) {
	tc, el := electedCluster(t, 3, Leadership{Leader: "n2", Term: 2}, nil)
	// n2 (the old leader) acknowledged "a" with W=3 on n2, n3, n4 and died.
	for _, id := range []string{"n2", "n3", "n4"} {
		tc.peer(id).st.Apply("a", "acked", v(2, 40))
	}
	tc.peer("n2").setMode(peerFail)
	tc.peer("n5").hold() // slow: the catch-up must wait for n3 and n4 at least
	tc.peer("n3").hold()
	view := Leadership{Leader: "n1", Term: 3, Self: true}
	el.set(view)
	tc.rep.LeaderChanged(view)
	if _, err := tc.rep.Write(bg(), "b", "x", Options{}); !errors.Is(err, ErrLeaderCatchingUp) {
		t.Fatalf("write while catching up: %v, want ErrLeaderCatchingUp", err)
	}
	if inf := tc.rep.Info(); inf.Role != "leader" || !inf.CatchingUp || inf.Term != 3 {
		t.Fatalf("info while catching up: %+v", inf)
	}
	tc.peer("n3").release()
	waitFor(t, "the catch-up", func() bool { return !tc.rep.Info().CatchingUp })
	if e, ok := tc.rep.LocalRead("a"); !ok || e.Version != v(2, 40) {
		t.Fatalf("new leader's copy of the acknowledged write: %+v %v", e, ok)
	}
	res, err := tc.rep.Write(bg(), "a", "new", Options{W: 1})
	if err != nil {
		t.Fatal(err)
	}
	if res.Version>>termShift != 3 || res.Version <= v(2, 40) {
		t.Fatalf("new leader's version %d (term %d), want term 3 above %d", res.Version, res.Version>>termShift, v(2, 40))
	}
	if inf := tc.rep.Info(); inf.PossibleLoss != "" {
		t.Fatalf("complete catch-up reported possible loss: %q", inf.PossibleLoss)
	}
	tc.peer("n5").release()
}

// With W=1 the new leader needs every node; with the old leader dead it
// proceeds after LeaderCatchUpWait and says writes may have been lost.
func TestNewLeaderReportsPossibleLoss(t *testing.T) {
	tc, el := electedCluster(t, 1, Leadership{Leader: "n2", Term: 2}, nil)
	tc.peer("n2").setMode(peerFail)
	view := Leadership{Leader: "n1", Term: 3, Self: true}
	el.set(view)
	start := time.Now()
	tc.rep.LeaderChanged(view)
	waitFor(t, "the bounded catch-up", func() bool { return !tc.rep.Info().CatchingUp })
	if took := time.Since(start); took < 300*time.Millisecond {
		t.Fatalf("proceeded after %v, before its wait of 300ms", took)
	}
	if inf := tc.rep.Info(); inf.PossibleLoss == "" {
		t.Fatalf("incomplete catch-up not reported: %+v", inf)
	}
	if _, err := tc.rep.Write(bg(), "a", "x", Options{}); err != nil {
		t.Fatalf("write after the bounded wait: %v", err)
	}
}

// A follower redirects writes to the elected leader, answers 503 while
// none is known, and a leader that learns of a newer term stops.
func TestElectedRoles(t *testing.T) {
	tc, el := electedCluster(t, 1, Leadership{Leader: "n3", Term: 4}, nil)
	_, err := tc.rep.Write(bg(), "a", "x", Options{})
	var nl *NotLeaderError
	if !errors.As(err, &nl) || nl.LeaderID != "n3" || nl.LeaderURL != "http://n3.test:8080" {
		t.Fatalf("follower write: %v, want a redirect to n3", err)
	}
	el.set(Leadership{Term: 5})
	if _, err := tc.rep.Write(bg(), "a", "x", Options{}); !errors.Is(err, ErrLeaderUnavailable) {
		t.Fatalf("write with no leader: %v, want ErrLeaderUnavailable", err)
	}
	view := Leadership{Leader: "n1", Term: 6, Self: true}
	el.set(view)
	tc.rep.LeaderChanged(view)
	waitFor(t, "leading", func() bool { return !tc.rep.Info().CatchingUp })
	if _, err := tc.rep.Write(bg(), "a", "x", Options{}); err != nil {
		t.Fatal(err)
	}
	// A replica's update from term 7 arrives before the election tells
	// this node it was deposed: it stops acknowledging at once.
	if err := tc.rep.ApplyReplicas(bg(), []Update{{Key: "z", Value: "x", Version: v(7, 1), Term: 7}}); err != nil {
		t.Fatal(err)
	}
	if _, err := tc.rep.Write(bg(), "a", "y", Options{}); !errors.Is(err, ErrLeaderUnavailable) {
		t.Fatalf("write by a deposed leader: %v, want ErrLeaderUnavailable", err)
	}
}

// PUT /config goes through the election's log; a follower redirects it.
func TestQuorumChangeThroughElection(t *testing.T) {
	tc, el := electedCluster(t, 5, Leadership{Leader: "n2", Term: 2}, nil)
	if _, err := tc.rep.SetClusterQuorum(bg(), 3, 3); !errors.Is(err, ErrNotLeader) {
		t.Fatalf("follower: %v, want a redirect", err)
	}
	el.set(Leadership{Leader: "n1", Term: 3, Self: true})
	res, err := tc.rep.SetClusterQuorum(bg(), 3, 3)
	if err != nil || res.Index == 0 || !res.Complete() {
		t.Fatalf("leader: %+v, %v", res, err)
	}
	if len(el.proposed) != 1 || el.proposed[0] != [2]int{3, 3} {
		t.Fatalf("proposed %v", el.proposed)
	}
	if _, err := tc.rep.SetClusterQuorum(bg(), 9, 1); !errors.Is(err, ErrInvalid) {
		t.Fatalf("w=9: %v, want ErrInvalid", err)
	}
}

// A deposed leader's fresh writes are refused as such by a replica that
// knows the newer term (no acknowledgement), then delivered to it as
// repairs, so the replicas converge instead of leaving them on the old
// leader alone.
func TestDeposedLeaderWritesConvergeAsRepairs(t *testing.T) {
	old, oldEl := electedCluster(t, 1, Leadership{Leader: "n1", Term: 2, Self: true}, nil)
	old.rep.LeaderChanged(oldEl.Leadership())
	waitFor(t, "the old leader leading", func() bool { return !old.rep.Info().CatchingUp })
	// n2 has moved on to term 3 (a successor was elected).
	next, _ := electedCluster(t, 5, Leadership{Leader: "n3", Term: 3}, func(c *Config) { c.Self = "n2" })
	old.peer("n2").target = next.rep
	for _, id := range []string{"n3", "n4", "n5"} {
		old.peer(id).setMode(peerFail)
	}
	res, err := old.rep.Write(bg(), "k", "zombie", Options{W: 2})
	if !errors.Is(err, ErrQuorum) {
		t.Fatalf("W=2 write by the deposed leader: %+v, %v; want a quorum error (n2 refuses it)", res, err)
	}
	if !errors.Is(err, ErrStaleTerm) {
		t.Logf("cause: %v", err)
	}
	waitFor(t, "the refused write to reach n2 as a repair", func() bool {
		e, ok := next.rep.LocalRead("k")
		return ok && e.Value == "zombie"
	})
	// It is still fenced as a fresh write.
	if err := next.rep.ApplyReplicas(bg(), []Update{{Key: "j", Value: "x", Version: v(2, 99), Term: 2}}); !errors.Is(err, ErrStaleTerm) {
		t.Fatalf("fresh term-2 write at n2: %v, want ErrStaleTerm", err)
	}
}

// A follower holding a write that neither the new leader nor its catch-up
// sources hold (the old leader's, never acknowledged) sends it to the
// leader when it syncs, and the leader passes it on: the replicas converge.
func TestFollowerSyncReconciles(t *testing.T) {
	lead, leadEl := electedCluster(t, 5, Leadership{Leader: "n1", Term: 3, Self: true}, nil)
	lead.rep.LeaderChanged(leadEl.Leadership())
	waitFor(t, "the leader leading", func() bool { return !lead.rep.Info().CatchingUp })
	lead.st.Apply("shared", "x", v(2, 1))
	fol, folEl := electedCluster(t, 5, Leadership{Leader: "n1", Term: 3}, func(c *Config) { c.Self = "n2" })
	fol.st.Apply("zombie", "z", v(2, 7)) // only here
	fol.st.Apply("shared", "old", v(1, 1))
	fol.peer("n1").target = lead.rep
	lead.peer("n2").target = fol.rep
	fol.rep.LeaderChanged(folEl.Leadership())
	waitFor(t, "the follower to copy the leader", func() bool {
		e, ok := fol.rep.LocalRead("shared")
		return ok && e.Version == v(2, 1)
	})
	waitFor(t, "the leader to get the follower's write", func() bool {
		e, ok := lead.rep.LocalRead("zombie")
		return ok && e.Version == v(2, 7)
	})
	waitFor(t, "the other followers to get it from the leader", allHave("zombie", v(2, 7), lead.peer("n3"), lead.peer("n4"), lead.peer("n5")))
}

// A new leader gives up only on peers that do not answer: one that answers
// but streams its state slowly is waited for past LeaderCatchUpWait, so a
// live node with much data is not taken for a dead one.
func TestNewLeaderWaitsForSlowLiveCopies(t *testing.T) {
	tc, el := electedCluster(t, 1, Leadership{Leader: "n2", Term: 2}, nil)
	for _, id := range []string{"n2", "n3", "n4", "n5"} {
		tc.peer(id).st.Apply("k-"+id, "x", v(2, 1))
		tc.peer(id).st.Apply("l-"+id, "y", v(2, 2))
	}
	release := make(chan struct{})
	tc.peer("n5").midSnapshot = func() { <-release }
	view := Leadership{Leader: "n1", Term: 3, Self: true}
	el.set(view)
	tc.rep.LeaderChanged(view)
	time.AfterFunc(600*time.Millisecond, func() { close(release) }) // twice the 300 ms wait
	waitFor(t, "the catch-up", func() bool { return !tc.rep.Info().CatchingUp })
	if inf := tc.rep.Info(); inf.PossibleLoss != "" {
		t.Fatalf("a slow live peer was given up on: %q", inf.PossibleLoss)
	}
	if _, ok := tc.rep.LocalRead("l-n5"); !ok {
		t.Fatal("the slow peer's state was not copied")
	}
}
