package load

import (
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kvdb/kvdb/internal/history"
)

// recorder collects completed operations: in memory for the summary, and
// appended to the history file as they complete.
type recorder struct {
	w   *history.Writer
	mu  sync.Mutex
	ops []history.Op
	// counters for live progress
	sent, done, errors, dropped atomic.Int64
}

func (r *recorder) record(op history.Op) {
	switch {
	case op.Dropped:
		r.dropped.Add(1)
	case !op.OK():
		r.errors.Add(1)
		r.done.Add(1)
	default:
		r.done.Add(1)
	}
	r.mu.Lock()
	r.ops = append(r.ops, op)
	r.mu.Unlock()
	_ = r.w.Write(op) // the error is sticky; Close reports it
}

// snapshot returns the operations recorded so far.
func (r *recorder) snapshot() []history.Op {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.ops[:len(r.ops):len(r.ops)]
}

// progress prints live progress until stopped.
type progress struct {
	w        io.Writer
	terminal bool
	every    time.Duration
	total    time.Duration
	t0       time.Time
	s        *scheduler
	lastDone int64
	lastAt   time.Time
}

// startProgress prints progress on cfg.Progress (if set) and returns the
// function that stops it and prints a final line.
func startProgress(cfg *Config, s *scheduler, t0 time.Time) (stop func()) {
	if cfg.Progress == nil {
		return func() {}
	}
	p := &progress{w: cfg.Progress, terminal: cfg.Terminal, every: cfg.ProgressInterval,
		total: cfg.Duration, t0: t0, s: s, lastAt: t0}
	quit, finished := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(finished)
		p.loop(quit)
	}()
	return func() {
		close(quit)
		<-finished
	}
}

func (p *progress) loop(quit <-chan struct{}) {
	t := time.NewTicker(p.every)
	defer t.Stop()
	for {
		select {
		case <-quit:
			p.print(time.Now())
			if p.terminal {
				fmt.Fprintln(p.w)
			}
			return
		case now := <-t.C:
			p.print(now)
		}
	}
}

func (p *progress) print(now time.Time) {
	rec := p.s.rec
	done := rec.done.Load()
	qps := 0.0
	if dt := now.Sub(p.lastAt).Seconds(); dt > 0 {
		qps = float64(done-p.lastDone) / dt
	}
	p.lastDone, p.lastAt = done, now
	line := fmt.Sprintf("%6.1fs of %s  scheduled %d  done %d  errors %d  dropped %d  in flight %d  qps %.1f",
		now.Sub(p.t0).Seconds(), p.total, p.s.scheduled.Load(), done, rec.errors.Load(),
		rec.dropped.Load(), rec.sent.Load()-done, qps)
	if p.terminal {
		fmt.Fprint(p.w, "\r\x1b[K"+line)
		return
	}
	fmt.Fprintln(p.w, line)
}
