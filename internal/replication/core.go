package replication

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"

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
	bg       sync.WaitGroup
	bgCtx    context.Context
	bgCancel context.CancelFunc
	pending  atomic.Int64
	workers  sync.WaitGroup // hinted-handoff workers, one per link
	ready    atomic.Bool
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
	// A node that restarts with data (tests, later recovery) must not reissue
	// versions it already holds.
	c.clock.Observe(st.MaxVersion())
	c.ready.Store(cfg.DisableCatchUp || len(ordered) == 0)
	for _, l := range ordered {
		c.workers.Add(1)
		go c.deliverHints(l)
	}
	return c, nil
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

// SetClusterQuorum changes W and R here and then on every peer, in parallel.
func (c *core) SetClusterQuorum(ctx context.Context, w, r int) (ClusterQuorum, error) {
	if err := c.SetQuorum(w, r); err != nil {
		return ClusterQuorum{}, err
	}
	res := ClusterQuorum{W: w, R: r, N: c.cfg.N(), Updated: []string{c.cfg.Self}, Failed: map[string]string{}}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, p := range c.links {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pctx, cancel := context.WithTimeout(ctx, c.cfg.PeerTimeout)
			defer cancel()
			err := p.SetQuorum(pctx, w, r)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				res.Failed[p.ID()] = err.Error()
				return
			}
			res.Updated = append(res.Updated, p.ID())
		}()
	}
	wg.Wait()
	return res, nil
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

// LocalRead returns this node's copy.
func (c *core) LocalRead(key string) (store.Entry, bool) { return c.store.Get(key) }

// ApplyReplica sleeps the apply delay, then applies u if it is newer.
func (c *core) ApplyReplica(ctx context.Context, u Update) error {
	return c.ApplyReplicas(ctx, []Update{u})
}

// ApplyReplicas sleeps the apply delay once, then applies each update that
// is newer than the copy held.
func (c *core) ApplyReplicas(ctx context.Context, us []Update) error {
	if !sleep(ctx, c.cfg.Delays.Apply) {
		return ctx.Err()
	}
	applied, err := c.apply(us...)
	c.met.replicaUpdates.WithLabelValues("applied").Add(float64(applied))
	c.met.replicaUpdates.WithLabelValues("stale").Add(float64(len(us) - applied))
	return err
}

// apply stores each update that is newer than the copy held, observes its
// version, and journals the ones applied. It returns how many were.
func (c *core) apply(us ...Update) (int, error) {
	var fresh []Update
	for _, u := range us {
		c.clock.Observe(u.Version)
		if _, ok := c.store.Apply(u.Key, u.Value, u.Version); ok {
			fresh = append(fresh, u)
		}
	}
	if c.cfg.Journal != nil && len(fresh) > 0 {
		if err := c.cfg.Journal.Append(fresh...); err != nil {
			c.log.Error("write-ahead log append failed", "err", err)
			return len(fresh), fmt.Errorf("%w: %v", ErrStorage, err)
		}
	}
	return len(fresh), nil
}

// ReadReplica sleeps the read delay, then returns the local copy. A node
// still catching up refuses, so it never counts towards a read quorum.
func (c *core) ReadReplica(ctx context.Context, key string) (store.Entry, bool, error) {
	if !c.Ready() {
		return store.Entry{}, false, ErrNotReady
	}
	if !sleep(ctx, c.cfg.Delays.Read) {
		return store.Entry{}, false, ctx.Err()
	}
	e, ok := c.store.Get(key)
	return e, ok, nil
}

// Pending is the number of background replication tasks.
func (c *core) Pending() int { return int(c.pending.Load()) }

// Keys is the number of keys held locally.
func (c *core) Keys() int { return c.store.Len() }

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
