package experiment

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/kvdb/kvdb/internal/check"
	"github.com/kvdb/kvdb/internal/cluster"
	"github.com/kvdb/kvdb/internal/history"
	"github.com/kvdb/kvdb/internal/hops"
	"github.com/kvdb/kvdb/internal/load"
	"github.com/kvdb/kvdb/internal/pbs"
	"github.com/kvdb/kvdb/internal/replication"
	"github.com/kvdb/kvdb/internal/report"
)

// HopsFile holds the hop times every node measured during a run.
const HopsFile = "hops.json"

// HopSamples is hops.json: per hop (hops.Kinds: write, ack, read,
// response), the one-way times in microseconds that the nodes measured as
// coordinators during the run, pooled over the nodes.
type HopSamples map[hops.Kind][]int64

// hopMark remembers how many samples each node had kept before a run, so
// that a cluster shared by several runs gives each run its own samples.
type hopMark map[string]map[hops.Kind]int64

// markHops records every node's sample counts now.
func markHops(c *cluster.Cluster) hopMark {
	m := hopMark{}
	for _, n := range c.Nodes() {
		m[n.ID()] = map[hops.Kind]int64{}
		for _, k := range hops.Kinds {
			m[n.ID()][k] = n.Hops().Count(k)
		}
	}
	return m
}

// collectHops returns the samples every node measured since mark. A
// recorder keeps its first hops.DefaultCapacity samples in order, so those
// after the mark are this run's; past the capacity it keeps a uniform
// sample of everything, and then this takes all it keeps (still the same
// distribution if the runs on the cluster behaved alike). A node restarted
// since the mark has a new recorder: all of its samples are this run's.
func collectHops(c *cluster.Cluster, mark hopMark) HopSamples {
	out := HopSamples{}
	for _, n := range c.Nodes() {
		rec := n.Hops()
		for _, k := range hops.Kinds {
			s := rec.Samples(k)
			before := mark[n.ID()][k]
			if total := rec.Count(k); total >= before && total <= int64(len(s)) && before <= int64(len(s)) {
				s = s[before:]
			}
			for _, d := range s {
				out[k] = append(out[k], d.Microseconds())
			}
		}
	}
	return out
}

func readHops(path string) (HopSamples, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var h HopSamples
	if err := json.Unmarshal(b, &h); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return h, nil
}

func (h HopSamples) dist(k hops.Kind) pbs.Dist {
	s := make([]time.Duration, len(h[k]))
	for i, us := range h[k] {
		s[i] = time.Duration(us) * time.Microsecond
	}
	return pbs.Empirical(s)
}

// stats summarizes each hop (ms).
func (h HopSamples) stats() map[string]report.HopStats {
	out := map[string]report.HopStats{}
	for _, k := range hops.Kinds {
		s := slices.Clone(h[k])
		if len(s) == 0 {
			continue
		}
		slices.Sort(s)
		q := func(p float64) float64 { return float64(s[min(int(p*float64(len(s))), len(s)-1)]) / 1000 }
		out[string(k)] = report.HopStats{Count: len(s), P50: q(0.5), P99: q(0.99)}
	}
	return out
}

// PBS settings.
const (
	// stalenessTrials is the Monte Carlo trials per run's model: the
	// prediction's standard error is at most 0.5/sqrt(trials), 0.16
	// percentage points.
	stalenessTrials = 100_000
	// stalenessBuckets is the number of buckets of t the curves compare.
	stalenessBuckets = 12
	// MinStalenessReads is the fewest reads a bucket needs to count in the
	// RMSE: with fewer the measured fraction's own sampling error (up to
	// 11 points at 20 reads) swamps what the comparison could show.
	MinStalenessReads = 20
)

// stalenessRun is what one run contributes to its config's curve.
type stalenessRun struct {
	model   *pbs.Model // nil: no prediction (hops missing)
	samples []check.StalenessSample
	note    string
	// floorMs is the delay profile's whole sequential replication time.
	floorMs float64
	// clientHop is added to each read's t before predicting (see
	// clientHop).
	clientHop time.Duration
	// single are the samples of the reads singleWriteReads keeps.
	single []check.StalenessSample
	// noReadRepair: the run's nodes had read repair off.
	noReadRepair bool
	// probe: the run is a staleness probe, whose reads of a key cannot
	// repair for one another (R>1 probes read each key once).
	probe bool
}

