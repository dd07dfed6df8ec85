package replication

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// errPeerBusy: the peer already has MaxInFlightPerPeer messages in flight.
var errPeerBusy = errors.New("peer busy: too many replication messages in flight")

// link is the coordinator's state for one peer: a bound on messages in
// flight to it, and the hinted-handoff outbox of updates it missed, which
// one worker goroutine delivers when the peer answers again.
type link struct {
	Peer
	slots chan struct{} // one token per message in flight

	mu    sync.Mutex
	hints map[string]hint // newest missed update per key
	wake  chan struct{}
}

type hint struct {
	u     Update
	since time.Time
}

func newLink(p Peer, maxInFlight int) *link {
	return &link{Peer: p, slots: make(chan struct{}, maxInFlight), hints: map[string]hint{}, wake: make(chan struct{}, 1)}
}

// send makes one attempt to deliver u within PeerTimeout. It never waits
// for a slot: a peer that is already saturated counts as a failure, so a
// slow peer cannot pile up goroutines behind it.
func (c *core) send(l *link, u Update) error {
	select {
	case l.slots <- struct{}{}:
		defer func() { <-l.slots }()
	default:
		c.met.messages.WithLabelValues("busy").Inc()
		return fmt.Errorf("replicate to %s: %w", l.ID(), errPeerBusy)
	}
	ctx, cancel := context.WithTimeout(c.bgCtx, c.cfg.PeerTimeout)
	defer cancel()
	if err := l.Replicate(ctx, u); err != nil {
		c.met.messages.WithLabelValues("error").Inc()
		return fmt.Errorf("replicate to %s: %w", l.ID(), err)
	}
	c.met.messages.WithLabelValues("ok").Inc()
	return nil
}

// hintFor keeps u for l (hinted handoff), replacing an older hint for the
// same key, and wakes the link's worker. Read repair uses the same outbox
// (repair true), so it works with hinted handoff off.
func (c *core) hintFor(l *link, u Update, repair bool) {
	if c.cfg.DisableHintedHandoff && !repair {
		c.met.dropped.Inc()
		return
	}
	l.mu.Lock()
	h, ok := l.hints[u.Key]
	switch {
	case ok && h.u.Version >= u.Version:
	case !ok && len(l.hints) >= c.cfg.MaxHints:
		c.met.dropped.Inc()
	default:
		if !ok {
			c.met.hints.Inc()
		}
		l.hints[u.Key] = hint{u: u, since: time.Now()}
	}
	l.mu.Unlock()
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

// takeHints removes up to n hints, dropping those older than RetryFor.
func (c *core) takeHints(l *link, n int) []hint {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]hint, 0, min(n, len(l.hints)))
	for k, h := range l.hints {
		if len(out) == n {
			break
		}
		delete(l.hints, k)
		c.met.hints.Dec()
		if time.Since(h.since) > c.cfg.RetryFor {
			c.met.dropped.Inc()
			c.log.Warn("dropped a hint past the retry window", "peer", l.ID(), "key", k, "version", h.u.Version, "retry_for", c.cfg.RetryFor)
			continue
		}
		out = append(out, h)
	}
	return out
}

// Hints is the number of updates waiting for unreachable peers.
func (c *core) Hints() int {
	n := 0
	for _, l := range c.links {
		l.mu.Lock()
		n += len(l.hints)
		l.mu.Unlock()
	}
	return n
}

// deliverHints is a link's worker: whenever hints are waiting it sends
// them, backing off exponentially while the peer does not answer. It ends
// when the node closes.
func (c *core) deliverHints(l *link) {
	defer c.workers.Done()
	backoff := minBackoff
	for {
		select {
		case <-c.bgCtx.Done():
			return
		case <-l.wake:
		}
		for {
			batch := c.takeHints(l, 64)
			if len(batch) == 0 {
				backoff = minBackoff
				break
			}
			failedAt := -1
			for i, h := range batch {
				c.met.retries.Inc()
				if err := c.send(l, h.u); err != nil {
					failedAt = i
					break
				}
				c.met.hintsDelivered.Inc()
			}
			if failedAt < 0 {
				backoff = minBackoff
				continue
			}
			for _, h := range batch[failedAt:] {
				c.rehint(l, h)
			}
			if !sleep(c.bgCtx, backoff) {
				return
			}
			backoff = min(2*backoff, maxBackoff)
		}
	}
}

// rehint puts back a hint that could not be delivered, with its original
// age, unless a newer one for the key arrived meanwhile.
func (c *core) rehint(l *link, h hint) {
	l.mu.Lock()
	if cur, ok := l.hints[h.u.Key]; !ok || cur.u.Version < h.u.Version {
		if !ok {
			c.met.hints.Inc()
		}
		l.hints[h.u.Key] = h
	}
	l.mu.Unlock()
}

const (
	minBackoff = 50 * time.Millisecond
	maxBackoff = 2 * time.Second
)
