package replication

import (
	"context"
	"sync"
	"time"
)

// Deletes and their tombstones.
//
// A delete is a tombstone: an update with Deleted set and its own version,
// replicated, hinted, repaired, copied and logged exactly like a value. It
// must stay until no replica could still receive or hold a copy of the key
// older than it — otherwise that older copy would be applied to a replica
// that no longer remembers the delete, and spread back (a deleted value
// resurrected). Then it is dropped everywhere, so memory returns.
//
// The rule. Each tombstone (key, version v) has one collector: the member
// whose index is hash(key) mod N, the same on every node.
//
//  1. Every node notes when it applied a tombstone (the ledger below);
//     tombstones replayed from the write-ahead log count from the start.
//  2. Once the collector has held the tombstone for TombstoneTTL, it asks
//     every peer for its copy of the key. If each answers with version v or
//     newer (a tombstone or a later set), every replica holds it; a peer
//     behind or without the key is sent the tombstone (a repair) and the
//     check is tried again on the next sweep. A peer that does not answer
//     fails the check: a replica that was down or partitioned keeps
//     everything it held, so nothing is dropped until it answers.
//  3. From the moment every replica holds v or newer, no store holds an
//     older version of the key (stores never go backwards, and with a
//     write-ahead log a restart replays the tombstone), and no coordinator
//     can issue an older one (every clock has observed v, since applying v
//     observes it). Older copies can only still be travelling: a hint (at
//     most RetryFor old, plus its delivery), a message in flight (at most a
//     few PeerTimeouts, batching queues included) or a snapshot copy
//     (bounded by TombstoneTTL, copyDeadline). A replica holding the
//     tombstone refuses them as stale. The collector waits TombstoneTTL
//     more — at least RetryFor + 4 PeerTimeouts (Config.Validate) — after
//     which none is left.
//  4. Then it drops its own copy and sends every peer a purge of
//     (key, v) through the hint outbox: each drops the key if what it holds
//     is no newer than v. A later set (newer) is never touched.
//
// A purge that never arrives (a peer down past RetryFor) leaves that
// replica's tombstone in place: safe, it only costs memory. So a node that
// has held a tombstone for 3 TTLs without its purge arriving sends it to
// the collector (as a repair); the collector, if it had collected it, holds
// it again and repeats the rule, purging everywhere (the other replicas,
// which answer "absent", get the tombstone first and then its purge). A
// collector that is down leaves its tombstones in place until it returns.
// A node that was away longer than the TTL resurrects nothing: the
// collector dropped nothing while it did not answer.
//
// Purges are not logged: a node that restarts from its log gets the
// tombstone back (never an older value, since the log holds the tombstone
// after every older record), and collects it again the same way.

// tombstoneMessageSlack is how many PeerTimeouts a copy in flight may take
// beyond its hint's RetryFor (a send, queued behind a few batches).
const tombstoneMessageSlack = 4

// forwardAfterTTLs is how many TTLs a non-collector holds a tombstone before
// it sends it to the collector again.
const forwardAfterTTLs = 3

// tombRec is the ledger's record of one tombstone.
type tombRec struct {
	key      string
	version  uint64
	since    time.Time // applied here (or last sent to the collector)
	verified time.Time // the collector saw every replica hold it; zero if not yet
}

// tombLedger records the tombstones a node holds and when it got them.
type tombLedger struct {
	mu sync.Mutex
	m  map[string]tombRec
}

func (t *tombLedger) init() { t.m = map[string]tombRec{} }

// add notes a tombstone applied now.
func (t *tombLedger) add(key string, version uint64) {
	t.mu.Lock()
	if cur, ok := t.m[key]; !ok || cur.version < version {
		t.m[key] = tombRec{key: key, version: version, since: time.Now()}
	}
	t.mu.Unlock()
}

// drop forgets key's record if it is still of version.
func (t *tombLedger) drop(key string, version uint64) {
	t.mu.Lock()
	if cur, ok := t.m[key]; ok && cur.version <= version {
		delete(t.m, key)
	}
	t.mu.Unlock()
}

// update replaces key's record with r if it is still of r's version.
func (t *tombLedger) update(r tombRec) {
	t.mu.Lock()
	if cur, ok := t.m[r.key]; ok && cur.version == r.version {
		t.m[r.key] = r
	}
	t.mu.Unlock()
}

// due returns the records held at least ttl.
func (t *tombLedger) due(now time.Time, ttl time.Duration) []tombRec {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []tombRec
	for _, r := range t.m {
		if now.Sub(r.since) >= ttl {
			out = append(out, r)
		}
	}
	return out
}

