package replication

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/kvdb/kvdb/internal/store"
)

// Update is one versioned write carried to a replica: a value, or a delete
// (a tombstone), or the garbage collection of a tombstone (a purge).
type Update struct {
	Key     string `json:"key"`
	Value   string `json:"value"`
	Version uint64 `json:"version"`
	// Deleted makes the update a delete: a tombstone at Version (its Value
	// is empty). It travels every path a value does — replication, hints,
	// read repair, write-back, catch-up, the write-ahead log — and orders
	// by version like one: a newer tombstone replaces a value, a newer set
	// replaces the tombstone.
	Deleted bool `json:"deleted,omitempty"`
	// Purge (with Deleted) is the garbage collection of the tombstone at
	// Version: the replica drops the key if what it holds is no newer than
	// Version. It is sent only by the tombstone's collector once every
	// replica holds the tombstone and every older copy in flight has
	// expired (see tombstones.go); it is never logged, never counted as a
	// write, and never applied as one.
	Purge bool `json:"purge,omitempty"`
	// Term is the election term of the leader that issued this write, on
	// a fresh write it sends; a replica that knows a newer term refuses it
	// (ErrStaleTerm). Zero on everything else — leaderless writes, a static
	// leader's, and repairs (read repair, write-back, catch-up), which move
	// versions that already exist and are never fenced.
	Term uint64 `json:"term,omitempty"`
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
	// ErrNotReady while the peer is catching up itself. A non-zero term
	// fences the peer first: it refuses fresh writes of older terms from
	// then on (see Engine.Snapshot).
	Snapshot(ctx context.Context, term uint64, fn func(Update) error) error
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
	// Term is the election term (leader-follower with an election).
	Term uint64 `json:"term,omitempty"`
	// CatchingUp: this node was elected and copies state before it
	// accepts writes.
	CatchingUp bool `json:"catching_up,omitempty"`
	// PossibleLoss, if set, says the last leader catch-up could not reach
	// enough nodes, so writes acknowledged before it may have been lost.
	PossibleLoss string `json:"possible_loss,omitempty"`
	W            int    `json:"w"`
	R            int    `json:"r"`
	N            int    `json:"n"`
	Delays       Delays `json:"delays"`
}

// ClusterQuorum reports a cluster-wide change of W and R, node by node.
type ClusterQuorum struct {
	W, R, N int
	// Index, if non-zero, is the election log index that carries the
	// change (leader-follower with an election): committed there, it
	// reaches every node and survives failover, so Updated, Failed and
	// Unknown stay empty.
	Index   uint64
	Updated []string          // nodes that confirmed the change, this one first
	Failed  map[string]string // nodes that certainly did not take it, with the error
	Unknown map[string]string // nodes whose call was sent but not answered in time
}

// Complete reports whether every node confirmed the change.
func (q ClusterQuorum) Complete() bool { return len(q.Failed) == 0 && len(q.Unknown) == 0 }

// entry is the store entry u writes.
func (u Update) entry() store.Entry {
	return store.Entry{Value: u.Value, Version: u.Version, Deleted: u.Deleted}
}

// repairOf is the repair update carrying e, key's copy somewhere.
func repairOf(key string, e store.Entry) Update {
	return Update{Key: key, Value: e.Value, Version: e.Version, Deleted: e.Deleted}
}

// Engine is one node's replication engine: the coordinator of client
// reads and writes, the replica that peers write to and read from, and the
// owner of the background work (replication tasks, hinted handoff,
// catch-up). Consumers declare the small interfaces they use (the HTTP
// layer's Coordinator and Replica in package server); the lifecycle —
// Start, CatchUp, Close — belongs to whoever owns the engine (package
// node).
//
// Both architectures are this one type: everything is shared code (core)
// except the few decisions behind the architecture seam.
type Engine struct {
	*core
	arch architecture
}

// architecture is the one seam between leader-follower and leaderless:
// who may coordinate a write, how the node describes its role, and whom it
// copies from when it catches up. Everything else is shared; add behaviour
// to core, not here.
type architecture interface {
	// coordinates returns the term a write this node coordinates now is
	// issued in (zero without an election), or the error the client gets
	// instead (a redirect, or the leader being unreachable).
	coordinates(ctx context.Context) (uint64, error)
	// describe fills the role fields of inf.
	describe(inf *Info)
	// catchUpSources picks the links a starting node copies state from.
	catchUpSources() []*link
}

// New builds the engine for cfg.Mode over st, talking to peers (every
// member but this one, in any order). It starts nothing: background
// workers start with Start, catch-up with CatchUp, so a failure after New
// needs only Close (or nothing at all) to clean up.
func New(cfg Config, st *store.Store, peers []Peer) (*Engine, error) {
	c, err := newCore(cfg, st, peers)
	if err != nil {
		return nil, err
	}
	e := &Engine{core: c}
	if c.cfg.Mode == Leaderless {
		e.arch = leaderless{c}
	} else {
		lf := &leaderFollower{core: c}
		if c.cfg.Elector != nil {
			c.onRepair = lf.forwardRepairs
		}
		e.arch = lf
	}
	return e, nil
}

// Write coordinates a client write: the leader (or any leaderless node)
// writes locally, replicates, and answers once W copies are acknowledged; a
// follower answers *NotLeaderError, or ErrLeaderUnavailable.
func (e *Engine) Write(ctx context.Context, key, value string, o Options) (WriteResult, error) {
	term, err := e.arch.coordinates(ctx)
	if err != nil {
		return WriteResult{}, err
	}
	return e.write(ctx, writeOp{key: key, value: value}, o, term)
}

