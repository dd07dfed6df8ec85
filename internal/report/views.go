package report

import (
	"fmt"
	"math"
	"slices"
	"strings"
)

// Read-only views of Results for the presentation: steady runs apart from
// fault runs, scenarios in order, per-config totals.

const scenarioSteady = "steady"

// isSteady reports whether r is a steady run (no fault).
func isSteady(r *Run) bool { return r.Scenario == "" || r.Scenario == scenarioSteady }

// steadyResults is res with its steady runs only (the first edition's
// charts, tables and analysis are about them). The runs are shared, not
// copied.
func steadyResults(res *Results) *Results {
	out := *res
	out.Runs = nil
	for i := range res.Runs {
		if isSteady(&res.Runs[i]) {
			out.Runs = append(out.Runs, res.Runs[i])
		}
	}
	return &out
}

// scenarioOrder is the experiment's order of the fault scenarios; others
// follow in the order they appear.
var scenarioOrder = []string{"kill-follower", "kill-leader", "partition", "pause"}

// faultScenarios returns the fault scenarios the runs hold, in order.
func faultScenarios(res *Results) []string {
	var out []string
	for i := range res.Runs {
		if s := res.Runs[i].Scenario; !isSteady(&res.Runs[i]) && !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	rank := func(s string) int {
		if i := slices.Index(scenarioOrder, s); i >= 0 {
			return i
		}
		return len(scenarioOrder)
	}
	slices.SortStableFunc(out, func(a, b string) int { return rank(a) - rank(b) })
	return out
}

// scenarioRuns returns the runs of scenario, in config order.
func scenarioRuns(res *Results, scenario string) []*Run {
	var out []*Run
	for _, cfg := range res.Configs() {
		for i := range res.Runs {
			if r := &res.Runs[i]; r.Config == cfg && r.Scenario == scenario {
				out = append(out, r)
			}
		}
	}
	return out
}

// scenarioPhrase says what a scenario did, as the subject of a sentence.
func scenarioPhrase(s string) string {
	switch s {
	case "kill-leader":
		return "the leader (with no leader, the node the clients use most) was killed"
	case "kill-follower":
		return "a follower (with no leader, any one node) was killed"
	case "partition":
		return "one node was partitioned away"
	case "pause":
		return "one node was paused"
	}
	return "the " + s + " fault hit"
}

// scenarioTitle is a scenario's short name for headings.
func scenarioTitle(s string) string {
	switch s {
	case "kill-leader":
		return "Kill the leader (with no leader: the main node)"
	case "kill-follower":
		return "Kill a follower (with no leader: a node)"
	case "partition":
		return "Partition one node away"
	case "pause":
		return "Pause one node"
	case scenarioSteady, "":
		return "Steady"
	}
	return s
}

// rwOverlap reports whether a config's quorums overlap (R+W>N).
func rwOverlap(r *Run) bool { return r.R+r.W > r.N }

// configRun returns a run of cfg (its first), or nil.
func configRun(res *Results, cfg string) *Run {
	for i := range res.Runs {
		if res.Runs[i].Config == cfg {
			return &res.Runs[i]
		}
	}
	return nil
}

// steadyRatios returns the write ratios of the steady runs, ascending.
func steadyRatios(res *Results) []float64 {
	var out []float64
	for i := range res.Runs {
		if r := &res.Runs[i]; isSteady(r) && !slices.Contains(out, r.WriteRatio) {
			out = append(out, r.WriteRatio)
		}
	}
	slices.Sort(out)
	return out
}

// steadyRun returns cfg's steady run at ratio, or nil.
func steadyRun(res *Results, cfg string, ratio float64) *Run {
	for i := range res.Runs {
		r := &res.Runs[i]
		if r.Config == cfg && isSteady(r) && math.Abs(r.WriteRatio-ratio) < 1e-9 {
			return r
		}
	}
	return nil
}

// midRatio is the steady ratio nearest 50%: the reference for one-number
// comparisons of latency.
func midRatio(res *Results) (float64, bool) {
	rs := steadyRatios(res)
	if len(rs) == 0 {
		return 0, false
	}
	best := rs[0]
	for _, r := range rs {
		if math.Abs(r-0.5) < math.Abs(best-0.5) {
			best = r
		}
	}
	return best, true
}

// okCount is how many of an op kind's requests succeeded.
func okCount(s Stats) int { return s.Count - s.Errors }

// staleTotals sums a config's stale reads and successful reads over its
// steady runs.
func staleTotals(res *Results, cfg string) (stale, reads int, ok bool) {
	for i := range res.Runs {
		if r := &res.Runs[i]; r.Config == cfg && isSteady(r) {
			stale += r.StaleReads
			reads += okCount(r.Read)
			ok = true
		}
	}
	return stale, reads, ok && reads > 0
}

// linTotals counts a config's runs checked for linearizability and those
// that were not linearizable, over every scenario.
func linTotals(res *Results, cfg string) (checked, failed int) {
	for i := range res.Runs {
		if r := &res.Runs[i]; r.Config == cfg && r.Linearizable != nil {
			checked++
			if !*r.Linearizable {
				failed++
			}
		}
	}
	return checked, failed
}

// durability sums a config's acknowledged writes, lost and partial over
// the runs whose final copies were read (faultOnly: fault runs only).
type durability struct {
	runs, acked, lost, partial int
	// lostIn says, per run with losses, how many of its acknowledged
	// writes were lost and in which scenario: "8 of 221 under kill-leader".
	lostIn []string
}

func configDurability(res *Results, cfg string) durability {
	var d durability
	for i := range res.Runs {
		r := &res.Runs[i]
		if r.Config != cfg || !r.FinalCheck {
			continue
		}
		d.runs++
		d.acked += r.AckedWrites
		d.lost += r.AckedLost
		d.partial += r.AckedPartial
		if r.AckedLost > 0 {
			where := "under " + r.Scenario
			if isSteady(r) {
				where = "in a steady run at " + pct(r.WriteRatio) + " writes"
			}
			d.lostIn = append(d.lostIn, fmt.Sprintf("%d of %s %s", r.AckedLost, thousands(r.AckedWrites), where))
		}
	}
	return d
}

// bucketMs is the timeline's bucket width of r (250 ms if unset).
func bucketMs(r *Run) float64 {
	if r.TimelineBucketMs > 0 {
		return r.TimelineBucketMs
	}
	return 250
}

// stayedWritable reports whether writes sent right after r's fault were
// acknowledged: the first acknowledged write sent after the fault's start
// left within one timeline bucket of it.
func stayedWritable(r *Run) bool {
	return r.Fault != nil && r.Fault.Recovered && r.Fault.FirstAckedSentMs != nil && *r.Fault.FirstAckedSentMs <= bucketMs(r)
}

// faultLenMs is how long r's fault lasted (to the end of the run if never
// healed), or 0.
func faultLenMs(r *Run) float64 {
	if r.Fault == nil {
		return 0
	}
	if r.Fault.EndMs != nil {
		return *r.Fault.EndMs - r.Fault.StartMs
	}
	return r.DurationSec*1000 - r.Fault.StartMs
}

// dur formats a duration in ms the way the findings use it: "680 ms",
// "2.16 s".
func dur(v float64) string {
	switch {
	case v >= 1000:
		return fmt.Sprintf("%.2f s", v/1000)
	case v >= 10:
		return fmt.Sprintf("%.0f ms", v)
	default:
		return fmt.Sprintf("%.1f ms", v)
	}
}

// percent formats a fraction 0..1 as "12%" (one decimal below 10%).
func percent(f float64) string {
	switch {
	case f == 0:
		return "0%"
	case f < 0.001:
		return "<0.1%"
	case f < 0.1:
		return fmt.Sprintf("%.1f%%", 100*f)
	default:
		return fmt.Sprintf("%.0f%%", 100*f)
	}
}

// list joins items as English: "a", "a and b", "a, b and c".
func list(items []string) string {
	switch len(items) {
	case 0:
		return ""
	case 1:
		return items[0]
	}
	return strings.Join(items[:len(items)-1], ", ") + " and " + items[len(items)-1]
}

// thousands formats n with thousands separators.
func thousands(n int) string {
	s := fmt.Sprint(n)
	if n < 0 {
		return "-" + thousands(-n)
	}
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}