// len is the number of records.
func (t *tombLedger) len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.m)
}

// collector returns the index of the member that collects key's tombstones:
// FNV-1a of the key modulo N, the same on every node.
func collector(key string, n int) int {
	h := uint32(2166136261)
	for i := 0; i < len(key); i++ {
		h ^= uint32(key[i])
		h *= 16777619
	}
	return int(h % uint32(n))
}

// collects reports whether this node collects key's tombstones.
func (c *core) collects(key string) bool {
	return c.cfg.Members[collector(key, c.cfg.N())].ID == c.cfg.Self
}

// sweepEvery is the period of the tombstone sweep: a quarter of the TTL,
// within 10ms..1m.
func (c *core) sweepEvery() time.Duration {
	return min(max(c.cfg.TombstoneTTL/4, 10*time.Millisecond), time.Minute)
}

// collectTombstones is the tombstone collector's worker: it sweeps the
// ledger every sweepEvery until the node closes.
func (c *core) collectTombstones() {
	defer c.workers.Done()
	t := time.NewTicker(c.sweepEvery())
	defer t.Stop()
	for {
		select {
		case <-c.bgCtx.Done():
			return
		case <-t.C:
			c.sweepTombstones(time.Now())
		}
	}
}

// sweepTombstones takes each tombstone held at least TombstoneTTL one step
// along the rule above.
func (c *core) sweepTombstones(now time.Time) {
	ttl := c.cfg.TombstoneTTL
	for _, r := range c.tombs.due(now, ttl) {
		if c.bgCtx.Err() != nil {
			return
		}
		cur, ok := c.store.Get(r.key)
		if !ok || !cur.Deleted || cur.Version != r.version {
			c.tombs.drop(r.key, r.version) // replaced by a later set or tombstone, or purged
			continue
		}
		u := Update{Key: r.key, Version: r.version, Deleted: true}
		if !c.collects(r.key) {
			if now.Sub(r.since) >= forwardAfterTTLs*ttl {
				if l := c.linkTo(c.cfg.Members[collector(r.key, c.cfg.N())].ID); l != nil {
					c.hintFor(l, u, true)
				}
				r.since = now
				c.tombs.update(r)
			}
			continue
		}
		switch {
		case r.verified.IsZero():
			if c.everyReplicaHolds(u) {
				r.verified = time.Now()
				c.tombs.update(r)
			}
		case now.Sub(r.verified) >= ttl:
			c.purgeEverywhere(u)
		}
	}
}

// everyReplicaHolds asks every peer for its copy of u.Key and reports
// whether each holds u.Version or newer. A peer behind is sent u (a
// repair), so that a later check can succeed.
func (c *core) everyReplicaHolds(u Update) bool {
	type answer struct {
		l    *link
		held bool
		err  error
	}
	ch := make(chan answer, len(c.links))
	for _, l := range c.links {
		go func() {
			ctx, cancel := context.WithTimeout(c.bgCtx, c.cfg.PeerTimeout)
			defer cancel()
			e, ok, err := l.Read(ctx, u.Key)
			ch <- answer{l, ok && e.Version >= u.Version, err}
		}()
	}
	all := true
	for range c.links {
		a := <-ch
		switch {
		case a.err != nil:
			c.met.tombstoneChecks.WithLabelValues("unreachable").Inc()
			all = false
		case !a.held:
			c.met.tombstoneChecks.WithLabelValues("behind").Inc()
			c.hintFor(a.l, u, true)
			all = false
		}
	}
	if all {
		c.met.tombstoneChecks.WithLabelValues("held").Inc()
	}
	return all
}

// purgeEverywhere drops the tombstone u here and sends its purge to every
// peer.
func (c *core) purgeEverywhere(u Update) {
	c.purge([]Update{{Key: u.Key, Version: u.Version, Deleted: true, Purge: true}})
	p := Update{Key: u.Key, Version: u.Version, Deleted: true, Purge: true}
	for _, l := range c.links {
		c.hintFor(l, p, true)
	}
}

// purge applies the purges among us (see Update.Purge) and returns the
// other updates.
func (c *core) purge(us []Update) []Update {
	n := 0
	for _, u := range us {
		if u.Purge {
			n++
		}
	}
	if n == 0 {
		return us
	}
	rest := make([]Update, 0, len(us)-n)
	for _, u := range us {
		if !u.Purge {
			rest = append(rest, u)
			continue
		}
		if c.store.Purge(u.Key, u.Version) {
			c.met.tombstonesPurged.Inc()
		}
		c.tombs.drop(u.Key, u.Version)
	}
	return rest
}
