package transport

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/kvdb/kvdb/internal/replication"
	"github.com/kvdb/kvdb/internal/store"
)

// This file is the in-memory transport: node-to-node calls of whole
// in-process clusters delivered by calling the target node's replica side
// directly, with no sockets, encoding or HTTP, and with faults (cut links,
// isolated nodes, delays, drops) set per link. The idea is hashicorp/raft's
// InmemTransport. The delay profile's sleeps (a peer's apply and read
// delays) live in the replication core, so they apply here exactly as over
// HTTP.

// Replica is the receiving side of node-to-node calls: what a node's
// /internal/ endpoints call (see package server). replication.Replicator
// implements it.
type Replica interface {
	ApplyReplica(ctx context.Context, u replication.Update) error
	ApplyReplicas(ctx context.Context, us []replication.Update) error
	ReadReplica(ctx context.Context, key string) (store.Entry, bool, error)
	SetQuorum(w, r int) error
	Snapshot(term uint64, fn func(replication.Update) error) error
	Ready() bool
}

// ErrUnreachable is returned by an in-memory peer whose target is not
// registered (never started, or stopped), or stopped while the call was in
// progress: what a refused or cut connection is over HTTP.
var ErrUnreachable = errors.New("transport: node unreachable")

// InmemNetwork connects in-process nodes by member ID. Every link starts
// connected; Disconnect, DisconnectAll, Partition, Isolate, Delay and Drop
// add faults, Connect and Heal remove them. A cut link fails a call at
// once with ErrDropped, as the Faults round tripper does over HTTP. The
// zero value is not usable; call NewInmemNetwork. It is safe for
// concurrent use.
type InmemNetwork struct {
	mu       sync.Mutex
	nodes    map[string]*inmemEndpoint
	cut      map[[2]string]bool // directed: {from, to}
	isolated map[string]bool
	delay    map[string]time.Duration // by destination
	drop     map[string]float64       // by destination
	rng      *rand.Rand               // for Drop, under mu
	raft     inmemRaft                // raft streams (inmem_raft.go)
}

// inmemEndpoint is one registered node. ctx ends when the node is
// unregistered, which cuts the calls it is serving.
type inmemEndpoint struct {
	rep    Replica
	ctx    context.Context
	cancel context.CancelFunc
}

// NewInmemNetwork returns a network with no nodes and every link healthy.
// seed drives the random drops of Drop, so a run can be repeated.
func NewInmemNetwork(seed uint64) *InmemNetwork {
	return &InmemNetwork{
		nodes:    map[string]*inmemEndpoint{},
		cut:      map[[2]string]bool{},
		isolated: map[string]bool{},
		delay:    map[string]time.Duration{},
		drop:     map[string]float64{},
		rng:      rand.New(rand.NewPCG(seed, 0x6b76_6462)),
	}
}

// Register makes rep the receiving side of node id, replacing any earlier
// registration (a restarted node). The earlier one's calls in progress
// fail with ErrUnreachable.
func (n *InmemNetwork) Register(id string, rep Replica) {
	ctx, cancel := context.WithCancel(context.Background())
	n.mu.Lock()
	old := n.nodes[id]
	n.nodes[id] = &inmemEndpoint{rep: rep, ctx: ctx, cancel: cancel}
	n.raftUpLocked(id)
	n.mu.Unlock()
	if old != nil {
		old.cancel()
	}
}

// Unregister takes node id off the network, as a crash would: later calls
// to it fail with ErrUnreachable, and so do those in progress (their
// context is cancelled).
func (n *InmemNetwork) Unregister(id string) {
	n.mu.Lock()
	old := n.nodes[id]
	delete(n.nodes, id)
	n.raftDownLocked(id)
	n.unlockCut()
	if old != nil {
		old.cancel()
	}
}

// Peer returns node from's peer for node to. The target need not be
// registered yet: each call looks it up.
func (n *InmemNetwork) Peer(from, to string) *InmemPeer {
	return &InmemPeer{net: n, from: from, to: to}
}

// Peers returns node self's peers: one per other member, in member order.
func (n *InmemNetwork) Peers(self string, members []replication.Member) ([]replication.Peer, error) {
	peers := make([]replication.Peer, 0, len(members))
	found := false
	for _, m := range members {
		if m.ID == self {
			found = true
			continue
		}
		peers = append(peers, n.Peer(self, m.ID))
	}
	if !found {
		return nil, fmt.Errorf("transport: node %q is not among the members", self)
	}
	return peers, nil
}

