// Package pbs predicts staleness with Probabilistically Bounded Staleness
// (Bailis, Venkataraman, Franklin, Hellerstein and Stoica, "Probabilistically
// Bounded Staleness for Practical Partial Quorums", VLDB 2012): the WARS
// model, evaluated by Monte Carlo over per-hop latency distributions, as
// kvdb's replication (package replication) actually behaves.
//
// The question: what is the probability that a read beginning t after a
// write was acknowledged returns that write or a newer one? Model.Predict
// answers it for a list of t.
//
// # The hops (WARS)
//
// For each of the N-1 peers of the write's coordinator:
//
//   - W: from the coordinator sending the replication message until the
//     peer has applied it (the peer's apply delay included);
//   - A: from the peer applying it until its acknowledgement reaches the
//     coordinator;
//
// and for each node a read coordinator asks:
//
//   - R: from the read coordinator sending the read request until the peer
//     reads its copy (the peer's read delay included);
//   - S: from the peer reading its copy until its answer reaches the read
//     coordinator.
//
// Each is drawn independently from its Dist for every message (WARS's
// assumption of independent, identically distributed hops); a negative
// draw counts as zero.
//
// # Writes
//
// All times are relative to the moment the coordinator applied the write
// locally (its own copy is visible at 0).
//
// Parallel fan-out (the "none" profile, and WARS itself): every message
// leaves at 0. Peer i's copy is visible at V_i = W_i; the outcome of its
// replication step reaches the write path at D_i = V_i + A_i + Gap (Gap is
// zero in the none profile; replication.core.replicate sleeps it after
// every send, in both modes). The client is acknowledged once W copies,
// the coordinator's own included, are: commit = the (W-1)-th smallest D_i,
// and commit = 0 when W = 1.
//
// Sequential fan-out (the "paper" profile; the extension of WARS that
// kvdb needs): the coordinator replicates to its peers one after another,
// in a fixed order, and sleeps Gap after each acknowledgement. Step k
// (k = 1..N-1) starts when step k-1 ends (step 1 at 0):
//
//	V_k   = start_k + W_k
//	end_k = V_k + A_k + Gap
//	start_{k+1} = end_k
//
// and commit = end_{W-1} (the gap included: the write path hears of step k
// only after its gap sleep), 0 when W = 1. Later steps continue in the
// background, so with constant hops the peer visited k-th becomes visible
// at k*W + (k-1)*(A+Gap): with the paper's delays (W = 100 ms, A ≈ 0,
// Gap = 200 ms) at 100, 400, 700 and 1000 ms.
//
// A leaderless write with W < N first queries the current version (the
// query phase of multi-writer ABD). It delays the local apply and
// everything after it by the same amount, so it shifts commit and every
// V_i alike and leaves staleness relative to commit unchanged: the model
// ignores it. So does the client's own round trip to the coordinator
// (sub-millisecond on one machine).
//
// # Reads
//
// A read begins at commit + t on one node, the read coordinator: the
// write's coordinator with probability ReadAtCoordinator, otherwise a
// peer chosen uniformly (with N = 1, always the coordinator). For
// leader-follower configurations whose reads go to followers only that is
// 0; when clients pick any of the N nodes uniformly (leaderless, or
// leader-follower reads spread over all nodes) it is 1/N.
//
// R = 1: a local read, no hops. It is fresh iff the read coordinator's
// copy is visible by then: V_reader <= commit + t (V = 0 for the write's
// coordinator).
//
// R > 1: the read coordinator reads its own copy at commit + t and asks
// every other node in parallel; node k reads its copy at commit + t + R_k
// and its answer arrives at commit + t + R_k + S_k. The read uses the
// first R-1 answers to arrive (ties broken in a fixed order). It is fresh
// iff its own copy or one of those R-1 copies held the write when read:
// V_reader <= commit + t, or V_k <= commit + t + R_k for one of them.
// It returns the highest version it saw, so any fresh copy makes it fresh.
//
// Writing τ = min over the copies the read uses of (V_k - R_k - commit),
// with R_k = 0 for the reader's own copy, a trial is fresh at t iff
// t >= τ. Which copies the read uses does not depend on t, so each trial
// draws one τ and the curve is the empirical distribution function of τ:
// Predict runs its trials once and evaluates every t against the same
// trials (the curve is monotone in t; the paper's per-t runs are not).
//
// With W = N every V_i precedes commit, and with R = N the read meets the
// write's coordinator (V = 0), so both are always fresh for t >= 0.
//
// # Measuring the hops
//
// One-way times need one clock at both ends: true for the nodes of one
// process or one machine. Across machines whose clocks disagree by more
// than the hops themselves, measure round trips at the coordinator and
// split them (half each way, or the replica's own processing time, which
// it can measure on its clock, subtracted), as Bailis et al. did with
// Cassandra.
package pbs

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"time"
)

