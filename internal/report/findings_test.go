package report

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/kvdb/kvdb/internal/history"
)

func fp(v float64) *float64 { return &v }

// synthFaults builds results with steady and kill-leader runs of four
// configs in which, when aWins, leaderless-w3r3 stays writable through the
// leader's death, w1r1 loses acknowledged writes and is the stalest; and
// the opposite otherwise (w5r1 stays writable, leaderless-w1r1 loses
// writes and is the stalest, leaderless-w3r3 is the slowest to recover).
func synthFaults(aWins bool) *Results {
	res := &Results{Title: "test", Started: "now", Delays: "paper", Generator: "Test keys.", Staleness: map[string]*Staleness{}}
	type cfg struct {
		name, mode string
		w, r       int
	}
	cfgs := []cfg{{"w5r1", "leader-follower", 5, 1}, {"w1r1", "leader-follower", 1, 1}, {"leaderless-w3r3", "leaderless", 3, 3}, {"leaderless-w1r1", "leaderless", 1, 1}}
	yes, no := true, false
	stalest, lesser := "w1r1", "leaderless-w1r1"
	writable, slow := "leaderless-w3r3", "w5r1"
	if !aWins {
		stalest, lesser = lesser, stalest
		writable, slow = slow, writable
	}
	for _, c := range cfgs {
		for _, ratio := range []float64{0.1, 0.5} {
			run := Run{Config: c.name, Mode: c.mode, W: c.w, R: c.r, N: 5, WriteRatio: ratio, DurationSec: 6, TargetQPS: 150, AchievedQPS: 150,
				Scenario: "steady", Read: Stats{Count: 1000, P50: 1 + float64(c.r-1)*50, P99: 5 + float64(c.r-1)*60},
				Write: Stats{Count: 100, P50: 1 + float64(c.w-1)*300, P99: 2 + float64(c.w-1)*320}, Linearizable: &yes,
				AckedWrites: 100, FinalCheck: true, Converged: true}
			switch c.name {
			case stalest:
				run.StaleReads, run.Linearizable = 300, &no
			case lesser:
				run.StaleReads, run.Linearizable = 100, &no
			}
			res.Runs = append(res.Runs, run)
		}
		fault := Run{Config: c.name, Mode: c.mode, W: c.w, R: c.r, N: 5, WriteRatio: 0.5, DurationSec: 8, TargetQPS: 150,
			Scenario: "kill-leader", Read: Stats{Count: 600, Errors: 20, P50: 1}, Write: Stats{Count: 600, Errors: 100, P50: 300},
			AckedWrites: 500, FinalCheck: true, Converged: true, Linearizable: &yes, TimelineBucketMs: 250,
			Fault: &Fault{Target: "node1", Role: "leader", Action: "killed", StartMs: 2000, EndMs: fp(5000), Recovered: true}}
		window, sent := 1500.0, 1200.0
		switch c.name {
		case writable:
			window, sent = 50, 10
		case slow:
			window, sent = 2900, 2500
		}
		fault.WriteUnavailableMs, fault.Fault.FirstAckedSentMs, fault.NoAckMs = fp(window), fp(sent), sent
		if c.name == stalest {
			fault.AckedLost = 7
		}
		for i := range 32 {
			b := TimeBucket{StartMs: float64(i) * 250, WritesOK: 10, ReadsOK: 10}
			if t := b.StartMs; t >= 2000 && t < 2000+sent {
				b.WritesOK, b.WritesFailed, b.ReadsFailed = 0, 10, 2
			}
			fault.Timeline = append(fault.Timeline, b)
		}
		for i := range 200 {
			t := float64(i) * 40
			op := OpPoint{TMs: t, LatMs: fault.Write.P50, Write: i%2 == 0, Outcome: OutcomeOK}
			if t >= 2000 && t < 2000+sent {
				op.Outcome = OutcomeFailed
			}
			fault.Ops = append(fault.Ops, op)
		}
		res.Runs = append(res.Runs, fault)
		if c.w+c.r <= 5 {
			st := &Staleness{Runs: 2, Reads: 500, MinReads: 20, Model: "PBS WARS test model"}
			rmse := 1.5
			if c.name == stalest {
				rmse = 4.5
			}
			st.RMSE, st.SamplingRMSE = fp(rmse), fp(1.0)
			for i := range 6 {
				f := float64(i) / 5
				st.Measured = append(st.Measured, StalenessPoint{LoMs: float64(i) * 100, HiMs: float64(i+1) * 100, TMs: float64(i)*100 + 50, Reads: 80, Fresh: f})
				st.Curve = append(st.Curve, CurvePoint{TMs: float64(i)*100 + 50, Fresh: f})
			}
			res.Staleness[c.name] = st
		}
	}
	return res
}

