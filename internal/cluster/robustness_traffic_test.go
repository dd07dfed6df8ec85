package cluster_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	kvclient "github.com/kvdb/kvdb/client"
	"github.com/kvdb/kvdb/internal/cluster"
	"github.com/kvdb/kvdb/internal/history"
	"github.com/kvdb/kvdb/internal/load"
)

// This file holds the robustness test's traffic (concurrent clients that
// record a history) and its failpoints (transport faults and node
// restarts), in the manner of etcd's tests/robustness.

// usClock gives microsecond timestamps on one monotonic clock: t0's wall
// time plus the monotonic time since t0, as the load tester records them.
type usClock struct{ t0 time.Time }

func (c usClock) now() int64 { return c.t0.UnixMicro() + time.Since(c.t0).Microseconds() }

// traffic is what the clients of one run share.
type traffic struct {
	cl          *load.Client
	urls        []string
	leader      string // leader-follower: where writes go ("" = leaderless)
	leaderReads bool   // reads go to the leader only
	keys        []string
	writeRatio  float64
	maxOps      int           // per client
	timeout     time.Duration // per request, client side
	clock       usClock
}

// runClient is one client: a closed loop of random gets and sets, bounded
// by count and by ctx. It never has two operations in flight, so porcupine
// may treat it as one process. Values are unique: "c<id>-<n>".
func (tr *traffic) runClient(ctx context.Context, id int, rng *rand.Rand) []history.Op {
	var ops []history.Op
	failures := 0 // in a row
	for n := 0; n < tr.maxOps && ctx.Err() == nil; n++ {
		key := tr.keys[rng.IntN(len(tr.keys))]
		var op history.Op
		if rng.Float64() < tr.writeRatio {
			op = tr.set(ctx, rng, key, fmt.Sprintf("c%d-%d", id, n))
		} else {
			op = tr.get(ctx, rng, key)
		}
		op.Client, op.Seq = id, int64(id)*1_000_000+int64(n)
		ops = append(ops, op)
		if op.OK() {
			failures = 0
			continue
		}
		// After a failure, back off (5 ms doubling to 160 ms, jittered),
		// as a real client would: a node that fails fast (a suspected
		// peer, a refused connection) would otherwise turn the run into
		// hundreds of unknown-outcome writes, which slow porcupine down
		// without testing anything more.
		backoff := time.Duration(5<<min(failures, 5)) * time.Millisecond
		failures++
		pause := time.NewTimer(backoff/2 + rand.N(backoff/2+1))
		select {
		case <-ctx.Done():
		case <-pause.C:
		}
		pause.Stop()
	}
	return ops
}

func (tr *traffic) set(ctx context.Context, rng *rand.Rand, key, value string) history.Op {
	target := tr.urls[rng.IntN(len(tr.urls))]
	if tr.leader != "" && rng.IntN(4) != 0 {
		target = tr.leader // mostly straight to the leader; else via a 307
	}
	op := history.Op{Op: history.OpSet, Key: key, Value: value, Node: target}
	op.SentUS = tr.clock.now()
	op.IntendedUS = op.SentUS
	rctx, cancel := context.WithTimeout(ctx, tr.timeout)
	r := tr.cl.Set(rctx, target, key, value)
	if r.Status == http.StatusTemporaryRedirect && tr.leader != "" {
		// One operation whose interval covers both requests: the follower
		// applied nothing, the leader decides.
		op.Node = tr.leader
		r = tr.cl.Set(rctx, tr.leader, key, value)
	}
	cancel()
	op.DoneUS = tr.clock.now()
	op.Status, op.Version, op.ServedBy, op.Error = r.Status, r.Version, r.Node, r.Err
	switch {
	case r.Status == 0, r.Status == http.StatusCreated, r.Status >= 500:
	case r.Status == http.StatusBadRequest, r.Status == http.StatusRequestEntityTooLarge:
	default:
		// Anything else (a 307 after following one, another 4xx) may
		// still have been applied somewhere: keep it as unknown outcome
		// (history treats status 0 so) and let the test report it.
		op.Error = fmt.Sprintf("unexpected status %d: %s", r.Status, r.Err)
		op.Status = 0
	}
	return op
}

func (tr *traffic) get(ctx context.Context, rng *rand.Rand, key string) history.Op {
	target := tr.urls[rng.IntN(len(tr.urls))]
	if tr.leaderReads {
		target = tr.leader
	}
	op := history.Op{Op: history.OpGet, Key: key, Node: target}
	op.SentUS = tr.clock.now()
	op.IntendedUS = op.SentUS
	rctx, cancel := context.WithTimeout(ctx, tr.timeout)
	r := tr.cl.Get(rctx, target, key)
	cancel()
	op.DoneUS = tr.clock.now()
	op.Status, op.Version, op.ServedBy, op.Error = r.Status, r.Version, r.Node, r.Err
	if r.Status == http.StatusOK && r.Err == "" {
		op.Value = r.Value
	}
	return op
}

