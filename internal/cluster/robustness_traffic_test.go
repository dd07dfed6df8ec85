package cluster_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	kvclient "github.com/kvdb/kvdb/client"
	"github.com/kvdb/kvdb/internal/cluster"
	"github.com/kvdb/kvdb/internal/ctxtime"
	"github.com/kvdb/kvdb/internal/history"
)

// This file holds the robustness test's traffic (concurrent clients that
// record a history) and its failpoints (transport faults, node restarts
// and leader kills), in the manner of etcd's tests/robustness.

// usClock gives microsecond timestamps on one monotonic clock: t0's wall
// time plus the monotonic time since t0, as the load tester records them.
type usClock struct{ t0 time.Time }

func (c usClock) now() int64 { return c.t0.UnixMicro() + time.Since(c.t0).Microseconds() }

// traffic is what the clients of one run share.
type traffic struct {
	kv             *kvclient.Client // one attempt per call, 307s returned (not followed)
	urls           []string
	leaderFollower bool
	// leader is the leader's URL when the traffic starts (leader-follower):
	// what every client knows at first; each then learns on its own.
	leader      string
	leaderReads bool // reads go to the leader the client last learned
	keys        []string
	writeRatio  float64
	deleteRatio float64       // of the writes, the share that are deletes
	maxOps      int           // per client
	timeout     time.Duration // per request, client side
	pace        time.Duration // at least this long between one client's operations (0: none)
	clock       usClock
}

// trafficClient is one client's view: the leader it last learned (from a
// 307's Location or a write the leader acknowledged), and whether its
// last request there failed (it then sends its next write to a random
// node, which redirects it to whoever leads now).
type trafficClient struct {
	leader  string
	suspect bool
}

// runClient is one client: a closed loop of random gets, sets and deletes, bounded
// by count and by stop (checked between operations: an operation under
// way finishes, within its timeout). It never has two operations in
// flight, so porcupine may treat it as one process. Values are unique:
// "c<id>-<n>".
func (tr *traffic) runClient(stop context.Context, id int, rng *rand.Rand) []history.Op {
	ctx := context.Background()
	var ops []history.Op
	cl := &trafficClient{leader: tr.leader}
	failures := 0 // in a row
	for n := 0; n < tr.maxOps && stop.Err() == nil; n++ {
		began := time.Now()
		key := tr.keys[rng.IntN(len(tr.keys))]
		var op history.Op
		if rng.Float64() < tr.writeRatio {
			value, del := fmt.Sprintf("c%d-%d", id, n), rng.Float64() < tr.deleteRatio
			if del {
				value = ""
			}
			op = tr.set(ctx, cl, rng, key, value, del)
		} else {
			op = tr.get(ctx, cl, rng, key)
		}
		op.Client, op.Seq = id, int64(id)*1_000_000+int64(n)
		ops = append(ops, op)
		pause := tr.pace - time.Since(began)
		if op.OK() {
			failures = 0
		} else {
			// After a failure, back off (5 ms doubling to 160 ms, jittered),
			// as a real client would: a node that fails fast (a suspected
			// peer, a refused connection) would otherwise turn the run into
			// hundreds of unknown-outcome writes, which slow porcupine down
			// without testing anything more.
			backoff := time.Duration(5<<min(failures, 5)) * time.Millisecond
			failures++
			pause = max(pause, backoff/2+rand.N(backoff/2+1))
		}
		if pause > 0 {
			t := time.NewTimer(pause)
			select {
			case <-stop.Done():
			case <-t.C:
			}
			t.Stop()
		}
	}
	return ops
}

// answer is one request's outcome, as the history records it.
type answer struct {
	status   int
	version  uint64
	value    string
	node     string // the node id that answered (success)
	location string // a 307's Location
	err      string // "code=<code> <text>" for an error answer; a transport error prefixed "timeout: " or "network: "
}

