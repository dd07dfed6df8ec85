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

	// The second edition's fields (issue 13): fault scenarios, durability,
	// hops. Steady runs have Scenario "steady", no Fault and a null
	// WriteUnavailableMs.

	// Scenario is steady, kill-follower (leaderless: a node), kill-leader
	// (leaderless: node1), partition or pause (see package experiment).
	Scenario string `json:"scenario"`
	// ReadFrom is where the load sent reads: all, followers or leader.
	ReadFrom string `json:"read_from,omitempty"`
	// Fault is the fault's target and window; nil in a steady run.
	Fault *Fault `json:"fault,omitempty"`
	// WriteUnavailableMs is the write-unavailability window: from the
	// fault's start to the first acknowledgement of a write sent at or
	// after it (ms; it includes that write's latency). If none was
	// acknowledged before the run ended it runs to the end of the sending
	// window and Fault.Recovered is false. Null in a steady run.
	WriteUnavailableMs *float64 `json:"write_unavailable_ms"`
	// NoAckMs is the total time with no acknowledged write: the
	// TimelineBucketMs buckets, from the fault's start (a steady run: from
	// its first acknowledgement) to the end of the sending window, in
	// which no write acknowledgement arrived.
	NoAckMs float64 `json:"no_ack_ms"`
	// AckedWrites counts acknowledged writes. After the run, once the
	// cluster settled, every key was read from every node's own copy:
	// AckedLost counts acknowledged writes no node held (neither the write
	// nor a later one of its key, by real-time order), AckedPartial those
	// some nodes held and others not. FinalCheck is false when no such read
	// was made (the two counts then mean nothing).
	AckedWrites  int  `json:"acked_writes"`
	AckedLost    int  `json:"acked_lost"`
	AckedPartial int  `json:"acked_partial"`
	FinalCheck   bool `json:"final_check"`
	// Converged reports whether every node held the same copy of every key
	// at the final read, SettledMs how long after the load it was made.
	Converged bool    `json:"converged"`
	SettledMs float64 `json:"settled_ms"`
	// ReadErrorsByStatus and WriteErrorsByStatus split ErrorsByStatus.
	ReadErrorsByStatus  map[string]int `json:"read_errors_by_status,omitempty"`
	WriteErrorsByStatus map[string]int `json:"write_errors_by_status,omitempty"`
	// Timeline counts operations per TimelineBucketMs of the run (by
	// intended time; acknowledgements by arrival): writes and reads
	// refused over time.
	TimelineBucketMs float64      `json:"timeline_bucket_ms,omitempty"`
	Timeline         []TimeBucket `json:"timeline,omitempty"`
	// Hops summarizes the one-way times of node-to-node messages the
	// nodes measured in this run (PBS's W, A, R, S: write, ack, read,
	// response).
	Hops map[string]HopStats `json:"hops,omitempty"`

	// Ops is every operation of the run as a point of the Jepsen-style
	// timeline chart (presentation only, not in report.json). The
	// collector may fill it; when it is nil, Build reads the run's
	// history file under Dir for the fault runs (see timeline.go).
	Ops []OpPoint `json:"-"`
}

// Fault is a fault's target and window, in ms from the run's start (the
// intended time of its first request: the timeline's and the history's
// origin).
type Fault struct {
	// Target is the node hit ("node1"), Role its role then: leader,
	// follower or node (leaderless).
	Target string `json:"target"`
	Role   string `json:"role"`
	// Action says what was done.
	Action string `json:"action"`
	// StartMs is when the fault began, EndMs when it was healed (restart,
	// heal, resume); EndMs is null if it never was.
	StartMs float64  `json:"start_ms"`
	EndMs   *float64 `json:"end_ms"`
	// Recovered reports whether a write sent after the fault's start was
	// acknowledged before the run ended.
	Recovered bool `json:"recovered"`
	// FirstAckedSentMs is when the first acknowledged write sent after the
	// fault was sent, from the fault's start (null if none).
	FirstAckedSentMs *float64 `json:"first_acked_sent_ms"`
	// Error reports a fault or heal that failed.
	Error string `json:"error,omitempty"`
}

// TimeBucket is one bucket of a run's timeline.
type TimeBucket struct {
	// StartMs is the bucket's start, from the run's start.
	StartMs float64 `json:"start_ms"`
	// Operations intended in the bucket, by outcome (a read answered 404
	// is OK; dropped requests count as failed).
	WritesOK     int `json:"writes_ok"`
	WritesFailed int `json:"writes_failed"`
	ReadsOK      int `json:"reads_ok"`
	ReadsFailed  int `json:"reads_failed"`
	// WriteAcks counts write acknowledgements that arrived in the bucket.
	WriteAcks int `json:"write_acks"`
}

// HopStats summarizes one hop's measured times (ms).
type HopStats struct {
	Count int     `json:"count"`
	P50   float64 `json:"p50_ms"`
	P99   float64 `json:"p99_ms"`
}

