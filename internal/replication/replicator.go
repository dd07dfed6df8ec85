package replication

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/kvdb/kvdb/internal/store"
)

// Update is one versioned write carried to a replica.
type Update struct {
	Key     string `json:"key"`
	Value   string `json:"value"`
	Version uint64 `json:"version"`
}

// Peer is another node as the coordinator sees it. The HTTP transport
// implements it; unit tests may use in-memory fakes.
type Peer interface {
	// ID is the peer's member ID.
	ID() string
	// Replicate delivers an update; nil means the peer holds it (or newer).
	Replicate(ctx context.Context, u Update) error
	// ReplicateBatch delivers several updates in one message.
	ReplicateBatch(ctx context.Context, us []Update) error
	// Read returns the peer's copy of key.
	Read(ctx context.Context, key string) (store.Entry, bool, error)
	// SetQuorum changes the peer's W and R.
	SetQuorum(ctx context.Context, w, r int) error
	// Snapshot streams every entry the peer holds to fn; it fails with
	// ErrNotReady while the peer is catching up itself.
	Snapshot(ctx context.Context, fn func(Update) error) error
	// Probe returns nil if the peer serves, ErrNotReady if it is catching
	// up, another error if it cannot be reached.
	Probe(ctx context.Context) error
}

// Journal persists applied updates (a write-ahead log). Append returns
// once the updates are as durable as its policy promises. Err returns the
// failure that stopped the journal, if any: once an append or fsync has
// failed the journal refuses everything until the node restarts.
type Journal interface {
	Append(us ...Update) error
	Err() error
}

// Options override W or R for one request; zero keeps the configured value.
type Options struct {
	W, R int
}

// WriteResult is what an acknowledged write returns.
type WriteResult struct {
	Key         string
	Version     uint64
	Coordinator string // ID of the node that coordinated the write
	Acks        int    // copies acknowledged when the client was answered
	W           int
}

// ReadResult is what a successful read returns.
type ReadResult struct {
	Key     string
	Value   string
	Version uint64
	Node    string // ID of the coordinating node
	Copies  int    // replica copies read (R)
}

// Info describes a node's replication settings.
type Info struct {
	Node   string `json:"node"`
	Mode   Mode   `json:"mode"`
	Role   string `json:"role"`
	Leader string `json:"leader,omitempty"`
	W      int    `json:"w"`
	R      int    `json:"r"`
	N      int    `json:"n"`
	Delays Delays `json:"delays"`
}

// ClusterQuorum reports a cluster-wide change of W and R, node by node.
type ClusterQuorum struct {
	W, R, N int
	Updated []string          // nodes that confirmed the change, this one first
	Failed  map[string]string // nodes that certainly did not take it, with the error
	Unknown map[string]string // nodes whose call was sent but not answered in time
}

// Complete reports whether every node confirmed the change.
func (q ClusterQuorum) Complete() bool { return len(q.Failed) == 0 && len(q.Unknown) == 0 }

// Replicator is one node's replication engine. The HTTP layer calls it; the
// two architectures implement it over a shared core.
type Replicator interface {
	// Write coordinates a client write.
	Write(ctx context.Context, key, value string, o Options) (WriteResult, error)
	// Read coordinates a client read of R copies.
	Read(ctx context.Context, key string, o Options) (ReadResult, error)
	// LocalRead returns this node's copy, with no coordination or delay.
	LocalRead(key string) (store.Entry, bool)
	// ApplyReplica applies an update sent by a coordinator (after the
	// profile's apply delay).
	ApplyReplica(ctx context.Context, u Update) error
	// ApplyReplicas applies a batch of updates after one apply delay.
	ApplyReplicas(ctx context.Context, us []Update) error
	// ReadReplica answers a coordinator's read (after the read delay).
	ReadReplica(ctx context.Context, key string) (store.Entry, bool, error)
	// SetQuorum changes W and R on this node only.
	SetQuorum(w, r int) error
	// SetClusterQuorum changes W and R on every node.
	SetClusterQuorum(ctx context.Context, w, r int) (ClusterQuorum, error)
	// Info describes the node.
	Info() Info
	// Pending is the number of background replication tasks in flight.
	Pending() int
	// Keys is the number of keys this node holds.
	Keys() int
	// Hints is the number of updates held for unreachable peers.
	Hints() int
	// Ready reports whether the node serves clients (it has caught up).
	Ready() bool
	// CatchUp copies the current state from the peers that have it (the
	// leader for a follower; every peer otherwise) and then marks the node
	// ready. Until then client requests get ErrNotReady.
	CatchUp(ctx context.Context) error
	// Snapshot calls fn for every entry held (ErrNotReady while catching
	// up).
	Snapshot(fn func(Update) error) error
	// Close refuses new writes and waits (until ctx ends) for background
	// replication to finish.
	Close(ctx context.Context) error
}

