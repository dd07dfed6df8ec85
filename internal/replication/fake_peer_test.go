package replication

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kvdb/kvdb/internal/ctxtime"
	"github.com/kvdb/kvdb/internal/store"
)

// errPeerDown is what a failing fake peer returns.
var errPeerDown = errors.New("fake peer is down")

// peerMode is how a fake peer answers.
type peerMode int

const (
	peerOK   peerMode = iota // answer (after its delay)
	peerFail                 // fail at once with errPeerDown
	peerHang                 // block until the caller's context is done
)

// event is one thing a fake peer saw, in the order a shared recorder saw it.
type event struct {
	peer    string
	kind    string // "arrive" (a replicate call began) or "ack" (it applied)
	version uint64
	at      time.Time
}

// recorder collects the events of every fake peer of a test cluster in one
// total order.
type recorder struct {
	mu     sync.Mutex
	events []event
}

func (r *recorder) add(peer, kind string, v uint64) {
	r.mu.Lock()
	r.events = append(r.events, event{peer, kind, v, time.Now()})
	r.mu.Unlock()
}

func (r *recorder) snapshot() []event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]event(nil), r.events...)
}

// fakePeer is an in-memory replication.Peer. It holds its own store, or,
// when target is set, delivers to another node's Engine (so that real
// apply/read delays and Lamport observation take part). It can fail, hang
// until the caller gives up, be slow, or be held at a gate until released.
type fakePeer struct {
	id     string
	st     *store.Store
	rec    *recorder
	target *Engine

	mu          sync.Mutex
	mode        peerMode
	applyDelay  time.Duration
	readDelay   time.Duration
	gate        chan struct{} // when non-nil, calls wait for it to close
	quorumMode  peerMode
	w, r        int
	gateWaiters atomic.Int64
	// refuse, if set, names updates the peer refuses permanently: a
	// message carrying one is refused whole, before anything is applied
	// (as the HTTP peer answers 413 to a body over its limits).
	refuse func(Update) bool
	// offered counts, per key, the messages that carried the key.
	offered map[string]int
	// midSnapshot, if set, is called after a snapshot's first entry (a
	// peer that answers, then streams slowly).
	midSnapshot func()

	replicates atomic.Int64 // Replicate calls
	reads      atomic.Int64 // Read calls
	inFlight   atomic.Int64 // Replicate or Read calls not yet returned
	returned   atomic.Int64 // Replicate or Read calls that have returned
	afterClose atomic.Int64 // calls that arrived with their context already done
}

func newFakePeer(id string, rec *recorder) *fakePeer {
	return &fakePeer{id: id, st: store.New(4), rec: rec}
}

func (p *fakePeer) ID() string { return p.id }

func (p *fakePeer) setMode(m peerMode) {
	p.mu.Lock()
	p.mode = m
	p.mu.Unlock()
}

// hold makes every call wait at a gate until release.
func (p *fakePeer) hold() {
	p.mu.Lock()
	p.gate = make(chan struct{})
	p.mu.Unlock()
}

// release opens the gate (if any).
func (p *fakePeer) release() {
	p.mu.Lock()
	if p.gate != nil {
		close(p.gate)
		p.gate = nil
	}
	p.mu.Unlock()
}

func (p *fakePeer) state() (peerMode, time.Duration, time.Duration, chan struct{}) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.mode, p.applyDelay, p.readDelay, p.gate
}

// wait applies the gate and the mode; it returns a non-nil error when the
// call must fail.
func (p *fakePeer) wait(ctx context.Context, mode peerMode, gate chan struct{}, delay time.Duration) error {
	if ctx.Err() != nil {
		p.afterClose.Add(1)
		return ctx.Err() // a real transport fails a call on a dead context at once
	}
	if gate != nil {
		p.gateWaiters.Add(1)
		select {
		case <-gate:
			p.gateWaiters.Add(-1)
		case <-ctx.Done():
			p.gateWaiters.Add(-1)
			return ctx.Err()
		}
	}
	switch mode {
	case peerFail:
		return fmt.Errorf("%s: %w", p.id, errPeerDown)
	case peerHang:
		<-ctx.Done()
		return ctx.Err()
	}
	if !ctxtime.Sleep(ctx, delay) {
		return ctx.Err()
	}
	return nil
}

func (p *fakePeer) finish() {
	p.inFlight.Add(-1)
	p.returned.Add(1)
}

// errFakeRefused is a fake peer's permanent refusal (a 413).
type errFakeRefused struct{ key string }

func (e errFakeRefused) Error() string        { return fmt.Sprintf("fake peer refuses %q (413)", e.key) }
func (e errFakeRefused) Is(target error) bool { return target == ErrRefused }
func (e errFakeRefused) StatusCode() int      { return 413 }

// screen counts the message carrying us and refuses it if the peer
// refuses any of them.
func (p *fakePeer) screen(us []Update) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.offered == nil {
		p.offered = map[string]int{}
	}
	var err error
	for _, u := range us {
		p.offered[u.Key]++
		if p.refuse != nil && p.refuse(u) && err == nil {
			err = errFakeRefused{u.Key}
		}
	}
	return err
}

// offers is the number of messages that carried key.
func (p *fakePeer) offers(key string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.offered[key]
}

func (p *fakePeer) Replicate(ctx context.Context, u Update) error {
	if mode, _, _, _ := p.state(); mode == peerOK {
		if err := p.screen([]Update{u}); err != nil {
			return err
		}
	}
	return p.replicate(ctx, u)
}

