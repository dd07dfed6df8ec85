package replication

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kvdb/kvdb/internal/store"
)

// core is the coordinator logic both architectures share.
type core struct {
	cfg    Config
	store  *store.Store
	peers  []Peer // every other member, in the order replication visits them
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
	ordered := make([]Peer, 0, len(cfg.Members)-1)
	for i := 1; i < len(cfg.Members); i++ {
		m := cfg.Members[(self+i)%len(cfg.Members)]
		p, ok := byID[m.ID]
		if !ok {
			return nil, fmt.Errorf("replication: no peer for member %q", m.ID)
		}
		ordered = append(ordered, p)
	}
	ctx, cancel := context.WithCancel(context.Background())
	c := &core{
		cfg:      cfg,
		store:    st,
		peers:    ordered,
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
	for _, p := range c.peers {
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
	if !sleep(ctx, c.cfg.Delays.Apply) {
		return ctx.Err()
	}
	c.clock.Observe(u.Version)
	if _, applied := c.store.Apply(u.Key, u.Value, u.Version); applied {
		c.met.replicaUpdates.WithLabelValues("applied").Inc()
	} else {
		c.met.replicaUpdates.WithLabelValues("stale").Inc()
	}
	return nil
}

// ReadReplica sleeps the read delay, then returns the local copy.
func (c *core) ReadReplica(ctx context.Context, key string) (store.Entry, bool, error) {
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

// Close refuses new writes and waits for background replication.
func (c *core) Close(ctx context.Context) error {
	c.closeMu.Lock()
	c.closing = true
	c.closeMu.Unlock()
	done := make(chan struct{})
	go func() { c.bg.Wait(); close(done) }()
	select {
	case <-done:
		c.bgCancel()
		return nil
	case <-ctx.Done():
		c.bgCancel()
		<-done
		return fmt.Errorf("replication: %d background tasks cut short: %w", c.Pending(), ctx.Err())
	}
}

// write is the coordinator's write path: apply locally with a new version,
// replicate to the peers, and answer once W copies are acknowledged. The
// replication to the remaining peers continues in the background.
func (c *core) write(ctx context.Context, key, value string, o Options) (WriteResult, error) {
	if !c.admit() {
		return WriteResult{}, ErrClosed
	}
	defer c.bg.Done()
	w, _, err := c.effective(o)
	if err != nil {
		return WriteResult{}, err
	}
	v := c.clock.Next()
	c.store.Apply(key, value, v)
	res := WriteResult{Key: key, Version: v, Coordinator: c.cfg.Self, Acks: 1, W: w}
	if len(c.peers) == 0 {
		return res, nil
	}
	results := c.replicate(Update{Key: key, Value: value, Version: v})
	failed := 0
	var lastErr error
	for res.Acks < w {
		select {
		case err := <-results:
			if err == nil {
				res.Acks++
				continue
			}
			failed++
			lastErr = err
			if 1+len(c.peers)-failed < w {
				c.met.quorumFailures.WithLabelValues("write").Inc()
				return res, &QuorumError{Op: "write", Acks: res.Acks, Required: w, N: c.cfg.N(), Cause: lastErr}
			}
		case <-ctx.Done():
			c.met.quorumFailures.WithLabelValues("write").Inc()
			cause := ctx.Err()
			if lastErr != nil {
				cause = fmt.Errorf("%w (last peer error: %v)", cause, lastErr)
			}
			return res, &QuorumError{Op: "write", Acks: res.Acks, Required: w, N: c.cfg.N(), Cause: cause}
		}
	}
	return res, nil
}

// admit registers a write with the background wait group unless the node
// is closing; the caller calls bg.Done when its coordination ends.
func (c *core) admit() bool {
	c.closeMu.RLock()
	defer c.closeMu.RUnlock()
	if c.closing {
		return false
	}
	c.bg.Add(1)
	return true
}

// isClosing reports whether Close has begun.
func (c *core) isClosing() bool {
	c.closeMu.RLock()
	defer c.closeMu.RUnlock()
	return c.closing
}

// replicate starts delivering u to every peer in the background and
// returns a channel that receives each peer's first outcome, once its
// replication step (send, ack, gap sleep) is done. A failed peer is retried
// in the background for RetryFor.
func (c *core) replicate(u Update) <-chan error {
	out := make(chan error, len(c.peers))
	step := func(p Peer) error {
		err := c.send(p, u)
		sleep(c.bgCtx, c.cfg.Delays.Gap)
		out <- err
		return err
	}
	c.bg.Add(1)
	c.pending.Add(1)
	c.met.pending.Inc()
	go func() {
		defer c.finishTask()
		if c.cfg.Delays.Sequential {
			var failed []Peer
			for _, p := range c.peers {
				if step(p) != nil {
					failed = append(failed, p)
				}
			}
			for _, p := range failed {
				c.retry(p, u)
			}
			return
		}
		var wg sync.WaitGroup
		for _, p := range c.peers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if step(p) != nil {
					c.retry(p, u)
				}
			}()
		}
		wg.Wait()
	}()
	return out
}

func (c *core) finishTask() {
	c.pending.Add(-1)
	c.met.pending.Dec()
	c.bg.Done()
}

// send makes one attempt to deliver u to p within PeerTimeout.
func (c *core) send(p Peer, u Update) error {
	ctx, cancel := context.WithTimeout(c.bgCtx, c.cfg.PeerTimeout)
	defer cancel()
	err := p.Replicate(ctx, u)
	if err != nil {
		c.met.messages.WithLabelValues("error").Inc()
		return fmt.Errorf("replicate to %s: %w", p.ID(), err)
	}
	c.met.messages.WithLabelValues("ok").Inc()
	return nil
}

// retry keeps trying to deliver u to p with exponential backoff until it
// succeeds, RetryFor passes, or the node closes.
func (c *core) retry(p Peer, u Update) {
	deadline := time.Now().Add(c.cfg.RetryFor)
	backoff := 50 * time.Millisecond
	for {
		wait := min(backoff, time.Until(deadline))
		if wait <= 0 || !sleep(c.bgCtx, wait) {
			break
		}
		c.met.retries.Inc()
		if err := c.send(p, u); err == nil {
			return
		}
		backoff = min(2*backoff, time.Second)
	}
	c.met.dropped.Inc()
	c.log.Warn("gave up replicating to peer", "peer", p.ID(), "key", u.Key, "version", u.Version, "retry_for", c.cfg.RetryFor)
}

type peerRead struct {
	e   store.Entry
	ok  bool
	err error
}

// Read is the coordinator's read path: with R=1 the local copy; otherwise
// the local copy and the first R-1 peers to answer (all are asked in
// parallel), returning the highest version.
func (c *core) Read(ctx context.Context, key string, o Options) (ReadResult, error) {
	_, r, err := c.effective(o)
	if err != nil {
		return ReadResult{}, err
	}
	best, found := c.store.Get(key)
	copies := 1
	if r > 1 {
		rctx, cancel := context.WithTimeout(ctx, c.cfg.PeerTimeout)
		defer cancel()
		ch := make(chan peerRead, len(c.peers))
		for _, p := range c.peers {
			go func() {
				e, ok, err := p.Read(rctx, key)
				if err != nil {
					err = fmt.Errorf("read from %s: %w", p.ID(), err)
				}
				ch <- peerRead{e, ok, err}
			}()
		}
		failed := 0
		var lastErr error
		for copies < r {
			select {
			case pr := <-ch:
				if pr.err != nil {
					failed++
					lastErr = pr.err
					if 1+len(c.peers)-failed < r {
						c.met.quorumFailures.WithLabelValues("read").Inc()
						return ReadResult{}, &QuorumError{Op: "read", Acks: copies, Required: r, N: c.cfg.N(), Cause: lastErr}
					}
					continue
				}
				copies++
				if pr.ok && (!found || pr.e.Version > best.Version) {
					best, found = pr.e, true
				}
			case <-rctx.Done():
				c.met.quorumFailures.WithLabelValues("read").Inc()
				return ReadResult{}, &QuorumError{Op: "read", Acks: copies, Required: r, N: c.cfg.N(), Cause: rctx.Err()}
			}
		}
	}
	if !found {
		return ReadResult{}, fmt.Errorf("%q: %w", key, ErrNotFound)
	}
	return ReadResult{Key: key, Value: best.Value, Version: best.Version, Node: c.cfg.Self, Copies: copies}, nil
}
