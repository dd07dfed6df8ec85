package replication

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kvdb/kvdb/internal/ctxtime"
	"github.com/kvdb/kvdb/internal/store"
)

// Terms and fencing (leader-follower mode with an Elector).
//
// An election (package consensus, raft) numbers each leadership with a
// term. The engine uses it three ways:
//
//   - Versions carry the term of the leader that issued them in their top
//     bits (term<<termShift | counter), so every version a new leader
//     issues is above every version of an earlier term: a write that
//     begins after a failover always wins.
//   - Every update a leader sends carries its term (Update.Term). A replica
//     remembers the highest term it has seen — from the election, from the
//     updates it received and from the versions it holds — and refuses a
//     fresh write from an older term (ErrStaleTerm), so a deposed leader
//     cannot collect acknowledgements. Repairs (read repair, write-back,
//     catch-up) carry Term 0: they move versions that already exist, and
//     are never fenced.
//   - A new leader copies the state of N-W+1 nodes, itself included, before
//     it accepts writes (leaderCatchUp): that set meets every write quorum,
//     so it holds every acknowledged write. Each source first raises its
//     term to the new one (Snapshot's term argument), under the same lock
//     that every apply holds, so no write of the old term lands there after
//     its snapshot was taken.
//
// Without an Elector (a static leader, unit tests) every term is zero and
// none of this changes anything.

const (
	// termShift is where a leader-follower version's term begins.
	termShift = 40
	// maxTermCounter bounds the counter part of a leader-follower version
	// accepted from a peer: 2^39 writes per term leaves as many again before
	// the counter could spill into the next term.
	maxTermCounter = 1 << 39
	// maxTerm bounds the term part of a version (the top bit stays clear).
	maxTerm = 1<<(64-termShift-1) - 1
)

// Elector is what a leader-follower engine needs from the election (package
// consensus implements it through package node). Calls must be cheap and
// safe for concurrent use: Term is read on every apply.
type Elector interface {
	// Leadership is what this node knows now.
	Leadership() Leadership
	// Term is the election's current term on this node.
	Term() uint64
	// ProposeQuorum commits a change of W and R to the cluster's log; only
	// the leader may (others return an error matching ErrNotLeader).
	ProposeQuorum(ctx context.Context, w, r int) (index uint64, err error)
	// Barrier returns once this node (the leader) has applied every entry
	// committed before the call, so its W and R are the cluster's.
	Barrier(ctx context.Context) error
}

// Leadership is one view of who leads.
type Leadership struct {
	Leader string // the leader's member ID; "" while none is known
	Term   uint64 // the election term of that view
	Self   bool   // this node leads
}

// versionTerm is the term a version was issued in (zero in leaderless mode,
// whose low bits are the node index instead).
func (c *core) versionTerm(v uint64) uint64 {
	if c.cfg.Mode == Leaderless {
		return 0
	}
	return v >> termShift
}

// termFloor is the highest term this node knows: fresh writes of older
// terms are refused.
func (c *core) termFloor() uint64 {
	t := c.term.Load()
	if c.cfg.Elector != nil {
		t = max(t, c.cfg.Elector.Term())
	}
	return t
}

// observeTerm raises the highest term seen to t. It takes the fence lock
// for writing, so it returns only once every apply that passed the fence
// under an older term has finished; applies after it see t.
func (c *core) observeTerm(t uint64) {
	if t <= c.term.Load() {
		return
	}
	c.fence.Lock()
	if t > c.term.Load() {
		c.term.Store(t)
	}
	c.fence.Unlock()
}

// observeUpdateTerms raises the term seen to the highest term the updates
// carry or were issued in.
func (c *core) observeUpdateTerms(us []Update) {
	var hi uint64
	for _, u := range us {
		hi = max(hi, u.Term, c.versionTerm(u.Version))
	}
	c.observeTerm(hi)
}

// checkFence refuses the fresh writes among us whose term is older than
// the floor; the fence lock is held for reading.
func (c *core) checkFence(us []Update) error {
	floor := uint64(0)
	for _, u := range us {
		if u.Term == 0 {
			continue
		}
		if floor == 0 {
			floor = c.termFloor()
		}
		if u.Term < floor {
			c.met.staleTerm.Inc()
			return &StaleTermError{Term: u.Term, Current: floor}
		}
		if vt := c.versionTerm(u.Version); vt != u.Term {
			return fmt.Errorf("%w: update of %q carries term %d but its version %d was issued in term %d", ErrInvalid, u.Key, u.Term, u.Version, vt)
		}
	}
	return nil
}

