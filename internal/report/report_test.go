package report

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// synth builds results whose numbers follow the paper floors (slowWrites)
// or the opposite (slow reads, cheap writes), so that the conclusions must
// differ.
func synth(slowWrites bool) *Results {
	res := &Results{Title: "test", Started: "now", Delays: "paper", Generator: "Keys come from a test generator."}
	type cfg struct {
		name, mode string
		w, r       int
	}
	cfgs := []cfg{{"w5r1", "leader-follower", 5, 1}, {"w1r5", "leader-follower", 1, 5}, {"w3r3", "leader-follower", 3, 3}, {"leaderless", "leaderless", 5, 1}}
	yes, no := true, false
	for _, ratio := range []float64{0.01, 0.1, 0.5, 0.9} {
		for _, c := range cfgs {
			fw := 300 * float64(c.w-1)
			fr := 0.0
			if c.r > 1 {
				fr = 50
			}
			wr, rd := fw+1, fr+0.5
			if !slowWrites {
				wr, rd = fr+1, fw+0.5
			}
			run := Run{
				Config: c.name, Mode: c.mode, W: c.w, R: c.r, N: 5, WriteRatio: ratio, Delays: "paper", DurationSec: 20,
				TargetQPS: 20, AchievedQPS: 19.8, FloorWriteMs: fw, FloorReadMs: fr,
				Read:         Stats{Count: 400, P50: rd, P90: rd * 1.1, P95: rd * 1.2, P99: rd * 1.5, P999: rd * 2, Max: rd * 3},
				Write:        Stats{Count: 40, Errors: 1, P50: wr, P90: wr * 1.1, P95: wr * 1.2, P99: wr * 1.5, P999: wr * 2, Max: wr * 3},
				Linearizable: &yes,
			}
			if c.mode == "leaderless" {
				run.Inversions, run.Linearizable = 7, &no
				run.InversionAgesMs = []float64{100, 300, 700, 900, 1100, 150, 50}
			}
			for p := 0.0; p < 100; p += 5 {
				run.ReadSpectrum = append(run.ReadSpectrum, Point{P: p, Ms: rd * (1 + p/100)})
				run.WriteSpectrum = append(run.WriteSpectrum, Point{P: p, Ms: wr * (1 + p/100)})
			}
			for i := range 50 {
				run.Intervals = append(run.Intervals, float64(10*i))
			}
			res.Runs = append(res.Runs, run)
		}
	}
	return res
}

func TestBuildWritesEveryFile(t *testing.T) {
	dir := t.TempDir()
	out, err := Build(synth(true), dir)
	if err != nil {
		t.Fatal(err)
	}
	files := append([]string{out.HTML, out.PDF, out.JSON, out.Markdown}, out.Charts...)
	// 4 ratios x 3 charts + 7 across-ratio charts, each PNG and SVG.
	if want := 2 * (4*3 + 7); len(out.Charts) != want {
		t.Errorf("%d chart files, want %d", len(out.Charts), want)
	}
	for _, f := range files {
		st, err := os.Stat(f)
		if err != nil || st.Size() == 0 {
			t.Errorf("%s: missing or empty (%v)", f, err)
		}
	}
	html, _ := os.ReadFile(out.HTML)
	if n := strings.Count(string(html), "<svg role=\"img\""); n != len(out.Charts)/2 {
		t.Errorf("HTML embeds %d charts as inline SVG, want %d", n, len(out.Charts)/2)
	}
	if strings.Contains(string(html), "data:image/png") {
		t.Error("HTML embeds raster charts")
	}
	if strings.Contains(string(html), "src=\"http") {
		t.Error("HTML loads something from the network")
	}
	pdf, _ := os.ReadFile(out.PDF)
	if !strings.HasPrefix(string(pdf), "%PDF-") {
		t.Error("report.pdf is not a PDF")
	}
	if _, err := os.Stat(filepath.Join(dir, "charts", "latency-read-50.svg")); err != nil {
		t.Error(err)
	}
}

func TestTableShowsRunNumbers(t *testing.T) {
	res := synth(true)
	r := &res.Runs[5]
	row := tableRow(r)
	if row[0] != r.Config || row[1] != pct(r.WriteRatio) {
		t.Fatalf("row starts %v", row[:2])
	}
	for i, want := range map[int]float64{3: r.Read.P50, 5: r.Read.P99, 9: r.Write.P50, 11: r.Write.P99} {
		got := parse(t, row[i])
		if math.Abs(got-want) > 0.051*math.Max(1, want/100) {
			t.Errorf("column %s = %s, want %.2f", tableHeader[i], row[i], want)
		}
	}
}

// The analysis follows the data: opposite outcomes, different conclusions.
func TestAnalysisFollowsData(t *testing.T) {
	text := func(res *Results) string {
		var b strings.Builder
		for _, p := range Analyze(res) {
			b.WriteString(p.Text)
		}
		return b.String()
	}
	paper, opposite := text(synth(true)), text(synth(false))
	if paper == opposite {
		t.Fatal("the same analysis for opposite data")
	}
	if !strings.Contains(paper, "At 1% writes, w5r1 has the lowest") || !strings.Contains(paper, "At 90% writes, w1r5 has the lowest") {
		t.Errorf("paper-like data: wrong winners:\n%s", paper)
	}
	if !strings.Contains(opposite, "At 1% writes, w1r5 has the lowest") || strings.Contains(opposite, "w5r1 was cheapest") {
		t.Errorf("opposite data: wrong winners:\n%s", opposite)
	}
	if !strings.Contains(opposite, "The delay floors alone would have favoured w5r1") {
		t.Errorf("opposite data should contradict the floors:\n%s", opposite)
	}
	if !strings.Contains(paper, "7 inversions") && !strings.Contains(paper, "28 inversions") {
		t.Errorf("leaderless inversions not reported:\n%s", paper)
	}
}

func parse(t *testing.T, s string) float64 {
	t.Helper()
	var v float64
	if _, err := fmtSscan(s, &v); err != nil {
		t.Fatalf("parse %q: %v", s, err)
	}
	return v
}

func fmtSscan(s string, v *float64) (int, error) { return fmt.Sscan(s, v) }

// Runs without any write (or read) still give every chart, drawn empty.
func TestBuildWithoutWrites(t *testing.T) {
	res := synth(true)
	for i := range res.Runs {
		res.Runs[i].Write = Stats{}
		res.Runs[i].WriteSpectrum = nil
		res.Runs[i].Intervals = nil
	}
	if _, err := Build(res, t.TempDir()); err != nil {
		t.Fatalf("report without writes: %v", err)
	}
}