// callAnswer turns a failed client call's error into an answer.
func callAnswer(ctx context.Context, err error) answer {
	e, ok := errors.AsType[*kvclient.Error](err)
	if !ok {
		if errors.Is(err, context.DeadlineExceeded) || errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return answer{err: "timeout: " + err.Error()}
		}
		if op, ok := errors.AsType[*net.OpError](err); ok && op.Op == "dial" {
			return answer{err: notSent + err.Error()}
		}
		return answer{err: "network: " + err.Error()}
	}
	a := answer{status: e.Status, location: e.Location, err: e.Message}
	if e.Code != "" {
		a.err = "code=" + e.Code + " " + e.Message
	}
	if a.err == "" {
		a.err = http.StatusText(e.Status)
	}
	return a
}

// notSent prefixes the error of a request that could not connect (a
// killed node refuses connections): it was never sent.
const notSent = "network: not sent: "

// errorCode is the server's machine code recorded in op.Error ("" if none).
func errorCode(op history.Op) string {
	rest, ok := strings.CutPrefix(op.Error, "code=")
	if !ok {
		return ""
	}
	code, _, _ := strings.Cut(rest, " ")
	return code
}

// definitelyFailed reports a set that applied nothing: one that could not
// connect (notSent), or one the node refused before applying anything —
// 503 leader_unavailable (no leader known, or a deposed leader: refused
// before the local apply), leader_catching_up (a new leader before it
// accepts writes) and catching_up (a node still starting).
// history.Op.Outcome counts every 5xx and every lost answer as unknown
// outcome; the robustness checks count these as failed — leaving them out
// of porcupine's history, so a read that returned one of their values is a
// violation — and everything else at 5xx (quorum_not_reached, timeout,
// shutting_down) stays unknown: those may have been applied somewhere.
func definitelyFailed(op history.Op) bool {
	if op.IsWrite() && op.Status == 0 && strings.HasPrefix(op.Error, notSent) {
		return true
	}
	if !op.IsWrite() || op.Status != http.StatusServiceUnavailable {
		return false
	}
	switch errorCode(op) {
	case kvclient.CodeLeaderUnavailable, kvclient.CodeLeaderCatchingUp, kvclient.CodeNotReady:
		return true
	}
	return false
}

// outcome is op.Outcome with the definitely failed 503s counted as failed.
func outcome(op history.Op) history.WriteOutcome {
	if definitelyFailed(op) {
		return history.WriteFailed
	}
	return op.Outcome()
}

// baseURL is the scheme and host of a Location ("" if it has none).
func baseURL(loc string) string {
	u, err := url.Parse(loc)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return ""
	}
	return u.Scheme + "://" + u.Host
}

func (tr *traffic) setOnce(ctx context.Context, target, key, value string, del bool) answer {
	if del {
		res, err := tr.kv.Delete(ctx, key, kvclient.At(target), kvclient.NoRedirect())
		if err != nil {
			return callAnswer(ctx, err)
		}
		return answer{status: http.StatusOK, version: res.Version, node: res.Node}
	}
	res, err := tr.kv.Set(ctx, key, value, kvclient.At(target))
	if err != nil {
		return callAnswer(ctx, err)
	}
	return answer{status: http.StatusCreated, version: res.Version, node: res.Node}
}

