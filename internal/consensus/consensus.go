// Package consensus elects the leader of a leader-follower cluster with
// hashicorp/raft, and carries the cluster's configuration (the write and
// read quorums W and R) as raft log entries, so a change of W or R is
// committed by a majority and survives failover. The data path is not raft:
// keys and values are replicated by package replication; raft decides who
// leads, in which term, and with which W and R.
//
// A Node wraps one raft server: New builds its stores and its network
// transport over a raft.StreamLayer (transport.RaftStreams over the node's
// HTTP port, or transport.InmemNetwork.RaftStreams in tests), Start starts
// raft, and Hooks tell the owner of every leadership change and of every
// committed W/R. Exactly one member bootstraps the cluster (Config.Bootstrap)
// and so wins the first election.
package consensus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	"go.etcd.io/bbolt"
)

// State is what this node knows about leadership right now.
type State struct {
	// Leader is the leader's member ID, "" while none is known.
	Leader string
	// Term is raft's current term on this node.
	Term uint64
	// Self reports whether this node is the leader (raft's state is
	// Leader; then Leader is this node's ID).
	Self bool
}

// Hooks tell a Node's owner what raft decided. Both must return quickly:
// they run on goroutines raft's progress depends on (start longer work on
// a goroutine of your own).
type Hooks struct {
	// Leadership is called whenever the known leader changes: another
	// leader, none, or the same one in a new term, and when this node
	// gains or loses leadership, with the state at that moment. Calls come
	// from one goroutine, in order, never concurrently. Changes that follow
	// each other quickly may be coalesced into one call with the latest
	// state. It is not called once Close has begun (Close waits for a call
	// in progress; so it must not call Close, or wait for something that
	// does).
	Leadership func(State)
	// Quorum is called with W and R whenever a committed quorum entry is
	// applied, and when a snapshot is restored, from raft's state-machine
	// goroutine, in log order. A node that restarts without its raft data
	// replays the log, so it may see old values before the newest. Never
	// called after Close returns.
	Quorum func(w, r int)
}

// Stats describes the raft server for /health and operators.
type Stats struct {
	// State is "follower", "candidate", "leader" or "shutdown" ("" before
	// Start).
	State string
	// Term is raft's current term.
	Term uint64
	// Leader is the leader's member ID, "" while none is known.
	Leader string
	// LastContact is when this node last heard from a leader (zero if
	// never; not updated while it leads).
	LastContact time.Time
	// CommitIndex, AppliedIndex and LastIndex are raft's log positions.
	CommitIndex, AppliedIndex, LastIndex uint64
}

// Node is one member's raft server. Its methods are safe for concurrent use.
type Node struct {
	cfg     Config
	log     *slog.Logger
	hlog    *hclogAdapter
	hooks   Hooks
	fsm     *fsm
	metrics *metrics

	trans  *raft.NetworkTransport
	logs   raft.LogStore
	stable raft.StableStore
	snaps  raft.SnapshotStore
	bolt   *raftboltdb.BoltStore // nil with in-memory stores

	raft atomic.Pointer[raft.Raft] // set by Start

	mu       sync.Mutex // Start and Close
	started  bool
	closed   bool
	closeErr error
	obsCh    chan raft.Observation
	observer *raft.Observer
	stop     chan struct{} // closed by Close: the watcher stops
	watched  chan struct{} // closed by the watcher when it returns

	wmu     sync.Mutex // waiters and wclosed
	wclosed bool
	waiters sync.WaitGroup // ProposeQuorum's waits on raft futures
}

// New builds a node: it validates cfg, opens the raft stores and starts
// the network transport over streams (which from then on accepts raft
// connections and belongs to the node: Close closes it). It does not start
// raft. If New fails, it has closed what it opened and left streams open.
func New(cfg Config, streams raft.StreamLayer, hooks Hooks) (*Node, error) {
	cfg.Members = slices.Clone(cfg.Members)
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if streams == nil {
		return nil, errors.New("consensus: no stream layer")
	}
	self, _ := cfg.member(cfg.Self)
	if got := streams.Addr().String(); got != self.Addr {
		return nil, fmt.Errorf("consensus: the stream layer's address %q is not self's (%s) address %q", got, cfg.Self, self.Addr)
	}
	log := cfg.Logger.With("component", "raft")
	n := &Node{
		cfg:     cfg,
		log:     log,
		hlog:    newHCLog(cfg.Logger.With("component", "raft"), "raft"),
		hooks:   hooks,
		fsm:     &fsm{n: len(cfg.Members), hook: hooks.Quorum, log: log, w: cfg.W, r: cfg.R},
		stop:    make(chan struct{}),
		watched: make(chan struct{}),
	}
	if err := n.openStores(); err != nil {
		return nil, err
	}
	m, err := newMetrics(cfg.Registerer, n)
	if err != nil {
		return nil, errors.Join(err, n.closeStores())
	}
	n.metrics = m
	n.trans = raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream:  streams,
		MaxPool: 3,
		// The I/O deadline of one RPC (and of a dial): a peer that does
		// not answer within it is treated as down until the next try.
		Timeout: max(2*cfg.HeartbeatTimeout, time.Second),
		Logger:  n.hlog.Named("net"),
	})
	return n, nil
}

