package driver

import (
	"context"
	"errors"
	"flag"
	"io"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fake is an op that counts calls, optionally sleeps, and fails writes
// when told to.
type fake struct {
	calls, reads, writes atomic.Int64
	sleep                time.Duration
	failWrites           bool
	mu                   sync.Mutex
	keys                 map[string]int
}

func (f *fake) op(ctx context.Context, write bool, key string, value []byte) error {
	f.calls.Add(1)
	if f.keys != nil {
		f.mu.Lock()
		f.keys[key]++
		f.mu.Unlock()
	}
	if f.sleep > 0 {
		t := time.NewTimer(f.sleep)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if write {
		f.writes.Add(1)
		if f.failWrites {
			return errors.New("write refused")
		}
		return nil
	}
	f.reads.Add(1)
	return nil
}

func TestClosedLoopCountsAndStopsByItself(t *testing.T) {
	f := &fake{sleep: 200 * time.Microsecond}
	cfg := Config{Mode: ModeClosed, Concurrency: 4, Duration: 300 * time.Millisecond, WriteRatio: 0.5, Keys: 50, ValueSize: 10, Seed: 7}
	start := time.Now()
	res, err := Run(context.Background(), cfg, f.op)
	elapsed := time.Since(start)
	if err != nil {
		t.Fatal(err)
	}
	// Bounded: the window plus at most one op timeout (which this op never
	// reaches); generous slack for a loaded machine.
	if elapsed > cfg.Duration+DefaultOpTimeout {
		t.Errorf("run took %s, want about %s", elapsed, cfg.Duration)
	}
	if res.Ops == 0 || res.Ops != f.calls.Load() {
		t.Errorf("ops %d, op calls %d: every call of a warm-up-free run is measured", res.Ops, f.calls.Load())
	}
	if res.Reads+res.Writes != res.Ops || res.Reads != f.reads.Load() || res.Writes != f.writes.Load() {
		t.Errorf("reads %d + writes %d vs ops %d (fake saw %d/%d)", res.Reads, res.Writes, res.Ops, f.reads.Load(), f.writes.Load())
	}
	if res.Reads == 0 || res.Writes == 0 {
		t.Errorf("a 50/50 mix produced reads=%d writes=%d", res.Reads, res.Writes)
	}
	if res.Errors != 0 || res.FirstError != "" {
		t.Errorf("errors %d (%s)", res.Errors, res.FirstError)
	}
	if res.OpsPerSec <= 0 || res.DurationS <= 0 {
		t.Errorf("ops/s %g over %gs", res.OpsPerSec, res.DurationS)
	}
	if !(res.P50Ms > 0 && res.P50Ms <= res.P99Ms && res.P99Ms <= res.P999Ms && res.P999Ms <= res.MaxMs) {
		t.Errorf("percentiles out of order: p50 %g p99 %g p99.9 %g max %g", res.P50Ms, res.P99Ms, res.P999Ms, res.MaxMs)
	}
	if res.Mode != ModeClosed || res.Concurrency != 4 || res.Keys != 50 || res.ValueSize != 10 || res.Dropped != 0 {
		t.Errorf("row does not describe the run: %+v", res)
	}
}

func TestClosedLoopWarmupIsNotRecorded(t *testing.T) {
	f := &fake{sleep: 100 * time.Microsecond}
	cfg := Config{Concurrency: 2, Warmup: 100 * time.Millisecond, Duration: 100 * time.Millisecond, Keys: 10}
	res, err := Run(context.Background(), cfg, f.op)
	if err != nil {
		t.Fatal(err)
	}
	if res.Ops == 0 || res.Ops >= f.calls.Load() {
		t.Errorf("measured %d of %d calls; the warm-up ones must be left out", res.Ops, f.calls.Load())
	}
}

func TestClosedLoopBoundedInCount(t *testing.T) {
	f := &fake{}
	cfg := Config{Concurrency: 3, Duration: time.Minute, MaxOps: 100, Keys: 5, WriteRatio: 1}
	res, err := Run(context.Background(), cfg, f.op)
	if err != nil {
		t.Fatal(err)
	}
	if f.calls.Load() != 100 || res.Ops != 100 || res.Writes != 100 {
		t.Errorf("calls %d, ops %d, writes %d; want exactly MaxOps=100", f.calls.Load(), res.Ops, res.Writes)
	}
}

func TestErrorsAreCountedNotTimed(t *testing.T) {
	f := &fake{failWrites: true}
	cfg := Config{Concurrency: 2, MaxOps: 1000, Duration: time.Minute, WriteRatio: 0.3, Keys: 10}
	res, err := Run(context.Background(), cfg, f.op)
	if err != nil {
		t.Fatal(err)
	}
	if res.Errors != f.writes.Load() || res.Errors == 0 || res.Writes != 0 {
		t.Errorf("errors %d, failed writes %d, recorded writes %d", res.Errors, f.writes.Load(), res.Writes)
	}
	if res.Ops+res.Errors != 1000 || !strings.Contains(res.FirstError, "write refused") {
		t.Errorf("ops %d + errors %d != 1000, first error %q", res.Ops, res.Errors, res.FirstError)
	}
	if res.WriteP50Ms != 0 || res.ReadP50Ms == 0 {
		t.Errorf("write p50 %g (want 0: no successful write), read p50 %g", res.WriteP50Ms, res.ReadP50Ms)
	}
}

func TestOpTimeoutBoundsAHungSystem(t *testing.T) {
	hang := func(ctx context.Context, _ bool, _ string, _ []byte) error { <-ctx.Done(); return ctx.Err() }
	cfg := Config{Concurrency: 3, Duration: 100 * time.Millisecond, OpTimeout: 50 * time.Millisecond, Keys: 10}
	start := time.Now()
	res, err := Run(context.Background(), cfg, hang)
	if err != nil {
		t.Fatal(err)
	}
	if e := time.Since(start); e > 5*time.Second {
		t.Errorf("a hung system held the run for %s", e)
	}
	if res.Ops != 0 || res.Errors == 0 || !strings.Contains(res.FirstError, "deadline") {
		t.Errorf("ops %d errors %d first %q", res.Ops, res.Errors, res.FirstError)
	}
}

// The open loop's schedule is checked on the intended times the driver
// computes, not on wall-clock rates, so the test holds on a slow machine.
func TestOpenLoopHoldsTheIntendedSchedule(t *testing.T) {
	const rate = 2000
	f := &fake{}
	var mu sync.Mutex
	intended := map[int64]time.Time{}
	early := 0
	cfg := Config{Mode: ModeOpen, Rate: rate, Concurrency: 8, Duration: 250 * time.Millisecond, Warmup: 50 * time.Millisecond, Keys: 100, WriteRatio: 0.5}
	cfg.trace = func(seq int64, in, start time.Time) {
		mu.Lock()
		defer mu.Unlock()
		intended[seq] = in
		if start.Before(in) {
			early++
		}
	}
	res, err := Run(context.Background(), cfg, f.op)
	if err != nil {
		t.Fatal(err)
	}
	const total = rate * 300 / 1000 // (warm-up + duration) * rate
	if len(intended) != total || f.calls.Load() != total {
		t.Fatalf("sent %d requests (op saw %d), want the whole schedule of %d", len(intended), f.calls.Load(), total)
	}
	if early != 0 {
		t.Errorf("%d requests started before their intended time", early)
	}
	t0 := intended[0]
	step := time.Second / rate
	for i := range int64(total) {
		want := t0.Add(time.Duration(i) * step)
		if got := intended[i]; got.Sub(want).Abs() > time.Microsecond {
			t.Fatalf("request %d intended at +%s, want +%s", i, got.Sub(t0), want.Sub(t0))
		}
	}
	// The measured window holds the requests intended after the warm-up:
	// exactly rate * duration of them.
	if res.Ops+res.Errors != rate*250/1000 || res.Dropped != 0 {
		t.Errorf("measured %d ops + %d errors, dropped %d; want %d measured, none dropped", res.Ops, res.Errors, res.Dropped, rate*250/1000)
	}
	if res.TargetRate != rate || res.Mode != ModeOpen {
		t.Errorf("row %+v", res)
	}
}

// A system slower than the schedule: latency counts from the intended
// time, so the queue shows; requests too late to start are dropped and
// counted, and the run still ends by itself.
func TestOpenLoopMeasuresFromIntendedTimeAndDropsTheBacklog(t *testing.T) {
	f := &fake{sleep: 10 * time.Millisecond}
	cfg := Config{Mode: ModeOpen, Rate: 400, Concurrency: 1, Duration: 200 * time.Millisecond, Grace: 100 * time.Millisecond, Keys: 10}
	start := time.Now()
	res, err := Run(context.Background(), cfg, f.op)
	if err != nil {
		t.Fatal(err)
	}
	if e := time.Since(start); e > cfg.Duration+cfg.Grace+DefaultOpTimeout {
		t.Errorf("run took %s", e)
	}
	const total = 80 // 400/s * 200ms
	if res.Ops+res.Errors+res.Dropped != total {
		t.Errorf("ops %d + errors %d + dropped %d != schedule %d", res.Ops, res.Errors, res.Dropped, total)
	}
	if res.Dropped == 0 || res.Late == 0 {
		t.Errorf("dropped %d late %d: a 10ms op at one worker cannot keep up with 400/s", res.Dropped, res.Late)
	}
	// One worker, 10ms per op, a request every 2.5ms: the k-th waits about
	// 7.5ms*k; the median measured latency is far above the 10ms service
	// time (a closed loop would report ~10ms: coordinated omission).
	if res.P50Ms < 50 || res.MaxMs < 100 {
		t.Errorf("p50 %gms max %gms: latency must include the wait behind the queue", res.P50Ms, res.MaxMs)
	}
}

func TestRunInterruptedReturnsPartialResult(t *testing.T) {
	f := &fake{sleep: time.Millisecond}
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	start := time.Now()
	res, err := Run(ctx, Config{Concurrency: 2, Duration: time.Minute, Keys: 10}, f.op)
	if !errors.Is(err, context.Canceled) || !res.Interrupted {
		t.Fatalf("err %v interrupted %v", err, res.Interrupted)
	}
	if time.Since(start) > 10*time.Second {
		t.Errorf("cancel took %s to stop the run", time.Since(start))
	}
}

func TestProgressIsReported(t *testing.T) {
	f := &fake{}
	var n atomic.Int64
	cfg := Config{Concurrency: 1, Duration: 120 * time.Millisecond, Keys: 10, ProgressEvery: 20 * time.Millisecond,
		Progress: func(p Progress) {
			if p.Done < 0 || p.Elapsed <= 0 {
				t.Errorf("progress %+v", p)
			}
			n.Add(1)
		}}
	if _, err := Run(context.Background(), cfg, f.op); err != nil {
		t.Fatal(err)
	}
	if n.Load() == 0 {
		t.Error("no progress report")
	}
}

func TestPreloadWritesEveryKeyOnce(t *testing.T) {
	f := &fake{keys: map[string]int{}}
	if err := Preload(context.Background(), f.op, 1000, 8, 7, time.Second); err != nil {
		t.Fatal(err)
	}
	if len(f.keys) != 1000 || f.writes.Load() != 1000 {
		t.Fatalf("%d distinct keys, %d writes; want 1000 each", len(f.keys), f.writes.Load())
	}
	for _, k := range KeyNames(1000) {
		if f.keys[k] != 1 {
			t.Fatalf("key %s written %d times", k, f.keys[k])
		}
	}
	bad := &fake{failWrites: true}
	err := Preload(context.Background(), bad.op, 10, 8, 2, time.Second)
	var pe *PreloadError
	if !errors.As(err, &pe) || pe.Failed != 10 {
		t.Fatalf("preload against a failing system: %v", err)
	}
}

func TestKeyNamesAndValues(t *testing.T) {
	if KeyName(0) != "key00000000" || KeyName(123) != "key00000123" || KeyName(123456789) != "key123456789" {
		t.Errorf("key names %q %q %q", KeyName(0), KeyName(123), KeyName(123456789))
	}
	v := Value(30, 3)
	if len(v) != 30 || v[0] != 'd' || strings.Trim(string(v), "abcdefghijklmnopqrstuvwxyz") != "" {
		t.Errorf("value %q", v)
	}
}

func TestValidate(t *testing.T) {
	for name, cfg := range map[string]Config{
		"mode":        {Mode: "sideways"},
		"open rate":   {Mode: ModeOpen},
		"ratio":       {WriteRatio: 1.5},
		"concurrency": {Concurrency: -1},
		"value size":  {ValueSize: -1},
		"warmup":      {Warmup: -time.Second},
	} {
		cfg.SetDefaults()
		if err := cfg.Validate(); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("%s: Validate() = %v, want ErrInvalidConfig", name, err)
		}
	}
	good := DefaultConfig()
	if err := good.Validate(); err != nil {
		t.Errorf("defaults invalid: %v", err)
	}
}

func TestArgsRoundTripThroughFlags(t *testing.T) {
	want := Config{Mode: ModeOpen, Concurrency: 9, Rate: 1234.5, Duration: 3 * time.Second, Warmup: 250 * time.Millisecond,
		WriteRatio: 0.9, Keys: 777, ValueSize: 0, OpTimeout: 2 * time.Second, MaxOps: 55, Seed: 42}
	got := DefaultConfig()
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	got.RegisterFlags(fs)
	if err := fs.Parse(want.Args()); err != nil {
		t.Fatal(err)
	}
	got.Grace, got.LateThreshold, got.ProgressEvery = 0, 0, 0
	if !reflect.DeepEqual(got, want) {
		t.Errorf("round trip:\n got %+v\nwant %+v", got, want)
	}
}