// Disconnect cuts the link from node from to node to (one direction).
func (n *InmemNetwork) Disconnect(from, to string) {
	n.mu.Lock()
	n.cut[[2]string{from, to}] = true
	n.unlockCut()
}

// Connect restores the link from node from to node to, cut by Disconnect
// or Partition (one direction; Isolate is lifted by Heal only).
func (n *InmemNetwork) Connect(from, to string) {
	n.mu.Lock()
	delete(n.cut, [2]string{from, to})
	n.mu.Unlock()
}

// DisconnectAll cuts every link from node from to the other registered
// nodes (one direction: they still reach it).
func (n *InmemNetwork) DisconnectAll(from string) {
	n.mu.Lock()
	for to := range n.nodes {
		if to != from {
			n.cut[[2]string{from, to}] = true
		}
	}
	n.raftDisconnectAllLocked(from)
	n.unlockCut()
}

// Partition cuts the links between nodes a and b in both directions.
func (n *InmemNetwork) Partition(a, b string) {
	n.mu.Lock()
	n.cut[[2]string{a, b}], n.cut[[2]string{b, a}] = true, true
	n.unlockCut()
}

// Isolate cuts every link to and from node id, present and future, until
// Heal.
func (n *InmemNetwork) Isolate(id string) {
	n.mu.Lock()
	n.isolated[id] = true
	n.unlockCut()
}

// Delay makes every call to node to wait d before it is delivered (zero
// removes the delay). The wait ends early if the caller's context does.
func (n *InmemNetwork) Delay(to string, d time.Duration) {
	n.mu.Lock()
	if d > 0 {
		n.delay[to] = d
	} else {
		delete(n.delay, to)
	}
	n.mu.Unlock()
}

// Drop makes calls to node to fail with ErrDropped with probability p.
func (n *InmemNetwork) Drop(to string, p float64) {
	n.mu.Lock()
	if p > 0 {
		n.drop[to] = p
	} else {
		delete(n.drop, to)
	}
	n.unlockCut()
}

// Heal removes every fault: cut links, isolations, delays and drops.
// Registrations are kept.
func (n *InmemNetwork) Heal() {
	n.mu.Lock()
	clear(n.cut)
	clear(n.isolated)
	clear(n.delay)
	clear(n.drop)
	n.mu.Unlock()
}

// call delivers one call from node from to node to: it applies the link's
// faults, then runs fn on the target's replica side with a context that
// also ends if the target is unregistered meanwhile.
func (n *InmemNetwork) call(ctx context.Context, from, to, op string, fn func(ctx context.Context, rep Replica) error) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%s %s -> %s: %w", op, from, to, err)
	}
	n.mu.Lock()
	cut := n.cut[[2]string{from, to}] || n.isolated[from] || n.isolated[to]
	d := n.delay[to]
	if p := n.drop[to]; p > 0 && n.rng.Float64() < p {
		cut = true
	}
	n.mu.Unlock()
	if cut {
		return fmt.Errorf("%s %s -> %s: %w", op, from, to, ErrDropped)
	}
	if d > 0 {
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%s %s -> %s: %w", op, from, to, ctx.Err())
		}
	}
	n.mu.Lock()
	ep := n.nodes[to]
	n.mu.Unlock()
	if ep == nil || ep.ctx.Err() != nil {
		return fmt.Errorf("%s %s -> %s: %w", op, from, to, ErrUnreachable)
	}
	cctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(ep.ctx, cancel)
	err := fn(cctx, ep.rep)
	stop()
	cancel()
	switch {
	case ep.ctx.Err() != nil:
		return fmt.Errorf("%s %s -> %s: %w (it stopped during the call)", op, from, to, ErrUnreachable)
	case err == nil:
		return nil
	case ctx.Err() != nil && errors.Is(err, ctx.Err()):
		return fmt.Errorf("%s %s -> %s: %w", op, from, to, err)
	}
	return &RemoteError{From: from, To: to, Op: op, Err: err}
}

// RemoteError is an error the target node's replica side answered, as a
// non-2xx answer is over HTTP (StatusError). It matches what the
// StatusError of the same answer would, so a coordinator cannot tell the
// two transports apart: the peer states (PeerStates: catching up,
// shutting down, its log failed), and replication.ErrRefused for a message
// the target refuses permanently (a 4xx over HTTP: an invalid update or
// setting). It does not unwrap: a sentinel about the request (ErrInvalid,
// ...) is the target's, and carried as the cause of a quorum error it must
// not change what the coordinator's client is told.
type RemoteError struct {
	From, To, Op string
	Err          error
	refused      bool // refused before delivery, as the HTTP layer's 400 would
}

