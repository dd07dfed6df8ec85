package cluster_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	kvclient "github.com/kvdb/kvdb/client"
	"github.com/kvdb/kvdb/internal/cluster"
	"github.com/kvdb/kvdb/internal/consensus"
	"github.com/kvdb/kvdb/internal/replication"
)

// Leader failover (issue 12): a leader-follower cluster elects its leader
// with raft; these tests kill, isolate and restart the leader under load
// and check what the issue promises:
//
//   - TestFailoverKillLeaderUnderLoad: a killed leader is replaced within
//     the default election timings, writes resume, and every acknowledged
//     write is readable from every survivor (W=3 and W=5);
//   - TestFailoverIsolatedLeader: a leader cut off from its peers stops
//     acknowledging (W=1) writes within its lease, before the majority's
//     new leader acknowledges any, and after healing steps down and
//     converges;
//   - TestFailoverRepeatedLeaderKills: five kills and restarts of the
//     leader in a row under concurrent load, the whole history checked by
//     porcupine (the robustness test's machinery);
//   - TestFailoverConfigDuringLeaderChange: a PUT /config racing a leader
//     kill is applied everywhere or nowhere;
//   - TestFailoverRestartedLeaderRejoins (over loopback HTTP, raft
//     included): the restarted old leader rejoins as a follower and
//     catches up.
//
// They use the default election timings (consensus.DefaultConfig: a new
// leader well within 2 s of the leader's death). Their time bounds are
// hang checks, far above what an election takes; the times themselves are
// logged, and measured over many trials by failover_measure_test.go.

// failoverBound bounds every wait of these tests for the cluster (an
// election, a catch-up, convergence): a hang check, not a speed assertion.
const failoverBound = 15 * time.Second

// startFailover starts a leader-follower cluster with the default
// election timings, its node-to-node traffic (raft's included) over the
// in-memory network (inmem) or loopback HTTP.
func startFailover(t *testing.T, preset string, inmem bool) (*cluster.Cluster, *cluster.Config) {
	t.Helper()
	cfg := cluster.Config{Preset: preset}
	cfg.Node.Election = consensus.DefaultConfig()
	if inmem {
		cfg.Network = newNetwork(t)
	}
	return start(t, cfg), &cfg
}

// ackedWrite is one write the cluster acknowledged (201).
type ackedWrite struct {
	key, value string
	version    uint64
	node       string // the node id that acknowledged it (the leader)
	sent, done time.Time
}

// writeLoad is a few clients writing distinct keys, each one request at a
// time with retries off, so that what was acknowledged is known exactly:
// a 201 is acknowledged, anything else is not (and, for a lost answer or a
// 5xx other than leader_unavailable/leader_catching_up, of unknown
// outcome: never checked). Each client writes through its own node,
// following a follower's 307 to the leader, and moves to the next node
// when its node cannot be reached.
type writeLoad struct {
	stop context.CancelFunc
	wg   sync.WaitGroup

	mu      sync.Mutex
	acked   []ackedWrite
	unknown int
	refused int // answered 503 leader_unavailable / leader_catching_up, or not sent
}