// Staleness is one config's staleness over time since acknowledgement:
// the probability that a read sent t after the latest write of its key was
// acknowledged returns that write or a newer one — measured from the
// steady runs' histories, and predicted with PBS (package pbs) from the
// hops the nodes measured in the same runs.
type Staleness struct {
	// Runs is the number of runs pooled; Reads the reads placed after an
	// acknowledged write of their key with t in the buckets' range.
	Runs  int `json:"runs"`
	Reads int `json:"reads"`
	// Measured is the fraction of fresh reads per bucket of t; Predicted
	// is, per bucket, the prediction averaged over the same reads' t (the
	// curve is not linear within a bucket). Both have one point per
	// bucket; a bucket's Reads says how many reads it holds.
	Measured  []StalenessPoint `json:"measured"`
	Predicted []StalenessPoint `json:"predicted"`
	// Curve is the prediction at evenly spaced t (for drawing), averaged
	// over the runs by their reads.
	Curve []CurvePoint `json:"predicted_curve,omitempty"`
	// RMSE is the root-mean-square gap between Measured and Predicted in
	// percentage points over the buckets with at least MinReads reads;
	// null if there are none or no prediction could be made.
	// SamplingRMSE is the gap sampling alone would leave on average (the
	// binomial standard error of each bucket's measured fraction at the
	// predicted probability, root-mean-squared): an RMSE near it is as
	// close as these many reads can show.
	RMSE         *float64 `json:"rmse"`
	SamplingRMSE *float64 `json:"rmse_sampling"`
	MinReads     int      `json:"min_reads"`
	// SingleWrite is the same comparison over the reads WARS describes:
	// those of a key with one write in flight — its latest acknowledged
	// write overlapped no other write of the key, and no newer one was sent
	// before the read ended. Measured freshness counts a read that returns
	// any write concurrent with the latest as fresh (real-time order), which
	// a model of one write at a time cannot predict; the gap between RMSE
	// and SingleWrite.RMSE is what concurrent writes of a key add.
	SingleWrite *StalenessFit `json:"single_write,omitempty"`
	// Model describes the PBS model used; Note any caveat (e.g. why no
	// prediction could be made).
	Model string `json:"model,omitempty"`
	Note  string `json:"note,omitempty"`
	// Source says whose reads the measured curve holds: SourceProbe (a
	// staleness probe: fresh keys written once and read at set times
	// after the acknowledgement, described by Probe) or SourceWorkload
	// (the steady runs' mixed workload).
	Source string     `json:"source,omitempty"`
	Probe  *ProbeInfo `json:"probe,omitempty"`
	// Workload, with a probe, is the same comparison over the steady
	// runs' reads: hot keys with several writes in flight, and (R>1)
	// read repair, which the model leaves out.
	Workload *StalenessFit `json:"workload,omitempty"`
}

// Sources of a measured staleness curve.
const (
	SourceProbe    = "probe"
	SourceWorkload = "workload"
)

// ProbeInfo describes a staleness probe run.
type ProbeInfo struct {
	Dir           string  `json:"dir,omitempty"`
	Rate          float64 `json:"rate"`
	ReadsPerWrite int     `json:"reads_per_write"`
	WindowMs      float64 `json:"window_ms"`
	DurationS     float64 `json:"duration_s"`
	Writes        int     `json:"writes"`
	Reads         int     `json:"reads"`
	WriteErrors   int     `json:"write_errors"`
	ReadErrors    int     `json:"read_errors"`
	ReadFrom      string  `json:"read_from"`
	// Hops summarizes the one-way times the nodes measured during the
	// probe: the model's input.
	Hops map[string]HopStats `json:"hops,omitempty"`
}

// StalenessFit is a measured curve against its prediction over a subset of
// the reads, in the same buckets as Staleness.
type StalenessFit struct {
	Reads        int              `json:"reads"`
	Measured     []StalenessPoint `json:"measured"`
	Predicted    []StalenessPoint `json:"predicted"`
	RMSE         *float64         `json:"rmse"`
	SamplingRMSE *float64         `json:"rmse_sampling"`
}

// StalenessPoint is one bucket [LoMs, HiMs) of a staleness curve.
type StalenessPoint struct {
	LoMs  float64 `json:"lo_ms"`
	HiMs  float64 `json:"hi_ms"`
	TMs   float64 `json:"t_ms"`  // the mean t of the bucket's reads
	Reads int     `json:"reads"` // reads in the bucket
	Fresh float64 `json:"fresh"` // 0..1; 0 when Reads is 0
}

// CurvePoint is one point of a predicted curve.
type CurvePoint struct {
	TMs   float64 `json:"t_ms"`
	Fresh float64 `json:"fresh"`
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
	// Staleness is each config's staleness curve, measured and predicted
	// (configs without steady runs have none).
	Staleness map[string]*Staleness
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