// set writes (or, with del, deletes) through a random node, or (leader-follower, three times in
// four) the leader the client last learned. A 307 is followed once, to its
// Location, and teaches the client the leader; an operation whose interval
// covers both requests (the follower applied nothing, the leader decides).
func (tr *traffic) set(ctx context.Context, cl *trafficClient, rng *rand.Rand, key, value string, del bool) history.Op {
	target := tr.urls[rng.IntN(len(tr.urls))]
	if tr.leaderFollower && cl.leader != "" && !cl.suspect && rng.IntN(4) != 0 {
		target = cl.leader
	}
	op := history.Op{Op: history.OpSet, Key: key, Value: value, Node: target}
	if del {
		op.Op = history.OpDel
	}
	ack := op.AckStatus()
	op.SentUS = tr.clock.now()
	op.IntendedUS = op.SentUS
	rctx, cancel := context.WithTimeout(ctx, tr.timeout)
	r := tr.setOnce(rctx, target, key, value, del)
	if r.status == http.StatusTemporaryRedirect && tr.leaderFollower {
		if next := baseURL(r.location); next != "" {
			cl.leader, cl.suspect = next, false
			op.Node = next
			r = tr.setOnce(rctx, next, key, value, del)
			if r.status == http.StatusTemporaryRedirect {
				// The leader changed in between: nothing was applied
				// (3xx counts as failed); the next write goes there.
				if again := baseURL(r.location); again != "" {
					cl.leader = again
				}
			}
		}
	}
	cancel()
	op.DoneUS = tr.clock.now()
	op.Status, op.Version, op.ServedBy, op.Error = r.status, r.version, r.node, r.err
	if tr.leaderFollower {
		switch {
		case r.status == ack:
			cl.leader, cl.suspect = op.Node, false // only the leader acknowledges
		case op.Node == cl.leader && (r.status == 0 || errorCode(op) == kvclient.CodeLeaderUnavailable):
			cl.suspect = true // dead or deposed: ask a random node next time
		}
	}
	switch {
	case r.status == 0, r.status == ack, r.status >= 500:
	case r.status == http.StatusBadRequest, r.status == http.StatusRequestEntityTooLarge:
	case r.status == http.StatusTemporaryRedirect && tr.leaderFollower:
		// A second 307 (the leader changed while the write was
		// redirected): applied nowhere, failed.
	default:
		// Anything else (a 307 in leaderless mode, another 4xx such as a
		// 409 stale_term, which is node-to-node only) may still have been
		// applied somewhere: keep it as unknown outcome (history treats
		// status 0 so) and let the test report it.
		op.Error = fmt.Sprintf("unexpected status %d: %s", r.status, r.err)
		op.Status = 0
	}
	return op
}

// get reads through a random node, or (leaderReads) the leader the client
// last learned.
func (tr *traffic) get(ctx context.Context, cl *trafficClient, rng *rand.Rand, key string) history.Op {
	target := tr.urls[rng.IntN(len(tr.urls))]
	if tr.leaderReads && cl.leader != "" {
		target = cl.leader
	}
	op := history.Op{Op: history.OpGet, Key: key, Node: target}
	op.SentUS = tr.clock.now()
	op.IntendedUS = op.SentUS
	rctx, cancel := context.WithTimeout(ctx, tr.timeout)
	res, err := tr.kv.Get(rctx, key, kvclient.At(target))
	r := answer{status: http.StatusOK, value: res.Value, version: res.Version, node: res.Node}
	switch {
	case errors.Is(err, kvclient.ErrNotFound):
		r = answer{status: http.StatusNotFound}
	case err != nil:
		r = callAnswer(rctx, err)
	}
	cancel()
	op.DoneUS = tr.clock.now()
	op.Status, op.Version, op.ServedBy, op.Error = r.status, r.version, r.node, r.err
	if r.status == http.StatusOK {
		op.Value = r.value
	}
	return op
}

// faultKind is a failpoint: what goes wrong, to one node (or one link),
// during the middle of the traffic. Never more than a minority at once.
type faultKind string

const (
	faultNone       faultKind = "none"
	faultDrop       faultKind = "drop"        // messages to one node are lost with some probability
	faultDelay      faultKind = "delay"       // messages to one node wait (sometimes past PeerTimeout)
	faultIsolate    faultKind = "isolate"     // one node cut off from every peer (clients still reach it)
	faultPartition  faultKind = "partition"   // the link between two nodes cut both ways
	faultRestart    faultKind = "restart"     // a node killed, then restarted empty
	faultKillLeader faultKind = "kill-leader" // whichever node leads at that moment killed, then restarted empty
)

// faultKinds in the order consecutive seeds cycle through them (runRobustness
// shifts the start per config).
var faultKinds = []faultKind{faultNone, faultDrop, faultDelay, faultIsolate, faultKillLeader, faultPartition, faultRestart}