// leaderPhase is where a leader-follower node stands.
type leaderPhase int

const (
	following  leaderPhase = iota // another node leads, or none is known
	catchingUp                    // elected, copying state before it accepts writes
	leading                       // elected and caught up: accepts writes
)

// leaderState is a leader-follower node's view of the election, as the
// election last reported it (LeaderChanged), and the work that view
// started: a new leader's catch-up, or a follower's sync from its new
// leader.
type leaderState struct {
	mu     sync.Mutex
	view   Leadership
	phase  leaderPhase
	cancel context.CancelFunc // the running catch-up or sync
	// loss describes the last catch-up that could not reach N-W+1 nodes:
	// writes acknowledged before it may have been lost.
	loss string
}

// LeaderChanged tells a leader-follower engine that the election's view
// changed (package node calls it from the election's notifications, in
// order). A new leader starts copying the state it needs before it accepts
// writes; a follower copies its new leader's state once, so that it also
// holds every write acknowledged before the change. Leaderless engines
// ignore it.
func (e *Engine) LeaderChanged(v Leadership) {
	if l, ok := e.arch.(*leaderFollower); ok && l.cfg.Elector != nil {
		l.changed(v)
	}
}

func (l *leaderFollower) changed(v Leadership) {
	l.observeTerm(v.Term)
	st := &l.lead
	st.mu.Lock()
	defer st.mu.Unlock()
	if v == st.view || v.Term < st.view.Term {
		return // a repeat, or older than what is known (notifications can trail electedTerm)
	}
	if st.cancel != nil {
		st.cancel()
		st.cancel = nil
	}
	st.view = v
	st.phase = following
	ctx, cancel := context.WithCancel(l.bgCtx)
	switch {
	case v.Self:
		st.phase = catchingUp
		l.clock.Raise(v.Term << termShift)
		l.log.Info("elected leader: catching up before accepting writes", "term", v.Term)
		if !l.startJob(func() { l.leaderCatchUp(ctx, v.Term) }) {
			cancel()
			return
		}
	case v.Leader != "":
		l.log.Info("following a new leader", "leader", v.Leader, "term", v.Term)
		if !l.startJob(func() { l.followerSync(ctx, v) }) {
			cancel()
			return
		}
	default:
		l.log.Info("no leader known: writes are refused until one is elected", "term", v.Term)
	}
	st.cancel = cancel
}

// startJob runs fn in the background unless the engine is closing; Close
// waits for it.
func (c *core) startJob(fn func()) bool {
	c.closeMu.RLock()
	defer c.closeMu.RUnlock()
	if c.closing {
		return false
	}
	c.workers.Add(1)
	go func() {
		defer c.workers.Done()
		fn()
	}()
	return true
}

// leaderCatchUp copies the state of peers until, with this node, N-W+1
// nodes have been copied — a set that meets every write quorum of W, so it
// holds every acknowledged write — and then lets the node accept writes.
// Each copy first fences its source at term. If the set cannot be reached
// within LeaderCatchUpWait (W=1 with the old leader dead needs every
// node), it proceeds anyway and reports that writes acknowledged before
// the election may have been lost: in the log, in Info (/health) and in
// kvdb_leader_catchup_incomplete_total.
func (l *leaderFollower) leaderCatchUp(ctx context.Context, term uint64) {
	start := time.Now()
	// The W that acknowledged writes were made with is the cluster's, in
	// the election's log: apply every committed entry first. If that cannot
	// be done in time, assume the weakest W (copy every node).
	w := 1
	bctx, bcancel := context.WithTimeout(ctx, l.cfg.LeaderCatchUpWait)
	if err := l.cfg.Elector.Barrier(bctx); err != nil {
		l.log.Warn("new leader could not apply the election's log in time: assuming W=1 for its catch-up", "term", term, "err", err)
	} else {
		w, _ = l.quorums()
	}
	bcancel()
	need := l.cfg.N() - w // peers to copy, besides this node
	copied, lastErr := l.copyPeers(ctx, term, need)
	if ctx.Err() != nil {
		return // deposed or closing: the next view takes over
	}
	st := &l.lead
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.view.Term != term || !st.view.Self {
		return
	}
	took := time.Since(start).Round(time.Millisecond)
	if copied < need {
		st.loss = fmt.Sprintf("term %d: the new leader copied %d of the %d nodes (itself included) that meet every write quorum of W=%d: the others did not answer within %v; writes acknowledged before the election may be lost (last error: %v)",
			term, 1+copied, need+1, w, l.cfg.LeaderCatchUpWait, lastErr)
		l.met.catchUpIncomplete.Inc()
		l.log.Error("leader catch-up incomplete: accepting writes anyway; writes acknowledged before the election may have been lost",
			"term", term, "copied", 1+copied, "needed", need+1, "w", w, "waited", took, "err", lastErr)
	} else {
		st.loss = ""
		l.log.Info("leader caught up: accepting writes", "term", term, "copied", 1+copied, "needed", need+1, "w", w, "took", took)
	}
	st.phase = leading
}

