package replication

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/kvdb/kvdb/internal/ctxtime"
	"github.com/kvdb/kvdb/internal/store"
)

// core is the coordinator logic both architectures share.
type core struct {
	cfg    Config
	store  *store.Store
	links  []*link // every other member, in the order replication visits them
	clock  *Clock
	log    *slog.Logger
	met    *metrics
	quorum atomic.Uint64 // w<<32 | r

	// closeMu orders admission of writes against Close: a write checks
	// closing and registers its background work under the read lock, so
	// Close (under the write lock) never waits on a counter a write is
	// about to raise.
	closeMu  sync.RWMutex
	closing  bool
	started  bool // Start has run the workers
	bg       sync.WaitGroup
	bgCtx    context.Context
	bgCancel context.CancelFunc
	pending  atomic.Int64
	workers  sync.WaitGroup // hinted-handoff workers, one per link, and election jobs
	ready    atomic.Bool

	// Fencing (see term.go): term is the highest election term seen from
	// updates and versions; every apply holds fence for reading, and term
	// only rises under it for writing.
	term  atomic.Uint64
	fence sync.RWMutex
	// onRepair, if set, sees the updates ApplyReplicas applied (a leader
	// passes the repairs among them on to its followers; see term.go).
	onRepair func([]Update)
	// tombs is the ledger of tombstones held, for their collection
	// (tombstones.go).
	tombs tombLedger
}

func newCore(cfg Config, st *store.Store, peers []Peer) (*core, error) {
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("replication config: %w", err)
	}
	if st == nil {
		return nil, errors.New("replication: nil store")
	}
	self := cfg.Index(cfg.Self)
	byID := make(map[string]Peer, len(peers))
	for _, p := range peers {
		byID[p.ID()] = p
	}
	// Visit peers in member order starting after this node, so that in
	// leaderless mode different coordinators spread the first steps.
	ordered := make([]*link, 0, len(cfg.Members)-1)
	for i := 1; i < len(cfg.Members); i++ {
		m := cfg.Members[(self+i)%len(cfg.Members)]
		p, ok := byID[m.ID]
		if !ok {
			return nil, fmt.Errorf("replication: no peer for member %q", m.ID)
		}
		ordered = append(ordered, newLink(p, cfg.MaxInFlightPerPeer))
	}
	ctx, cancel := context.WithCancel(context.Background())
	c := &core{
		cfg:      cfg,
		store:    st,
		links:    ordered,
		clock:    newClock(cfg.Mode == Leaderless, self),
		log:      cfg.Logger,
		met:      newMetrics(cfg.Registerer),
		bgCtx:    ctx,
		bgCancel: cancel,
	}
	c.quorum.Store(uint64(cfg.W)<<32 | uint64(cfg.R))
	c.tombs.init()
	c.met.registerStore(cfg.Registerer, st)
	// Tombstones the store already holds (replayed from the write-ahead
	// log) are collected like new ones.
	st.Range(func(k string, e store.Entry) bool {
		if e.Deleted {
			c.tombs.add(k, e.Version)
		}
		return true
	})
	// A node that restarts with data (tests, later recovery) must not reissue
	// versions it already holds.
	c.clock.Observe(st.MaxVersion())
	c.ready.Store(cfg.DisableCatchUp || len(ordered) == 0)
	return c, nil
}

// Start starts the background workers (one hinted-handoff worker per
// peer, and the tombstone collector). Until Start, updates a peer missed are kept but not delivered.
// It is idempotent, and does nothing once Close has begun, so an engine
// that was built but never started, or closed first, leaves nothing
// running.
func (c *core) Start() {
	c.closeMu.Lock()
	defer c.closeMu.Unlock()
	if c.started || c.closing {
		return
	}
	c.started = true
	for _, l := range c.links {
		c.workers.Add(1)
		go c.deliverHints(l)
	}
	c.workers.Add(1)
	go c.collectTombstones()
}

func (c *core) quorums() (w, r int) {
	q := c.quorum.Load()
	return int(q >> 32), int(q & 0xffffffff)
}