// failpoint is one fault with its parameters and window, chosen by the seed.
//
// In leader-follower mode a fault hits the leader (the node that leads
// when the fault begins, resolved then) or a follower (likewise resolved
// then), half the time each; kill-leader always hits the leader. Faults
// that hit the leader depose it (isolate, restart, kill-leader) or not
// (drop, delay, partition of one link: Delay and Drop do not touch raft's
// traffic, the leader keeps a majority across one cut link, and pre-vote
// keeps a cut-off follower from raising the term). In leaderless mode a
// fault hits a random node.
type failpoint struct {
	kind       faultKind
	node       int           // leaderless: the node affected; leader-follower: which follower (node mod n-1 after the leader)
	leader     bool          // leader-follower: the node affected is the leader of the moment
	follower   bool          // leader-follower: the node affected is a follower of the moment
	peerOffset int           // partition: the other end is node+1+peerOffset (mod n)
	drop       float64       // drop probability
	delay      time.Duration // delay per message
	from, to   time.Duration // window, from the start of the traffic
	// repeat (kill-leader only), if positive: from the start of the
	// window on, kill whichever node leads, wait until another leads,
	// restart the killed one, wait until every node is ready, and do it
	// again, repeat times, with gap of traffic after each step; to is
	// ignored.
	repeat int
	gap    time.Duration
}

func (f failpoint) String() string {
	who := fmt.Sprintf("node%d", f.node+1)
	if f.leader {
		who = "the leader"
	}
	if f.follower {
		who = "a follower"
	}
	switch f.kind {
	case faultNone:
		return "none"
	case faultDrop:
		return fmt.Sprintf("drop %.0f%% to %s", 100*f.drop, who)
	case faultDelay:
		return fmt.Sprintf("delay %v to %s", f.delay, who)
	case faultPartition:
		return fmt.Sprintf("partition %s|+%d", who, f.peerOffset+1)
	case faultKillLeader:
		if f.repeat > 0 {
			return fmt.Sprintf("kill-leader x%d (gap %v)", f.repeat, f.gap)
		}
		return "kill-leader"
	}
	return fmt.Sprintf("%s %s", f.kind, who)
}

// pickFailpoint draws the fault's target and window.
func pickFailpoint(rng *rand.Rand, kind faultKind, n int, leaderFollower bool, dur, peerTimeout time.Duration) failpoint {
	f := failpoint{kind: kind, node: rng.IntN(n), peerOffset: rng.IntN(n - 1)}
	toLeader := rng.IntN(2) == 0
	switch {
	case !leaderFollower && kind == faultKillLeader:
		f.kind = faultRestart // no leader: a node
	case !leaderFollower:
	case kind == faultKillLeader, toLeader:
		f.leader = true
	default:
		f.follower = true
	}
	f.drop = 0.1 + 0.2*rng.Float64()
	f.delay = time.Duration(float64(20*time.Millisecond) + rng.Float64()*float64(peerTimeout)*1.5).Round(time.Millisecond)
	f.from = time.Duration(float64(dur) * (0.1 + 0.2*rng.Float64()))
	f.to = f.from + time.Duration(float64(dur)*(0.3+0.3*rng.Float64()))
	return f
}

// deposes reports whether the failpoint can depose the leader (see
// failpoint).
func (f failpoint) deposes() bool {
	switch f.kind {
	case faultKillLeader:
		return true
	case faultIsolate, faultRestart:
		return f.leader
	}
	return false
}

// kills reports whether the failpoint can kill the leader.
func (f failpoint) kills() bool {
	return f.kind == faultKillLeader || (f.kind == faultRestart && f.leader)
}

// faultEvent is one step of an injected fault, for the run's log.
type faultEvent struct {
	at   time.Duration // since the start of the traffic
	what string
}

func (e faultEvent) String() string {
	return fmt.Sprintf("%v %s", e.at.Round(time.Millisecond), e.what)
}

// faultLog records a fault's steps.
type faultLog struct {
	t0     time.Time
	events []faultEvent
}

func (l *faultLog) add(format string, args ...any) {
	l.events = append(l.events, faultEvent{time.Since(l.t0), fmt.Sprintf(format, args...)})
}

func (l *faultLog) String() string {
	parts := make([]string, len(l.events))
	for i, e := range l.events {
		parts[i] = e.String()
	}
	return strings.Join(parts, "; ")
}

// faultWait bounds each wait of a failpoint for the cluster (a leader, a
// restarted node's catch-up): a hang check, far above what they take.
const faultWait = 30 * time.Second