// Dist is a distribution of one hop's time.
type Dist interface {
	// Sample draws one time. It must not return a negative duration.
	Sample(r *rand.Rand) time.Duration
}

// Empirical returns the distribution that draws uniformly from samples
// (resampling what the nodes measured). It keeps its own copy; negative
// samples (clocks that disagree) count as zero. An empirical distribution
// of no samples draws zero, and Model.Validate rejects it wherever the
// model uses it, so a hop that was never measured is an error rather than
// a silent zero.
func Empirical(samples []time.Duration) Dist {
	s := make([]time.Duration, len(samples))
	for i, d := range samples {
		s[i] = max(d, 0)
	}
	return empirical(s)
}

type empirical []time.Duration

func (e empirical) Sample(r *rand.Rand) time.Duration {
	if len(e) == 0 {
		return 0
	}
	return e[r.IntN(len(e))]
}

// Constant returns the distribution that always draws d.
func Constant(d time.Duration) Dist { return constant(d) }

type constant time.Duration

func (c constant) Sample(*rand.Rand) time.Duration { return time.Duration(c) }

// Func is a distribution given by a function, e.g. a parametric one:
//
//	pbs.Func(func(r *rand.Rand) time.Duration { return time.Duration(r.ExpFloat64() * float64(time.Millisecond)) })
type Func func(r *rand.Rand) time.Duration

// Sample calls f.
func (f Func) Sample(r *rand.Rand) time.Duration { return f(r) }

// Model is a replicated register under the WARS model (see the package
// comment for the equations).
type Model struct {
	// N is the number of replicas (>= 1).
	N int
	// W is how many copies, the coordinator's own included, acknowledge a
	// write before the client is answered (1..N).
	W int
	// R is how many copies, the read coordinator's own included, a read
	// reads (1..N).
	R int
	// Sequential replicates to the peers one after another (the paper
	// profile) instead of in parallel.
	Sequential bool
	// Gap is the coordinator's sleep after each replication step before
	// the write path hears of it (the paper profile's 200 ms; zero in the
	// none profile). It must not be negative.
	Gap time.Duration
	// Write, Ack, ReadReq and ReadResp are the W, A, R and S hops. Write
	// and Ack are required when N > 1, ReadReq and ReadResp when R > 1.
	Write, Ack, ReadReq, ReadResp Dist
	// ReadAtCoordinator is the probability (0..1) that the read's node is
	// the write's coordinator; otherwise it is a peer chosen uniformly.
	// Ignored when N = 1.
	ReadAtCoordinator float64
}

// ErrNoSamples is wrapped by Validate's error for an empirical
// distribution of no samples that the model uses.
var ErrNoSamples = errors.New("empirical distribution has no samples")

// Validate reports what makes m unusable.
func (m Model) Validate() error {
	var errs []error
	if m.N < 1 {
		errs = append(errs, fmt.Errorf("pbs: N = %d, want at least 1", m.N))
	}
	if m.W < 1 || m.W > max(m.N, 1) {
		errs = append(errs, fmt.Errorf("pbs: W = %d, want 1..N (N = %d)", m.W, m.N))
	}
	if m.R < 1 || m.R > max(m.N, 1) {
		errs = append(errs, fmt.Errorf("pbs: R = %d, want 1..N (N = %d)", m.R, m.N))
	}
	if m.Gap < 0 {
		errs = append(errs, fmt.Errorf("pbs: Gap = %v, want >= 0", m.Gap))
	}
	if !(m.ReadAtCoordinator >= 0 && m.ReadAtCoordinator <= 1) {
		errs = append(errs, fmt.Errorf("pbs: ReadAtCoordinator = %v, want a probability in 0..1", m.ReadAtCoordinator))
	}
	checkDist := func(name string, d Dist) {
		switch d := d.(type) {
		case nil:
			errs = append(errs, fmt.Errorf("pbs: %s distribution missing", name))
		case empirical:
			if len(d) == 0 {
				errs = append(errs, fmt.Errorf("pbs: %s: %w", name, ErrNoSamples))
			}
		case constant:
			if d < 0 {
				errs = append(errs, fmt.Errorf("pbs: %s = %v, want >= 0", name, time.Duration(d)))
			}
		}
	}
	if m.N > 1 {
		checkDist("Write", m.Write)
		checkDist("Ack", m.Ack)
	}
	if m.R > 1 {
		checkDist("ReadReq", m.ReadReq)
		checkDist("ReadResp", m.ReadResp)
	}
	return errors.Join(errs...)
}

