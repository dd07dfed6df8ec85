package replication

import (
	"context"
	"fmt"
	"time"

	"github.com/kvdb/kvdb/internal/store"
)

type peerRead struct {
	l   *link
	e   store.Entry
	ok  bool
	err error
}

// Read is the coordinator's read path: with R=1 the local copy; otherwise
// the local copy and the first R-1 peers to answer (all are asked in
// parallel), returning the highest version. Replicas seen to be behind are
// brought up to date in the background (read repair) unless disabled.
func (c *core) Read(ctx context.Context, key string, o Options) (ReadResult, error) {
	if !c.Ready() {
		return ReadResult{}, ErrNotReady
	}
	_, r, err := c.effective(o)
	if err != nil {
		return ReadResult{}, err
	}
	local, found := c.store.Get(key)
	best := local
	copies := 1
	if r > 1 {
		answers, err := c.readPeers(ctx, key, r-1)
		if err != nil {
			return ReadResult{}, err
		}
		copies += len(answers)
		for _, a := range answers {
			if a.ok && (!found || a.e.Version > best.Version) {
				best, found = a.e, true
			}
		}
		if found {
			c.readRepair(key, best, local, answers)
		}
	}
	if !found {
		return ReadResult{}, fmt.Errorf("%q: %w", key, ErrNotFound)
	}
	// A write this node coordinates next must order after what it returned.
	c.clock.Observe(best.Version)
	return ReadResult{Key: key, Value: best.Value, Version: best.Version, Node: c.cfg.Self, Copies: copies}, nil
}

// readPeers asks every peer for key in parallel and returns the first need
// answers, or a QuorumError once need answers are no longer possible or
// PeerTimeout (or ctx) runs out.
//
// The peer reads still running when it returns are not cancelled: they end
// by themselves within PeerTimeout. Cancelling an HTTP/1.1 request closes
// its keep-alive connection, so cutting the stragglers short would make
// every quorum read dial new connections.
func (c *core) readPeers(ctx context.Context, key string, need int) ([]peerRead, error) {
	timer := time.NewTimer(c.cfg.PeerTimeout)
	defer timer.Stop()
	ch := make(chan peerRead, len(c.links))
	for _, l := range c.links {
		go func() {
			pctx, cancel := context.WithTimeout(c.bgCtx, c.cfg.PeerTimeout)
			defer cancel()
			e, ok, err := l.Read(pctx, key)
			if err != nil {
				err = fmt.Errorf("read from %s: %w", l.ID(), err)
			}
			ch <- peerRead{l, e, ok, err}
		}()
	}
	var answers []peerRead
	failed := 0
	var lastErr error
	fail := func(cause error) ([]peerRead, error) {
		c.met.quorumFailures.WithLabelValues("read").Inc()
		return nil, &QuorumError{Op: "read", Acks: 1 + len(answers), Required: need + 1, N: c.cfg.N(), Cause: cause}
	}
	for len(answers) < need {
		select {
		case a := <-ch:
			if a.err != nil {
				failed++
				lastErr = a.err
				if len(c.links)-failed < need {
					return fail(lastErr)
				}
				continue
			}
			answers = append(answers, a)
		case <-timer.C:
			return fail(context.DeadlineExceeded)
		case <-ctx.Done():
			return fail(ctx.Err())
		}
	}
	return answers, nil
}

// readRepair sends best to every replica read that was behind it, and
// applies it locally if the local copy was behind.
func (c *core) readRepair(key string, best, local store.Entry, answers []peerRead) {
	if c.cfg.DisableReadRepair {
		return
	}
	u := Update{Key: key, Value: best.Value, Version: best.Version}
	if local.Version < best.Version {
		if n, _ := c.apply(u); n > 0 {
			c.met.readRepairs.Inc()
		}
	}
	for _, a := range answers {
		if !a.ok || a.e.Version < best.Version {
			c.met.readRepairs.Inc()
			c.hintFor(a.l, u, true)
		}
	}
}
