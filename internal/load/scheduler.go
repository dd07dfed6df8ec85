package load

import (
	"context"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kvdb/kvdb/internal/history"
)

// drainGrace is added to the request timeout when waiting for in-flight
// requests at the end of a run.
const drainGrace = time.Second

// scheduler issues requests open loop: request i is sent at t0 + i/QPS on
// its own goroutine, however long earlier requests take.
type scheduler struct {
	cfg    *Config
	client *Client
	rec    *recorder
	slots  *slots
	rng    *rand.Rand
	keys   *KeyGen
	t0     time.Time
	// scheduled counts requests whose intended time has come.
	scheduled atomic.Int64
}

func newScheduler(cfg *Config, client *Client, rec *recorder, t0 time.Time) *scheduler {
	rng := rand.New(rand.NewPCG(cfg.Seed, 0x6b766462))
	return &scheduler{
		cfg: cfg, client: client, rec: rec, slots: newSlots(cfg.MaxInFlight),
		rng: rng, keys: NewKeyGen(cfg.Keys, rng), t0: t0,
	}
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
	var wg sync.WaitGroup
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	total := s.cfg.total()
	var i int64
	for ; i < total; i++ {
		intended := s.t0.Add(s.cfg.offset(i))
		if !waitUntil(ctx, timer, intended) {
			break
		}
		s.scheduled.Store(i + 1)
		s.launch(reqCtx, &wg, s.next(i, intended))
	}
	window = time.Since(s.t0)
	if i == total {
		window = max(window, s.cfg.Duration)
	}
	s.drain(&wg, cancelRequests)
	return i == total, window
}

// waitUntil sleeps until t; false if ctx ended first.
func waitUntil(ctx context.Context, timer *time.Timer, t time.Time) bool {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err() == nil
	}
	timer.Reset(d)
	select {
	case <-ctx.Done():
		return false
	case <-timer.C:
		return true
	}
}

// next decides request i: read or write, key and node.
func (s *scheduler) next(i int64, intended time.Time) plan {
	p := plan{seq: i, intended: intended, op: history.OpGet}
	nodes := s.cfg.readNodes()
	if s.rng.Float64() < s.cfg.WriteRatio {
		p.op, nodes = history.OpSet, s.cfg.writeNodes()
		p.key = s.keys.Write()
	} else {
		p.key = s.keys.Read()
	}
	p.node = nodes[s.rng.IntN(len(nodes))]
	return p
}

// launch sends p on its own goroutine, or records it dropped when
// MaxInFlight requests are in flight.
func (s *scheduler) launch(ctx context.Context, wg *sync.WaitGroup, p plan) {
	slot, ok := s.slots.acquire()
	if !ok {
		s.rec.record(history.Op{
			Client: -1, Seq: p.seq, Op: p.op, Key: p.key, Node: p.node,
			IntendedUS: elapsedUS(s.t0, p.intended), Dropped: true,
			Error: "dropped: " + strconv.Itoa(s.cfg.MaxInFlight) + " requests in flight",
		})
		return
	}
	wg.Go(func() {
		defer s.slots.release(slot)
		s.rec.record(s.execute(ctx, p, slot))
	})
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
	if p.op == history.OpSet {
		op.Value = s.cfg.RunID + "-c" + strconv.Itoa(client) + "-" + strconv.FormatInt(p.seq, 10)
		r = s.client.Set(ctx, p.node, p.key, op.Value)
	} else {
		r = s.client.Get(ctx, p.node, p.key)
		op.Value = r.Value
	}
	done := time.Now()
	op.SentUS, op.DoneUS = elapsedUS(s.t0, sent), elapsedUS(s.t0, done)
	op.Status, op.Version, op.ServedBy, op.Error = r.Status, r.Version, r.Node, r.Err
	return op
}

// drain waits for in-flight requests; after the request timeout plus a
// grace period it cancels them and waits for them to return.
func (s *scheduler) drain(wg *sync.WaitGroup, cancelRequests context.CancelFunc) {
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	t := time.NewTimer(s.cfg.Timeout + drainGrace)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
		cancelRequests()
		<-done
	}
}

// slots hands out client ids to requests in flight, the most recently
// freed first, so one client id never has two requests in flight and ids
// stay few (porcupine's visualization draws one lane per client).
type slots struct {
	mu   sync.Mutex
	free []int // a stack of free ids
	next int
	max  int
}

func newSlots(n int) *slots { return &slots{max: n} }

func (s *slots) acquire() (int, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if n := len(s.free); n > 0 {
		id := s.free[n-1]
		s.free = s.free[:n-1]
		return id, true
	}
	if s.next == s.max {
		return 0, false
	}
	s.next++
	return s.next - 1, true
}

func (s *slots) release(id int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.free = append(s.free, id)
}
