package experiment

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"

	"github.com/kvdb/kvdb/internal/history"
	"github.com/kvdb/kvdb/internal/load"
	"github.com/kvdb/kvdb/internal/replication"
	"github.com/kvdb/kvdb/internal/report"
)

// ManifestFile describes an experiment in its results folder.
const ManifestFile = "experiment.json"

// Manifest is experiment.json.
type Manifest struct {
	Started   string    `json:"started"`
	Configs   []string  `json:"configs"`
	Ratios    []float64 `json:"ratios"`
	Delays    string    `json:"delays"`
	DurationS float64   `json:"duration_s"`
	QPS       float64   `json:"qps"`
	// The fault scenarios (second edition).
	Scenarios       []string `json:"scenarios,omitempty"`
	FaultRatio      float64  `json:"fault_ratio,omitempty"`
	FaultDurationS  float64  `json:"fault_duration_s,omitempty"`
	FaultAtS        float64  `json:"fault_at_s,omitempty"`
	HealAtS         float64  `json:"heal_at_s,omitempty"`
	RequestTimeoutS float64  `json:"request_timeout_s,omitempty"`
}

// clusterHealth is the part of a node's /health the load run recorded.
type clusterHealth struct {
	Mode         string             `json:"mode"`
	W            int                `json:"w"`
	R            int                `json:"r"`
	N            int                `json:"n"`
	Delays       string             `json:"delays"`
	DelayProfile replication.Delays `json:"delay_profile"`
}

// presetName names a config from its mode, W and R the way the cluster
// presets do.
func presetName(h clusterHealth) string {
	if h.Mode == string(replication.Leaderless) {
		if h.W == h.N && h.R == 1 {
			return "leaderless"
		}
		return fmt.Sprintf("leaderless-w%dr%d", h.W, h.R)
	}
	return fmt.Sprintf("w%dr%d", h.W, h.R)
}

