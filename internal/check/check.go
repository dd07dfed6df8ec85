// Package check analyses a recorded history (package history): stale reads
// and read inversions as docs/design.md defines them, a per-key
// linearizability verdict from porcupine (register model), and the
// distribution of intervals between a write and a later read of the same
// key.
//
// Definitions, per key, by real-time order (the send and done times the
// history records), never by version numbers, which a faulty server may
// assign out of order:
//
//   - A successful read (200, or 404) returns a write: the one that wrote
//     its value (values are unique within a run; if one repeats, the
//     writes of it are narrowed by the version the read returned, and the
//     read is judged by whichever of the rest suits it best), or for a 404
//     the initial absent state, which precedes every write. Writes that
//     may have taken effect are those acknowledged (201), which took
//     effect by their acknowledgement, and those with an unknown outcome,
//     which may take effect at any time after they were sent (concurrent
//     with everything later). A read whose value no such write sent
//     before the read finished is unexplained: neither stale nor an
//     inversion, and illegal for porcupine.
//   - A stale read returns neither the last write acknowledged before the
//     read began nor a write concurrent with the read: some write
//     acknowledged before the read was sent began after the returned
//     write had finished (writes that overlap each other are unordered, so
//     any of the last ones will do). A 404 after an acknowledged write is
//     stale, and so is the value of an older write with a higher version.
//   - An inversion is a read that returns older data than a read that
//     finished before it was sent: the write it returned had finished
//     before the write the earlier read returned began.
//   - Linearizability: each key is a register whose initial state is
//     "absent". Reads and definitely-failed writes (dropped, 3xx, 4xx) that
//     did not succeed are left out; writes whose outcome is unknown
//     (timeout, network error, 5xx) may have taken effect at any time after
//     they were sent, so, as porcupine's author recommends, they are kept
//     with a return time at the end of the history.
package check

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"time"

	"github.com/kvdb/kvdb/internal/history"
)

// Config configures a check.
type Config struct {
	// SkipLinearizability skips the porcupine check (the verdict is then
	// "not_checked").
	SkipLinearizability bool
	// Timeout bounds the porcupine check as a whole (default 30s). When it
	// runs out the verdict is "unknown" unless a violation was found.
	Timeout time.Duration
	// VizPath, if set, is where porcupine's HTML visualization of the
	// violating keys is written when the history is not linearizable.
	VizPath string
	// MaxVizKeys caps how many violating keys the visualization shows
	// (default 8), to keep it readable.
	MaxVizKeys int
	// MaxExamples caps the stale-read and inversion examples kept, and the
	// violating keys listed (default 10).
	MaxExamples int
	// Workers is how many keys are checked in parallel (default GOMAXPROCS).
	Workers int
}

// SetDefaults fills zero fields.
func (c *Config) SetDefaults() {
	if c.Timeout == 0 {
		c.Timeout = 30 * time.Second
	}
	if c.MaxVizKeys == 0 {
		c.MaxVizKeys = 8
	}
	if c.MaxExamples == 0 {
		c.MaxExamples = 10
	}
	if c.Workers == 0 {
		c.Workers = runtime.GOMAXPROCS(0)
	}
}

// Validate reports invalid settings.
func (c *Config) Validate() error {
	var errs []error
	if c.Timeout < 0 {
		errs = append(errs, fmt.Errorf("check timeout %v: must be positive", c.Timeout))
	}
	if c.MaxVizKeys < 0 || c.MaxExamples < 0 || c.Workers < 0 {
		errs = append(errs, errors.New("check: max-viz-keys, max-examples and workers must not be negative"))
	}
	return errors.Join(errs...)
}

// Result is the outcome of a check. Its JSON form is part of load's
// summary.json (embedded at the top level).
type Result struct {
	Anomalies
	// Linearizable is true, false, or null when not decided (not checked
	// or timed out).
	Linearizable *bool `json:"linearizable"`
	// Linearizability details the porcupine check.
	Linearizability Linearizability `json:"linearizability"`
	// WriteRead is the distribution of intervals between a write and a
	// later read of the same key.
	WriteRead IntervalStats `json:"write_read_interval"`
}

// Run analyses ops. It returns an error for an invalid config or when the
// visualization cannot be written (the result is still filled in); a
// cancelled ctx makes the verdict "unknown".
func Run(ctx context.Context, ops []history.Op, cfg Config) (Result, error) {
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		return Result{}, err
	}
	res := Result{
		Anomalies: FindAnomalies(ops, cfg.MaxExamples),
		WriteRead: Intervals(ops),
	}
	var err error
	if cfg.SkipLinearizability {
		res.Linearizability = Linearizability{Verdict: NotChecked}
	} else {
		res.Linearizability, err = CheckLinearizability(ctx, ops, cfg)
	}
	res.Linearizable = res.Linearizability.Verdict.Bool()
	return res, err
}
