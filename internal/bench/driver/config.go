// Package driver drives a key-value workload against any system and
// measures it: a closed loop (a fixed number of clients, each sending its
// next request when the previous one is answered) or an open loop (requests
// intended at a fixed rate, latency measured from the intended start time
// so that a stalled system cannot hide its queue — no coordinated
// omission; the scheduler is package openloop, the load tester's too), with
// HDR latency histograms and one Result row per run.
//
// The benchmark code lives in three places, one job each:
//
//   - internal/bench: `kvdb bench` itself — workloads, the kvdb target,
//     starting the peers, tables;
//   - internal/bench/driver (this package): the loop every system is driven
//     with;
//   - bench/ (a Go module of its own, github.com/kvdb/kvdb/bench): the Redis
//     and etcd clients and the kvdb-peerbench command that `kvdb bench`
//     runs for them. It is a separate module only so that go-redis and etcd
//     clientv3 stay out of the main module's go.mod; being inside the
//     repository's import path, it may import this internal package, so
//     kvdb and its peers run exactly the same loop.
package driver

import (
	"errors"
	"flag"
	"fmt"
	"strconv"
	"time"

	"github.com/kvdb/kvdb/internal/latency"
)

// Modes.
const (
	// ModeClosed runs Concurrency workers back to back.
	ModeClosed = "closed"
	// ModeOpen sends request i at t0 + i/Rate whatever the system does.
	ModeOpen = "open"
)

// Defaults of Config.
const (
	DefaultConcurrency   = 32
	DefaultDuration      = 10 * time.Second
	DefaultWarmup        = time.Second
	DefaultKeys          = 10000
	DefaultValueSize     = 100
	DefaultOpTimeout     = 5 * time.Second
	DefaultMaxOps        = 100_000_000
	DefaultLateThreshold = time.Millisecond
	DefaultProgressEvery = time.Second
	// MaxLatency is the highest latency the histograms record; longer
	// ones are clamped to it. The histograms are package latency's, the
	// load tester's and checker's too (1 µs .. 1 h, 3 significant digits).
	MaxLatency = time.Duration(latency.MaxUS) * time.Microsecond
)

// Config describes one run. The zero value of a field documented with a
// default takes that default (SetDefaults); DefaultConfig returns every
// default filled in.
type Config struct {
	// Mode is ModeClosed or ModeOpen (default closed).
	Mode string
	// Concurrency is the number of workers: in the closed loop the number
	// of requests always in flight, in the open loop the most that may be
	// in flight at once (a request due while all are busy waits for one,
	// and its wait counts in its latency). Default 32.
	Concurrency int
	// Rate is the open loop's target in operations per second (required
	// in open mode, ignored in closed mode).
	Rate float64
	// Duration is the measured window (default 10s).
	Duration time.Duration
	// Warmup runs the same load before the measured window without
	// recording it (zero: no warm-up).
	Warmup time.Duration
	// WriteRatio is the fraction of operations that are writes, 0..1.
	WriteRatio float64
	// Keys is the size of the key space; operations pick keys uniformly
	// (default 10000).
	Keys int
	// ValueSize is the size in bytes of every written value (0 allowed).
	ValueSize int
	// OpTimeout bounds every operation (default 5s).
	OpTimeout time.Duration
	// MaxOps bounds the number of operations of the run, warm-up included
	// (default 100,000,000), so that the loop is bounded in count as well
	// as in time.
	MaxOps int64
	// Grace (open loop) is how long after the end of the schedule a
	// request still waiting for a free worker may start; the rest are
	// dropped and counted (default max(1s, Duration/10)).
	Grace time.Duration
	// LateThreshold (open loop): a request that starts later than this
	// after its intended time counts as late (default 1ms).
	LateThreshold time.Duration
	// Seed seeds the choice of operations and keys.
	Seed uint64
	// Progress, if set, is called every ProgressEvery (default 1s) from a
	// goroutine of its own while the run goes on.
	Progress      func(Progress)
	ProgressEvery time.Duration

	// trace, if set, sees every operation's sequence number (open loop;
	// -1 in the closed loop), intended and actual start. Tests only.
	trace func(seq int64, intended, start time.Time)
}

// DefaultConfig returns a closed-loop configuration with every default.
func DefaultConfig() Config {
	c := Config{Mode: ModeClosed, Warmup: DefaultWarmup, WriteRatio: 0.5, ValueSize: DefaultValueSize, Seed: 1}
	c.SetDefaults()
	return c
}