func (e *RemoteError) Error() string {
	return fmt.Sprintf("%s %s -> %s: peer answered: %v", e.Op, e.From, e.To, e.Err)
}

// Is matches the sentinels a StatusError of the same answer matches.
func (e *RemoteError) Is(target error) bool {
	if target == replication.ErrRefused {
		return e.refused || errors.Is(e.Err, replication.ErrInvalid) || errors.Is(e.Err, replication.ErrStaleTerm)
	}
	return slices.Contains(PeerStates, target) && errors.Is(e.Err, target)
}

// InmemPeer is one node's view of another over an InmemNetwork. It
// implements replication.Peer.
type InmemPeer struct {
	net      *InmemNetwork
	from, to string
}

// ID returns the target's member ID.
func (p *InmemPeer) ID() string { return p.to }

// Replicate delivers u to the target's ApplyReplica.
func (p *InmemPeer) Replicate(ctx context.Context, u replication.Update) error {
	if err := checkUpdates([]replication.Update{u}); err != nil {
		return &RemoteError{From: p.from, To: p.to, Op: "replicate", Err: err, refused: true}
	}
	return p.net.call(ctx, p.from, p.to, "replicate", func(ctx context.Context, rep Replica) error {
		return rep.ApplyReplica(ctx, u)
	})
}

// ReplicateBatch delivers a copy of us to the target's ApplyReplicas.
func (p *InmemPeer) ReplicateBatch(ctx context.Context, us []replication.Update) error {
	if err := checkUpdates(us); err != nil {
		return &RemoteError{From: p.from, To: p.to, Op: "replicate-batch", Err: err, refused: true}
	}
	us = slices.Clone(us) // the receiver owns what it got, as over the wire
	return p.net.call(ctx, p.from, p.to, "replicate-batch", func(ctx context.Context, rep Replica) error {
		return rep.ApplyReplicas(ctx, us)
	})
}

// checkUpdates refuses what the /internal/ endpoints refuse with 400
// bad_request: an update without a key or version, or with a key or value
// that is not valid UTF-8. (Sizes are not checked: every node of an in-process
// cluster has the same limits, which the client API already enforced.)
func checkUpdates(us []replication.Update) error {
	for i, u := range us {
		switch {
		case u.Key == "" || u.Version == 0:
			return fmt.Errorf("bad request: update %d: every update needs a key and a version", i+1)
		case !utf8.ValidString(u.Key) || !utf8.ValidString(u.Value):
			return fmt.Errorf("bad request: update %d: keys and values must be valid UTF-8", i+1)
		}
	}
	return nil
}

// Read returns the target's ReadReplica answer.
func (p *InmemPeer) Read(ctx context.Context, key string) (store.Entry, bool, error) {
	var e store.Entry
	var ok bool
	err := p.net.call(ctx, p.from, p.to, "read", func(ctx context.Context, rep Replica) error {
		var err error
		e, ok, err = rep.ReadReplica(ctx, key)
		return err
	})
	if err != nil {
		return store.Entry{}, false, err
	}
	return e, ok, nil
}

// SetQuorum changes the target's W and R.
func (p *InmemPeer) SetQuorum(ctx context.Context, w, r int) error {
	return p.net.call(ctx, p.from, p.to, "set-quorum", func(_ context.Context, rep Replica) error {
		return rep.SetQuorum(w, r)
	})
}

// Snapshot calls fn for every entry the target holds; it fails with an
// error matching replication.ErrNotReady while the target catches up. An
// error fn returns is returned as it is.
func (p *InmemPeer) Snapshot(ctx context.Context, term uint64, fn func(replication.Update) error) error {
	var fnErr error
	err := p.net.call(ctx, p.from, p.to, "snapshot", func(ctx context.Context, rep Replica) error {
		if !rep.Ready() {
			return replication.ErrNotReady
		}
		return rep.Snapshot(term, func(u replication.Update) error {
			if err := ctx.Err(); err != nil {
				return err
			}
			fnErr = fn(u)
			return fnErr
		})
	})
	if fnErr != nil {
		return fnErr
	}
	return err
}

// Probe returns nil if the target serves, an error matching
// replication.ErrNotReady if it is catching up, another error if it
// cannot be reached.
func (p *InmemPeer) Probe(ctx context.Context) error {
	return p.net.call(ctx, p.from, p.to, "probe", func(_ context.Context, rep Replica) error {
		if !rep.Ready() {
			return replication.ErrNotReady
		}
		return nil
	})
}
