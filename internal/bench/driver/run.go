package driver

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"

	"github.com/kvdb/kvdb/internal/latency"
	"github.com/kvdb/kvdb/internal/openloop"
)

// Op performs one operation on the system under test: a write of value
// under key when write is true, else a read of key. It must not keep value
// after it returns, and must return by the time ctx ends. A non-nil error
// counts the operation as failed.
type Op func(ctx context.Context, write bool, key string, value []byte) error

// Progress is a running count, handed to Config.Progress.
type Progress struct {
	// Elapsed is the time since the run began (warm-up included).
	Elapsed time.Duration
	// Warmup is true while the warm-up lasts.
	Warmup bool
	// Done and Failed count finished and failed operations so far.
	Done, Failed int64
	// Rate is the operations finished per second since the last report.
	Rate float64
}

// KeyName returns the name of key i of the key space.
func KeyName(i int) string {
	s := strconv.Itoa(i)
	const width = 8
	if len(s) >= width {
		return "key" + s
	}
	return "key" + "00000000"[:width-len(s)] + s
}

// KeyNames returns the names of the first n keys.
func KeyNames(n int) []string {
	keys := make([]string, n)
	for i := range keys {
		keys[i] = KeyName(i)
	}
	return keys
}

// Value returns a value of size bytes (printable letters, so that it
// needs no escaping in any protocol); seed varies the content.
func Value(size int, seed uint64) []byte {
	v := make([]byte, size)
	for i := range v {
		v[i] = 'a' + byte((uint64(i)+seed)%26)
	}
	return v
}