// newStalenessRun places a run's reads after their writes and builds its
// model from the hops in dir (hops.json).
func newStalenessRun(ops []history.Op, h clusterHealth, readFrom, dir string, noReadRepair bool) *stalenessRun {
	sr := &stalenessRun{samples: check.StalenessSamples(ops), single: check.StalenessSamples(singleWriteReads(ops)),
		floorMs: float64(h.DelayProfile.WriteFloor(h.N).Microseconds()) / 1000, noReadRepair: noReadRepair}
	hs, err := readHops(filepath.Join(dir, HopsFile))
	if err != nil {
		sr.note = fmt.Sprintf("%s: no hop samples (%v)", filepath.Base(dir), err)
		return sr
	}
	m, err := runModel(h, readFrom, hs)
	if err != nil {
		sr.note = fmt.Sprintf("%s: %v", filepath.Base(dir), err)
	}
	sr.model, sr.clientHop = m, clientHop(ops, h.R, hs)
	return sr
}

// clientHop estimates the client's own hops that t (measured at the
// client) leaves out of the model's time (at the nodes): the write's
// acknowledgement travelling from the coordinator to the client, and the
// read travelling from the client to its node. Together they take about
// one client round trip, so the estimate is the median time a read spent
// between the client and its node: its service time, less (R>1) the median
// read and response hops of the peers it waited for. It is about a
// millisecond here: nothing against the paper profile's 100 ms steps, a
// tenth of a step when the delays are scaled down to a tenth.
func clientHop(ops []history.Op, r int, hs HopSamples) time.Duration {
	var rtt []int64
	for _, op := range ops {
		if op.IsRead() && op.OK() {
			rtt = append(rtt, op.DoneUS-op.SentUS)
		}
	}
	if len(rtt) == 0 {
		return 0
	}
	us := median(rtt)
	if r > 1 {
		us -= median(hs[hops.Read]) + median(hs[hops.Response])
	}
	return time.Duration(max(us, 0)) * time.Microsecond
}

func median(xs []int64) int64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}

// runModel builds the PBS model of a run: N, W, R from the cluster, the
// delay profile's replication order and gap, the hops the nodes measured
// during the run, and where reads land relative to the write's
// coordinator.
//
// ReadAtCoordinator: leader-follower writes are coordinated by the
// leader, so reads sent only to followers never read at the coordinator
// (0), reads sent only to the leader always do (1), and reads spread over
// all N nodes do with probability 1/N. Leaderless writes and reads are both
// spread uniformly over the nodes, so a read lands on the write's
// coordinator with probability 1/N wherever the reads go.
func runModel(h clusterHealth, readFrom string, hs HopSamples) (*pbs.Model, error) {
	m := pbs.Model{N: h.N, W: h.W, R: h.R, Sequential: h.DelayProfile.Sequential, Gap: h.DelayProfile.Gap,
		Write: hs.dist(hops.Write), Ack: hs.dist(hops.Ack), ReadReq: hs.dist(hops.Read), ReadResp: hs.dist(hops.Response)}
	m.ReadAtCoordinator = 1 / float64(max(h.N, 1))
	if h.Mode != string(replication.Leaderless) {
		switch readFrom {
		case load.ReadFollowers:
			m.ReadAtCoordinator = 0
		case load.ReadLeader:
			m.ReadAtCoordinator = 1
		}
	}
	if err := m.Validate(); err != nil {
		return nil, err
	}
	return &m, nil
}

