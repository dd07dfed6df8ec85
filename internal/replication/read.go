package replication

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"

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
// parallel), returning the highest version. Tombstones take part like
// values (a read repair or write-back may carry one); a read whose highest
// version is a tombstone answers ErrNotFound. When R+W>N the read is
// linearizable: if fewer than W of the copies it read hold the version it
// returns, it first writes that version back until W replicas hold it
// (writeBack). Otherwise replicas seen to be behind are brought up to date in
// the background (read repair) unless disabled.
func (c *core) Read(ctx context.Context, key string, o Options) (ReadResult, error) {
	if !c.Ready() {
		return ReadResult{}, ErrNotReady
	}
	w, r, err := c.effective(o)
	if err != nil {
		return ReadResult{}, err
	}
	local, found := c.store.Get(key)
	best := local
	copies := 1
	if r > 1 {
		answers, late, err := c.readPeers(ctx, key, r-1)
		if err != nil {
			return ReadResult{}, err
		}
		copies += len(answers)
		for _, a := range answers {
			if a.ok && (!found || a.e.Version > best.Version) {
				best, found = a.e, true
			}
		}
		switch {
		case !found:
		case r+w > c.cfg.N():
			if err := c.writeBack(ctx, key, best, local, answers, late, w); err != nil {
				return ReadResult{}, err
			}
		default:
			c.readRepair(key, best, local, answers)
		}
	}
	if found {
		// A write this node coordinates next must order after what it
		// returned.
		c.clock.Observe(best.Version)
	}
	if !found || best.Deleted {
		// No copy, or the newest is a tombstone: the key was deleted (after
		// the write-back above, when the read is a quorum read, so a later
		// quorum read cannot see an older value either).
		return ReadResult{}, fmt.Errorf("%q: %w", key, ErrNotFound)
	}
	return ReadResult{Key: key, Value: best.Value, Version: best.Version, Node: c.cfg.Self, Copies: copies}, nil
}

// readPeers asks every peer for key in parallel and returns the first need
// answers, or a QuorumError once need answers are no longer possible or
// PeerTimeout (or ctx) runs out. The answers of the peers still running
// arrive later on the returned channel, which is buffered for all of them,
// so nobody has to read it.
//
// The peer reads still running when it returns are not cancelled: they end
// by themselves within PeerTimeout. Cancelling an HTTP/1.1 request closes
// its keep-alive connection, so cutting the stragglers short would make
// every quorum read dial new connections.
//
// The peers are asked in a random order, drawn per call. Asked always in
// member order, the first peer would usually answer first (its request
// leaves first, and under the paper profile every peer then sleeps the
// same 50 ms), so a read with R-1 < N-1 would nearly always use the same
// peers: their load would be uneven, and which copies a read sees would
// depend on where it lands in the ring rather than on the hops — the
// write's coordinator replicates to its successors first, so a reader
// just behind it would keep asking the peers its writes reach last. PBS's
// model (package pbs), which the lab checks against measurements, assumes
// the first answers come from uniformly chosen peers.
func (c *core) readPeers(ctx context.Context, key string, need int) ([]peerRead, <-chan peerRead, error) {
	// One deadline for every peer's read, not a timer each: the reads end
	// by it (and the wait below with them), and the last one to finish
	// releases it. It outlives this call: late answers still arrive on ch.
	pctx, cancel := context.WithTimeout(c.bgCtx, c.cfg.PeerTimeout)
	left := &countdown{release: cancel}
	left.n.Store(int32(len(c.links)))
	ch := make(chan peerRead, len(c.links))
	order := rand.Perm(len(c.links))
	for _, i := range order {
		l := c.links[i]
		go func() {
			defer left.done()
			e, ok, err := l.Read(pctx, key)
			if err == nil && ok {
				err = c.checkVersion(e.Version)
			}
			if err != nil {
				err = fmt.Errorf("read from %s: %w", l.ID(), err)
			}
			ch <- peerRead{l, e, ok, err}
		}()
	}
	done := pctx.Done()
	var answers []peerRead
	failed := 0
	var lastErr error
	fail := func(cause error) ([]peerRead, <-chan peerRead, error) {
		c.met.quorumFailures.WithLabelValues("read").Inc()
		return nil, nil, &QuorumError{Op: "read", Acks: 1 + len(answers), Required: need + 1, N: c.cfg.N(), Cause: cause}
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
		case <-done:
			if pctx.Err() == context.DeadlineExceeded {
				return fail(context.DeadlineExceeded)
			}
			done = nil // every read ended: their answers are all in ch

		case <-ctx.Done():
			return fail(ctx.Err())
		}
	}
	return answers, ch, nil
}

