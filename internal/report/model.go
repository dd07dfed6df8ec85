// Package report turns experiment results into charts (PNG and SVG), a
// self-contained HTML page and a PDF: a summary table, latency
// distributions with their long tails, write-to-read interval
// distributions, the theoretical delay floors beside the measured medians,
// and an analysis generated from the measured numbers.
package report

import "math"

// Stats are one operation kind's figures in one run.
type Stats struct {
	Count  int     `json:"count"`
	Errors int     `json:"errors"`
	P50    float64 `json:"p50_ms"`
	P90    float64 `json:"p90_ms"`
	P95    float64 `json:"p95_ms"`
	P99    float64 `json:"p99_ms"`
	P999   float64 `json:"p999_ms"`
	Max    float64 `json:"max_ms"`
}

// Point is one point of a percentile spectrum: the latency (ms) at
// percentile P (0..100).
type Point struct {
	P  float64 `json:"p"`
	Ms float64 `json:"ms"`
}

// Run is one load run: one config at one write ratio.
type Run struct {
	Config       string  `json:"config"` // preset name: w5r1, w1r5, w3r3, leaderless, ...
	Mode         string  `json:"mode"`
	W            int     `json:"w"`
	R            int     `json:"r"`
	N            int     `json:"n"`
	WriteRatio   float64 `json:"write_ratio"`
	Delays       string  `json:"delays"`
	DurationSec  float64 `json:"duration_s"`
	TargetQPS    float64 `json:"target_qps"`
	AchievedQPS  float64 `json:"achieved_qps"`
	Read         Stats   `json:"read"`
	Write        Stats   `json:"write"`
	StaleReads   int     `json:"stale_reads"`
	Inversions   int     `json:"inversions"`
	Linearizable *bool   `json:"linearizable"`
	// ErrorsByStatus counts failed requests by HTTP status ("0" = no answer).
	ErrorsByStatus map[string]int `json:"errors_by_status,omitempty"`
	// FloorWriteMs and FloorReadMs are the delay profile's theoretical
	// minimum latencies for this config.
	FloorWriteMs float64 `json:"floor_write_ms"`
	FloorReadMs  float64 `json:"floor_read_ms"`
	// ReadSpectrum and WriteSpectrum are latency percentile spectra.
	ReadSpectrum  []Point `json:"-"`
	WriteSpectrum []Point `json:"-"`
	// Intervals are evenly spaced quantiles (ms) of the measured
	// write-to-read intervals of reads of a key written earlier in the run
	// (for the CDF charts).
	Intervals []float64 `json:"-"`
	// InversionAgesMs holds, for every inversion, how long before the read
	// the latest write of its key had been sent: the inconsistency window
	// the run exposed.
	InversionAgesMs []float64 `json:"-"`
	// Dir is where the run's files are, relative to the results folder.
	Dir string `json:"dir"`
}

// Results is a whole experiment.
// IntervalSummary is the write-to-read interval distribution pooled over
// every run.
type IntervalSummary struct {
	Count         int64   // reads of a key written earlier in their run
	P50, P90, P99 float64 // ms
	Within1s      float64 // fraction of those reads within one second
}

type Results struct {
	// Generator describes the key generator and its parameters (a sentence
	// or two for the report).
	Generator string
	// Intervals pools the runs' write-to-read intervals.
	Intervals IntervalSummary
	Title     string
	Started   string
	Delays    string
	Runs      []Run
}

// Configs returns the configs in the order they first appear.
func (r *Results) Configs() []string {
	var out []string
	seen := map[string]bool{}
	for _, run := range r.Runs {
		if !seen[run.Config] {
			seen[run.Config] = true
			out = append(out, run.Config)
		}
	}
	return out
}

// Ratios returns the write ratios in the order they first appear.
func (r *Results) Ratios() []float64 {
	var out []float64
	seen := map[float64]bool{}
	for _, run := range r.Runs {
		if !seen[run.WriteRatio] {
			seen[run.WriteRatio] = true
			out = append(out, run.WriteRatio)
		}
	}
	return out
}

// Find returns the run of config at ratio, or nil.
func (r *Results) Find(config string, ratio float64) *Run {
	for i := range r.Runs {
		if r.Runs[i].Config == config && math.Abs(r.Runs[i].WriteRatio-ratio) < 1e-9 {
			return &r.Runs[i]
		}
	}
	return nil
}