// startWriteLoad starts clients writers, client i writing keys
// "<prefix><i>-<n>" through urls[i mod len(urls)] first, at most one
// write every pace, with opts on every write.
func startWriteLoad(t *testing.T, urls []string, writers int, prefix string, pace time.Duration, opts ...kvclient.Option) *writeLoad {
	t.Helper()
	hc := cluster.Client()
	t.Cleanup(hc.CloseIdleConnections)
	kv, err := kvclient.New(kvclient.Config{HTTPClient: hc, Retry: kvclient.NoRetry()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	l := &writeLoad{stop: cancel}
	const maxWrites = 100_000 // per client: far above what a test's load lasts
	for i := range writers {
		l.wg.Go(func() {
			home := i
			for n := 0; n < maxWrites && ctx.Err() == nil; n++ {
				key, value := fmt.Sprintf("%s%d-%d", prefix, i, n), fmt.Sprintf("v%d-%d", i, n)
				rctx, rcancel := context.WithTimeout(context.Background(), 2*time.Second)
				sent := time.Now()
				res, err := kv.Set(rctx, key, value, append(opts, kvclient.At(urls[home%len(urls)]))...)
				rcancel()
				done := time.Now()
				l.mu.Lock()
				switch {
				case err == nil:
					l.acked = append(l.acked, ackedWrite{key: key, value: value, version: res.Version, node: res.Node, sent: sent, done: done})
				case errors.Is(err, kvclient.ErrLeaderUnavailable), errors.Is(err, kvclient.ErrNotReady), errors.Is(err, kvclient.ErrNotLeader):
					l.refused++
				case isDial(err):
					l.refused++
					home++ // the node is down: try the next one
				default:
					l.unknown++
				}
				l.mu.Unlock()
				pause := pace - time.Since(sent)
				if err != nil {
					pause = max(pause, 10*time.Millisecond)
				}
				if pause > 0 {
					t := time.NewTimer(pause)
					select {
					case <-ctx.Done():
					case <-t.C:
					}
					t.Stop()
				}
			}
		})
	}
	return l
}

// isDial reports an error of a request that could not connect.
func isDial(err error) bool {
	op, ok := errors.AsType[*net.OpError](err)
	return ok && op.Op == "dial"
}

// finish stops the clients and waits for them.
func (l *writeLoad) finish() {
	l.stop()
	l.wg.Wait()
}

// snapshot returns the acknowledged writes so far.
func (l *writeLoad) snapshot() []ackedWrite {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.acked)
}

// ackedAfter counts the writes acknowledged after t by a node other than
// notBy ("" for any).
func (l *writeLoad) ackedAfter(t time.Time, notBy string) int {
	n := 0
	for _, w := range l.snapshot() {
		if w.done.After(t) && w.node != notBy {
			n++
		}
	}
	return n
}

func (l *writeLoad) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return fmt.Sprintf("%d acknowledged, %d refused (nothing applied), %d of unknown outcome", len(l.acked), l.refused, l.unknown)
}

// waitCopies waits (bounded) until every node at urls holds every write in
// ws in its own copy (local read), and fails the test with the first write
// missing somewhere.
func waitCopies(t *testing.T, cl *client, urls []string, ws []ackedWrite, what string) {
	t.Helper()
	deadline := time.Now().Add(failoverBound)
	for _, w := range ws {
		for _, u := range urls {
			for {
				r := cl.localRead(u, w.key)
				if r.Status == http.StatusOK && r.Value == w.value {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("%s: acknowledged write %s=%q (v%d, by %s) missing at %s: status %d %q v%d",
						what, w.key, w.value, w.version, w.node, u, r.Status, r.Value, r.Version)
				}
				time.Sleep(5 * time.Millisecond)
			}
		}
	}
}