// Collect reads every load run under dir (any folder holding a
// summary.json, at any depth) into report form. Runs are ordered by the
// manifest's config order when there is one, then by write ratio.
func Collect(dir string) (*report.Results, error) {
	res := &report.Results{Title: "kvdb replication experiment"}
	var man Manifest
	if b, err := os.ReadFile(filepath.Join(dir, ManifestFile)); err == nil {
		if err := json.Unmarshal(b, &man); err != nil {
			return nil, fmt.Errorf("%s: %w", ManifestFile, err)
		}
		res.Started, res.Delays = man.Started, man.Delays
	}
	pooled := hdrhistogram.New(1, 24*3600*1_000_000, 3) // µs, up to a day
	staleness := map[string][]stalenessRun{}
	floors := map[string]float64{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() || d.Name() != load.SummaryFile {
			return nil
		}
		run, sr, err := collectRun(dir, filepath.Dir(path), pooled)
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		res.Runs = append(res.Runs, run)
		if sr != nil {
			staleness[run.Config] = append(staleness[run.Config], *sr)
			floors[run.Config] = max(floors[run.Config], sr.floorMs)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(res.Runs) == 0 {
		return nil, fmt.Errorf("no load runs (%s files) under %s", load.SummaryFile, dir)
	}
	order := func(cfg string) int {
		if i := slices.Index(man.Configs, cfg); i >= 0 {
			return i
		}
		if i := slices.Index(defaultConfigs, cfg); i >= 0 {
			return 100 + i
		}
		return 1000
	}
	slices.SortStableFunc(res.Runs, func(a, b report.Run) int {
		if oa, ob := order(a.Config), order(b.Config); oa != ob {
			return oa - ob
		}
		if a.Config != b.Config {
			return strings.Compare(a.Config, b.Config)
		}
		if sa, sb := scenarioOrder(a.Scenario), scenarioOrder(b.Scenario); sa != sb {
			return sa - sb
		}
		return cmp.Compare(a.WriteRatio, b.WriteRatio)
	})
	probes, err := collectProbes(dir)
	if err != nil {
		return nil, err
	}
	if len(staleness) > 0 || len(probes) > 0 {
		res.Staleness = map[string]*report.Staleness{}
		for cfg, runs := range staleness {
			res.Staleness[cfg] = configStaleness(runs, floors[cfg], 0)
			res.Staleness[cfg].Source = report.SourceWorkload
		}
		for cfg, pr := range probes {
			st := configStaleness([]stalenessRun{*pr.run}, pr.run.floorMs, pr.info.WindowMs)
			st.Source, st.Probe = report.SourceProbe, pr.info
			if wl := res.Staleness[cfg]; wl != nil {
				st.Workload = &report.StalenessFit{Reads: wl.Reads, Measured: wl.Measured, Predicted: wl.Predicted,
					RMSE: wl.RMSE, SamplingRMSE: wl.SamplingRMSE}
				st.Runs += wl.Runs
			}
			res.Staleness[cfg] = st
		}
	}
	if res.Delays == "" {
		res.Delays = res.Runs[0].Delays
	}
	if res.Started == "" {
		res.Started = "(not recorded)"
	}
	res.Generator = generatorText(dir, res)
	if n := pooled.TotalCount(); n > 0 {
		res.Intervals = report.IntervalSummary{
			Count: n,
			P50:   float64(pooled.ValueAtQuantile(50)) / 1000,
			P90:   float64(pooled.ValueAtQuantile(90)) / 1000,
			P99:   float64(pooled.ValueAtQuantile(99)) / 1000,
		}
		within := int64(0)
		for _, b := range pooled.Distribution() {
			if b.To <= 1_000_000 {
				within += b.Count
			}
		}
		res.Intervals.Within1s = float64(within) / float64(n)
	}
	return res, nil
}

// probeRun is one config's staleness probe, collected.
type probeRun struct {
	run  *stalenessRun
	info *report.ProbeInfo
}

// collectProbes reads every probe folder under dir/staleness.
func collectProbes(dir string) (map[string]probeRun, error) {
	out := map[string]probeRun{}
	entries, err := os.ReadDir(filepath.Join(dir, ProbeDir))
	if errors.Is(err, fs.ErrNotExist) {
		return out, nil
	}
	if err != nil {
		return nil, err
	}
	for _, e := range entries {
		pdir := filepath.Join(dir, ProbeDir, e.Name())
		if _, err := os.Stat(filepath.Join(pdir, ProbeFile)); err != nil {
			continue // not a probe (or an interrupted one)
		}
		rec, sr, err := readProbe(pdir)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", pdir, err)
		}
		rel, _ := filepath.Rel(dir, pdir)
		info := rec.ProbeInfo
		info.Dir = rel
		if hs, err := readHops(filepath.Join(pdir, HopsFile)); err == nil {
			info.Hops = hs.stats()
		}
		out[rec.Config] = probeRun{run: sr, info: &info}
	}
	return out, nil
}

// collectRun reads one run's folder. For a steady run with a history it
// also returns what the run contributes to its config's staleness curve.
func collectRun(root, dir string, pooled *hdrhistogram.Histogram) (report.Run, *stalenessRun, error) {
	run, ops, h, sum, err := collectRunFiles(root, dir, pooled)
	if err != nil || ops == nil {
		return run, nil, err
	}
	rec := ScenarioRecord{Scenario: ScenarioSteady}
	if b, err := os.ReadFile(filepath.Join(dir, ScenarioFile)); err == nil {
		if err := json.Unmarshal(b, &rec); err != nil {
			return run, nil, fmt.Errorf("%s: %w", ScenarioFile, err)
		}
	}
	var final *FinalCopies
	if b, err := os.ReadFile(filepath.Join(dir, FinalFile)); err == nil {
		final = new(FinalCopies)
		if err := json.Unmarshal(b, final); err != nil {
			return run, nil, fmt.Errorf("%s: %w", FinalFile, err)
		}
	}
	run.Scenario = rec.Scenario
	f := runFigures(ops, sum, rec, final)
	run.Fault, run.WriteUnavailableMs, run.NoAckMs = f.fault, f.unavailableMs, f.noAckMs
	run.AckedWrites, run.AckedLost, run.AckedPartial = f.durability.Acked, f.durability.Lost, f.durability.Partial
	run.FinalCheck, run.Converged, run.SettledMs = f.finalCheck, f.converged, f.settledMs
	run.ReadErrorsByStatus, run.WriteErrorsByStatus = ErrorsByStatus(ops)
	run.TimelineBucketMs = BucketMs
	run.Timeline = Timeline(ops, sum.Started.UnixMicro(), sum.WindowS*1000)
	hs, herr := readHops(filepath.Join(dir, HopsFile))
	if herr == nil {
		run.Hops = hs.stats()
	}
	if run.Scenario != ScenarioSteady {
		return run, nil, nil
	}
	return run, newStalenessRun(ops, h, sum.Config.ReadFrom, dir, rec.ReadRepairOff), nil
}

// collectRunFiles reads the figures every run has: its summary, latency
// histograms and history (ops is nil without a history file).
func collectRunFiles(root, dir string, pooled *hdrhistogram.Histogram) (run report.Run, ops []history.Op, h clusterHealth, sum *load.Summary, err error) {
	sum, err = load.ReadSummary(filepath.Join(dir, load.SummaryFile))
	if err != nil {
		return run, nil, h, nil, err
	}
	if len(sum.Cluster) > 0 {
		if err := json.Unmarshal(sum.Cluster, &h); err != nil {
			return run, nil, h, nil, fmt.Errorf("cluster health: %w", err)
		}
	}
	if h.N == 0 {
		return run, nil, h, nil, errors.New("summary has no cluster description (mode, w, r, n)")
	}
	rel, _ := filepath.Rel(root, dir)
	run = report.Run{
		Config: presetName(h), Mode: h.Mode, W: h.W, R: h.R, N: h.N,
		WriteRatio: sum.Config.WriteRatio, Delays: h.Delays, DurationSec: sum.WindowS,
		TargetQPS: sum.TargetQPS, AchievedQPS: sum.AchievedQPS,
		Read: stats(sum.Read), Write: stats(sum.Write),
		StaleReads: sum.StaleReads, Inversions: sum.Inversions, Linearizable: sum.Linearizable,
		ErrorsByStatus: mergeCounts(sum.Read.ErrorsByStatus, sum.Write.ErrorsByStatus),
		FloorWriteMs:   float64(h.DelayProfile.WriteFloor(h.W).Milliseconds()),
		FloorReadMs:    float64(h.DelayProfile.ReadFloor(h.R).Milliseconds()),
		Dir:            rel,
		Scenario:       ScenarioSteady,
		ReadFrom:       sum.Config.ReadFrom,
	}
	if run.ReadSpectrum, err = spectrum(filepath.Join(dir, load.ReadHDRFile)); err != nil {
		return run, nil, h, sum, err
	}
	if run.WriteSpectrum, err = spectrum(filepath.Join(dir, load.WriteHDRFile)); err != nil {
		return run, nil, h, sum, err
	}
	if o, err := history.ReadFile(filepath.Join(dir, load.HistoryFile)); err == nil {
		ops = o
		run.InversionAgesMs = inversionAges(ops)
	}
	if iv, err := load.ReadHistogram(filepath.Join(dir, load.IntervalHDRFile)); err == nil {
		run.Intervals = quantiles(iv, 200)
		if pooled != nil {
			pooled.Merge(iv)
		}
	}
	return run, ops, h, sum, nil
}

func stats(o load.OpStats) report.Stats {
	return report.Stats{Count: o.Count, Errors: o.Errors, P50: o.P50Ms, P90: o.P90Ms, P95: o.P95Ms, P99: o.P99Ms, P999: o.P999Ms, Max: o.MaxMs}
}

func mergeCounts(ms ...map[string]int) map[string]int {
	out := map[string]int{}
	for _, m := range ms {
		for k, v := range m {
			out[k] += v
		}
	}
	return out
}

// spectrum reads a latency histogram (microseconds) into percentile
// points spaced evenly in "nines": 0, 20.6, 36.9, ..., 90, ..., 99, ...
func spectrum(path string) ([]report.Point, error) {
	h, err := load.ReadHistogram(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
		return nil, err
	}
	if h.TotalCount() == 0 {
		return nil, nil
	}
	var pts []report.Point
	maxNines := math.Log10(float64(h.TotalCount()))
	for k := 0.0; k/10 <= maxNines; k++ {
		p := 100 * (1 - math.Pow(10, -k/10))
		pts = append(pts, report.Point{P: p, Ms: float64(h.ValueAtQuantile(p)) / 1000})
	}
	return pts, nil
}

// quantiles returns n evenly spaced quantiles of h, in ms.
func quantiles(h *hdrhistogram.Histogram, n int) []float64 {
	if h.TotalCount() == 0 {
		return nil
	}
	out := make([]float64, n)
	for i := range out {
		out[i] = float64(h.ValueAtQuantile(100*(float64(i)+0.5)/float64(n))) / 1000
	}
	return out
}

// generatorText describes the key generator of the first run with its
// parameters.
func generatorText(root string, res *report.Results) string {
	sum, err := load.ReadSummary(filepath.Join(root, res.Runs[0].Dir, load.SummaryFile))
	if err != nil {
		return ""
	}
	k := sum.Config.Keys
	return fmt.Sprintf("The load generator draws keys from a space of %d. It remembers the %d most recently written keys, newest first; "+
		"a read picks from that recent set with probability %.2f (otherwise uniformly from the whole space), and a write rewrites a recent key with probability %.2f. "+
		"Within the recent set the i-th newest key is chosen with probability proportional to (1-%.2f)^i, so %.0f%% of hot draws hit the key written last. "+
		"A read therefore usually follows a write of its key by a few operations, i.e. by a few multiples of 1/QPS (%.0f ms at %g QPS), however large the key space.",
		k.Keys, k.HotKeys, k.HotRead, k.HotWrite, k.Recency, 100*k.Recency, 1000/sum.TargetQPS, sum.TargetQPS)
}