func findingWith(fs []string, sub string) string {
	for _, f := range fs {
		if strings.Contains(f, sub) {
			return f
		}
	}
	return ""
}

func recFor(recs []Recommendation, sub string) *Recommendation {
	for i := range recs {
		if strings.Contains(recs[i].Workload, sub) {
			return &recs[i]
		}
	}
	return nil
}

// The findings and the recommendations follow the data: opposite data,
// opposite findings.
func TestFindingsFlipWithData(t *testing.T) {
	for _, aWins := range []bool{true, false} {
		res := synthFaults(aWins)
		fs, recs := Findings(res), Recommendations(res)
		writable, slow, loser, stalest := "leaderless-w3r3", "w5r1", "w1r1", "w1r1"
		if !aWins {
			writable, slow, loser, stalest = "w5r1", "leaderless-w3r3", "leaderless-w1r1", "leaderless-w1r1"
		}
		if len(fs) == 0 || len(fs) > maxFindings {
			t.Fatalf("aWins=%v: %d findings", aWins, len(fs))
		}
		kill := findingWith(fs, "was killed")
		if !strings.Contains(kill, "only "+writable+" kept acknowledging writes") {
			t.Errorf("aWins=%v: leader-kill finding does not name %s as writable:\n%s", aWins, writable, kill)
		}
		if !regexp.MustCompile(`2\.90 s in ` + regexp.QuoteMeta(slow) + `\b`).MatchString(kill) {
			t.Errorf("aWins=%v: leader-kill finding lacks %s's 2.90 s window:\n%s", aWins, slow, kill)
		}
		lost := findingWith(fs, "lost acknowledged writes")
		if !strings.HasPrefix(lost, "Only "+loser+" lost acknowledged writes") || !strings.Contains(lost, "7 of 500 under kill-leader") {
			t.Errorf("aWins=%v: lost-writes finding should name %s with 7 of 500:\n%s", aWins, loser, lost)
		}
		stale := findingWith(fs, "stale data")
		if !strings.Contains(stale, stalest+" returned stale data to 30% of its reads") || !strings.Contains(stale, "4.5 points RMSE") {
			t.Errorf("aWins=%v: staleness finding should lead with %s at 30%%:\n%s", aWins, stalest, stale)
		}
		if r := recFor(recs, "leader"); r == nil || r.Choose != writable || !strings.Contains(r.Because, "50 ms") || !strings.Contains(r.Avoid, slow) {
			t.Errorf("aWins=%v: leader-death recommendation %+v, want %s (50 ms), avoid %s", aWins, r, writable, slow)
		}
		if r := recFor(recs, "never lose"); r == nil || r.Choose == loser || !strings.Contains(r.Avoid, loser+" (7 lost)") {
			t.Errorf("aWins=%v: no-loss recommendation %+v must avoid %s", aWins, r, loser)
		}
		if r := recFor(recs, "reads may be stale"); r == nil || r.Choose == "" {
			t.Errorf("aWins=%v: no write-heavy recommendation: %+v", aWins, recs)
		}
		for _, f := range fs {
			if !regexp.MustCompile(`[0-9]`).MatchString(f) {
				t.Errorf("finding without a number: %s", f)
			}
		}
	}
}

// A finding whose data is missing is left out, and the others remain.
func TestFindingsOmitMissingData(t *testing.T) {
	res := synthFaults(true)
	// no fault runs
	var steady []Run
	for _, r := range res.Runs {
		if isSteady(&r) {
			steady = append(steady, r)
		}
	}
	res.Runs = steady
	fs := Findings(res)
	if f := findingWith(fs, "killed"); f != "" {
		t.Errorf("a leader-kill finding without fault runs: %s", f)
	}
	if r := recFor(Recommendations(res), "leader"); r != nil {
		t.Errorf("a leader-death recommendation without fault runs: %+v", r)
	}
	if findingWith(fs, "stale data") == "" || findingWith(fs, "median write") == "" {
		t.Errorf("the steady findings are gone too:\n%s", strings.Join(fs, "\n"))
	}
	// no final read of the copies: no durability finding
	for i := range res.Runs {
		res.Runs[i].FinalCheck = false
	}
	if f := findingWith(Findings(res), "acknowledged write"); f != "" {
		t.Errorf("a durability finding without a final check: %s", f)
	}
	// only R+W>N configs: no staleness finding
	res = synth(true)
	if f := findingWith(Findings(res), "stale data"); f != "" {
		t.Errorf("a staleness finding without an R+W<=N config: %s", f)
	}
	// nothing at all
	if fs := Findings(&Results{}); len(fs) != 0 {
		t.Errorf("findings from no runs: %v", fs)
	}
}

