// Package openloop is the open-loop request scheduler of kvdb's two load
// generators, the load tester (internal/load, `kvdb load`) and the
// benchmark driver (internal/bench/driver, `kvdb bench` and the peer
// client of the bench/ module).
//
// Request i of a schedule is intended at Start + Offset(i) and is started
// then, on a goroutine of its own (the worker of a free slot), however long
// earlier requests take: a
// slow system shows up as latency measured from the intended time, not as
// a lower request rate (no coordinated omission, as in wrk2). At most
// MaxInFlight requests are in flight, each in a numbered slot of its own.
// A request that comes due while every slot is busy is either dropped at
// once (the default; the load tester records it as dropped) or, with
// QueueUntil, waits for a free slot — its wait then counts in its latency —
// until QueueUntil passes, when the schedule stops (the benchmark counts
// the requests never sent as dropped).
package openloop

import (
	"context"
	"sync"
	"time"
)

// Scheduler runs one schedule. Fill in its fields, then call Run once and
// Wait once.
type Scheduler[P any] struct {
	// Start is the schedule's origin, t0.
	Start time.Time
	// Total is the number of requests in the schedule.
	Total int64
	// Offset is request i's intended time relative to Start; it must not
	// decrease with i.
	Offset func(i int64) time.Duration
	// MaxInFlight bounds the requests in flight (at least 1).
	MaxInFlight int
	// QueueUntil, when not zero, makes a request due while MaxInFlight
	// requests are in flight wait for a free slot instead of being
	// dropped; no request starts after QueueUntil: Run stops there.
	QueueUntil time.Time
	// Plan, if set, decides request seq when its intended time has come:
	// it is called on Run's goroutine in schedule order, so that a seeded
	// choice of operations and keys is reproducible. Nil: the zero P.
	Plan func(seq int64, intended time.Time) P
	// Send performs one request on its slot's goroutine (one per slot,
	// started when the slot is first used, so that a request costs a
	// channel handoff rather than a new goroutine). Slot is in
	// 0..MaxInFlight-1: no two requests in flight share a slot (state
	// kept per slot needs no lock), and the most recently freed slot is
	// taken first, so slots stay few when the system keeps up.
	Send func(slot int, seq int64, intended time.Time, p P)
	// Dropped, if set, is told of each request dropped because every slot
	// was busy (never called with QueueUntil set).
	Dropped func(seq int64, intended time.Time, p P)

	wg    sync.WaitGroup
	slots slots
	// work[slot] feeds the slot's worker goroutine, started when the slot
	// is first used: a request costs a channel handoff, not a goroutine.
	work []chan job[P]
}

// job is one request handed to a slot's worker.
type job[P any] struct {
	seq      int64
	intended time.Time
	p        P
}

// Run schedules the requests until the schedule is over, ctx ends, or
// (with QueueUntil) no slot came free in time. It returns how many
// requests of the schedule came due and were sent or dropped: Total when
// the whole schedule ran. It does not wait for the requests in flight
// (Wait does); their contexts are Send's business.
func (s *Scheduler[P]) Run(ctx context.Context) int64 {
	s.slots.init(s.MaxInFlight)
	s.work = make([]chan job[P], max(s.MaxInFlight, 1))
	defer func() {
		for _, ch := range s.work {
			if ch != nil {
				close(ch)
			}
		}
	}()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	var i int64
	for ; i < s.Total; i++ {
		intended := s.Start.Add(s.Offset(i))
		if !sleepUntil(ctx, timer, intended) {
			break
		}
		var p P
		if s.Plan != nil {
			p = s.Plan(i, intended)
		}
		slot, ok := s.slots.tryAcquire()
		if !ok && s.QueueUntil.IsZero() {
			if s.Dropped != nil {
				s.Dropped(i, intended, p)
			}
			continue
		}
		if !ok {
			if slot, ok = s.slots.acquire(ctx, timer, s.QueueUntil); !ok {
				break
			}
		}
		if !s.QueueUntil.IsZero() && time.Now().After(s.QueueUntil) {
			s.slots.release(slot)
			break
		}
		ch := s.work[slot]
		if ch == nil {
			ch = make(chan job[P], 1)
			s.work[slot] = ch
			s.wg.Go(func() {
				for j := range ch {
					s.Send(slot, j.seq, j.intended, j.p)
					s.slots.release(slot)
				}
			})
		}
		ch <- job[P]{seq: i, intended: intended, p: p}
	}
	return i
}

// Wait waits for the requests in flight. When timeout is positive and
// they are not all back within it, it calls cancel (which must make them
// return) and waits for them.
func (s *Scheduler[P]) Wait(timeout time.Duration, cancel func()) {
	if timeout <= 0 || cancel == nil {
		s.wg.Wait()
		return
	}
	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(done)
	}()
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
		cancel()
		<-done
	}
}

// sleepUntil waits until t on timer; false if ctx ended first.
func sleepUntil(ctx context.Context, timer *time.Timer, t time.Time) bool {
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

// slots hands out slot ids to requests in flight, the most recently freed
// first.
type slots struct {
	busy chan struct{} // one token per slot in use
	mu   sync.Mutex
	free []int // a stack of free ids below next
	next int
}

func (s *slots) init(n int) { s.busy = make(chan struct{}, max(n, 1)) }

func (s *slots) tryAcquire() (int, bool) {
	select {
	case s.busy <- struct{}{}:
		return s.take(), true
	default:
		return 0, false
	}
}

// acquire waits for a free slot until deadline; false if none came free
// in time or ctx ended.
func (s *slots) acquire(ctx context.Context, timer *time.Timer, deadline time.Time) (int, bool) {
	d := time.Until(deadline)
	if d <= 0 {
		return s.tryAcquire()
	}
	timer.Reset(d)
	select {
	case s.busy <- struct{}{}:
		timer.Stop()
		return s.take(), true
	case <-ctx.Done():
		return 0, false
	case <-timer.C:
		return 0, false
	}
}

// take returns a free id; the caller holds a token of busy, so there is
// one.
func (s *slots) take() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if n := len(s.free); n > 0 {
		id := s.free[n-1]
		s.free = s.free[:n-1]
		return id
	}
	s.next++
	return s.next - 1
}

func (s *slots) release(id int) {
	s.mu.Lock()
	s.free = append(s.free, id)
	s.mu.Unlock()
	<-s.busy
}
