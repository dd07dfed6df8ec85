package replication

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// errPeerBusy: the peer already has MaxInFlightPerPeer messages in flight.
var errPeerBusy = errors.New("peer busy: too many replication messages in flight")

// errPeerSuspect: the peer failed recently; updates go to its hints at
// once instead of waiting for another timeout.
var errPeerSuspect = errors.New("peer failed recently: skipped until it answers again")

// suspectFor is how long a peer that failed a message is skipped by the
// write path; the hint worker keeps probing it meanwhile, and its first
// success clears the mark.
const suspectFor = time.Second

// link is the coordinator's state for one peer: a bound on messages in
// flight to it, and the hinted-handoff outbox of updates it missed, which
// one worker goroutine delivers when the peer answers again.
type link struct {
	Peer
	slots chan struct{} // one token per message in flight
	// suspectUntil (unix ns) marks a peer that failed a message: until then
	// the write path counts it as failed at once (fail fast, no timeout).
	suspectUntil atomic.Int64

	// Batching (parallel profiles): concurrent updates for this peer queue
	// here and up to maxFlushers goroutines send them as batches, so under
	// load one HTTP round trip carries many updates.
	bmu      sync.Mutex
	queue    []*call
	flushers int

	mu      sync.Mutex
	hints   map[string]hint // newest missed update per key
	sending int             // hints taken out by the worker and being sent
	wake    chan struct{}
}

type hint struct {
	u     Update
	since time.Time
}

func newLink(p Peer, maxInFlight int) *link {
	return &link{Peer: p, slots: make(chan struct{}, maxInFlight), hints: map[string]hint{}, wake: make(chan struct{}, 1)}
}

// call is one update waiting in a link's batch queue.
type call struct {
	u   Update
	err chan error
}

const (
	maxFlushers   = 4       // batches in flight per peer
	maxBatch      = 256     // updates per batch
	maxBatchBytes = 1 << 20 // payload per batch (a larger update goes alone)
)

// send makes one attempt to deliver u within PeerTimeout. Under a
// sequential (paper) profile every update is its own message, as the
// profile prescribes; otherwise updates to one peer are batched. It never
// waits for a slot: a peer already saturated counts as a failure, so a
// slow peer cannot pile up work behind it.
func (c *core) send(l *link, u Update) error {
	if time.Now().UnixNano() < l.suspectUntil.Load() {
		c.met.messages.WithLabelValues("skipped").Inc()
		return fmt.Errorf("replicate to %s: %w", l.ID(), errPeerSuspect)
	}
	if c.cfg.Delays.Sequential || c.cfg.DisableBatching {
		return c.sendBatch(l, []Update{u})
	}
	cl := &call{u: u, err: make(chan error, 1)}
	l.bmu.Lock()
	if len(l.queue) >= c.cfg.MaxInFlightPerPeer {
		l.bmu.Unlock()
		c.met.messages.WithLabelValues("busy").Inc()
		return fmt.Errorf("replicate to %s: %w", l.ID(), errPeerBusy)
	}
	l.queue = append(l.queue, cl)
	start := l.flushers < maxFlushers
	if start {
		l.flushers++
		c.workers.Add(1)
	}
	l.bmu.Unlock()
	if start {
		go c.flush(l)
	}
	// Bound the wait from enqueueing, not from when a batch carries the
	// update: an update queued behind a batch to a dead peer must not wait
	// for that batch's timeout and then its own.
	t := time.NewTimer(c.cfg.PeerTimeout)
	defer t.Stop()
	select {
	case err := <-cl.err:
		return err
	case <-t.C:
		c.met.messages.WithLabelValues("error").Inc()
		return fmt.Errorf("replicate to %s: %w", l.ID(), context.DeadlineExceeded)
	}
}

// flush sends l's queued updates in batches until the queue is empty.
func (c *core) flush(l *link) {
	defer c.workers.Done()
	for {
		l.bmu.Lock()
		n, size := 0, 0
		for n < len(l.queue) && n < maxBatch && (n == 0 || size+len(l.queue[n].u.Value) <= maxBatchBytes) {
			size += len(l.queue[n].u.Key) + len(l.queue[n].u.Value)
			n++
		}
		if n == 0 {
			l.flushers--
			l.bmu.Unlock()
			return
		}
		calls := make([]*call, n)
		copy(calls, l.queue)
		l.queue = append(l.queue[:0], l.queue[n:]...)
		l.bmu.Unlock()
		us := make([]Update, n)
		for i, cl := range calls {
			us[i] = cl.u
		}
		err := c.sendBatch(l, us)
		for _, cl := range calls {
			cl.err <- err
		}
	}
}

// sendBatch makes one attempt to deliver us in one message.
func (c *core) sendBatch(l *link, us []Update) error {
	select {
	case l.slots <- struct{}{}:
		defer func() { <-l.slots }()
	default:
		c.met.messages.WithLabelValues("busy").Add(float64(len(us)))
		return fmt.Errorf("replicate to %s: %w", l.ID(), errPeerBusy)
	}
	ctx, cancel := context.WithTimeout(c.bgCtx, c.cfg.PeerTimeout)
	defer cancel()
	var err error
	if len(us) == 1 {
		err = l.Replicate(ctx, us[0])
	} else {
		err = l.ReplicateBatch(ctx, us)
	}
	c.met.batches.Observe(float64(len(us)))
	if err != nil {
		l.suspectUntil.Store(time.Now().Add(suspectFor).UnixNano())
		c.met.messages.WithLabelValues("error").Add(float64(len(us)))
		return fmt.Errorf("replicate to %s: %w", l.ID(), err)
	}
	l.suspectUntil.Store(0)
	c.met.messages.WithLabelValues("ok").Add(float64(len(us)))
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
	l.sending += len(out)
	return out
}

// Hints is the number of updates waiting for unreachable peers.
func (c *core) Hints() int {
	n := 0
	for _, l := range c.links {
		l.mu.Lock()
		n += len(l.hints) + l.sending
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
			us := make([]Update, len(batch))
			for i, h := range batch {
				us[i] = h.u
			}
			c.met.retries.Add(float64(len(us)))
			err := c.sendBatch(l, us)
			if err != nil {
				for _, h := range batch {
					c.rehint(l, h)
				}
			} else {
				c.met.hintsDelivered.Add(float64(len(us)))
			}
			l.mu.Lock()
			l.sending -= len(batch)
			l.mu.Unlock()
			if err == nil {
				backoff = minBackoff
				continue
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