func (c *core) info() Info {
	w, r := c.quorums()
	return Info{Node: c.cfg.Self, Mode: c.cfg.Mode, W: w, R: r, N: c.cfg.N(), Delays: c.cfg.Delays}
}

// SetQuorum changes W and R on this node.
func (c *core) SetQuorum(w, r int) error {
	if err := checkQuorum(w, r, c.cfg.N()); err != nil {
		return err
	}
	c.quorum.Store(uint64(w)<<32 | uint64(r))
	c.log.Info("quorum changed", "w", w, "r", r)
	return nil
}

func (c *core) effective(o Options) (w, r int, err error) {
	w, r = c.quorums()
	if o.W != 0 {
		w = o.W
	}
	if o.R != 0 {
		r = o.R
	}
	return w, r, checkQuorum(w, r, c.cfg.N())
}

// LocalRead returns this node's copy; a tombstone reads as absent.
func (c *core) LocalRead(key string) (store.Entry, bool) {
	e, ok := c.store.Get(key)
	if !ok || e.Deleted {
		return store.Entry{}, false
	}
	return e, true
}

// ApplyReplica sleeps the apply delay, then applies u if it is newer.
func (c *core) ApplyReplica(ctx context.Context, u Update) error {
	return c.ApplyReplicas(ctx, []Update{u})
}

// ApplyReplicas sleeps the apply delay once, then applies each update that
// is newer than the copy held. Versions out of range are refused
// (ErrInvalid) before anything is applied: a forged or corrupt version must
// not move the clock towards wrapping or pin a key above every real write.
func (c *core) ApplyReplicas(ctx context.Context, us []Update) error {
	for _, u := range us {
		if err := c.checkVersion(u.Version); err != nil {
			c.met.invalid.Inc()
			return fmt.Errorf("update of %q: %w", u.Key, err)
		}
	}
	if !ctxtime.Sleep(ctx, c.cfg.Delays.Apply) {
		return ctx.Err()
	}
	fresh, err := c.applyFresh(us...)
	c.met.replicaUpdates.WithLabelValues("applied").Add(float64(len(fresh)))
	c.met.replicaUpdates.WithLabelValues("stale").Add(float64(len(us) - len(fresh)))
	if c.onRepair != nil && len(fresh) > 0 {
		c.onRepair(fresh)
	}
	return err
}

// maxCounter bounds the counter part of a leaderless version accepted from
// a peer: 2^48 writes (nine years at a million writes a second) leaves
// 2^54-2^48 further versions before the leaderless encoding's counter could
// wrap, so no accepted message can bring the clock near wrapping.
// Leader-follower versions are term<<termShift | counter, bounded by
// maxTerm and maxTermCounter (see term.go).
const maxCounter = 1 << 48

// checkVersion reports whether v could have been issued by a member of this
// cluster: not zero; in leaderless mode its counter within maxCounter and
// its tie-break a member's index; in leader-follower mode its term within
// maxTerm and its counter within maxTermCounter.
func (c *core) checkVersion(v uint64) error {
	if v == 0 {
		return fmt.Errorf("%w: version 0", ErrInvalid)
	}
	if c.cfg.Mode != Leaderless {
		t, n := v>>termShift, v&(1<<termShift-1)
		if c.cfg.Elector == nil && t > 0 {
			return fmt.Errorf("%w: version %d carries election term %d, but this cluster has a fixed leader (no terms)", ErrInvalid, v, t)
		}
		if t > maxTerm || n > maxTermCounter {
			return fmt.Errorf("%w: version %d (term %d, counter %d) is beyond any this cluster issues (limits: term %d, counter %d)", ErrInvalid, v, t, n, uint64(maxTerm), uint64(maxTermCounter))
		}
		return nil
	}
	if v>>c.clock.shift > maxCounter {
		return fmt.Errorf("%w: version %d is beyond any this cluster issues (counter limit %d)", ErrInvalid, v, uint64(maxCounter))
	}
	if idx := v & (1<<c.clock.shift - 1); c.clock.shift > 0 && idx >= uint64(c.cfg.N()) {
		return fmt.Errorf("%w: version %d names node index %d of %d", ErrInvalid, v, idx, c.cfg.N())
	}
	return nil
}

