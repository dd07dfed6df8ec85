package replication

import (
	"context"
	"errors"
	"time"

	"github.com/kvdb/kvdb/internal/ctxtime"
	"github.com/kvdb/kvdb/internal/store"
)

// Ready reports whether the node serves clients: it has caught up (or
// needed not).
func (c *core) Ready() bool { return c.ready.Load() }

// Snapshot calls fn for every entry this node holds; it refuses while the
// node is still catching up, so a restarting peer never copies a partial
// state as if it were current. A non-zero term is the caller's election
// term: the node raises its own to it first, and from then on refuses
// fresh writes of older terms, so a new leader's copy holds every write
// this node acknowledged under the old one (see term.go).
func (c *core) Snapshot(term uint64, fn func(Update) error) error {
	c.observeTerm(term)
	if !c.Ready() {
		return ErrNotReady
	}
	return c.store.Snapshot(func(k string, e store.Entry) error {
		return fn(repairOf(k, e))
	})
}

// catchUpFrom copies state from sources until it has one complete copy,
// then marks the node ready. Each round asks every peer: the state of every
// source that is ready is merged (replicas apply only newer versions, so
// merge order does not matter and concurrent replication is safe). If no
// source is ready but every peer answered that it is catching up too, the
// whole cluster is starting cold and there is nothing to copy. Otherwise
// it retries with backoff until ctx ends.
func (c *core) catchUpFrom(ctx context.Context, sources []*link) error {
	if c.Ready() {
		return nil
	}
	isSource := map[*link]bool{}
	for _, l := range sources {
		isSource[l] = true
	}
	start := time.Now()
	lastLog := start
	backoff := minBackoff
	for {
		copied, notReady, entries := 0, 0, 0
		for _, l := range c.links {
			var n int
			var err error
			if isSource[l] {
				n, err = c.copyFrom(ctx, l, 0)
			} else {
				err = c.probe(ctx, l)
			}
			switch {
			case err == nil && isSource[l]:
				copied++
				entries += n
			case err == nil:
			case errors.Is(err, ErrNotReady):
				notReady++
			}
		}
		switch {
		case copied > 0:
			c.log.Info("caught up", "from", copied, "entries", entries, "keys", c.store.Len(), "took", time.Since(start).Round(time.Millisecond))
		case notReady == len(c.links):
			c.log.Info("cold start: every peer is starting too, nothing to catch up")
		default:
			if time.Since(lastLog) > 5*time.Second {
				c.log.Warn("still catching up: no ready peer to copy from yet", "waited", time.Since(start).Round(time.Second))
				lastLog = time.Now()
			}
			if !ctxtime.Sleep(ctx, backoff) {
				return ctx.Err()
			}
			backoff = min(2*backoff, maxBackoff)
			continue
		}
		c.ready.Store(true)
		return nil
	}
}

// copyTimeout bounds one snapshot transfer; the tombstone TTL bounds it
// further (copyDeadline).
const copyTimeout = 2 * time.Minute

// copyDeadline bounds one snapshot transfer: copyTimeout, or the tombstone
// TTL if shorter, so that no copy of an entry older than a tombstone is
// still arriving when the tombstone is collected (see tombstones.go).
func (c *core) copyDeadline() time.Duration { return min(copyTimeout, c.cfg.TombstoneTTL) }

// copyFrom applies l's snapshot, taken after fencing l at term (if
// non-zero), and returns the number of entries.
func (c *core) copyFrom(ctx context.Context, l *link, term uint64) (int, error) {
	return c.copyFromEach(ctx, l, term, nil)
}

// copyFromEach is copyFrom, calling each (if not nil) with every entry it
// copies, as it arrives (the first call also says the peer has answered).
func (c *core) copyFromEach(ctx context.Context, l *link, term uint64, each func(Update)) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, c.copyDeadline())
	defer cancel()
	n := 0
	batch := make([]Update, 0, 256)
	flush := func() error {
		_, err := c.apply(batch...)
		batch = batch[:0]
		return err
	}
	err := l.Snapshot(ctx, term, func(u Update) error {
		if err := c.checkVersion(u.Version); err != nil {
			c.met.invalid.Inc()
			c.log.Warn("catch-up skipped an update with an invalid version", "peer", l.ID(), "key", u.Key, "err", err)
			return nil
		}
		if each != nil {
			each(u)
		}
		n++
		batch = append(batch, u)
		if len(batch) == cap(batch) {
			return flush()
		}
		return nil
	})
	if err == nil {
		err = flush()
	}
	return n, err
}

// probe asks l whether it is ready.
func (c *core) probe(ctx context.Context, l *link) error {
	pctx, cancel := context.WithTimeout(ctx, c.cfg.PeerTimeout)
	defer cancel()
	return l.Probe(pctx)
}