// configStaleness pools the steady runs of one config into its measured
// and predicted curves.
//
// Buckets: stalenessBuckets equal buckets of t from 0 to tMax, where tMax
// is 1.2 times the t by which the prediction reaches 99.9% fresh, and at
// least the delay profile's whole sequential replication ((N-1) steps of
// apply+gap: 1.2 s for the paper profile on five nodes), at least 10 ms.
// Reads later than that are fresh in both curves and would only dilute the
// gap. A probe (windowMs > 0) plans its reads over [0, windowMs], so tMax
// is at most that: a read later than its window was sent late, by a
// stalled machine — whose stall delays the replication too, together, so
// those few reads are not what the model, which draws every hop
// independently, describes (one such run's hop tails put its 99.9% point
// at 2.3 s, and a bucket beyond the window then held 144 reads of which a
// third were stale). Each read's prediction comes from its own run's
// model, so runs at different write ratios (and hop distributions) pool
// fairly.
func configStaleness(runs []stalenessRun, floorMs, windowMs float64) *report.Staleness {
	st := &report.Staleness{Runs: len(runs), MinReads: MinStalenessReads}
	var notes []string
	var reads, singles []stalenessRead
	modelled := 0
	var hopSum time.Duration
	hopN := 0
	var curveRuns []*pbs.Model
	var curveWeights []float64
	for i, r := range runs {
		if r.note != "" {
			notes = append(notes, r.note)
		}
		hopSum += r.clientHop
		hopN++
		all, ok, err := predictReads(r, r.samples, uint64(i)+1)
		if err != nil {
			notes = append(notes, err.Error())
		}
		if ok {
			modelled++
			curveRuns = append(curveRuns, r.model)
			curveWeights = append(curveWeights, float64(len(all)))
		}
		reads = append(reads, all...)
		single, _, _ := predictReads(r, r.single, uint64(i)+1)
		singles = append(singles, single...)
	}
	var meanHop time.Duration
	if hopN > 0 {
		meanHop = hopSum / time.Duration(hopN)
	}
	// tMax from the prediction's 99.9% point.
	tMax := max(floorMs, 10)
	step := time.Duration(tMax / 100 * float64(time.Millisecond))
	grid := make([]time.Duration, 0, 1001)
	for i := range 1001 {
		grid = append(grid, time.Duration(i)*step) // 0..10 tMax
	}
	curve := averageCurve(curveRuns, curveWeights, grid, meanHop)
	for i, p := range curve {
		if p >= 0.999 {
			tMax = max(tMax, 1.2*durMs(grid[i]))
			break
		}
	}
	if windowMs > 0 {
		tMax = min(tMax, windowMs)
	}
	width := tMax / stalenessBuckets
	edges := make([]float64, stalenessBuckets+1)
	for i := range edges {
		edges[i] = float64(i) * width
	}
	f := fitBuckets(reads, edges)
	st.Reads, st.Measured, st.Predicted, st.RMSE, st.SamplingRMSE = f.Reads, f.Measured, f.Predicted, f.RMSE, f.SamplingRMSE
	if len(singles) > 0 {
		sf := fitBuckets(singles, edges)
		st.SingleWrite = &sf
	}
	if curve != nil {
		for i, d := range grid {
			if durMs(d) > tMax {
				break
			}
			st.Curve = append(st.Curve, report.CurvePoint{TMs: durMs(d), Fresh: curve[i]})
		}
	}
	if len(curveRuns) > 0 {
		m, r0 := curveRuns[0], runs[0]
		st.Model = describeModel(m, modelled, len(runs), meanHop)
		if m.R > 1 && m.R+m.W <= m.N && !r0.noReadRepair && !r0.probe {
			notes = append(notes, repairNote)
		}
	}
	if modelled < len(runs) {
		notes = append(notes, fmt.Sprintf("%d of %d runs had no prediction", len(runs)-modelled, len(runs)))
	}
	st.Note = strings.Join(notes, "; ")
	return st
}

// stalenessRead is one read placed after its write, with its prediction.
type stalenessRead struct {
	tMs   float64
	fresh bool
	pred  float64 // NaN: no prediction
}

// predictReads predicts each sample with its run's model at t plus the
// client's hops; ok reports whether there was a prediction (NaN if not).
func predictReads(r stalenessRun, samples []check.StalenessSample, seed uint64) (out []stalenessRead, ok bool, err error) {
	ts := make([]time.Duration, len(samples))
	for j, s := range samples {
		ts[j] = time.Duration(s.TUS)*time.Microsecond + r.clientHop
	}
	preds := make([]float64, len(ts))
	for j := range preds {
		preds[j] = math.NaN()
	}
	if r.model != nil {
		p, perr := r.model.Predict(ts, stalenessTrials, seed)
		if perr == nil {
			preds, ok = p, true
		}
		err = perr
	}
	for j, s := range samples {
		out = append(out, stalenessRead{float64(s.TUS) / 1000, s.Fresh, preds[j]})
	}
	return out, ok, err
}

// fitBuckets compares measured and predicted freshness per bucket of t
// [edges[b], edges[b+1]): the fraction of the bucket's reads that were
// fresh against their predictions' mean. The RMSE counts the buckets
// with at least MinStalenessReads reads, all predicted.
func fitBuckets(reads []stalenessRead, edges []float64) report.StalenessFit {
	var f report.StalenessFit
	var measured, predicted []float64
	var noise float64
	noiseN := 0
	for b := range len(edges) - 1 {
		lo, hi := edges[b], edges[b+1]
		mp := report.StalenessPoint{LoMs: lo, HiMs: hi}
		pp := mp
		var sumT, sumPred float64
		nPred := 0
		for _, r := range reads {
			if r.tMs < lo || r.tMs >= hi {
				continue
			}
			mp.Reads++
			sumT += r.tMs
			if r.fresh {
				mp.Fresh++
			}
			if !math.IsNaN(r.pred) {
				sumPred += r.pred
				nPred++
			}
		}
		mp.TMs = (lo + hi) / 2
		if mp.Reads > 0 {
			mp.TMs = sumT / float64(mp.Reads)
			mp.Fresh /= float64(mp.Reads)
		}
		pp.TMs, pp.Reads = mp.TMs, nPred
		if nPred > 0 {
			pp.Fresh = sumPred / float64(nPred)
		}
		f.Reads += mp.Reads
		f.Measured = append(f.Measured, mp)
		f.Predicted = append(f.Predicted, pp)
		if mp.Reads >= MinStalenessReads && nPred == mp.Reads {
			measured = append(measured, mp.Fresh)
			predicted = append(predicted, pp.Fresh)
			noise += pp.Fresh * (1 - pp.Fresh) / float64(mp.Reads)
			noiseN++
		}
	}
	if len(measured) > 0 {
		rmse := pbs.RMSE(measured, predicted)
		s := 100 * math.Sqrt(noise/float64(noiseN))
		f.RMSE, f.SamplingRMSE = &rmse, &s
	}
	return f
}