// openStores opens raft's log, stable and snapshot stores.
func (n *Node) openStores() error {
	if n.cfg.DataDir == "" {
		s := raft.NewInmemStore()
		n.logs, n.stable, n.snaps = s, s, raft.NewInmemSnapshotStore()
		return nil
	}
	dir := filepath.Join(n.cfg.DataDir, "raft")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("consensus: %w", err)
	}
	snaps, err := raft.NewFileSnapshotStoreWithLogger(dir, 2, n.hlog.Named("snapshots"))
	if err != nil {
		return fmt.Errorf("consensus: snapshot store: %w", err)
	}
	bolt, err := raftboltdb.New(raftboltdb.Options{
		Path: filepath.Join(dir, "raft.db"),
		// Another process holding the file fails the open instead of
		// hanging it.
		BoltOptions: &bbolt.Options{Timeout: time.Second},
	})
	if err != nil {
		return fmt.Errorf("consensus: raft log: %w", err)
	}
	n.bolt, n.logs, n.stable, n.snaps = bolt, bolt, bolt, snaps
	return nil
}

func (n *Node) closeStores() error {
	if n.bolt == nil {
		return nil
	}
	return n.bolt.Close()
}

// raftConfig is raft's configuration for this node.
func (n *Node) raftConfig() *raft.Config {
	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(n.cfg.Self)
	rc.HeartbeatTimeout = n.cfg.HeartbeatTimeout
	rc.ElectionTimeout = n.cfg.ElectionTimeout
	rc.LeaderLeaseTimeout = n.cfg.LeaderLeaseTimeout
	rc.CommitTimeout = n.cfg.CommitTimeout
	rc.Logger = n.hlog
	// The log holds a handful of small entries; snapshot it now and then
	// all the same, so a long-lived cluster's log stays short.
	rc.SnapshotThreshold = 1024
	rc.TrailingLogs = 1024
	return rc
}

// Start starts raft: it bootstraps the cluster first if this node is the
// founder (Config.Bootstrap) and has no raft state, then runs raft and the
// goroutine that calls Hooks.Leadership.
func (n *Node) Start() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	switch {
	case n.closed:
		return ErrClosed
	case n.started:
		return errors.New("consensus: already started")
	}
	rc := n.raftConfig()
	if n.cfg.Bootstrap {
		has, err := raft.HasExistingState(n.logs, n.stable, n.snaps)
		if err != nil {
			return fmt.Errorf("consensus: reading raft state: %w", err)
		}
		if has {
			n.log.Info("raft state found: not bootstrapping again")
		} else {
			conf := raft.Configuration{}
			for _, m := range n.cfg.Members {
				conf.Servers = append(conf.Servers, raft.Server{Suffrage: raft.Voter, ID: raft.ServerID(m.ID), Address: raft.ServerAddress(m.Addr)})
			}
			if err := raft.BootstrapCluster(rc, n.logs, n.stable, n.snaps, n.trans, conf); err != nil {
				return fmt.Errorf("consensus: bootstrap: %w", err)
			}
			n.log.Info("raft cluster bootstrapped", "voters", len(conf.Servers))
		}
	}
	r, err := raft.NewRaft(rc, n.fsm, n.logs, n.stable, n.snaps, n.trans)
	if err != nil {
		return fmt.Errorf("consensus: starting raft: %w", err)
	}
	n.obsCh = make(chan raft.Observation, 64)
	n.observer = raft.NewObserver(n.obsCh, false, func(o *raft.Observation) bool {
		switch o.Data.(type) {
		case raft.LeaderObservation, raft.RaftState:
			return true
		}
		return false
	})
	r.RegisterObserver(n.observer)
	n.raft.Store(r)
	n.started = true
	select { // look once: raft may have moved before the observer was registered
	case n.obsCh <- raft.Observation{}:
	default:
	}
	go n.watch()
	return nil
}