func TestFindingsAtMostSix(t *testing.T) {
	res := synthFaults(true)
	// every scenario: more candidate findings than six
	var extra []Run
	for _, r := range res.Runs {
		if r.Scenario == "kill-leader" {
			for _, sc := range []string{"kill-follower", "partition", "pause"} {
				c := r
				c.Scenario = sc
				extra = append(extra, c)
			}
		}
	}
	res.Runs = append(res.Runs, extra...)
	if fs := Findings(res); len(fs) != maxFindings {
		t.Errorf("%d findings, want %d:\n%s", len(fs), maxFindings, strings.Join(fs, "\n"))
	}
	if r := recFor(Recommendations(res), "any one-node fault"); r == nil || r.Choose == "" {
		t.Errorf("no any-fault recommendation with four scenarios")
	}
}

// Build with fault runs: timelines, strips and staleness charts are
// written, and report.json keeps every run field and adds the findings.
func TestBuildWithFaults(t *testing.T) {
	dir := t.TempDir()
	res := synthFaults(true)
	out, err := Build(res, dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"timeline-kill-leader-w5r1", "refused-writes-kill-leader", "refused-reads-kill-leader", "staleness-w1r1", "staleness-measured"} {
		for _, ext := range []string{".svg", ".png"} {
			if _, err := os.Stat(filepath.Join(dir, "charts", name+ext)); err != nil {
				t.Error(err)
			}
		}
	}
	b, err := os.ReadFile(out.JSON)
	if err != nil {
		t.Fatal(err)
	}
	var js struct {
		Runs            []map[string]any `json:"runs"`
		Staleness       map[string]any   `json:"staleness"`
		Findings        []string         `json:"findings"`
		Recommendations []Recommendation `json:"recommendations"`
	}
	if err := json.Unmarshal(b, &js); err != nil {
		t.Fatal(err)
	}
	if len(js.Findings) == 0 || len(js.Recommendations) == 0 || js.Staleness["w1r1"] == nil {
		t.Errorf("report.json: %d findings, %d recommendations, staleness %v", len(js.Findings), len(js.Recommendations), js.Staleness != nil)
	}
	for _, field := range []string{"config", "scenario", "write_unavailable_ms", "acked_lost", "acked_partial", "no_ack_ms", "timeline", "fault"} {
		if _, ok := js.Runs[len(js.Runs)-1][field]; !ok {
			t.Errorf("report.json run lacks %q", field)
		}
	}
	html, _ := os.ReadFile(out.HTML)
	page := string(html)
	for _, want := range []string{"Findings", "If your workload is", "Faults: how long writes stopped", "Staleness over time", "@font-face"} {
		if !strings.Contains(page, want) {
			t.Errorf("HTML lacks %q", want)
		}
	}
	// findings come first, then the recommendations, then the details
	if i, j, k := strings.Index(page, "<section class=\"findings\""), strings.Index(page, "choose …</h2>"), strings.Index(page, "Faults: how long"); !(i >= 0 && i < j && j < k) {
		t.Errorf("HTML order: findings at %d, recommendations at %d, details at %d", i, j, k)
	}
	md, _ := os.ReadFile(out.Markdown)
	if !strings.Contains(string(md), "1. When the leader") {
		t.Errorf("report.md does not open with the findings:\n%.500s", md)
	}
}

// One style per config, the same in every chart, distinct across the
// palette.
func TestPaletteOnePerConfig(t *testing.T) {
	seen := map[string]string{}
	for cfg := range palette {
		c := cssColor(cfg)
		if other, dup := seen[c]; dup {
			t.Errorf("%s and %s share colour %s", cfg, other, c)
		}
		seen[c] = cfg
		if cssColor(cfg) != c {
			t.Errorf("%s: colour changes between calls", cfg)
		}
	}
	a, b := configStyle("some-new-config"), configStyle("some-new-config")
	if a.Color != b.Color || len(a.Dashes) != len(b.Dashes) {
		t.Error("a config outside the palette changes style")
	}
	// leader-follower lines are drawn under leaderless ones and wider
	if lf, ll := configStyle("w5r1"), configStyle("leaderless"); !(lf.Layer < ll.Layer && lf.Width > ll.Width && len(ll.Dashes) > 0) {
		t.Errorf("w5r1 %+v and leaderless %+v would hide each other where they coincide", lf, ll)
	}
}

