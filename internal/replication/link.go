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
	// refused remembers the last updates the peer refused permanently, so
	// that the write path, which hints every update a send failed, does
	// not put them back in the outbox (hintFor skips them). A ring: it
	// never grows, and a refusal it forgot costs one more refused send.
	refused    [refusedRing]refusal
	refusedAt  int
	refusedLog map[int]bool // statuses already logged (log once per peer and status)
}

// refusal names one refused update.
type refusal struct {
	key     string
	version uint64
}

const refusedRing = 64

type hint struct {
	u     Update
	since time.Time
}

func newLink(p Peer, maxInFlight int) *link {
	return &link{Peer: p, slots: make(chan struct{}, maxInFlight), hints: map[string]hint{}, wake: make(chan struct{}, 1), refusedLog: map[int]bool{}}
}

// call is one update waiting in a link's batch queue. Its outcome goes to
// err (send's single update) or to f's slot i (a write's fan-out, see
// fanout): complete says which.
type call struct {
	u   *Update // the fan-out's own, shared by its calls
	err chan error
	f   *fanout
	i   int
	// settled: the fan-out has this call's outcome (see fanout.settle).
	settled atomic.Bool
}

// complete reports the call's outcome.
func (cl *call) complete(err error) {
	if cl.f != nil {
		cl.f.settle(cl.i, err)
		return
	}
	cl.err <- err
}

// maxFlushers is the number of batches in flight per peer.
const maxFlushers = 4

// The sender's batch caps. A receiver derives its body limit from them and
// from its key and value limits (transport.Limits.MaxBodyBytes), so the
// sender must never build a batch beyond them: batchFits is the one place
// that decides.
const (
	// MaxBatchUpdates bounds the updates in one message.
	MaxBatchUpdates = 256
	// MaxBatchBytes bounds the values of a message's updates taken
	// together; an update whose value alone is larger goes alone.
	MaxBatchBytes = 1 << 20
)

// batchFits reports whether u may join a batch of n updates whose values
// add up to valueBytes.
func batchFits(n, valueBytes int, u Update) bool {
	return n == 0 || (n < MaxBatchUpdates && valueBytes+len(u.Value) <= MaxBatchBytes)
}