// watch calls Hooks.Leadership when the known leader changes. Raft's
// observations only wake it: it reads the state afresh each time, so an
// observation raft drops while the channel is full loses nothing (one
// still queued is read later). Until Close.
func (n *Node) watch() {
	defer close(n.watched)
	var last State
	for {
		select {
		case <-n.stop:
			return
		case <-n.obsCh:
		}
	drain:
		for {
			select {
			case <-n.obsCh:
			default:
				break drain
			}
		}
		st := n.State()
		if st.Leader == last.Leader && st.Self == last.Self && (st.Leader == "" || st.Term == last.Term) {
			continue
		}
		prev := last
		last = st
		if st.Leader != "" {
			n.metrics.leaderChanges.Inc()
		}
		n.log.Info("raft leadership", "leader", st.Leader, "term", st.Term, "self", st.Self, "previous", prev.Leader)
		if n.hooks.Leadership != nil {
			n.hooks.Leadership(st)
		}
	}
}

// State returns what this node knows about leadership now; the zero State
// before Start.
func (n *Node) State() State {
	r := n.raft.Load()
	if r == nil {
		return State{}
	}
	var st State
	// Read the term on both sides, so the leader flag and the term belong
	// together (a leader that steps down does so for a higher term).
	for range 4 {
		t := r.CurrentTerm()
		st.Self = r.State() == raft.Leader
		_, id := r.LeaderWithID()
		st.Leader = string(id)
		st.Term = r.CurrentTerm()
		if t == st.Term {
			break
		}
	}
	switch {
	case st.Self:
		st.Leader = n.cfg.Self
	case st.Leader == n.cfg.Self:
		st.Leader = "" // stepping down
	}
	return st
}

// Term returns raft's current term (0 before Start).
func (n *Node) Term() uint64 {
	if r := n.raft.Load(); r != nil {
		return r.CurrentTerm()
	}
	return 0
}

// LeaderTerm returns the current term and true while this node is raft's
// leader, (0, false) otherwise.
func (n *Node) LeaderTerm() (uint64, bool) {
	r := n.raft.Load()
	if r == nil {
		return 0, false
	}
	t := r.CurrentTerm()
	if r.State() != raft.Leader || r.CurrentTerm() != t {
		return 0, false
	}
	return t, true
}