// Delete coordinates a client delete: a tombstone with a new version,
// replicated exactly like a write (same versions, same W acknowledgements,
// same hints and repairs), so a set that begins after it was acknowledged
// wins, and it wins over every set acknowledged before it began. Deleting
// a key that does not exist writes a tombstone too (and succeeds). The
// errors are Write's.
func (e *Engine) Delete(ctx context.Context, key string, o Options) (WriteResult, error) {
	term, err := e.arch.coordinates(ctx)
	if err != nil {
		return WriteResult{}, err
	}
	return e.write(ctx, writeOp{key: key, deleted: true}, o, term)
}

// Quorums returns this node's W and R: Info's, without the role (a cheap
// read for every request).
func (e *Engine) Quorums() (w, r int) { return e.quorums() }

// Info describes the node's replication settings and role.
func (e *Engine) Info() Info {
	inf := e.info()
	e.arch.describe(&inf)
	return inf
}

// CatchUp copies the current state from the peers that have it (the
// leader for a follower; every peer otherwise) and then marks the node
// ready. Until then client requests get ErrNotReady.
func (e *Engine) CatchUp(ctx context.Context) error {
	return e.catchUpFrom(ctx, e.arch.catchUpSources())
}

// SetClusterQuorum changes W and R cluster-wide: through the election's
// log when there is one (atomic, kept across failover; a follower answers
// *NotLeaderError so the client goes to the leader), else node by node.
func (e *Engine) SetClusterQuorum(ctx context.Context, w, r int) (ClusterQuorum, error) {
	l, ok := e.arch.(*leaderFollower)
	if !ok || l.cfg.Elector == nil {
		return e.setClusterQuorum(ctx, w, r)
	}
	if err := checkQuorum(w, r, l.cfg.N()); err != nil {
		return ClusterQuorum{}, err
	}
	idx, err := l.cfg.Elector.ProposeQuorum(ctx, w, r)
	if err != nil {
		if errors.Is(err, ErrNotLeader) {
			if s := l.cfg.Elector.Leadership(); s.Leader != "" && s.Leader != l.cfg.Self {
				return ClusterQuorum{}, l.notLeader(s.Leader)
			}
			return ClusterQuorum{}, fmt.Errorf("%w: no leader to commit the change; retry shortly: %v", ErrLeaderUnavailable, err)
		}
		return ClusterQuorum{}, err
	}
	return ClusterQuorum{W: w, R: r, N: l.cfg.N(), Index: idx}, nil
}

// leaderFollower lets only the leader coordinate writes. With an Elector
// the election decides who leads (see term.go); without one the leader is
// fixed (Config.Leader) and its clock is a plain counter.
type leaderFollower struct {
	*core
	lead     leaderState
	probeMu  sync.Mutex
	probedAt time.Time
	probeErr error
}

func (l *leaderFollower) isLeader() bool { return l.cfg.Self == l.cfg.Leader }

func (l *leaderFollower) coordinates(ctx context.Context) (uint64, error) {
	if l.cfg.Elector != nil {
		return l.electedTerm()
	}
	if l.isLeader() {
		return 0, nil
	}
	if err := l.leaderAlive(ctx); err != nil {
		return 0, fmt.Errorf("%w: leader %s does not answer, so no write can be accepted: %v", ErrLeaderUnavailable, l.cfg.Leader, err)
	}
	return 0, l.notLeader(l.cfg.Leader)
}

// notLeader is the redirect to leader id: its member URL, or the URL
// clients know it by (RedirectURLs, or LeaderRedirectURL for the founding
// leader) when set (published ports).
func (l *leaderFollower) notLeader(id string) error {
	u := l.cfg.Members[l.cfg.Index(id)].URL
	if l.cfg.LeaderRedirectURL != "" && id == l.cfg.Leader {
		u = l.cfg.LeaderRedirectURL
	}
	if r := l.cfg.RedirectURLs[id]; r != "" {
		u = r
	}
	return &NotLeaderError{LeaderID: id, LeaderURL: u}
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
	leader := l.linkTo(l.cfg.Leader)
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

// catchUpSources: a follower copies from the leader; a leader that
// restarted copies from every follower. With an election the leader is not
// known at start, so a starting node copies from every peer that is ready
// (replicas keep the newest version, so the merge is the state).
func (l *leaderFollower) catchUpSources() []*link {
	if l.isLeader() || l.cfg.Elector != nil {
		return l.links
	}
	if k := l.linkTo(l.cfg.Leader); k != nil {
		return []*link{k}
	}
	return nil
}

func (l *leaderFollower) describe(inf *Info) {
	if l.cfg.Elector != nil {
		l.leaderInfo(inf)
		return
	}
	inf.Leader = l.cfg.Leader
	inf.Role = "follower"
	if l.isLeader() {
		inf.Role = "leader"
	}
}

// leaderless lets every node coordinate; its clock is a Lamport clock.
type leaderless struct{ *core }

func (leaderless) coordinates(context.Context) (uint64, error) { return 0, nil }

// catchUpSources: every peer that is ready.
func (l leaderless) catchUpSources() []*link { return l.links }

func (leaderless) describe(inf *Info) { inf.Role = "peer" }