// send makes one attempt to deliver u within PeerTimeout. Under a
// sequential (paper) profile every update is its own message, as the
// profile prescribes; otherwise updates to one peer are batched. It never
// waits for a slot: a peer already saturated counts as a failure, so a
// slow peer cannot pile up work behind it.
func (c *core) send(l *link, u Update) error {
	if c.cfg.Delays.Sequential || c.cfg.DisableBatching {
		if err := c.suspect(l, time.Now()); err != nil {
			return err
		}
		return first(c.deliver(l, []Update{u}))
	}
	cl := &call{u: &u, err: make(chan error, 1)}
	if err := c.enqueue(l, cl, time.Now()); err != nil {
		return err
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

// suspect returns errPeerSuspect (counted) while l is marked as failed.
func (c *core) suspect(l *link, now time.Time) error {
	if now.UnixNano() < l.suspectUntil.Load() {
		c.met.messages.WithLabelValues("skipped").Inc()
		return fmt.Errorf("replicate to %s: %w", l.ID(), errPeerSuspect)
	}
	return nil
}

// enqueue puts cl in l's batch queue and starts a flusher unless
// maxFlushers already run; a flusher completes cl. It refuses at once
// (and cl is not completed) when the peer is suspect or its queue is full:
// a slow peer cannot pile up work behind it.
func (c *core) enqueue(l *link, cl *call, now time.Time) error {
	if err := c.suspect(l, now); err != nil {
		return err
	}
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
	return nil
}

// flush sends l's queued updates in batches until the queue is empty.
func (c *core) flush(l *link) {
	defer c.workers.Done()
	for {
		l.bmu.Lock()
		n, size := 0, 0
		for n < len(l.queue) && batchFits(n, size, *l.queue[n].u) {
			size += len(l.queue[n].u.Value)
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
			us[i] = *cl.u
		}
		errs := c.deliver(l, us)
		for i, cl := range calls {
			if errs == nil {
				cl.complete(nil)
			} else {
				cl.complete(errs[i])
			}
		}
	}
}

// first is the error of a one-update delivery.
func first(errs []error) error {
	if errs == nil {
		return nil
	}
	return errs[0]
}

// deliver makes one attempt to deliver us to l. It returns nil when every
// update was delivered, otherwise the outcome of each (errs[i] for us[i],
// nil for those delivered).
//
// A message the peer refuses permanently (ErrRefused: a 4xx answer that
// sending it again cannot change, such as an update over the peer's
// limits) is split in halves and each half sent again, down to single
// updates, so that one update the peer will never take cannot hold back
// the others: the rest are delivered, and only the refused ones fail, with
// ErrRefused. Those are dropped (see refuse), never retried.
func (c *core) deliver(l *link, us []Update) []error {
	err := c.sendBatch(l, us)
	if err == nil {
		return nil
	}
	errs := make([]error, len(us))
	switch {
	case errors.Is(err, ErrStaleTerm):
		// The peer knows a newer election term: this node no longer leads,
		// and these fresh writes collect no acknowledgement there. They
		// stay repairable: the peer takes them as repairs (no term), which
		// cannot be counted as acknowledgements, so a deposed leader's
		// unacknowledged writes converge like any other (lower-versioned
		// than everything its successor writes) instead of lingering on
		// this node alone.
		// The peer refused the whole message: every update in it (repairs
		// among them, in a mixed hint batch) goes back to the outbox.
		for i, u := range us {
			errs[i] = err
			u.Term = 0
			c.hintFor(l, u, true)
		}
	case !errors.Is(err, ErrRefused):
		for i := range errs {
			errs[i] = err
		}
	case len(us) == 1:
		c.refuse(l, us[0], err)
		errs[0] = err
	default:
		mid := len(us) / 2
		a, b := c.deliver(l, us[:mid]), c.deliver(l, us[mid:])
		if a == nil && b == nil {
			return nil // refused as a whole (e.g. too large together), taken in halves
		}
		copy(errs, a)
		copy(errs[mid:], b)
	}
	return errs
}

// refuse drops u, which l refused permanently: it is counted
// (kvdb_replication_refused_total), logged once per peer and status, and
// not retried, so it never occupies the peer's hint outbox or delays the
// updates behind it.
//
// The update is not lost: the coordinator (and the replicas that took it)
// still hold it, and it stays repairable by the paths that do not depend
// on this message — a quorum read that sees the peer behind writes the
// newest version back (read repair), a peer that restarts copies the
// current state from snapshots (catch-up), and a later write of the key
// replaces it. Those deliver it once whatever made the peer refuse (in
// practice, limits that differ between nodes, or an update from a stale
// term) no longer holds.
func (c *core) refuse(l *link, u Update, err error) {
	c.met.refused.Inc()
	status := 0
	var sc interface{ StatusCode() int }
	if errors.As(err, &sc) {
		status = sc.StatusCode()
	}
	l.mu.Lock()
	l.refused[l.refusedAt] = refusal{u.Key, u.Version}
	l.refusedAt = (l.refusedAt + 1) % refusedRing
	logged := l.refusedLog[status]
	l.refusedLog[status] = true
	l.mu.Unlock()
	if logged {
		c.log.Debug("peer refused an update permanently: dropped", "peer", l.ID(), "status", status, "key", u.Key, "version", u.Version, "err", err)
		return
	}
	c.log.Error("peer refused an update permanently: dropped, not retried, left to read repair and catch-up (logged once per peer and status; see kvdb_replication_refused_total)",
		"peer", l.ID(), "status", status, "key", u.Key, "version", u.Version, "value_bytes", len(u.Value), "err", err)
}

// wasRefused reports (once) whether l refused u permanently; l.mu held.
func (l *link) wasRefused(u Update) bool {
	for i, r := range l.refused {
		if r.version == u.Version && r.version != 0 && r.key == u.Key {
			l.refused[i] = refusal{}
			return true
		}
	}
	return false
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
	if errors.Is(err, ErrRefused) {
		// The peer answered: it is up, only this message is unwelcome.
		l.suspectUntil.Store(0)
		c.met.messages.WithLabelValues("refused").Add(float64(len(us)))
		return fmt.Errorf("replicate to %s: %w", l.ID(), err)
	}
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
	case l.wasRefused(u):
		// Refused permanently: resending cannot help (see refuse).
	case ok && (h.u.Version > u.Version || h.u.Version == u.Version && (h.u.Purge || !u.Purge)):
		// A hint as new is held (a purge of a tombstone replaces the
		// tombstone's hint: the peer already holds it, see tombstones.go).
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

// takeHints removes up to n hints, no more than one batch holds (see
// batchFits), dropping those older than RetryFor.
func (c *core) takeHints(l *link, n int) []hint {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]hint, 0, min(n, len(l.hints)))
	size := 0
	for k, h := range l.hints {
		if len(out) == n || !batchFits(len(out), size, h.u) {
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
		size += len(h.u.Value)
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
			errs := c.deliver(l, us)
			delivered, failed := 0, 0
			for i, h := range batch {
				switch {
				case errs == nil || errs[i] == nil:
					delivered++
				case errors.Is(errs[i], ErrRefused):
					// Dropped by refuse: never back in the outbox.
				default:
					failed++
					c.rehint(l, h)
				}
			}
			c.met.hintsDelivered.Add(float64(delivered))
			l.mu.Lock()
			l.sending -= len(batch)
			l.mu.Unlock()
			if failed == 0 {
				backoff = minBackoff
				continue
			}
			if !ctxtime.Sleep(c.bgCtx, backoff) {
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
