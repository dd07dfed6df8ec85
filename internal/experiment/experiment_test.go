package experiment

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kvdb/kvdb/internal/load"
	"github.com/kvdb/kvdb/internal/replication"
)

// A short experiment produces every file, and the report's numbers are
// the run summaries' numbers.
func TestShortExperiment(t *testing.T) {
	dir := t.TempDir()
	var progress strings.Builder
	cfg := Config{
		Configs: []string{"w5r1", "leaderless"}, Ratios: []float64{0.1, 0.5}, Scenarios: []string{ScenarioSteady},
		Delays: replication.PaperDelays().Scale(0.05), Duration: 1500 * time.Millisecond, QPS: 40,
		CheckTimeout: 5 * time.Second, OutDir: dir, Progress: &progress,
	}
	res, out, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatalf("experiment: %v\n%s", err, progress.String())
	}
	if len(res.Runs) != 4 {
		t.Fatalf("%d runs collected, want 4", len(res.Runs))
	}
	for _, run := range []string{"w5r1-w10", "w5r1-w50", "leaderless-w10", "leaderless-w50"} {
		for _, f := range []string{load.HistoryFile, load.SummaryFile, load.ReadHDRFile, load.WriteHDRFile} {
			if st, err := os.Stat(filepath.Join(dir, run, f)); err != nil || st.Size() == 0 {
				t.Errorf("%s/%s missing or empty", run, f)
			}
		}
	}
	for _, f := range append([]string{out.HTML, out.PDF, out.JSON, filepath.Join(dir, ManifestFile)}, out.Charts...) {
		if st, err := os.Stat(f); err != nil || st.Size() == 0 {
			t.Errorf("%s missing or empty", f)
		}
	}
	if !strings.Contains(progress.String(), "[4/4] leaderless at 50% writes") {
		t.Errorf("progress does not count the runs:\n%s", progress.String())
	}

	// report.json carries exactly the summaries' figures.
	var rep struct {
		Runs []struct {
			Config     string  `json:"config"`
			WriteRatio float64 `json:"write_ratio"`
			Dir        string  `json:"dir"`
			Read       struct {
				Count int     `json:"count"`
				P50   float64 `json:"p50_ms"`
				P99   float64 `json:"p99_ms"`
			} `json:"read"`
			Write struct {
				Count int     `json:"count"`
				P50   float64 `json:"p50_ms"`
				P999  float64 `json:"p999_ms"`
			} `json:"write"`
			Stale       int     `json:"stale_reads"`
			Inversions  int     `json:"inversions"`
			AchievedQPS float64 `json:"achieved_qps"`
		} `json:"runs"`
	}
	b, err := os.ReadFile(out.JSON)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	for _, r := range rep.Runs {
		sum, err := load.ReadSummary(filepath.Join(dir, r.Dir, load.SummaryFile))
		if err != nil {
			t.Fatal(err)
		}
		if r.Read.Count != sum.Read.Count || r.Read.P50 != sum.Read.P50Ms || r.Read.P99 != sum.Read.P99Ms ||
			r.Write.Count != sum.Write.Count || r.Write.P50 != sum.Write.P50Ms || r.Write.P999 != sum.Write.P999Ms ||
			r.Stale != sum.StaleReads || r.Inversions != sum.Inversions || r.AchievedQPS != sum.AchievedQPS {
			t.Errorf("%s: report %+v differs from summary", r.Dir, r)
		}
		if !strings.HasPrefix(r.Dir, r.Config+"-w") {
			t.Errorf("run in %s reported as config %s", r.Dir, r.Config)
		}
	}
	html, _ := os.ReadFile(out.HTML)
	for _, r := range rep.Runs {
		if !strings.Contains(string(html), "<td>"+r.Config+"</td>") {
			t.Errorf("HTML table lacks %s", r.Config)
		}
	}

	// kvdb report rebuilds the same runs from the folder.
	again, err := Collect(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(again.Runs) != len(res.Runs) || again.Runs[0].Config != "w5r1" || again.Runs[3].Config != "leaderless" {
		t.Errorf("Collect order: %v", again.Runs)
	}
}