func TestMarkConfigs(t *testing.T) {
	got := string(markConfigs("leaderless-w3r3 and leaderless beat w1r1, not w1r1x", []string{"leaderless", "leaderless-w3r3", "w1r1"}))
	if n := strings.Count(got, `class="cfg"`); n != 3 {
		t.Errorf("%d configs marked, want 3: %s", n, got)
	}
	if !strings.Contains(got, ">leaderless-w3r3</span>") || !strings.Contains(got, "w1r1x") {
		t.Errorf("marked wrongly: %s", got)
	}
}

func TestPDFText(t *testing.T) {
	if got := toCP1252("a … b · c × d ≤ e – f"); got != "a \x85 b \xb7 c \xd7 d <= e \x96 f" {
		t.Errorf("toCP1252 = %q", got)
	}
	// a table too wide for the page gets wrapped columns that fit
	tb := &table{Header: []string{"a", "b", "c"}, Rows: [][]string{{"x", strings.Repeat("word ", 80), strings.Repeat("other ", 60)}}, ConfigCol: -1}
	sty := style(7)
	avail := pageW - 2*margin
	ws := columnWidths(sty, tb, avail)
	if ws == nil {
		t.Fatal("no widths")
	}
	var sum float64
	for _, w := range ws {
		sum += float64(w)
	}
	if sum > float64(avail)*1.001 {
		t.Errorf("columns %v wider than the page (%v)", ws, avail)
	}
}

func TestOpPoints(t *testing.T) {
	ops := []history.Op{
		{Seq: 0, Op: history.OpSet, Key: "k", Value: "a", Version: 1, Status: 201, IntendedUS: 1000, SentUS: 1000, DoneUS: 2000},
		{Seq: 1, Op: history.OpSet, Key: "k", Value: "b", Version: 2, Status: 201, IntendedUS: 3000, SentUS: 3000, DoneUS: 4000},
		{Seq: 2, Op: history.OpGet, Key: "k", Value: "a", Version: 1, Status: 200, IntendedUS: 5000, SentUS: 5000, DoneUS: 6000},
		{Seq: 3, Op: history.OpSet, Key: "k", Value: "c", Status: 503, IntendedUS: 7000, SentUS: 7000, DoneUS: 8000},
		{Seq: 4, Op: history.OpGet, Key: "k", Status: 503, IntendedUS: 9000, SentUS: 9000, DoneUS: 9500},
		{Seq: 5, Op: history.OpSet, Key: "k", Value: "d", Status: 409, IntendedUS: 10000, SentUS: 10000, DoneUS: 10100},
	}
	pts := OpPoints(ops, 0)
	want := []string{OutcomeOK, OutcomeOK, OutcomeStale, OutcomeUnknown, OutcomeFailed, OutcomeFailed}
	for i, p := range pts {
		if p.Outcome != want[i] {
			t.Errorf("op %d: %s, want %s", i, p.Outcome, want[i])
		}
	}
	if pts[1].TMs != 3 || pts[1].LatMs != 1 || !pts[1].Write {
		t.Errorf("point %+v", pts[1])
	}
}

// A run's "no" in the linearizable column links to porcupine's
// visualization beside its history, in the summary and the fault tables.
func TestViolationLinks(t *testing.T) {
	dir := t.TempDir()
	res := synthFaults(true)
	for i := range res.Runs {
		r := &res.Runs[i]
		r.Dir = filepath.Join("runs", r.Config+"-"+r.Scenario+"-"+pct(r.WriteRatio))
		if r.Linearizable != nil && !*r.Linearizable {
			if err := os.MkdirAll(filepath.Join(dir, r.Dir), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, r.Dir, vizFile), []byte("<html></html>"), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	res.Runs[len(res.Runs)-1].Linearizable = new(bool) // a fault run too
	last := &res.Runs[len(res.Runs)-1]
	if err := os.MkdirAll(filepath.Join(dir, last.Dir), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, last.Dir, vizFile), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := Build(res, dir)
	if err != nil {
		t.Fatal(err)
	}
	html, _ := os.ReadFile(out.HTML)
	want := 0
	for i := range res.Runs {
		if r := &res.Runs[i]; r.Linearizable != nil && !*r.Linearizable {
			want++
			if !strings.Contains(string(html), `<a href="`+filepath.ToSlash(filepath.Join(r.Dir, vizFile))+`">no</a>`) {
				t.Errorf("no link to %s", r.Dir)
			}
		}
	}
	if got := strings.Count(string(html), vizFile+`">no</a>`); got != want {
		t.Errorf("%d links, want %d", got, want)
	}
}
