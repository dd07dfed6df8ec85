package replication

import (
	"context"
	"fmt"
	"sync"
)

// write is the coordinator's write path: apply locally with a new version,
// replicate to the peers, and answer once W copies are acknowledged. The
// replication to the remaining peers continues in the background; a peer
// that misses the update gets it later through its hint outbox.
func (c *core) write(ctx context.Context, key, value string, o Options) (WriteResult, error) {
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
	v := c.clock.Next()
	if _, err := c.apply(Update{Key: key, Value: value, Version: v}); err != nil {
		return WriteResult{}, err
	}
	res := WriteResult{Key: key, Version: v, Coordinator: c.cfg.Self, Acks: 1, W: w}
	if len(c.links) == 0 {
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
			if 1+len(c.links)-failed < w {
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
// returns a channel that receives each peer's outcome once its replication
// step (send, ack, gap sleep) is done. Steps run one after another when the
// profile is sequential, in parallel otherwise. A peer that fails gets u as
// a hint, delivered when it answers again.
func (c *core) replicate(u Update) <-chan error {
	out := make(chan error, len(c.links))
	step := func(l *link) {
		err := c.send(l, u)
		sleep(c.bgCtx, c.cfg.Delays.Gap)
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