// apply makes each update that is newer than the copy held visible, after
// the write-ahead log (if any) holds it: log before visible, so a reader
// never sees what a crash could take back, and an update whose append
// failed is not in the store, so a retry finds it fresh and logs it again.
// Concurrent updates of one key may both be logged; replay keeps the newest.
// Once the log has failed (a write or fsync error) it refuses every append
// until restart, and apply refuses every update, so the node acknowledges
// nothing more (fail-stop, as etcd and PostgreSQL do on fsync failure). It
// returns how many updates were applied.
//
// Fresh writes (Update.Term non-zero) pass the term fence first (see
// term.go): one from a term older than this node knows is refused with
// *StaleTermError, and nothing of the batch is applied.
func (c *core) apply(us ...Update) (int, error) {
	fresh, err := c.applyFresh(us...)
	return len(fresh), err
}

// applyFresh is apply, returning the updates that were applied (those newer
// than the copy held).
//
// Purges (Update.Purge) are not writes: they are taken out of us, skip the
// journal and are not among the updates returned; each drops its key if the
// copy held is no newer than its version (store.Purge).
func (c *core) applyFresh(us ...Update) ([]Update, error) {
	us = c.purge(us)
	c.observeUpdateTerms(us)
	c.fence.RLock()
	defer c.fence.RUnlock()
	if err := c.checkFence(us); err != nil {
		return nil, err
	}
	for _, u := range us {
		c.clock.Observe(u.Version)
	}
	if j := c.cfg.Journal; j != nil {
		if err := j.Err(); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrStorage, err)
		}
		fresh := us[:0:0]
		for _, u := range us {
			if e, ok := c.store.Get(u.Key); !ok || e.Version < u.Version {
				fresh = append(fresh, u)
			}
		}
		if len(fresh) > 0 {
			if err := j.Append(fresh...); err != nil {
				c.log.Error("write-ahead log append failed: this node acknowledges nothing more until it restarts", "err", err)
				return nil, fmt.Errorf("%w: %v", ErrStorage, err)
			}
		}
		us = fresh
	}
	// applied is us itself until one is not applied (the usual case costs
	// no copy), then a copy of those that were.
	applied, copied := us, false
	for i, u := range us {
		if _, ok := c.store.ApplyEntry(u.Key, u.entry()); !ok {
			if !copied {
				applied, copied = append(us[:0:0], us[:i]...), true
			}
			continue
		}
		if copied {
			applied = append(applied, u)
		}
		if u.Deleted {
			c.tombs.add(u.Key, u.Version)
		}
	}
	return applied, nil
}

// ReadReplica sleeps the read delay, then returns the local copy. A node
// still catching up refuses, so it never counts towards a read quorum.
func (c *core) ReadReplica(ctx context.Context, key string) (store.Entry, bool, error) {
	if !c.Ready() {
		return store.Entry{}, false, ErrNotReady
	}
	if !ctxtime.Sleep(ctx, c.cfg.Delays.Read) {
		return store.Entry{}, false, ctx.Err()
	}
	e, ok := c.store.Get(key)
	return e, ok, nil
}

// Pending is the number of background replication tasks.
func (c *core) Pending() int { return int(c.pending.Load()) }

// Keys is the number of keys held locally (tombstones not included).
func (c *core) Keys() int { return c.store.Len() }

// Tombstones is the number of tombstones held locally.
func (c *core) Tombstones() int { return c.store.Tombstones() }

// Close refuses new writes, waits for background replication (until ctx
// ends), then stops the hinted-handoff workers; hints still held are lost.
func (c *core) Close(ctx context.Context) error {
	c.closeMu.Lock()
	c.closing = true
	c.closeMu.Unlock()
	done := make(chan struct{})
	go func() { c.bg.Wait(); close(done) }()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		err = fmt.Errorf("replication: %d background tasks cut short: %w", c.Pending(), ctx.Err())
	}
	c.bgCancel()
	<-done
	c.workers.Wait()
	if n := c.Hints(); n > 0 {
		c.log.Warn("closing with undelivered hints", "hints", n)
	}
	return err
}