// SetDefaults fills the zero fields that have a default.
func (c *Config) SetDefaults() {
	if c.Mode == "" {
		c.Mode = ModeClosed
	}
	if c.Concurrency == 0 {
		c.Concurrency = DefaultConcurrency
	}
	if c.Duration == 0 {
		c.Duration = DefaultDuration
	}
	if c.Keys == 0 {
		c.Keys = DefaultKeys
	}
	if c.OpTimeout == 0 {
		c.OpTimeout = DefaultOpTimeout
	}
	if c.MaxOps == 0 {
		c.MaxOps = DefaultMaxOps
	}
	if c.Grace == 0 {
		c.Grace = max(time.Second, c.Duration/10)
	}
	if c.LateThreshold == 0 {
		c.LateThreshold = DefaultLateThreshold
	}
	if c.ProgressEvery == 0 {
		c.ProgressEvery = DefaultProgressEvery
	}
}

// ErrInvalidConfig wraps every error of Validate.
var ErrInvalidConfig = errors.New("invalid benchmark configuration")

// Validate reports every invalid setting, after SetDefaults.
func (c *Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	switch c.Mode {
	case ModeClosed:
	case ModeOpen:
		if !(c.Rate > 0) || c.Rate > 1e7 {
			bad("open loop needs a rate in (0, 1e7] ops/s, have %g", c.Rate)
		}
	default:
		bad("mode %q: want %s or %s", c.Mode, ModeClosed, ModeOpen)
	}
	if c.Concurrency < 1 || c.Concurrency > 100_000 {
		bad("concurrency %d outside 1..100000", c.Concurrency)
	}
	if c.Duration <= 0 {
		bad("duration %s must be positive", c.Duration)
	}
	if c.Warmup < 0 {
		bad("warm-up %s must not be negative", c.Warmup)
	}
	if !(c.WriteRatio >= 0 && c.WriteRatio <= 1) {
		bad("write ratio %g outside 0..1", c.WriteRatio)
	}
	if c.Keys < 1 || c.Keys > 100_000_000 {
		bad("keys %d outside 1..100000000", c.Keys)
	}
	if c.ValueSize < 0 || c.ValueSize > 64<<20 {
		bad("value size %d outside 0..64MiB", c.ValueSize)
	}
	if c.OpTimeout <= 0 {
		bad("op timeout %s must be positive", c.OpTimeout)
	}
	if c.MaxOps < 1 {
		bad("max ops %d must be at least 1", c.MaxOps)
	}
	if c.Grace < 0 || c.LateThreshold < 0 || c.ProgressEvery < 0 {
		bad("grace, late threshold and progress interval must not be negative")
	}
	if len(errs) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %w", ErrInvalidConfig, errors.Join(errs...))
}

// RegisterFlags registers the workload flags on fs, bound to c (whose
// current values are the defaults shown). `kvdb bench` and the peer client
// share them, so both parse the same workload the same way.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.Mode, "mode", c.Mode, "closed (fixed concurrency) or open (fixed target rate, latency from the intended start)")
	fs.IntVar(&c.Concurrency, "concurrency", c.Concurrency, "closed loop: clients always in flight; open loop: most requests in flight at once")
	fs.Float64Var(&c.Rate, "rate", c.Rate, "open loop: target operations per second")
	fs.DurationVar(&c.Duration, "duration", c.Duration, "measured window per run")
	fs.DurationVar(&c.Warmup, "warmup", c.Warmup, "load before the measured window, not recorded")
	fs.Float64Var(&c.WriteRatio, "write-ratio", c.WriteRatio, "fraction of operations that are writes, 0..1")
	fs.IntVar(&c.Keys, "keys", c.Keys, "key space size; keys are written once before the run, then picked uniformly")
	fs.IntVar(&c.ValueSize, "value-size", c.ValueSize, "bytes per written value")
	fs.DurationVar(&c.OpTimeout, "op-timeout", c.OpTimeout, "timeout of one operation")
	fs.Int64Var(&c.MaxOps, "max-ops", c.MaxOps, "cap on operations per run (warm-up included)")
	fs.Uint64Var(&c.Seed, "seed", c.Seed, "random seed for operations and keys")
}

// Args returns the command-line flags (as registered by RegisterFlags)
// that reproduce c.
func (c *Config) Args() []string {
	return []string{
		"--mode", c.Mode,
		"--concurrency", strconv.Itoa(c.Concurrency),
		"--rate", strconv.FormatFloat(c.Rate, 'g', -1, 64),
		"--duration", c.Duration.String(),
		"--warmup", c.Warmup.String(),
		"--write-ratio", strconv.FormatFloat(c.WriteRatio, 'g', -1, 64),
		"--keys", strconv.Itoa(c.Keys),
		"--value-size", strconv.Itoa(c.ValueSize),
		"--op-timeout", c.OpTimeout.String(),
		"--max-ops", strconv.FormatInt(c.MaxOps, 10),
		"--seed", strconv.FormatUint(c.Seed, 10),
	}
}
