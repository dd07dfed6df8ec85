package replication

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kvdb/kvdb/internal/ctxtime"
)

// writeOp is what a client write asks for: a value, or a delete.
type writeOp struct {
	key, value string
	deleted    bool
}

// name is the op's name in errors and metrics.
func (op writeOp) name() string {
	if op.deleted {
		return "delete"
	}
	return "write"
}

// write is the coordinator's write path (deletes included): apply locally with a new version,
// replicate to the peers, and answer once W copies are acknowledged. The
// replication to the remaining peers continues in the background; a peer
// that misses the update gets it later through its hint outbox.
//
// term is the election term the write is issued in (zero without an
// election): the version carries it, and so does every copy sent, so
// replicas that know a newer term refuse it.
func (c *core) write(ctx context.Context, op writeOp, o Options, term uint64) (WriteResult, error) {
	key := op.key
	if !c.admit() {
		return WriteResult{}, ErrClosed
	}
	defer c.bg.Done()
	if !c.Ready() {
		return WriteResult{}, ErrNotReady
	}
	w, _, err := c.effective(o)
	if err != nil {
		return WriteResult{}, err
	}
	if err := c.learnVersion(ctx, op, w); err != nil {
		return WriteResult{}, err
	}
	v := c.clock.Next()
	u := Update{Key: key, Value: op.value, Deleted: op.deleted, Version: v, Term: term}
	if term != 0 && v>>termShift != term {
		return WriteResult{}, fmt.Errorf("%w: version %d is not of this node's term %d (a newer term has begun)", ErrLeaderUnavailable, v, term)
	}
	if _, err := c.apply(u); err != nil {
		if errors.Is(err, ErrStaleTerm) {
			return WriteResult{}, fmt.Errorf("%w: this node is no longer the leader: %v", ErrLeaderUnavailable, err)
		}
		return WriteResult{}, err
	}
	res := WriteResult{Key: key, Version: v, Coordinator: c.cfg.Self, Acks: 1, W: w}
	if len(c.links) == 0 {
		return res, nil
	}
	results := c.replicate(u)
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
			if 1+len(c.links)-failed < w {
				c.met.quorumFailures.WithLabelValues(op.name()).Inc()
				return res, &QuorumError{Op: op.name(), Acks: res.Acks, Required: w, N: c.cfg.N(), Cause: lastErr}
			}
		case <-ctx.Done():
			c.met.quorumFailures.WithLabelValues(op.name()).Inc()
			cause := ctx.Err()
			if lastErr != nil {
				cause = fmt.Errorf("%w (last peer error: %v)", cause, lastErr)
			}
			return res, &QuorumError{Op: op.name(), Acks: res.Acks, Required: w, N: c.cfg.N(), Cause: cause}
		}
	}
	return res, nil
}