// copyPeers copies the state of every peer (fencing each at term) until
// need of them are copied. Peers that have not answered within
// LeaderCatchUpWait are given up on, unless the copies still streaming
// from peers that did answer can make up need: those are waited for (a
// live node with much data takes longer to copy than to answer; only one
// that does not answer at all is presumed dead). It returns the peers
// copied and the last error seen; the copies still running when it
// returns are cancelled and have ended.
func (l *leaderFollower) copyPeers(ctx context.Context, term uint64, need int) (int, error) {
	if need <= 0 {
		return 0, nil
	}
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer wg.Wait() // a copy cut short may be applying a batch: let it end
	defer cancel()
	type result struct {
		i   int
		err error
	}
	results := make(chan result, len(l.links))
	answered := make([]atomic.Bool, len(l.links)) // streaming now
	report := func(r result) bool {
		select {
		case results <- r:
			return true
		case <-ctx.Done():
			return false
		}
	}
	for i, k := range l.links {
		wg.Go(func() {
			backoff := minBackoff
			for {
				_, err := l.copyFromEach(ctx, k, term, func(Update) { answered[i].Store(true) })
				if err == nil {
					report(result{i, nil})
					return
				}
				answered[i].Store(false)
				if !report(result{i, err}) || !ctxtime.Sleep(ctx, backoff) {
					return // a failed attempt is reported; it tries again
				}
				backoff = min(2*backoff, 4*minBackoff)
			}
		})
	}
	done := make([]bool, len(l.links))
	copied := 0
	var lastErr error
	deadline := time.NewTimer(l.cfg.LeaderCatchUpWait)
	defer deadline.Stop()
	var recheck <-chan time.Time // after the deadline: is waiting still worth it?
	for copied < need {
		select {
		case r := <-results:
			if r.err != nil {
				lastErr = r.err
				continue
			}
			done[r.i] = true
			copied++
		case <-deadline.C:
			t := time.NewTicker(minBackoff)
			defer t.Stop()
			recheck = t.C
		case <-recheck:
		case <-ctx.Done():
			return copied, ctx.Err()
		}
		if recheck != nil {
			streaming := 0
			for i := range l.links {
				if !done[i] && answered[i].Load() {
					streaming++
				}
			}
			if copied+streaming < need {
				return copied, lastErr
			}
		}
	}
	return copied, lastErr
}

// followerSync reconciles this follower with its new leader once the
// leader has caught up. It copies the leader's state, so that it holds
// every write acknowledged before the change even if the old leader's
// replication to it was cut short (and refused as stale once the new term
// was known). Then it sends the leader, as repairs, every entry it holds
// that the leader lacks or holds older — writes of the old leader that
// reached some followers but neither the new leader nor the copies it made
// (never acknowledged, or acknowledged with a W below the configured one)
// — and the leader passes them on to every follower (forwardRepairs): so
// the replicas converge instead of disagreeing on them forever. It retries
// until it succeeds or the view changes.
func (l *leaderFollower) followerSync(ctx context.Context, v Leadership) {
	k := l.linkTo(v.Leader)
	if k == nil {
		return
	}
	backoff := minBackoff
	for {
		pulled, pushed, err := l.syncWith(ctx, k, v.Term)
		if err == nil {
			l.log.Info("synced with the new leader", "leader", v.Leader, "term", v.Term, "copied", pulled, "sent", pushed)
			return
		}
		if !ctxtime.Sleep(ctx, backoff) {
			return
		}
		backoff = min(2*backoff, maxBackoff)
	}
}