// Preload writes every key of the key space once, concurrency writes at a
// time, so that reads find them. It is bounded by the number of keys and
// by ctx; it returns the first error if any write failed.
func Preload(ctx context.Context, op Op, keys, valueSize, concurrency int, timeout time.Duration) error {
	if keys < 1 || concurrency < 1 || timeout <= 0 {
		return errors.New("preload: keys, concurrency and timeout must be positive")
	}
	names := KeyNames(keys)
	var (
		next     atomic.Int64
		mu       sync.Mutex
		firstErr error
		failed   int
		wg       sync.WaitGroup
	)
	for w := range min(concurrency, keys) {
		value := Value(valueSize, uint64(w))
		wg.Go(func() {
			for {
				i := next.Add(1) - 1
				if i >= int64(len(names)) || ctx.Err() != nil {
					return
				}
				octx, cancel := context.WithTimeout(ctx, timeout)
				err := op(octx, true, names[i], value)
				cancel()
				if err != nil {
					mu.Lock()
					failed++
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return err
	}
	if firstErr != nil {
		return &PreloadError{Failed: failed, Keys: keys, First: firstErr}
	}
	return nil
}

// PreloadError reports failed preload writes.
type PreloadError struct {
	Failed, Keys int
	First        error
}

func (e *PreloadError) Error() string {
	return "preload: " + strconv.Itoa(e.Failed) + " of " + strconv.Itoa(e.Keys) + " writes failed, first: " + e.First.Error()
}

func (e *PreloadError) Unwrap() error { return e.First }

// Run drives op with the workload of cfg and returns the measured result
// (Workload and System left empty for the caller). The run ends by
// itself: after Warmup+Duration in the closed loop (plus the last
// operations' time, at most OpTimeout), after Warmup+Duration+Grace in the
// open loop (plus at most OpTimeout), or after MaxOps operations, or when
// ctx ends — then the partial result comes back with ctx's error.
func Run(ctx context.Context, cfg Config, op Op) (Result, error) {
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		return Result{}, err
	}
	d := &driver{cfg: cfg, op: op, keys: KeyNames(cfg.Keys)}
	return d.run(ctx)
}

type driver struct {
	cfg  Config
	op   Op
	keys []string

	t0, measureFrom, end time.Time
	// total is the open loop's schedule length.
	total int64
	// issued counts operations claimed (closed loop); sent counts
	// open-loop requests actually sent.
	issued, sent atomic.Int64
	// done and failed feed the progress reports.
	done, failed atomic.Int64
}

// worker is one client's state; only its goroutine touches it until the
// run is over.
type worker struct {
	rng            *rand.Rand
	value          []byte
	reads, writes  *hdrhistogram.Histogram
	nReads, nWrite int64
	errs, late     int64
	firstErr       error
	lastEnd        time.Time
}

func newHistogram() *hdrhistogram.Histogram { return latency.NewHistogram() }

func (d *driver) run(ctx context.Context) (Result, error) {
	cfg := d.cfg
	d.t0 = time.Now()
	d.measureFrom = d.t0.Add(cfg.Warmup)
	d.end = d.measureFrom.Add(cfg.Duration)
	hardStop := d.end.Add(cfg.OpTimeout)
	if cfg.Mode == ModeOpen {
		window := (cfg.Warmup + cfg.Duration).Seconds()
		d.total = min(int64(cfg.Rate*window), cfg.MaxOps)
		hardStop = hardStop.Add(cfg.Grace)
	}
	// The hard deadline only matters if op ignores its own timeout.
	runCtx, cancel := context.WithDeadline(ctx, hardStop.Add(time.Second))
	defer cancel()

	stopProgress := d.startProgress()
	cpu0 := processCPU()
	workers := make([]*worker, cfg.Concurrency)
	for i := range workers {
		workers[i] = &worker{
			rng:   rand.New(rand.NewPCG(cfg.Seed, uint64(i)+1)),
			value: Value(cfg.ValueSize, uint64(i)),
			reads: newHistogram(), writes: newHistogram(),
		}
	}
	if cfg.Mode == ModeOpen {
		d.openLoop(runCtx, workers)
	} else {
		var wg sync.WaitGroup
		for _, w := range workers {
			wg.Go(func() { d.closedWorker(runCtx, w) })
		}
		wg.Wait()
	}
	cpu, elapsed := processCPU()-cpu0, time.Since(d.t0)
	stopProgress()
	res := d.result(workers)
	if cpu > 0 {
		res.ClientCPUPct = round(100*cpu.Seconds()/elapsed.Seconds(), 1)
	}
	if err := ctx.Err(); err != nil {
		res.Interrupted = true
		return res, err
	}
	return res, nil
}

func (d *driver) closedWorker(ctx context.Context, w *worker) {
	for {
		if d.issued.Add(1) > d.cfg.MaxOps {
			return
		}
		start := time.Now()
		if !start.Before(d.end) || ctx.Err() != nil {
			return
		}
		if d.cfg.trace != nil {
			d.cfg.trace(-1, start, start)
		}
		d.one(ctx, w, start)
	}
}

// openLoop sends request i at t0 + i/Rate (package openloop, the
// scheduler the load tester uses too) in one of the Concurrency workers'
// slots; a request due while every worker is busy waits for one, and its
// wait counts in its latency, measured from the intended time. No request
// starts later than Grace after the schedule's end: the rest are dropped
// (counted as Total - sent).
func (d *driver) openLoop(ctx context.Context, workers []*worker) {
	perOp := float64(time.Second) / d.cfg.Rate
	s := openloop.Scheduler[struct{}]{
		Start: d.t0, Total: d.total, MaxInFlight: len(workers),
		Offset:     func(i int64) time.Duration { return time.Duration(float64(i) * perOp) },
		QueueUntil: d.end.Add(d.cfg.Grace),
		Send: func(slot int, seq int64, intended time.Time, _ struct{}) {
			w := workers[slot]
			start := time.Now()
			d.sent.Add(1)
			if start.Sub(intended) > d.cfg.LateThreshold && !intended.Before(d.measureFrom) {
				w.late++
			}
			if d.cfg.trace != nil {
				d.cfg.trace(seq, intended, start)
			}
			d.one(ctx, w, intended)
		},
	}
	s.Run(ctx)
	s.Wait(0, nil)
}

// one performs one operation intended at intended (its start in the
// closed loop) and records it if it belongs to the measured window.
func (d *driver) one(ctx context.Context, w *worker, intended time.Time) {
	write := d.cfg.WriteRatio > 0 && w.rng.Float64() < d.cfg.WriteRatio
	key := d.keys[w.rng.IntN(len(d.keys))]
	octx, cancel := context.WithTimeout(ctx, d.cfg.OpTimeout)
	err := d.op(octx, write, key, w.value)
	cancel()
	done := time.Now()
	d.done.Add(1)
	measured := !intended.Before(d.measureFrom)
	if err != nil {
		d.failed.Add(1)
		if w.firstErr == nil {
			w.firstErr = err
		}
		if measured {
			w.errs++
		}
		return
	}
	if !measured {
		return
	}
	us := done.Sub(intended).Microseconds()
	if write {
		latency.RecordUS(w.writes, us)
		w.nWrite++
	} else {
		latency.RecordUS(w.reads, us)
		w.nReads++
	}
	if done.After(w.lastEnd) {
		w.lastEnd = done
	}
}

// startProgress reports progress until the returned function is called.
func (d *driver) startProgress() (stop func()) {
	if d.cfg.Progress == nil || d.cfg.ProgressEvery <= 0 {
		return func() {}
	}
	quit := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(d.cfg.ProgressEvery)
		defer t.Stop()
		last, lastAt := int64(0), d.t0
		for {
			select {
			case <-quit:
				return
			case now := <-t.C:
				done := d.done.Load()
				rate := float64(done-last) / now.Sub(lastAt).Seconds()
				last, lastAt = done, now
				d.cfg.Progress(Progress{
					Elapsed: now.Sub(d.t0), Warmup: now.Before(d.measureFrom),
					Done: done, Failed: d.failed.Load(), Rate: rate,
				})
			}
		}
	})
	return func() { close(quit); wg.Wait() }
}

// ProgressLine formats a progress report of one run for humans.
func ProgressLine(workload, system string, p Progress) string {
	phase := ""
	if p.Warmup {
		phase = "  (warm-up)"
	}
	return fmt.Sprintf("  %s %s: %5.1fs %10d ops %7d errors %9.0f ops/s%s", workload, system, p.Elapsed.Seconds(), p.Done, p.Failed, p.Rate, phase)
}