func (p *fakePeer) replicate(ctx context.Context, u Update) error {
	p.replicates.Add(1)
	p.inFlight.Add(1)
	defer p.finish()
	if p.rec != nil {
		p.rec.add(p.id, "arrive", u.Version)
	}
	mode, apply, _, gate := p.state()
	if err := p.wait(ctx, mode, gate, apply); err != nil {
		return err
	}
	if p.target != nil {
		if err := p.target.ApplyReplica(ctx, u); err != nil {
			return err
		}
	} else {
		p.st.Apply(u.Key, u.Value, u.Version)
	}
	if p.rec != nil {
		p.rec.add(p.id, "ack", u.Version)
	}
	return nil
}

func (p *fakePeer) ReplicateBatch(ctx context.Context, us []Update) error {
	if mode, _, _, _ := p.state(); mode == peerOK {
		if err := p.screen(us); err != nil {
			return err
		}
	}
	for _, u := range us {
		if err := p.replicate(ctx, u); err != nil {
			return err
		}
	}
	return nil
}

func (p *fakePeer) Read(ctx context.Context, key string) (store.Entry, bool, error) {
	p.reads.Add(1)
	p.inFlight.Add(1)
	defer p.finish()
	mode, _, read, gate := p.state()
	if err := p.wait(ctx, mode, gate, read); err != nil {
		return store.Entry{}, false, err
	}
	if p.target != nil {
		return p.target.ReadReplica(ctx, key)
	}
	e, ok := p.st.Get(key)
	return e, ok, nil
}

func (p *fakePeer) Snapshot(ctx context.Context, term uint64, fn func(Update) error) error {
	mode, _, _, gate := p.state()
	if err := p.wait(ctx, mode, gate, 0); err != nil {
		return err
	}
	if p.target != nil {
		return p.target.Snapshot(term, fn)
	}
	first := true
	return p.st.Snapshot(func(k string, e store.Entry) error {
		if err := fn(repairOf(k, e)); err != nil {
			return err
		}
		if first && p.midSnapshot != nil {
			p.midSnapshot()
		}
		first = false
		return nil
	})
}

func (p *fakePeer) Probe(ctx context.Context) error {
	mode, _, _, gate := p.state()
	if err := p.wait(ctx, mode, gate, 0); err != nil {
		return err
	}
	if p.target != nil && !p.target.Ready() {
		return ErrNotReady
	}
	return nil
}

func (p *fakePeer) SetQuorum(ctx context.Context, w, r int) error {
	p.mu.Lock()
	mode := p.quorumMode
	p.mu.Unlock()
	if err := p.wait(ctx, mode, nil, 0); err != nil {
		return err
	}
	p.mu.Lock()
	p.w, p.r = w, r
	p.mu.Unlock()
	return nil
}

func (p *fakePeer) quorum() (int, int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.w, p.r
}

// version returns the version the peer holds for key (0 if none).
func (p *fakePeer) version(key string) uint64 {
	var e store.Entry
	if p.target != nil {
		e, _ = p.target.LocalRead(key)
	} else {
		e, _ = p.st.Get(key)
	}
	return e.Version
}

// testCluster is one coordinator (member n1 unless Self says otherwise)
// over fake peers for every other member.
type testCluster struct {
	rep   *Engine
	core  *core
	st    *store.Store
	peers map[string]*fakePeer
	order []*fakePeer // peers in the order the coordinator visits them
	rec   *recorder
}

// newTestCluster builds an n-node cluster config (members n1..nN, self n1,
// leader n1, W=N, R=1, no delays, short timeouts), lets mut change it, and
// starts the coordinator over fake peers. The cluster is closed when the
// test ends, after every gate is released.
func newTestCluster(t *testing.T, n int, mut func(*Config)) *testCluster {
	t.Helper()
	return newTestClusterWithStore(t, n, store.New(8), mut)
}

// newTestClusterWithStore is newTestCluster over a given local store.
func newTestClusterWithStore(t *testing.T, n int, st *store.Store, mut func(*Config)) *testCluster {
	t.Helper()
	cfg := Config{
		Self:        "n1",
		Members:     members(n),
		PeerTimeout: 5 * time.Second,
		RetryFor:    200 * time.Millisecond,
		// Most tests start a coordinator alone; catch-up has its own tests.
		DisableCatchUp: true,
	}
	if mut != nil {
		mut(&cfg)
	}
	tc := &testCluster{st: st, peers: map[string]*fakePeer{}, rec: &recorder{}}
	var peers []Peer
	for _, m := range cfg.Members {
		if m.ID == cfg.Self {
			continue
		}
		p := newFakePeer(m.ID, tc.rec)
		tc.peers[m.ID] = p
		peers = append(peers, p)
	}
	rep, err := New(cfg, tc.st, peers)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	rep.Start()
	tc.rep = rep
	tc.core = coreOf(rep)
	for _, l := range tc.core.links {
		tc.order = append(tc.order, l.Peer.(*fakePeer))
	}
	t.Cleanup(func() {
		for _, p := range tc.peers {
			p.release()
		}
		// Tests have made their assertions; a peer still hanging is cut
		// off rather than waited for.
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		_ = rep.Close(ctx)
	})
	return tc
}

func coreOf(r *Engine) *core {
	return r.core
}

func (tc *testCluster) peer(id string) *fakePeer { return tc.peers[id] }

// waitFor polls cond every 5ms until it holds, failing the test after a
// generous deadline. It is how tests wait: on a condition, never on a bare
// sleep.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// allHave reports whether every given peer holds key at version v or newer.
func allHave(key string, v uint64, peers ...*fakePeer) func() bool {
	return func() bool {
		for _, p := range peers {
			if p.version(key) < v {
				return false
			}
		}
		return true
	}
}