// Predict returns, for each t in ts (time since the write was
// acknowledged; any sign, any order), the probability that a read
// beginning then returns the write or a newer one, estimated from trials
// Monte Carlo trials. The same model, trials and seed give the same
// answer. The standard error of each value is at most 0.5/sqrt(trials)
// (0.16 percentage points for 100,000 trials).
func (m Model) Predict(ts []time.Duration, trials int, seed uint64) ([]float64, error) {
	if err := m.Validate(); err != nil {
		return nil, err
	}
	if trials < 1 {
		return nil, fmt.Errorf("pbs: trials = %d, want at least 1", trials)
	}
	taus := m.thresholds(trials, seed)
	slices.Sort(taus)
	out := make([]float64, len(ts))
	for i, t := range ts {
		// Trials fresh at t are those with τ <= t.
		n := sort.Search(len(taus), func(j int) bool { return taus[j] > t })
		out[i] = float64(n) / float64(trials)
	}
	return out, nil
}

// thresholds runs the trials and returns each one's τ: the least t
// (relative to commit) at which its read is fresh.
func (m Model) thresholds(trials int, seed uint64) []time.Duration {
	rng := rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))
	peers := m.N - 1
	var (
		vis     = make([]time.Duration, m.N) // vis[0]: the coordinator, vis[1..]: its peers in step order
		done    = make([]time.Duration, peers)
		arrival = make([]time.Duration, m.N)
		readAt  = make([]time.Duration, m.N)
		order   = make([]int, 0, m.N)
		taus    = make([]time.Duration, trials)
	)
	for trial := range taus {
		commit := m.write(rng, vis, done)
		reader := 0
		if peers > 0 && rng.Float64() >= m.ReadAtCoordinator {
			reader = 1 + rng.IntN(peers)
		}
		tau := vis[reader]
		if m.R > 1 {
			order = order[:0]
			for k := range m.N {
				if k == reader {
					continue
				}
				readAt[k] = draw(m.ReadReq, rng)
				arrival[k] = readAt[k] + draw(m.ReadResp, rng)
				order = append(order, k)
			}
			// The first R-1 answers to arrive; the stable sort keeps node
			// order among equal arrivals.
			slices.SortStableFunc(order, func(a, b int) int {
				switch {
				case arrival[a] < arrival[b]:
					return -1
				case arrival[a] > arrival[b]:
					return 1
				}
				return 0
			})
			for _, k := range order[:m.R-1] {
				tau = min(tau, vis[k]-readAt[k])
			}
		}
		taus[trial] = tau - commit
	}
	return taus
}

// write draws one write's visibility times into vis (vis[0] = 0, the
// coordinator) and returns its commit time; done is scratch for the
// parallel profile.
func (m Model) write(rng *rand.Rand, vis, done []time.Duration) time.Duration {
	vis[0] = 0
	var commit time.Duration
	if m.Sequential {
		var start time.Duration
		for k := 1; k < m.N; k++ {
			vis[k] = start + draw(m.Write, rng)
			start = vis[k] + draw(m.Ack, rng) + m.Gap
			if k == m.W-1 {
				commit = start
			}
		}
		return commit
	}
	for k := 1; k < m.N; k++ {
		vis[k] = draw(m.Write, rng)
		done[k-1] = vis[k] + draw(m.Ack, rng) + m.Gap
	}
	if m.W > 1 {
		slices.Sort(done)
		commit = done[m.W-2]
	}
	return commit
}

// draw samples d, counting a negative time as zero.
func draw(d Dist, rng *rand.Rand) time.Duration { return max(d.Sample(rng), 0) }

// RMSE is the root-mean-square difference between two curves of
// probabilities (0..1), in percentage points: 100*sqrt(mean((a_i-b_i)^2)).
// Pairs in which either value is NaN are left out (mark an empty measured
// bucket with NaN). It returns NaN when the lengths differ or no pair
// remains.
func RMSE(a, b []float64) float64 {
	if len(a) != len(b) {
		return math.NaN()
	}
	var sum float64
	n := 0
	for i := range a {
		if math.IsNaN(a[i]) || math.IsNaN(b[i]) {
			continue
		}
		d := a[i] - b[i]
		sum += d * d
		n++
	}
	if n == 0 {
		return math.NaN()
	}
	return 100 * math.Sqrt(sum/float64(n))
}