// divergence waits up to wait for every node at urls to hold every write
// in ws, and describes the writes that some node still lacks then.
func divergence(t *testing.T, cl *client, urls []string, ws []ackedWrite, wait time.Duration) []string {
	t.Helper()
	deadline := time.Now().Add(wait)
	pending := slices.Clone(ws)
	for {
		var missing []ackedWrite
		for _, w := range pending {
			for _, u := range urls {
				if r := cl.localRead(u, w.key); r.Status != http.StatusOK || r.Value != w.value {
					missing = append(missing, w)
					break
				}
			}
		}
		pending = missing
		if len(pending) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	var out []string
	for _, w := range pending {
		var at, not []string
		for i, u := range urls {
			if r := cl.localRead(u, w.key); r.Status == http.StatusOK && r.Value == w.value {
				at = append(at, fmt.Sprint("node", i+1))
			} else {
				not = append(not, fmt.Sprint("node", i+1))
			}
		}
		out = append(out, fmt.Sprintf("%s=%q (acknowledged by %s at v%d) held by %v, not by %v", w.key, w.value, w.node, w.version, at, not))
	}
	return out
}

// waitNewLeader waits (bounded) until a node other than old leads and
// accepts writes, and returns it and how long that took from since.
func waitNewLeader(t *testing.T, c *cluster.Cluster, old int, since time.Time) (int, time.Duration) {
	t.Helper()
	if err := waitOtherLeader(context.Background(), c, old); err != nil {
		t.Fatal(err)
	}
	return c.Leader(), time.Since(since)
}

// without returns s without its i-th element.
func without[T any](s []T, i int) []T {
	return append(slices.Clone(s[:i]), s[i+1:]...)
}

// Kill the leader under load: a new leader within the default timeouts,
// writes resume, and every acknowledged write is readable from every
// survivor — and from the old leader once it is restarted (empty) and has
// caught up. W=3: the new leader copies N-W+1 = 3 nodes before it accepts
// writes, which meets every write quorum. W=5: every acknowledged write is
// on every node; with a node down no write can reach W=5, so writes
// resume once the old leader is back.
func TestFailoverKillLeaderUnderLoad(t *testing.T) {
	for _, preset := range []string{"w3r3", "w5r1"} {
		t.Run(preset, func(t *testing.T) {
			t.Parallel()
			c, _ := startFailover(t, preset, true)
			cl := newClient(t)
			urls, names := c.URLs(), ids(c)
			old, err := c.WaitLeader(t.Context(), failoverBound)
			if err != nil {
				t.Fatal(err)
			}
			oldTerm := c.Nodes()[old].Info().Term
			load := startWriteLoad(t, urls, 4, "k", 2*time.Millisecond)
			defer load.finish()
			waitFor(t, failoverBound, "writes acknowledged before the kill", func() bool { return load.ackedAfter(time.Time{}, "") >= 100 })

			killed := time.Now()
			if err := c.Stop(old); err != nil {
				t.Fatal(err)
			}
			leader, took := waitNewLeader(t, c, old, killed)
			term := c.Nodes()[leader].Info().Term
			t.Logf("killed leader %s (term %d): %s leads in term %d, accepting writes %v after the kill", names[old], oldTerm, names[leader], term, took.Round(time.Millisecond))
			if term <= oldTerm {
				t.Fatalf("new leader's term %d is not above the old %d", term, oldTerm)
			}
			survivors := without(urls, old)
			if preset == "w3r3" {
				waitFor(t, failoverBound, "writes acknowledged by the new leader", func() bool { return load.ackedAfter(killed, names[old]) >= 50 })
				waitCopies(t, cl, survivors, load.snapshot(), "survivors, old leader down")
			} else {
				// W=5 cannot be reached with a node down; the survivors
				// already hold every acknowledged write.
				waitCopies(t, cl, survivors, load.snapshot(), "survivors, old leader down")
			}
			if err := c.Restart(t.Context(), old); err != nil {
				t.Fatal(err)
			}
			if err := c.WaitReady(t.Context(), failoverBound); err != nil {
				t.Fatal(err)
			}
			back := time.Now()
			waitFor(t, failoverBound, "writes acknowledged after the old leader's restart", func() bool { return load.ackedAfter(back, "") >= 50 })
			load.finish()
			t.Logf("load: %s", load)
			waitCopies(t, cl, urls, load.snapshot(), "every node, old leader restarted")
			if inf := c.Nodes()[old].Info(); inf.Role != "follower" {
				t.Fatalf("restarted old leader: role %q, want follower", inf.Role)
			}
		})
	}
}

// Partition the leader from the rest: the isolated leader stops
// acknowledging W=1 writes sent to it directly within its lease, and
// before the majority's new leader acknowledges any (no two leaders
// acknowledge at once); the majority elects; after healing the old leader
// steps down (a follower in the new term) and converges: its copy of every
// key equals the others', and every acknowledged write — including the
// ones it acknowledged alone while cut off — is readable (W=1: the new
// leader could not copy the isolated node, and says so in possible_loss).
func TestFailoverIsolatedLeader(t *testing.T) {
	t.Parallel()
	c, cfg := startFailover(t, "w1r5", true)
	network := cfg.Network
	cl := newClient(t)
	urls, names := c.URLs(), ids(c)
	old, err := c.WaitLeader(t.Context(), failoverBound)
	if err != nil {
		t.Fatal(err)
	}
	oldTerm := c.Nodes()[old].Info().Term
	// One client writes to the leader directly (no redirect: whatever it
	// acknowledges, it acknowledged), others through the other nodes.
	direct := startWriteLoad(t, urls[old:old+1], 2, "d", time.Millisecond, kvclient.NoRedirect())
	defer direct.finish()
	others := startWriteLoad(t, without(urls, old), 3, "o", 2*time.Millisecond)
	defer others.finish()
	waitFor(t, failoverBound, "writes acknowledged before the isolation", func() bool {
		return direct.ackedAfter(time.Time{}, "") >= 50 && others.ackedAfter(time.Time{}, "") >= 50
	})

	isolated := time.Now()
	network.Isolate(names[old])
	leader, took := waitNewLeader(t, c, old, isolated)
	t.Logf("isolated leader %s (term %d): %s leads and accepts writes %v later", names[old], oldTerm, names[leader], took.Round(time.Millisecond))
	waitFor(t, failoverBound, "writes acknowledged by the new leader", func() bool { return others.ackedAfter(isolated, names[old]) >= 20 })

	var lastOld, firstNew time.Time
	var lateOld []ackedWrite // acknowledged by the isolated leader after the isolation
	for _, w := range direct.snapshot() {
		if w.done.After(isolated) {
			lateOld = append(lateOld, w)
			lastOld = w.done
		}
	}
	for _, w := range others.snapshot() {
		if w.done.After(isolated) && w.node == names[leader] && (firstNew.IsZero() || w.done.Before(firstNew)) {
			firstNew = w.done
		}
	}
	window := time.Duration(0)
	if !lastOld.IsZero() {
		window = lastOld.Sub(isolated)
	}
	t.Logf("the isolated leader acknowledged %d W=1 writes for %v after the isolation (lease %v); the new leader's first acknowledgement came %v after it",
		len(lateOld), window.Round(time.Millisecond), consensus.DefaultConfig().LeaderLeaseTimeout, firstNew.Sub(isolated).Round(time.Millisecond))
	if !lastOld.IsZero() && !lastOld.Before(firstNew) {
		t.Fatalf("two leaders acknowledged at once: the isolated leader's last acknowledgement (%v) is not before the new leader's first (%v)",
			lastOld.Sub(isolated), firstNew.Sub(isolated))
	}
	// Raft steps a leader down once it has heard from no majority for its
	// lease, checked every lease: within about twice the lease. A hang
	// check with room for a loaded machine.
	if limit := 4 * consensus.DefaultConfig().LeaderLeaseTimeout; window > limit {
		t.Fatalf("the isolated leader kept acknowledging for %v, past %v", window, limit)
	}
	if inf := c.Nodes()[old].Info(); inf.Role == "leader" && !inf.CatchingUp {
		t.Fatalf("isolated old leader still accepts writes: %+v", inf)
	}
	if inf := c.Nodes()[leader].Info(); inf.PossibleLoss == "" {
		t.Errorf("W=1 new leader that could not copy the isolated node reports no possible loss: %+v", inf)
	} else {
		t.Logf("new leader reports: %s", inf.PossibleLoss)
	}

	direct.finish()
	others.finish()
	network.Heal()
	healed := time.Now()
	newTerm := c.Nodes()[leader].Info().Term
	waitFor(t, failoverBound, "the old leader to follow in the new term", func() bool {
		inf := c.Nodes()[old].Info()
		return inf.Role == "follower" && inf.Term == newTerm && inf.Leader == names[leader]
	})
	t.Logf("old leader follows %s in term %d %v after healing", names[leader], newTerm, time.Since(healed).Round(time.Millisecond))
	if l := c.Leader(); l != leader {
		t.Fatalf("after healing node%d leads, want %s", l+1, names[leader])
	}

	// Every node's own copy converges, the old leader's included, with no
	// read to repair it: W=1 writes the old leader acknowledged (before the
	// isolation, or in its lease) and had not replicated yet are on it
	// alone — the new leader could not copy it (possible_loss says so) and
	// the followers synced from the new leader — and its background
	// replication of them is refused as from a stale term; it must then
	// send them again as repairs (replication.core.deliver).
	all := append(direct.snapshot(), others.snapshot()...)
	converging := time.Now()
	if diverged := divergence(t, cl, urls, all, failoverBound); len(diverged) > 0 {
		t.Errorf("%d of %d acknowledged writes not on every node %v after the old leader followed (no reads); e.g. %s",
			len(diverged), len(all), failoverBound, strings.Join(diverged[:min(len(diverged), 3)], "; "))
	} else {
		t.Logf("every node holds every acknowledged write %v after the old leader followed, with no read", time.Since(converging).Round(time.Millisecond))
	}
	// Every acknowledged write is readable with R=5 (which includes the
	// old leader's copy and repairs the others) ...
	for _, w := range all {
		for _, u := range []string{urls[old], urls[leader]} {
			if r := cl.get(u, w.key); r.Status != http.StatusOK || r.Value != w.value {
				t.Fatalf("R=5 read of acknowledged %s=%q (by %s) at %s: %d %q (%s)", w.key, w.value, w.node, u, r.Status, r.Value, r.Error)
			}
		}
	}
	// ... and then every node's own copy holds it, the old leader's
	// included.
	waitCopies(t, cl, urls, all, "after healing and reading every key")
	t.Logf("direct load: %s; others: %s", direct, others)
}

// Kill and restart the leader five times in a row under concurrent load
// (clients writing and reading through every node, following redirects),
// with porcupine checking the whole history: w3r3 must be linearizable;
// w5r1 (R=1 reads anywhere, not linearizable by design) must lose no
// acknowledged write and converge. The robustness test's machinery
// (runRobustness) runs it: failpoint kill-leader in repeat mode.
func TestFailoverRepeatedLeaderKills(t *testing.T) {
	for _, tg := range []robustTarget{
		{name: "w3r3", preset: "w3r3", linearizable: true},
		{name: "w5r1", preset: "w5r1"},
	} {
		t.Run(tg.name, func(t *testing.T) {
			t.Parallel()
			run := robustRun{seed: 1, dur: time.Second, delays: replication.NoDelays(), clients: 5, keys: 5, writeRatio: 0.5,
				pace: 5 * time.Millisecond, rngSalt: 12,
				fault: failpoint{kind: faultKillLeader, leader: true, repeat: 5, gap: 300 * time.Millisecond, from: 200 * time.Millisecond}}
			run.rerun = fmt.Sprintf("go test -count=1 -v -run 'TestFailoverRepeatedLeaderKills/^%s$' ./internal/cluster/", tg.name)
			runRobustness(t, tg, run)
		})
	}
}

// PUT /config during a leader change is never half-applied: a SetConfig
// races the leader's kill (sent to the leader itself with no retry, or to
// a follower with the client's retries); once a new leader leads, every
// node agrees on W and R — the old values or the new ones — and a change
// acknowledged with 200 is in effect on every node, the restarted old
// leader included.
func TestFailoverConfigDuringLeaderChange(t *testing.T) {
	t.Parallel()
	c, _ := startFailover(t, "w3r3", true)
	urls, names := c.URLs(), ids(c)
	hc := cluster.Client()
	t.Cleanup(hc.CloseIdleConnections)
	kv, err := kvclient.New(kvclient.Config{HTTPClient: hc})
	if err != nil {
		t.Fatal(err)
	}
	type wr struct{ w, r int }
	agreed := func(running []int) (wr, bool) {
		var first wr
		for k, i := range running {
			inf := c.Nodes()[i].Info()
			got := wr{inf.W, inf.R}
			if k == 0 {
				first = got
			} else if got != first {
				return wr{}, false
			}
		}
		return first, true
	}
	all := []int{0, 1, 2, 3, 4}
	outcomes := map[string]int{}
	for round := range 6 {
		leader, err := c.WaitLeader(t.Context(), failoverBound)
		if err != nil {
			t.Fatal(err)
		}
		cur, ok := agreed(all)
		if !ok {
			t.Fatalf("round %d: nodes disagree before the change", round)
		}
		want := wr{2, 4}
		if cur == want {
			want = wr{3, 3}
		}
		via, opts := urls[leader], []kvclient.Option{kvclient.Attempts(1)}
		if round%2 == 1 {
			// A follower: 307 to the leader, retried (on a dead leader,
			// then on leader_unavailable) until a new one commits it.
			via, opts = urls[(leader+1+round)%len(urls)], []kvclient.Option{kvclient.Attempts(50)}
		}
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		type result struct {
			res kvclient.ConfigResult
			err error
		}
		done := make(chan result, 1)
		go func() {
			res, err := kv.SetConfig(ctx, want.w, want.r, append(opts, kvclient.At(via))...)
			done <- result{res, err}
		}()
		// The kill lands before, during or after the commit: staggered
		// by round, from at once to a few milliseconds in.
		if d := time.Duration(round/2) * time.Millisecond; d > 0 {
			waitUntil(ctx, time.Now().Add(d))
		}
		if err := c.Stop(leader); err != nil {
			t.Fatal(err)
		}
		next, _ := waitNewLeader(t, c, leader, time.Now())
		r := <-done
		cancel()
		running := without(all, leader)
		var settled wr
		waitFor(t, failoverBound, "the survivors to agree on W and R", func() bool {
			var ok bool
			settled, ok = agreed(running)
			return ok
		})
		outcome := "200"
		if r.err != nil {
			outcome = fmt.Sprint(kvclient.StatusOf(r.err))
			if e, ok := errors.AsType[*kvclient.Error](r.err); ok {
				outcome += " " + e.Code
			}
		}
		outcomes[outcome]++
		if kvclient.StatusOf(r.err) == http.StatusInternalServerError {
			// Not a half-applied change, but a misclassified answer: a
			// leader killed while it proposes answers "500 internal:
			// consensus: node not running" (consensus.ErrClosed is not
			// mapped in node's elector.ProposeQuorum); see the report of
			// issue 12.
			t.Logf("round %d: 500 from the leader being killed: %v", round, r.err)
		}
		t.Logf("round %d: W,R %v -> %v via %s (leader %s killed, %s leads): %s (%v); settled on %v",
			round, cur, want, via, names[leader], names[next], outcome, r.err, settled)
		switch {
		case r.err == nil && settled != want:
			t.Fatalf("round %d: change to %v acknowledged (log index %d) but the nodes settled on %v", round, want, r.res.LogIndex, settled)
		case settled != cur && settled != want:
			t.Fatalf("round %d: nodes settled on %v, neither the old %v nor the new %v", round, settled, cur, want)
		}
		if err := c.Restart(t.Context(), leader); err != nil {
			t.Fatal(err)
		}
		if err := c.WaitReady(t.Context(), failoverBound); err != nil {
			t.Fatal(err)
		}
		waitFor(t, failoverBound, "the restarted old leader to agree on W and R", func() bool {
			got, ok := agreed(all)
			return ok && got == settled
		})
		// What the HTTP API says agrees too.
		for _, u := range urls {
			cfg, err := kv.Config(t.Context(), kvclient.At(u))
			if err != nil || (wr{cfg.W, cfg.R}) != settled {
				t.Fatalf("round %d: GET /config at %s: %+v %v, want %v", round, u, cfg, err, settled)
			}
		}
	}
	t.Logf("outcomes of the racing changes: %v", outcomes)
}

// A restarted old leader rejoins as a follower and catches up; over
// loopback HTTP, raft's traffic included (raft runs over each node's HTTP
// port). It comes back empty, follows the new leader in its term, holds
// every write acknowledged before and after its death, and redirects
// writes to the new leader.
func TestFailoverRestartedLeaderRejoins(t *testing.T) {
	t.Parallel()
	c, _ := startFailover(t, "w3r3", false)
	cl := newClient(t)
	urls, names := c.URLs(), ids(c)
	hc := cluster.Client()
	t.Cleanup(hc.CloseIdleConnections)
	kv, err := kvclient.New(kvclient.Config{HTTPClient: hc, Endpoints: urls})
	if err != nil {
		t.Fatal(err)
	}
	var acked []ackedWrite
	write := func(prefix string, n int, via string) {
		for i := range n {
			key := fmt.Sprintf("%s%d", prefix, i)
			res, err := kv.Set(t.Context(), key, "v-"+key, kvclient.At(via))
			if err != nil {
				t.Fatalf("set %s via %s: %v", key, via, err)
			}
			acked = append(acked, ackedWrite{key: key, value: "v-" + key, version: res.Version, node: res.Node})
		}
	}
	old, err := c.WaitLeader(t.Context(), failoverBound)
	if err != nil {
		t.Fatal(err)
	}
	write("before", 50, urls[(old+1)%len(urls)])
	killed := time.Now()
	if err := c.Stop(old); err != nil {
		t.Fatal(err)
	}
	leader, took := waitNewLeader(t, c, old, killed)
	t.Logf("killed %s: %s leads and accepts writes %v later (HTTP transport)", names[old], names[leader], took.Round(time.Millisecond))
	write("after", 50, urls[(old+2)%len(urls)])

	if err := c.Restart(t.Context(), old); err != nil {
		t.Fatal(err)
	}
	if err := c.WaitReady(t.Context(), failoverBound); err != nil {
		t.Fatal(err)
	}
	term := c.Nodes()[leader].Info().Term
	waitFor(t, failoverBound, "the restarted old leader to follow the new one", func() bool {
		inf := c.Nodes()[old].Info()
		return inf.Role == "follower" && inf.Leader == names[leader] && inf.Term == term
	})
	if l := c.Leader(); l != leader {
		t.Fatalf("after the restart node%d leads, want %s", l+1, names[leader])
	}
	waitCopies(t, cl, urls, acked, "restarted old leader")
	r := cl.set(urls[old], "redirected", "x")
	mustStatus(t, "write sent to the restarted old leader", r, http.StatusTemporaryRedirect)
	if loc := baseURL(r.Header.Get("Location")); loc != urls[leader] {
		t.Fatalf("restarted old leader redirects to %q, want %s", loc, urls[leader])
	}
}