// New builds the Replicator for cfg.Mode over st, talking to peers (every
// member but this one, in any order).
func New(cfg Config, st *store.Store, peers []Peer) (Replicator, error) {
	c, err := newCore(cfg, st, peers)
	if err != nil {
		return nil, err
	}
	if c.cfg.Mode == Leaderless {
		return &leaderless{core: c}, nil
	}
	return &leaderFollower{core: c}, nil
}

// leaderFollower lets only the leader coordinate writes; the leader's clock
// is a plain counter.
type leaderFollower struct {
	*core
	probeMu  sync.Mutex
	probedAt time.Time
	probeErr error
}

func (l *leaderFollower) isLeader() bool { return l.cfg.Self == l.cfg.Leader }

func (l *leaderFollower) Write(ctx context.Context, key, value string, o Options) (WriteResult, error) {
	if !l.isLeader() {
		if err := l.leaderAlive(ctx); err != nil {
			return WriteResult{}, fmt.Errorf("%w: leader %s does not answer, so no write can be accepted: %v", ErrLeaderUnavailable, l.cfg.Leader, err)
		}
		leader := l.cfg.Members[l.cfg.Index(l.cfg.Leader)]
		u := leader.URL
		if l.cfg.LeaderRedirectURL != "" {
			u = l.cfg.LeaderRedirectURL
		}
		return WriteResult{}, &NotLeaderError{LeaderID: leader.ID, LeaderURL: u}
	}
	return l.write(ctx, key, value, o)
}

// leaderCheckTTL is how long a follower trusts its last probe of the
// leader before redirecting a write to it.
const leaderCheckTTL = 500 * time.Millisecond

// leaderAlive probes the leader (at most once per leaderCheckTTL) so a
// follower answers 503 instead of redirecting clients to a dead leader.
func (l *leaderFollower) leaderAlive(ctx context.Context) error {
	l.probeMu.Lock()
	defer l.probeMu.Unlock()
	if time.Since(l.probedAt) < leaderCheckTTL {
		return l.probeErr
	}
	var leader *link
	for _, k := range l.links {
		if k.ID() == l.cfg.Leader {
			leader = k
		}
	}
	if leader == nil {
		return nil
	}
	pctx, cancel := context.WithTimeout(ctx, min(l.cfg.PeerTimeout, time.Second))
	defer cancel()
	err := leader.Probe(pctx)
	if errors.Is(err, ErrNotReady) {
		err = nil // catching up: it will serve shortly; let the client retry there
	}
	l.probedAt, l.probeErr = time.Now(), err
	return err
}

// CatchUp copies from the leader (a follower) or from every follower (a
// leader that restarted).
func (l *leaderFollower) CatchUp(ctx context.Context) error {
	sources := l.links
	if !l.isLeader() {
		sources = nil
		for _, k := range l.links {
			if k.ID() == l.cfg.Leader {
				sources = append(sources, k)
			}
		}
	}
	return l.catchUpFrom(ctx, sources)
}

func (l *leaderFollower) Info() Info {
	inf := l.info()
	inf.Leader = l.cfg.Leader
	inf.Role = "follower"
	if l.isLeader() {
		inf.Role = "leader"
	}
	return inf
}

// leaderless lets every node coordinate; its clock is a Lamport clock.
type leaderless struct{ *core }

func (l *leaderless) Write(ctx context.Context, key, value string, o Options) (WriteResult, error) {
	return l.write(ctx, key, value, o)
}

// CatchUp copies from every peer that is ready.
func (l *leaderless) CatchUp(ctx context.Context) error { return l.catchUpFrom(ctx, l.links) }

func (l *leaderless) Info() Info {
	inf := l.info()
	inf.Role = "peer"
	return inf
}