// learnVersion is the query phase of multi-writer ABD (Lynch and Shvartsman's
// extension of Attiya, Bar-Noy and Dolev's register), which leaderless
// coordinators need before they pick a version. Another coordinator's
// acknowledged write of key is held by at least W replicas; reading the
// version from N-W+1 of them (this node included) meets at least one, and
// the Lamport clock then issues a version above it, so a write that begins
// after another was acknowledged always wins. Without it a coordinator whose
// clock had not yet seen the newer write would issue a lower version and be
// acknowledged by replicas that keep the older write.
//
// The query size uses the smaller of this write's W and the configured W, so
// a write with a raised ?w= still meets writes made at the configured W; a
// write acknowledged with a ?w= below the configured W is met only by
// queries of writes at its own W (the price of choosing a weaker W, as with
// Cassandra's per-request levels).
//
// A leader issues its versions from one counter, and with W=N this node's
// own copy already holds every acknowledged write, so neither asks its
// peers. Under the paper profile the query costs one peer read delay.
func (c *core) learnVersion(ctx context.Context, op writeOp, w int) error {
	if c.cfg.Mode != Leaderless {
		return nil
	}
	cw, _ := c.quorums()
	need := c.cfg.N() - min(w, cw) // peers, besides this node
	if need <= 0 {
		return nil
	}
	answers, _, err := c.readPeers(ctx, op.key, need)
	if err != nil {
		var qe *QuorumError
		if errors.As(err, &qe) {
			return &QuorumError{Op: op.name(), Phase: "version query", Acks: qe.Acks, Required: need + 1, N: qe.N, Cause: qe.Cause}
		}
		return err
	}
	for _, a := range answers {
		if a.ok {
			c.clock.Observe(a.e.Version)
		}
	}
	c.met.versionQueries.Inc()
	return nil
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
// returns a channel that receives each peer's outcome once its replication
// step (send, ack, gap sleep) is done. Steps run one after another when the
// profile is sequential, in parallel otherwise. A peer that fails gets u as
// a hint, delivered when it answers again.
func (c *core) replicate(u Update) <-chan error {
	out := make(chan error, len(c.links))
	if !c.cfg.Delays.Sequential && !c.cfg.DisableBatching && c.cfg.Delays.Gap == 0 {
		c.fanOut(u, out)
		return out
	}
	step := func(l *link) {
		err := c.send(l, u)
		ctxtime.Sleep(c.bgCtx, c.cfg.Delays.Gap)
		out <- err
		if err != nil {
			c.hintFor(l, u, false)
		}
	}
	c.bg.Add(1)
	c.pending.Add(1)
	c.met.pending.Inc()
	go func() {
		defer c.finishTask()
		if c.cfg.Delays.Sequential {
			for _, l := range c.links {
				step(l)
			}
			return
		}
		var wg sync.WaitGroup
		for _, l := range c.links {
			wg.Add(1)
			go func() {
				defer wg.Done()
				step(l)
			}()
		}
		wg.Wait()
	}()
	return out
}

// fanOut is replicate's path when updates are batched and no gap is
// slept (every parallel profile, production's included): u joins every
// peer's batch queue directly, and the flushers report each peer's outcome
// to a fanout. No goroutine or timer per peer: one timer bounds every
// peer's outcome at PeerTimeout from now, as send's timer does for one.
func (c *core) fanOut(u Update, out chan error) {
	c.bg.Add(1)
	c.pending.Add(1)
	c.met.pending.Inc()
	n := len(c.links)
	f := &fanout{c: c, u: u, out: out, calls: make([]call, n)}
	f.left.Store(int32(n))
	f.timer.Store(time.AfterFunc(c.cfg.PeerTimeout, f.expire))
	now := time.Now()
	for i, l := range c.links {
		cl := &f.calls[i]
		cl.u, cl.f, cl.i = &f.u, f, i
		if err := c.enqueue(l, cl, now); err != nil {
			f.settle(i, err)
		}
	}
}

// fanout collects one update's outcome per peer for fanOut. Each peer's
// outcome is settled exactly once — by its flusher, by the refusal to
// queue it, or by the timer, whichever comes first — and a failure puts
// the update in that peer's hint outbox. The last outcome ends the
// background task.
type fanout struct {
	c     *core
	u     Update
	out   chan error
	timer atomic.Pointer[time.Timer] // stopped by the last outcome
	left  atomic.Int32
	calls []call // one per peer, in c.links order
}

// settle reports peer i's outcome unless it was already reported.
func (f *fanout) settle(i int, err error) {
	if !f.calls[i].settled.CompareAndSwap(false, true) {
		return
	}
	f.out <- err
	if err != nil {
		f.c.hintFor(f.c.links[i], f.u, false)
	}
	if f.left.Add(-1) == 0 {
		if t := f.timer.Load(); t != nil {
			t.Stop()
		}
		f.c.finishTask()
	}
}

// expire settles every peer still pending as timed out.
func (f *fanout) expire() {
	for i, l := range f.c.links {
		if !f.calls[i].settled.Load() {
			f.c.met.messages.WithLabelValues("error").Inc()
			f.settle(i, fmt.Errorf("replicate to %s: %w", l.ID(), context.DeadlineExceeded))
		}
	}
}

func (c *core) finishTask() {
	c.pending.Add(-1)
	c.met.pending.Dec()
	c.bg.Done()
}
