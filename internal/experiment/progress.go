package experiment

import (
	"fmt"
	"io"
	"time"

	"github.com/kvdb/kvdb/internal/load"
)

// progress shows where the matrix is: run i of n, elapsed, time left.
type progress struct {
	w        io.Writer
	terminal bool
	total    int
	perRun   time.Duration
	started  time.Time
	finished int
	runStart time.Time
}

func newProgress(w io.Writer, terminal bool, total int, perRun time.Duration) *progress {
	return &progress{w: w, terminal: terminal, total: total, perRun: perRun, started: time.Now()}
}

// eta estimates the time left from the runs finished so far (or from the
// configured run length before the first one finishes).
func (p *progress) eta() time.Duration {
	per := p.perRun + 3*time.Second
	if p.finished > 0 {
		per = time.Since(p.started) / time.Duration(p.finished)
	}
	return time.Duration(p.total-p.finished) * per
}

func (p *progress) start(label string) {
	p.runStart = time.Now()
	fmt.Fprintf(p.w, "[%d/%d] %s  (elapsed %s, about %s left)\n",
		p.finished+1, p.total, label, round(time.Since(p.started)), round(p.eta()))
}

func (p *progress) finish(s *load.Summary, f figures) {
	p.finished++
	if s == nil {
		return
	}
	lin := "not checked"
	if s.Linearizable != nil {
		lin = map[bool]string{true: "yes", false: "no"}[*s.Linearizable]
	}
	fmt.Fprintf(p.w, "      read p50 %.1f ms p99 %.1f ms | write p50 %.1f ms p99 %.1f ms | %.1f/%.0f QPS | errors %d | stale %d | inversions %d | linearizable %s  (%s)\n",
		s.Read.P50Ms, s.Read.P99Ms, s.Write.P50Ms, s.Write.P99Ms, s.AchievedQPS, s.TargetQPS,
		s.Read.Errors+s.Write.Errors, s.StaleReads, s.Inversions, lin, round(time.Since(p.runStart)))
	if f.fault != nil {
		ft := f.fault
		end := "never healed"
		if ft.EndMs != nil {
			end = fmt.Sprintf("%.1f s", *ft.EndMs/1000)
		}
		rec := ""
		if !ft.Recovered {
			rec = " (no write acknowledged after it)"
		}
		fmt.Fprintf(p.w, "      fault %.1f s to %s: %s (%s)\n      writes unavailable %.2f s%s; no write acknowledged for %.2f s in all\n",
			ft.StartMs/1000, end, ft.Role, ft.Action, *f.unavailableMs/1000, rec, f.noAckMs/1000)
		if ft.Error != "" {
			fmt.Fprintf(p.w, "      fault error: %s\n", ft.Error)
		}
	}
	if f.finalCheck {
		conv := "converged"
		if !f.converged {
			conv = "NOT converged"
		}
		fmt.Fprintf(p.w, "      acknowledged writes %d: lost %d, on some nodes only %d (replicas %s %.1f s after the load)\n",
			f.durability.Acked, f.durability.Lost, f.durability.Partial, conv, f.settledMs/1000)
	}
}

// finishProbe reports a staleness probe.
func (p *progress) finishProbe(r ProbeRecord) {
	p.finished++
	fmt.Fprintf(p.w, "      %d probe writes at %.0f/s (%d failed), %d reads (%d per write over %.0f ms; %d failed)  (%s)\n",
		r.Writes, r.Rate, r.WriteErrors, r.Reads, r.ReadsPerWrite, r.WindowMs, r.ReadErrors, round(time.Since(p.runStart)))
}

func (p *progress) done() {
	fmt.Fprintf(p.w, "finished %d runs in %s\n", p.finished, round(time.Since(p.started)))
}

func round(d time.Duration) time.Duration { return d.Round(time.Second) }