// inject runs the failpoint against c during the traffic, which started
// at t0, through faults, which name the nodes by names: it applies the
// fault at from, and heals it (or restarts the node and waits until every
// node is ready and a leader accepts writes) at to. It runs its whole
// schedule whatever the traffic does (the traffic ends after it), every
// wait bounded; it returns the first error.
func (f failpoint) inject(c *cluster.Cluster, faults faultInjector, names []string, t0 time.Time, log *faultLog) error {
	if f.kind == faultNone {
		return nil
	}
	ctx := context.Background()
	waitUntil(ctx, t0.Add(f.from))
	node := f.node
	if f.leader || f.follower {
		i, err := c.WaitLeader(ctx, faultWait)
		if err != nil {
			return err
		}
		node = i
		if f.follower {
			node = (i + 1 + f.node%(len(names)-1)) % len(names)
		}
	}
	if f.repeat > 0 {
		return f.killLeaderRepeatedly(c, log)
	}
	peer := (node + 1 + f.peerOffset) % len(names)
	switch f.kind {
	case faultDrop:
		faults.Drop(names[node], f.drop)
	case faultDelay:
		faults.Delay(names[node], f.delay)
	case faultIsolate:
		faults.Isolate(names[node])
	case faultPartition:
		faults.Partition(names[node], names[peer])
	case faultRestart, faultKillLeader:
		if err := c.Stop(node); err != nil {
			return fmt.Errorf("stop node%d: %w", node+1, err)
		}
	}
	if f.kind == faultPartition {
		log.add("partition node%d|node%d", node+1, peer+1)
	} else {
		log.add("%s node%d", f.kind, node+1)
	}
	waitUntil(ctx, t0.Add(f.to))
	if f.leader && (f.kind == faultIsolate || f.kind == faultKillLeader) {
		// A failover, not only a fault: the window lasts until another
		// node leads and accepts writes (W=1: after its catch-up wait).
		if err := waitOtherLeader(ctx, c, node); err != nil {
			return fmt.Errorf("%s node%d: %w", f.kind, node+1, err)
		}
		log.add("node%d leads", c.Leader()+1)
	}
	faults.Heal()
	if f.kind == faultRestart || f.kind == faultKillLeader {
		if err := c.Restart(ctx, node); err != nil {
			return fmt.Errorf("restart node%d: %w", node+1, err)
		}
		log.add("restarted node%d", node+1)
		if err := c.WaitReady(ctx, faultWait); err != nil {
			return fmt.Errorf("node%d after restart: %w", node+1, err)
		}
		if l := c.Leader(); l >= 0 {
			log.add("all ready, node%d leads", l+1)
		} else {
			log.add("all ready")
		}
	} else {
		log.add("healed")
	}
	return nil
}