// faultKind is a failpoint: what goes wrong, to one node (or one link),
// during the middle of the traffic. Never more than a minority at once.
type faultKind string

const (
	faultNone      faultKind = "none"
	faultDrop      faultKind = "drop"      // messages to one node are lost with some probability
	faultDelay     faultKind = "delay"     // messages to one node wait (sometimes past PeerTimeout)
	faultIsolate   faultKind = "isolate"   // one node cut off from every peer (clients still reach it)
	faultPartition faultKind = "partition" // the link between two nodes cut both ways
	faultRestart   faultKind = "restart"   // a follower (or leaderless node) killed, then restarted empty
)

var faultKinds = []faultKind{faultNone, faultDrop, faultDelay, faultIsolate, faultPartition, faultRestart}

// failpoint is one fault with its parameters and window, chosen by the seed.
type failpoint struct {
	kind       faultKind
	node, peer int           // the node affected (peer: the other end of a cut link)
	drop       float64       // drop probability
	delay      time.Duration // delay per message
	from, to   time.Duration // window, from the start of the traffic
}

func (f failpoint) String() string {
	switch f.kind {
	case faultNone:
		return "none"
	case faultDrop:
		return fmt.Sprintf("drop %.0f%% to node%d", 100*f.drop, f.node+1)
	case faultDelay:
		return fmt.Sprintf("delay %v to node%d", f.delay, f.node+1)
	case faultPartition:
		return fmt.Sprintf("partition node%d|node%d", f.node+1, f.peer+1)
	}
	return fmt.Sprintf("%s node%d", f.kind, f.node+1)
}

// pickFailpoint draws the fault's target and window. Leader-follower never
// kills the leader (there is no failover to test here: the restarted
// leader would come back empty); every other fault may hit it.
func pickFailpoint(rng *rand.Rand, kind faultKind, n int, leaderFollower bool, dur, peerTimeout time.Duration) failpoint {
	f := failpoint{kind: kind, node: rng.IntN(n)}
	if kind == faultRestart && leaderFollower {
		f.node = 1 + rng.IntN(n-1)
	}
	f.peer = (f.node + 1 + rng.IntN(n-1)) % n
	f.drop = 0.1 + 0.2*rng.Float64()
	f.delay = time.Duration(float64(20*time.Millisecond) + rng.Float64()*float64(peerTimeout)*1.5).Round(time.Millisecond)
	f.from = time.Duration(float64(dur) * (0.1 + 0.2*rng.Float64()))
	f.to = f.from + time.Duration(float64(dur)*(0.3+0.3*rng.Float64()))
	return f
}

// inject runs the failpoint against c during the traffic, which started at
// t0, through faults, which name the nodes by names: it applies the fault at from, and heals it (or restarts the node and
// waits until it has caught up) at to or when ctx ends, whichever is first.
// It returns the first error.
func (f failpoint) inject(ctx context.Context, c *cluster.Cluster, faults faultInjector, hosts []string, t0 time.Time) error {
	if f.kind == faultNone {
		return nil
	}
	if !waitUntil(ctx, t0.Add(f.from)) {
		return nil
	}
	switch f.kind {
	case faultDrop:
		faults.Drop(hosts[f.node], f.drop)
	case faultDelay:
		faults.Delay(hosts[f.node], f.delay)
	case faultIsolate:
		faults.Isolate(hosts[f.node])
	case faultPartition:
		faults.Partition(hosts[f.node], hosts[f.peer])
	case faultRestart:
		if err := c.Stop(f.node); err != nil {
			return fmt.Errorf("stop node%d: %w", f.node+1, err)
		}
	}
	waitUntil(ctx, t0.Add(f.to))
	faults.Heal()
	if f.kind == faultRestart {
		if err := c.Restart(context.Background(), f.node); err != nil {
			return fmt.Errorf("restart node%d: %w", f.node+1, err)
		}
		if err := c.WaitReady(context.Background(), 30*time.Second); err != nil {
			return fmt.Errorf("node%d after restart: %w", f.node+1, err)
		}
	}
	return nil
}

// waitUntil waits for the deadline t (a scheduled instant of the fault
// plan, not a guess at a condition); false if ctx ended first.
func waitUntil(ctx context.Context, t time.Time) bool {
	timer := time.NewTimer(time.Until(t))
	defer timer.Stop()
	select {
	case <-timer.C:
		return true
	case <-ctx.Done():
		return false
	}
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
			switch op.Outcome() {
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
