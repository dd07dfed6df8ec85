package load

import (
	"context"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kvdb/kvdb/internal/history"
	"github.com/kvdb/kvdb/internal/openloop"
)

// drainGrace is added to the request timeout when waiting for in-flight
// requests at the end of a run.
const drainGrace = time.Second

// scheduler issues requests open loop (package openloop, shared with the
// benchmark driver): request i is sent at t0 + i/QPS on its own
// goroutine, however long earlier requests take; a request due while
// MaxInFlight are in flight is dropped and recorded.
type scheduler struct {
	cfg    *Config
	client *Client
	rec    *recorder
	rng    *rand.Rand
	keys   *KeyGen
	t0     time.Time
	// leader is where writes go with FollowLeader.
	leader leaderTracker
	// scheduled counts requests whose intended time has come.
	scheduled atomic.Int64
}

func newScheduler(cfg *Config, client *Client, rec *recorder, t0 time.Time) *scheduler {
	rng := rand.New(rand.NewPCG(cfg.Seed, 0x6b766462))
	return &scheduler{
		cfg: cfg, client: client, rec: rec,
		rng: rng, keys: NewKeyGen(cfg.Keys, rng), t0: t0,
		leader: leaderTracker{nodes: cfg.Nodes, cur: cfg.Nodes[0]},
	}
}

// leaderTracker is the node FollowLeader sends writes to: the one that
// last acknowledged a write, or the next after one that failed.
type leaderTracker struct {
	mu    sync.Mutex
	nodes []string
	cur   string
}

func (t *leaderTracker) get() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.cur
}

// acked records that the node at endpoint acknowledged a write.
func (t *leaderTracker) acked(endpoint string) {
	if endpoint == "" {
		return
	}
	t.mu.Lock()
	t.cur = endpoint
	t.mu.Unlock()
}

// failed records that a write sent to base failed: if writes still go
// there, they move to the next node (once, however many writes sent there
// fail together).
func (t *leaderTracker) failed(base string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.cur != base {
		return
	}
	i := slices.Index(t.nodes, base)
	t.cur = t.nodes[(i+1)%len(t.nodes)]
}

// plan is one request decided by the scheduler.
type plan struct {
	seq      int64
	intended time.Time
	op       string
	key      string
	node     string
}

// run schedules every request until the schedule ends or ctx is done, then
// waits (bounded) for those in flight. It returns whether the whole
// schedule ran and the length of the sending window.
func (s *scheduler) run(ctx context.Context) (completed bool, window time.Duration) {
	reqCtx, cancelRequests := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelRequests()
	total := s.cfg.total()
	ol := openloop.Scheduler[plan]{
		Start: s.t0, Total: total, Offset: s.cfg.offset, MaxInFlight: s.cfg.MaxInFlight,
		Plan: func(i int64, intended time.Time) plan {
			s.scheduled.Store(i + 1)
			return s.next(i, intended)
		},
		Send: func(slot int, _ int64, _ time.Time, p plan) { s.rec.record(s.execute(reqCtx, p, slot)) },
		Dropped: func(_ int64, _ time.Time, p plan) {
			s.rec.record(history.Op{
				Client: -1, Seq: p.seq, Op: p.op, Key: p.key, Node: p.node,
				IntendedUS: elapsedUS(s.t0, p.intended), Dropped: true,
				Error: "dropped: " + strconv.Itoa(s.cfg.MaxInFlight) + " requests in flight",
			})
		},
	}
	n := ol.Run(ctx)
	window = time.Since(s.t0)
	if n == total {
		window = max(window, s.cfg.Duration)
	}
	// After the request timeout plus a grace period, cancel the requests
	// still in flight and wait for them to return.
	ol.Wait(s.cfg.Timeout+drainGrace, cancelRequests)
	return n == total, window
}

// next decides request i: read or write, key and node.
func (s *scheduler) next(i int64, intended time.Time) plan {
	p := plan{seq: i, intended: intended, op: history.OpGet}
	nodes := s.cfg.readNodes()
	switch {
	case s.rng.Float64() >= s.cfg.WriteRatio:
		p.key = s.keys.Read()
	// The delete draw only when deletes are asked for, so runs without
	// them keep their seeds' schedules.
	case s.cfg.DeleteRatio > 0 && s.rng.Float64() < s.cfg.DeleteRatio:
		p.op, nodes = history.OpDel, s.cfg.writeNodes()
		p.key = s.keys.Read()
	default:
		p.op, nodes = history.OpSet, s.cfg.writeNodes()
		p.key = s.keys.Write()
	}
	p.node = nodes[s.rng.IntN(len(nodes))]
	if p.op != history.OpGet && s.followLeader() {
		p.node = s.leader.get()
	}
	return p
}

func (s *scheduler) followLeader() bool {
	return s.cfg.FollowLeader && s.cfg.Mode == ModeLeader
}

// execute sends one request and returns its history entry.
func (s *scheduler) execute(ctx context.Context, p plan, client int) history.Op {
	op := history.Op{Client: client, Seq: p.seq, Op: p.op, Key: p.key, Node: p.node,
		IntendedUS: elapsedUS(s.t0, p.intended)}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	s.rec.sent.Add(1)
	sent := time.Now()
	var r Reply
	switch {
	case p.op != history.OpGet && s.followLeader():
		var endpoint string
		if p.op == history.OpDel {
			r, endpoint = s.client.DeleteFollow(ctx, p.node, p.key)
		} else {
			op.Value = s.cfg.RunID + "-c" + strconv.Itoa(client) + "-" + strconv.FormatInt(p.seq, 10)
			r, endpoint = s.client.SetFollow(ctx, p.node, p.key, op.Value)
		}
		if r.Status == op.AckStatus() {
			s.leader.acked(endpoint)
		} else {
			s.leader.failed(p.node)
		}
	case p.op == history.OpDel:
		r = s.client.Delete(ctx, p.node, p.key)
	case p.op == history.OpSet:
		op.Value = s.cfg.RunID + "-c" + strconv.Itoa(client) + "-" + strconv.FormatInt(p.seq, 10)
		r = s.client.Set(ctx, p.node, p.key, op.Value)
	default:
		r = s.client.Get(ctx, p.node, p.key)
		op.Value = r.Value
	}
	done := time.Now()
	op.SentUS, op.DoneUS = elapsedUS(s.t0, sent), elapsedUS(s.t0, done)
	op.Status, op.Version, op.ServedBy, op.Error = r.Status, r.Version, r.Node, r.Err
	return op
}