func TestValidate(t *testing.T) {
	cfg := Config{Configs: []string{"w9r9"}, Ratios: []float64{1.5}}
	cfg.SetDefaults(time.Now())
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "w9r9") || !strings.Contains(err.Error(), "1.5") {
		t.Fatalf("Validate = %v", err)
	}
}

// PBS against real runs, scaled down: w1r1 (reads over the followers),
// leaderless-w1r1 and leaderless-w2r2 on embedded clusters under the paper
// profile at a tenth of its delays (steps of 10 ms apply + 20 ms gap), the
// prediction built from the hops the nodes measured in the same run. Each
// config's curve comes from its staleness probe (probe.go); the steady
// runs' reads must also be placed (the mixed-workload comparison).
//
// The bound: if the model is right, each bucket's measured fraction
// differs from the prediction only by sampling (binomial) error, so the
// RMSE is about rmse_sampling, and twice that is already improbable (the
// squared RMSE is then a chi-square of ~12 degrees of freedom over 12:
// above 4 with probability under 1e-5). Two points more cover what the
// model leaves out on purpose — the client's own hops to the coordinator
// and to the reader (a fraction of a millisecond each, against 10 ms
// steps) and newer writes in flight that a read may return. A model that
// missed the sequential order or the gap would miss by tens of points.
func TestStalenessPredictedMatchesMeasured(t *testing.T) {
	if testing.Short() {
		t.Skip("runs embedded clusters for about 30 s")
	}
	cfg := Config{
		Configs: []string{"w1r1", "leaderless-w1r1", "leaderless-w2r2"}, Ratios: []float64{0.5}, Scenarios: []string{ScenarioSteady},
		Delays: replication.PaperDelays().Scale(0.1), Duration: 2 * time.Second, QPS: 200,
		CheckTimeout: 5 * time.Second, OutDir: t.TempDir(), ProbeReads: 3_600,
	}
	cfg.SetDefaults(time.Now())
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	var progress strings.Builder
	p := newProgress(&progress, false, 6, cfg.Duration)
	i := 0
	for _, preset := range cfg.Configs {
		if err := runConfig(t.Context(), &cfg, preset, p, &i); err != nil {
			t.Fatalf("%s: %v\n%s", preset, err, progress.String())
		}
	}
	res, err := Collect(cfg.OutDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, preset := range cfg.Configs {
		st := res.Staleness[preset]
		if st == nil || st.RMSE == nil || st.SamplingRMSE == nil {
			t.Fatalf("%s: no staleness comparison: %+v", preset, st)
		}
		if st.Source != "probe" || st.Probe == nil || st.Probe.Reads == 0 || st.Workload == nil || st.Workload.Reads == 0 {
			t.Fatalf("%s: the curve should come from the probe, with the steady runs' reads beside it: source %q, probe %+v, workload %v",
				preset, st.Source, st.Probe, st.Workload != nil)
		}
		want := 3_600 // R>1 probes place half as many (probeFor)
		if st.Probe.ReadsPerWrite == 1 {
			want /= 2
		}
		if st.Probe.Reads < want*9/10 {
			t.Errorf("%s: probe placed %d reads, want about 3,600", preset, st.Probe.Reads)
		}
		var lines []string
		stale := false
		for b, m := range st.Measured {
			lines = append(lines, fmt.Sprintf("%5.1f-%5.1f ms  reads %4d  measured %.3f  predicted %.3f", m.LoMs, m.HiMs, m.Reads, m.Fresh, st.Predicted[b].Fresh))
			if m.Reads >= MinStalenessReads && m.Fresh < 0.9 {
				stale = true
			}
		}
		bound := 2*(*st.SamplingRMSE) + 2
		t.Logf("%s: RMSE %.2f points (sampling alone %.2f, bound %.2f) over %d reads\n%s\n%s", preset, *st.RMSE, *st.SamplingRMSE, bound, st.Reads, strings.Join(lines, "\n"), st.Model)
		if *st.RMSE > bound {
			t.Errorf("%s: RMSE %.2f points, above %.2f", preset, *st.RMSE, bound)
		}
		if !stale {
			t.Errorf("%s: no bucket shows staleness: nothing was compared", preset)
		}
	}
}
