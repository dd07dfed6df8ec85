package replication

import (
	"context"
	"errors"
	"fmt"
	"sync"

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

func (c *core) finishTask() {
	c.pending.Add(-1)
	c.met.pending.Dec()
	c.bg.Done()
}