// waitOtherLeader waits (bounded) until a node other than old leads and
// accepts writes.
func waitOtherLeader(ctx context.Context, c *cluster.Cluster, old int) error {
	deadline := time.Now().Add(faultWait)
	for {
		if l := c.Leader(); l >= 0 && l != old {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no node but node%d leads after %v", old+1, faultWait)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// killLeaderRepeatedly is kill-leader's repeat mode (see failpoint.repeat).
func (f failpoint) killLeaderRepeatedly(c *cluster.Cluster, log *faultLog) error {
	ctx := context.Background()
	gap := func() { waitUntil(ctx, time.Now().Add(f.gap)) }
	for k := range f.repeat {
		old, err := c.WaitLeader(ctx, faultWait)
		if err != nil {
			return fmt.Errorf("kill %d: %w", k+1, err)
		}
		if err := c.Stop(old); err != nil {
			return fmt.Errorf("kill %d: stop node%d: %w", k+1, old+1, err)
		}
		log.add("killed leader node%d", old+1)
		next, err := c.WaitLeader(ctx, faultWait)
		if err != nil {
			return fmt.Errorf("kill %d: after killing node%d: %w", k+1, old+1, err)
		}
		log.add("node%d leads", next+1)
		gap()
		if err := c.Restart(ctx, old); err != nil {
			return fmt.Errorf("kill %d: restart node%d: %w", k+1, old+1, err)
		}
		if err := c.WaitReady(ctx, faultWait); err != nil {
			return fmt.Errorf("kill %d: node%d after restart: %w", k+1, old+1, err)
		}
		log.add("node%d restarted and caught up", old+1)
		gap()
	}
	return nil
}

// waitUntil waits for the deadline t (a scheduled instant of the fault
// plan, not a guess at a condition); false if ctx ended first.
func waitUntil(ctx context.Context, t time.Time) bool {
	return ctxtime.Sleep(ctx, time.Until(t))
}

// copyOf is a node's answer for a key: absent, or a value and version.
type copyOf struct {
	Status  int
	Value   string
	Version uint64
	Error   string
}

func (c copyOf) String() string {
	if c.Status == http.StatusNotFound {
		return "absent"
	}
	if c.Status != http.StatusOK {
		return fmt.Sprintf("status %d (%s)", c.Status, c.Error)
	}
	return fmt.Sprintf("%q v%d", c.Value, c.Version)
}

// readKey reads key at the node at base: its own copy (local) or with
// R=r (0: the node's R). An answer is a copy (404: absent); only a
// failure to get one is an error.
func readKey(ctx context.Context, kv *kvclient.Client, base string, local bool, key string, r int) (copyOf, error) {
	read, opts := kv.Get, []kvclient.Option{kvclient.At(base)}
	if local {
		read = kv.LocalRead
	}
	if r > 0 {
		opts = append(opts, kvclient.WithR(r))
	}
	res, err := read(ctx, key, opts...)
	if e, ok := errors.AsType[*kvclient.Error](err); ok && e.Code != kvclient.CodeBadResponse {
		return copyOf{Status: e.Status, Error: e.Message}, nil
	}
	if err != nil {
		return copyOf{}, err
	}
	return copyOf{Status: http.StatusOK, Value: res.Value, Version: res.Version}, nil
}

// drained reports whether every node is ready and has no background
// replication or hints left, with a description of the first that has.
func drained(ctx context.Context, kv *kvclient.Client, urls []string) (bool, string) {
	for _, u := range urls {
		h, err := kv.Health(ctx, kvclient.At(u))
		if err != nil && !(errors.Is(err, kvclient.ErrNotReady) && h.Status != "") {
			return false, fmt.Sprintf("%s/health: %v", u, err)
		}
		if err != nil || h.Pending != 0 || h.Hints != 0 {
			return false, fmt.Sprintf("%s: status %d %q, pending_replication %d, hints %d", u, max(kvclient.StatusOf(err), http.StatusOK), h.Status, h.Pending, h.Hints)
		}
	}
	return true, ""
}

// collect runs every client to completion and returns their operations.
func collect(clients int, run func(id int) []history.Op) []history.Op {
	var mu sync.Mutex
	var all []history.Op
	var wg sync.WaitGroup
	for id := range clients {
		wg.Go(func() {
			ops := run(id)
			mu.Lock()
			all = append(all, ops...)
			mu.Unlock()
		})
	}
	wg.Wait()
	return all
}

// summarize counts a history's outcomes for the run's log line.
func summarize(ops []history.Op) string {
	var acked, unknown, failed, reads, readFail int
	statuses := map[string]int{}
	for _, op := range ops {
		if op.IsWrite() {
			switch outcome(op) {
			case history.WriteAcked:
				acked++
			case history.WriteUnknown:
				unknown++
			default:
				failed++
			}
		} else if op.OK() {
			reads++
		} else {
			readFail++
		}
		if c := op.ErrorClass(); c != "" {
			if code := errorCode(op); code != "" {
				c += "/" + code
			}
			statuses[op.Op+":"+c]++
		}
	}
	var errs []string
	for k, v := range statuses {
		errs = append(errs, fmt.Sprintf("%s=%d", k, v))
	}
	return fmt.Sprintf("writes acked=%d unknown=%d failed=%d, reads ok=%d failed=%d, errors {%s}",
		acked, unknown, failed, reads, readFail, strings.Join(slices.Sorted(slices.Values(errs)), " "))
}
