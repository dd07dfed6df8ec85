package experiment

import (
	"context"
	"encoding/json"
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