// ProposeQuorum commits a change of W and R through raft and waits until
// this node has applied it (Hooks.Quorum has run here; the followers apply
// it as they learn of the commit), bounded by ctx and Config.ApplyTimeout.
// Only the leader proposes: elsewhere it returns a *NotLeaderError (matching
// ErrNotLeader), or ErrNoLeader when no leader is known. Invalid w or r
// return an error matching ErrInvalid, with nothing proposed. An error
// matching ErrUnknownOutcome means the entry was proposed but its fate is
// unknown (the wait ended, or leadership was lost): it may still be applied.
// It returns the entry's log index.
func (n *Node) ProposeQuorum(ctx context.Context, w, r int) (uint64, error) {
	if N := len(n.cfg.Members); w < 1 || w > N || r < 1 || r > N {
		return 0, fmt.Errorf("%w: w=%d r=%d, each must be within 1..%d", ErrInvalid, w, r, N)
	}
	ra := n.raft.Load()
	if ra == nil {
		return 0, ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	switch ra.State() {
	case raft.Leader:
	case raft.Shutdown:
		return 0, ErrClosed
	default:
		return 0, n.notLeader(ra)
	}
	timeout := n.cfg.ApplyTimeout
	if dl, ok := ctx.Deadline(); ok {
		timeout = max(min(timeout, time.Until(dl)), time.Millisecond)
	}
	n.wmu.Lock()
	if n.wclosed {
		n.wmu.Unlock()
		return 0, ErrClosed
	}
	n.waiters.Add(1)
	n.wmu.Unlock()
	t := time.NewTimer(timeout)
	defer t.Stop()
	// Apply's timeout bounds only the hand-over to raft's leader loop; the
	// wait for the commit is bounded here.
	f := ra.Apply(encodeSetQuorum(w, r), timeout)
	done := make(chan error, 1)
	go func() {
		defer n.waiters.Done()
		done <- f.Error() // raft answers every future, at the latest on shutdown
	}()
	select {
	case err := <-done:
		return n.applied(ra, f, err, timeout)
	case <-ctx.Done():
		return 0, fmt.Errorf("consensus: quorum change w=%d r=%d: %w: %w", w, r, ErrUnknownOutcome, ctx.Err())
	case <-t.C:
		return 0, fmt.Errorf("consensus: quorum change w=%d r=%d: %w: not applied within %v", w, r, ErrUnknownOutcome, timeout)
	}
}

// applied maps the outcome of a proposal's future.
func (n *Node) applied(ra *raft.Raft, f raft.ApplyFuture, err error, timeout time.Duration) (uint64, error) {
	switch {
	case err == nil:
		if e, ok := f.Response().(error); ok && e != nil {
			return 0, e
		}
		return f.Index(), nil
	case errors.Is(err, raft.ErrNotLeader):
		return 0, n.notLeader(ra)
	case errors.Is(err, raft.ErrLeadershipLost):
		return 0, fmt.Errorf("%w (%w)", ErrLeadershipLost, ErrUnknownOutcome)
	case errors.Is(err, raft.ErrEnqueueTimeout):
		return 0, fmt.Errorf("consensus: raft did not take the quorum change within %v: %w", timeout, context.DeadlineExceeded)
	case errors.Is(err, raft.ErrRaftShutdown):
		if f.Index() != 0 { // it had been appended to the log
			return 0, fmt.Errorf("%w (%w)", ErrClosed, ErrUnknownOutcome)
		}
		return 0, ErrClosed
	}
	return 0, fmt.Errorf("consensus: quorum change: %w", err)
}

// notLeader is the error of a leader-only operation on this node.
func (n *Node) notLeader(ra *raft.Raft) error {
	if ra.State() == raft.Shutdown {
		return ErrClosed
	}
	addr, id := ra.LeaderWithID()
	if id == "" || string(id) == n.cfg.Self {
		return ErrNoLeader
	}
	return &NotLeaderError{LeaderID: string(id), LeaderAddr: string(addr)}
}

// Quorum returns W and R as this node's state machine holds them.
func (n *Node) Quorum() (w, r int) { return n.fsm.quorum() }

// Stats describes the raft server now.
func (n *Node) Stats() Stats {
	r := n.raft.Load()
	if r == nil {
		return Stats{}
	}
	st := n.State()
	return Stats{
		State:        strings.ToLower(r.State().String()),
		Term:         st.Term,
		Leader:       st.Leader,
		LastContact:  r.LastContact(),
		CommitIndex:  r.CommitIndex(),
		AppliedIndex: r.AppliedIndex(),
		LastIndex:    r.LastIndex(),
	}
}

// Barrier returns once every entry committed before it was called is
// applied on this node (the leader's state machine is then current: a new
// leader's W and R are the cluster's). Leader only.
func (n *Node) Barrier(ctx context.Context) error {
	r := n.raft.Load()
	if r == nil {
		return ErrClosed
	}
	timeout := n.cfg.ApplyTimeout
	if dl, ok := ctx.Deadline(); ok {
		timeout = min(timeout, time.Until(dl))
	}
	if err := r.Barrier(timeout).Error(); err != nil {
		return fmt.Errorf("consensus: barrier: %w", err)
	}
	return nil
}

// HandOff transfers leadership to another voter if this node leads (a
// graceful shutdown: the cluster gets a new leader at once instead of
// after an election timeout). It returns when the transfer is done or has
// failed; nil if this node does not lead.
func (n *Node) HandOff() error {
	r := n.raft.Load()
	if r == nil || r.State() != raft.Leader {
		return nil
	}
	if err := r.LeadershipTransfer().Error(); err != nil {
		return fmt.Errorf("consensus: leadership transfer: %w", err)
	}
	return nil
}

// Close stops the watcher (no Leadership call after Close begins, except
// one in progress, which it waits for), shuts raft down (waiting for its
// goroutines), closes the transport and the stream layer with every
// connection, and closes the stores. It is idempotent and safe without
// Start.
func (n *Node) Close() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return n.closeErr
	}
	n.closed = true
	var errs []error
	if r := n.raft.Load(); r != nil {
		close(n.stop)
		<-n.watched
		r.DeregisterObserver(n.observer)
		errs = append(errs, r.Shutdown().Error())
	}
	n.wmu.Lock()
	n.wclosed = true
	n.wmu.Unlock()
	n.waiters.Wait()
	// Shutdown closed the transport already if raft ran; its pooled
	// outgoing connections it leaves open.
	n.trans.CloseStreams()
	errs = append(errs, n.trans.Close(), n.closeStores())
	n.metrics.unregister()
	if err := errors.Join(errs...); err != nil {
		n.closeErr = fmt.Errorf("consensus: close: %w", err)
	}
	return n.closeErr
}