// singleWriteReads returns ops without the reads WARS does not describe:
// a read is kept only if the latest write of its key acknowledged before
// it was sent overlapped no other write of the key in real time (a write
// of unknown outcome overlaps everything after it was sent), and no other
// write of the key was sent between that acknowledgement and the read's
// end. Writes and other reads stay.
func singleWriteReads(ops []history.Op) []history.Op {
	type span struct{ sent, done int64 } // done: MaxInt64 if unknown
	writes := map[string][]span{}
	acked := map[string][]span{}
	for _, op := range ops {
		if !op.IsWrite() || op.Dropped || op.SentUS == 0 {
			continue
		}
		switch op.Outcome() {
		case history.WriteAcked:
			writes[op.Key] = append(writes[op.Key], span{op.SentUS, op.DoneUS})
			acked[op.Key] = append(acked[op.Key], span{op.SentUS, op.DoneUS})
		case history.WriteUnknown:
			writes[op.Key] = append(writes[op.Key], span{op.SentUS, math.MaxInt64})
		}
	}
	keep := func(r history.Op) bool {
		var latest *span
		for i, w := range acked[r.Key] {
			if w.done < r.SentUS && (latest == nil || w.done > latest.done) {
				latest = &acked[r.Key][i]
			}
		}
		if latest == nil {
			return true // no write to place it by: StalenessSamples leaves it out
		}
		for _, w := range writes[r.Key] {
			if w == *latest {
				continue
			}
			overlaps := w.sent < latest.done && latest.sent < w.done
			newer := w.sent >= latest.done && w.sent < r.DoneUS
			if overlaps || newer {
				return false
			}
		}
		return true
	}
	out := make([]history.Op, 0, len(ops))
	for _, op := range ops {
		if op.IsRead() && !keep(op) {
			continue
		}
		out = append(out, op)
	}
	return out
}

// repairNote explains the gap WARS leaves for R>1 configs whose reads
// repair (leaderless-w2r2).
const repairNote = "WARS has no read repair. A kvdb read with R>1 that sees replicas disagree brings them up to date: " +
	"its own copy at once, the peers behind by a hint. Hot keys are read many times while a write is in flight, " +
	"so by the write's acknowledgement read repair has " +
	"usually copied it further than replication has, and the mixed workload's reads are fresher than predicted: there the prediction is a lower bound. " +
	"kvdb experiment --read-repair=false runs the nodes without it"

// averageCurve is the weighted mean of the models' predictions at ts; nil
// without models.
func averageCurve(models []*pbs.Model, weights []float64, ts []time.Duration, shift time.Duration) []float64 {
	if len(models) == 0 {
		return nil
	}
	shifted := make([]time.Duration, len(ts))
	for i, t := range ts {
		shifted[i] = t + shift
	}
	out := make([]float64, len(ts))
	var total float64
	for i, m := range models {
		p, err := m.Predict(shifted, stalenessTrials, uint64(i)+1000)
		if err != nil {
			continue
		}
		w := max(weights[i], 1)
		total += w
		for j := range out {
			out[j] += w * p[j]
		}
	}
	if total == 0 {
		return nil
	}
	for j := range out {
		out[j] /= total
	}
	return out
}

func describeModel(m *pbs.Model, modelled, runs int, hop time.Duration) string {
	order := "parallel fan-out"
	if m.Sequential {
		order = "sequential replication (one peer after another)"
	}
	return fmt.Sprintf("PBS WARS, N=%d W=%d R=%d, %s, gap %s after each step, reads at the write's coordinator with probability %.2f; "+
		"W, A, R, S drawn from the hops the nodes measured in each run (%d of %d runs), %d trials per run; "+
		"each read predicted at its t plus the client's own hops (its run's median client round trip, %.2f ms on average)",
		m.N, m.W, m.R, order, m.Gap, m.ReadAtCoordinator, modelled, runs, stalenessTrials, durMs(hop))
}

func durMs(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