// countdown calls release when its count reaches zero.
type countdown struct {
	n       atomic.Int32
	release func()
}

func (c *countdown) done() {
	if c.n.Add(-1) == 0 {
		c.release()
	}
}

// readRepair sends best to every replica read that was behind it, and
// applies it locally if the local copy was behind.
func (c *core) readRepair(key string, best, local store.Entry, answers []peerRead) {
	if c.cfg.DisableReadRepair {
		return
	}
	u := repairOf(key, best)
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

// writeBack is the second phase of an ABD read (Cassandra's blocking read
// repair): before a quorum read (R+W>N) returns best, it makes sure enough
// replicas hold it (writeBackTarget: W, or N-1 when W=N) that every later
// quorum read meets it. Without it a read could return a write still in
// flight, on fewer than W replicas, and a later read of R other replicas
// could miss it: an inversion, which is not linearizable.
//
// The copies already read that hold best (or newer) count; a local copy
// behind is brought up to date at once (no delay: it is the coordinator's
// own store). If that is not enough, best goes to every peer not known to
// hold it, in parallel, while the answers of the peers the read phase did
// not wait for keep arriving (late): a replica counts once, whether a late
// answer shows it already holds best or it acknowledges the write-back. So a
// read that merely reached the replicas an acknowledged write has not yet
// reached answers as soon as the other peers' reads show the write at W,
// and only a read that met a write still in flight waits for the
// write-back's apply. Sends it no longer waits for finish in the
// background; a peer that fails gets best as a repair hint.
func (c *core) writeBack(ctx context.Context, key string, best, local store.Entry, answers []peerRead, late <-chan peerRead, w int) error {
	u := repairOf(key, best)
	holds := map[*link]bool{}
	for _, a := range answers {
		if a.ok && a.e.Version >= best.Version {
			holds[a.l] = true
		}
	}
	if local.Version < best.Version {
		if _, err := c.apply(u); err != nil {
			return err
		}
		c.met.readRepairs.Inc()
	}
	have := func() int { return 1 + len(holds) } // the local copy holds best now
	target := writeBackTarget(w, c.cfg.N())
	if have() >= target {
		c.readRepair(key, best, local, answers)
		return nil
	}
	if !c.admit() {
		return ErrClosed
	}
	var targets []*link
	for _, l := range c.links {
		if !holds[l] {
			targets = append(targets, l)
		}
	}
	type ack struct {
		l   *link
		err error
	}
	acks := make(chan ack, len(targets))
	c.pending.Add(1)
	c.met.pending.Inc()
	go func() {
		defer c.finishTask()
		var wg sync.WaitGroup
		for _, l := range targets {
			wg.Add(1)
			go func() {
				defer wg.Done()
				err := c.send(l, u)
				if err != nil {
					c.hintFor(l, u, true)
				} else {
					c.met.readRepairs.Inc()
				}
				acks <- ack{l, err}
			}()
		}
		wg.Wait()
	}()
	failed := map[*link]bool{}
	var lastErr error
	lateLeft := len(c.links) - len(answers)
	for have() < target {
		lost := 0
		for l := range failed {
			if !holds[l] {
				lost++
			}
		}
		if 1+len(c.links)-lost < target {
			c.met.writeBacks.WithLabelValues("failed").Inc()
			return &QuorumError{Op: "read", Phase: "write-back", Acks: have(), Required: target, N: c.cfg.N(), Cause: lastErr}
		}
		var lateCh <-chan peerRead
		if lateLeft > 0 {
			lateCh = late
		}
		select {
		case a := <-acks:
			if a.err != nil {
				failed[a.l], lastErr = true, a.err
				continue
			}
			holds[a.l] = true
		case a := <-lateCh:
			lateLeft--
			if a.err == nil && a.ok && a.e.Version >= best.Version {
				holds[a.l] = true
			}
		case <-ctx.Done():
			c.met.writeBacks.WithLabelValues("failed").Inc()
			return &QuorumError{Op: "read", Phase: "write-back", Acks: have(), Required: target, N: c.cfg.N(), Cause: ctx.Err()}
		}
	}
	c.met.writeBacks.WithLabelValues("ok").Inc()
	return nil
}

// writeBackTarget is how many replicas must hold what a quorum read returns
// before it answers: W, so that every later read of R' replicas with
// R'+W>N meets one of them. With W=N it is N-1: the only later reads that
// N-1 holders could miss read R'=1 replica, and R=1 reads under W=N are not
// linearizable anyway (a replica serves a write before it is
// acknowledged), so asking for all N would only make quorum reads fail
// whenever one node is down, with nothing gained.
func writeBackTarget(w, n int) int { return min(w, n-1) }