// syncWith copies k's state (fencing it at term), noting the version of
// every key it holds, then hints to k, as repairs, the entries this node
// holds newer. It returns the entries copied and sent.
func (l *leaderFollower) syncWith(ctx context.Context, k *link, term uint64) (pulled, pushed int, err error) {
	theirs := map[string]uint64{}
	pulled, err = l.copyFromEach(ctx, k, term, func(u Update) { theirs[u.Key] = u.Version })
	if err != nil {
		return pulled, 0, err
	}
	var mine []Update
	_ = l.store.Snapshot(func(key string, e store.Entry) error {
		if e.Version > theirs[key] {
			mine = append(mine, repairOf(key, e))
		}
		return nil
	})
	for _, u := range mine {
		l.hintFor(k, u, true)
	}
	return pulled, len(mine), nil
}

// forwardRepairs passes repairs this node applied as the leader on to
// every follower (as repairs: they carry versions that already exist). A
// follower reconciling with a new leader sends it what only it holds
// (syncWith); this spreads that to the rest. Repairs of other kinds (a
// follower's read repair of the leader) are forwarded too, which costs a
// message per follower and changes nothing where they already hold it.
func (l *leaderFollower) forwardRepairs(us []Update) {
	var repairs []Update
	for _, u := range us {
		if u.Term == 0 {
			repairs = append(repairs, u)
		}
	}
	if len(repairs) == 0 {
		return
	}
	st := &l.lead
	st.mu.Lock()
	leads := st.view.Self && st.phase == leading
	st.mu.Unlock()
	if !leads {
		return
	}
	for _, k := range l.links {
		for _, u := range repairs {
			l.hintFor(k, u, true)
		}
	}
}

// linkTo returns the link to member id (nil for this node or a stranger).
func (c *core) linkTo(id string) *link {
	for _, k := range c.links {
		if k.ID() == id {
			return k
		}
	}
	return nil
}

// leaderInfo fills the election fields of inf.
func (l *leaderFollower) leaderInfo(inf *Info) {
	st := &l.lead
	st.mu.Lock()
	defer st.mu.Unlock()
	s := l.cfg.Elector.Leadership()
	inf.Leader, inf.Term = s.Leader, s.Term
	inf.PossibleLoss = st.loss
	switch {
	case s.Self && st.view.Self && st.view.Term == s.Term && st.phase == leading:
		inf.Role = "leader"
	case s.Self:
		inf.Role = "leader"
		inf.CatchingUp = true
	default:
		inf.Role = "follower"
	}
}

// electedTerm returns the term this node may issue versions in now, or
// the error a client gets instead: a redirect to the leader, or 503 while
// no leader is known or this one is still catching up.
func (l *leaderFollower) electedTerm() (uint64, error) {
	s := l.cfg.Elector.Leadership()
	if s.Self {
		st := &l.lead
		st.mu.Lock()
		view, phase := st.view, st.phase
		st.mu.Unlock()
		if !view.Self || view.Term != s.Term {
			// Elected in a term the election has not reported yet: start
			// its catch-up now rather than wait for the notification.
			l.changed(s)
			return 0, fmt.Errorf("%w (term %d)", ErrLeaderCatchingUp, s.Term)
		}
		if phase != leading {
			return 0, fmt.Errorf("%w (term %d)", ErrLeaderCatchingUp, s.Term)
		}
		if f := l.termFloor(); f > view.Term {
			return 0, fmt.Errorf("%w: this node led term %d but term %d has begun", ErrLeaderUnavailable, view.Term, f)
		}
		return view.Term, nil
	}
	if s.Leader == "" || s.Leader == l.cfg.Self {
		return 0, fmt.Errorf("%w: no leader elected yet (term %d); retry shortly", ErrLeaderUnavailable, s.Term)
	}
	return 0, l.notLeader(s.Leader)
}

// Snapshot is core.Snapshot, except that a newly elected leader refuses
// (ErrNotReady) until it has caught up: a follower syncing from it must
// get the state that holds every acknowledged write.
func (e *Engine) Snapshot(term uint64, fn func(Update) error) error {
	if l, ok := e.arch.(*leaderFollower); ok && l.cfg.Elector != nil {
		l.observeTerm(term) // fenced even when it refuses
		st := &l.lead
		st.mu.Lock()
		catching := st.phase == catchingUp
		st.mu.Unlock()
		if catching {
			return fmt.Errorf("%w: elected leader still catching up", ErrNotReady)
		}
	}
	return e.core.Snapshot(term, fn)
}
