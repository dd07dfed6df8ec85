package report

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strings"
)

// Paragraph is one part of the generated analysis.
type Paragraph struct {
	Heading string
	Text    string
}

// cost is a run's ratio-weighted median latency: what the median operation
// of this mix costs, ratio*write p50 + (1-ratio)*read p50.
func cost(r *Run) float64 {
	return r.WriteRatio*r.Write.P50 + (1-r.WriteRatio)*r.Read.P50
}

// floorCost is the same mix priced at the delay floors.
func floorCost(r *Run) float64 {
	return r.WriteRatio*r.FloorWriteMs + (1-r.WriteRatio)*r.FloorReadMs
}

func isLeaderless(r *Run) bool { return strings.Contains(r.Mode, "leaderless") }

func ms(v float64) string {
	switch {
	case v >= 100:
		return fmt.Sprintf("%.0f ms", v)
	case v >= 10:
		return fmt.Sprintf("%.1f ms", v)
	default:
		return fmt.Sprintf("%.2f ms", v)
	}
}

// Analyze writes the analysis from the measured numbers only.
func Analyze(res *Results) []Paragraph {
	var out []Paragraph
	if p, ok := bestLeaderFollower(res); ok {
		out = append(out, p)
	}
	out = append(out, consistency(res))
	if p, ok := leaderlessTrade(res); ok {
		out = append(out, p)
	}
	if p, ok := suitability(res); ok {
		out = append(out, p)
	}
	return out
}

// leaderFollowerRuns returns the leader-follower runs at ratio, cheapest
// first.
func leaderFollowerRuns(res *Results, ratio float64) []*Run {
	var runs []*Run
	for _, cfg := range res.Configs() {
		if r := res.Find(cfg, ratio); r != nil && !isLeaderless(r) && r.Read.Count+r.Write.Count > 0 {
			runs = append(runs, r)
		}
	}
	slices.SortStableFunc(runs, func(a, b *Run) int { return cmp.Compare(cost(a), cost(b)) })
	return runs
}

func bestLeaderFollower(res *Results) (Paragraph, bool) {
	var b strings.Builder
	any := false
	for _, ratio := range res.Ratios() {
		runs := leaderFollowerRuns(res, ratio)
		if len(runs) == 0 {
			continue
		}
		any = true
		best := runs[0]
		fmt.Fprintf(&b, "At %s writes, %s has the lowest ratio-weighted median latency, %s", pct(ratio), best.Config, ms(cost(best)))
		if len(runs) > 1 {
			var others []string
			for _, r := range runs[1:] {
				others = append(others, fmt.Sprintf("%s %s", r.Config, ms(cost(r))))
			}
			fmt.Fprintf(&b, " (against %s)", strings.Join(others, ", "))
		}
		fmt.Fprintf(&b, ": its writes %s and its reads %s. ", medianVsFloor(best.Write, best.FloorWriteMs), medianVsFloor(best.Read, best.FloorReadMs))
		byFloor := slices.Clone(runs)
		slices.SortStableFunc(byFloor, func(a, b *Run) int { return cmp.Compare(floorCost(a), floorCost(b)) })
		if byFloor[0].Config == best.Config {
			fmt.Fprintf(&b, "The delay arithmetic predicts this: priced at the floors the mix costs %s for %s. ", ms(floorCost(best)), best.Config)
		} else {
			fmt.Fprintf(&b, "The delay floors alone would have favoured %s (%s against %s for %s), so queueing or load, not the delay arithmetic, decided this ratio. ",
				byFloor[0].Config, ms(floorCost(byFloor[0])), ms(floorCost(best)), best.Config)
		}
	}
	if !any {
		return Paragraph{}, false
	}
	b.WriteString("Each sequential replication step is a peer's apply delay plus the coordinator's gap, so a write waiting for W copies pays W-1 steps, while a read of R>1 copies pays one parallel peer read; a small W makes writes cheap and moves the cost onto reads.")
	return Paragraph{Heading: "Which leader-follower config does best", Text: b.String()}, true
}

type consistencyTotals struct {
	cfg                   string
	rw, n, r              int
	stale, inv, reads     int
	nonLin, checked, runs int
}

func totals(res *Results) []consistencyTotals {
	var out []consistencyTotals
	for _, cfg := range res.Configs() {
		t := consistencyTotals{cfg: cfg}
		for i := range res.Runs {
			r := &res.Runs[i]
			if r.Config != cfg {
				continue
			}
			t.rw, t.n, t.r = r.R+r.W, r.N, r.R
			t.stale += r.StaleReads
			t.inv += r.Inversions
			t.reads += r.Read.Count
			t.runs++
			if r.Linearizable != nil {
				t.checked++
				if !*r.Linearizable {
					t.nonLin++
				}
			}
		}
		out = append(out, t)
	}
	return out
}

func consistency(res *Results) Paragraph {
	var b strings.Builder
	var overlapClean, overlapStale, byDesign []string
	for _, t := range totals(res) {
		if t.r == 1 && t.rw > t.n && (t.nonLin > 0 || t.inv > 0) {
			byDesign = append(byDesign, t.cfg)
		}
		verdict := "not checked"
		if t.checked > 0 {
			verdict = fmt.Sprintf("not linearizable in %d of %d checked runs", t.nonLin, t.checked)
			if t.nonLin == 0 {
				verdict = fmt.Sprintf("linearizable in all %d checked runs", t.checked)
			}
		}
		rel := "R+W>N"
		if t.rw <= t.n {
			rel = "R+W<=N"
		}
		fmt.Fprintf(&b, "%s (R+W=%d, N=%d: %s): %d stale reads and %d inversions in %d reads; %s. ",
			t.cfg, t.rw, t.n, rel, t.stale, t.inv, t.reads, verdict)
		if t.rw > t.n {
			if t.stale == 0 {
				overlapClean = append(overlapClean, t.cfg)
			} else {
				overlapStale = append(overlapStale, t.cfg)
			}
		}
	}
	b.WriteString(windowSentences(res))
	if len(byDesign) > 0 {
		fmt.Fprintf(&b, "%s %s not linearizable by design: with W=N and R=1 a replica applies a write, and serves it to reads, before the coordinator acknowledges it, so a later read at a replica the write has not reached yet returns the older value. ",
			strings.Join(byDesign, " and "), map[bool]string{true: "is", false: "are"}[len(byDesign) == 1])
	}
	switch {
	case len(overlapStale) == 0 && len(overlapClean) > 0:
		fmt.Fprintf(&b, "Every config whose read and write quorums overlap (R+W>N: %s) showed zero stale reads, as quorum intersection promises. ", strings.Join(overlapClean, ", "))
	case len(overlapStale) > 0:
		fmt.Fprintf(&b, "Stale reads appeared despite R+W>N in %s: a read that overlaps a write still in progress, or a read outside the quorum path, can miss it. ", strings.Join(overlapStale, ", "))
	}
	b.WriteString("A stale read returns neither the last write acknowledged before it began nor a write concurrent with it (decided by real-time order, not version numbers); an inversion is a read that returns older data than a read that finished before it began, which quorum overlap alone does not prevent while a write is in flight: quorum reads (R>1, R+W>N) therefore write the newest version back to W replicas before they answer.")
	return Paragraph{Heading: "Consistency: stale reads, inversions, linearizability", Text: b.String()}
}

func leaderlessTrade(res *Results) (Paragraph, bool) {
	var b strings.Builder
	found := false
	for _, cfg := range res.Configs() {
		var ll []*Run
		for i := range res.Runs {
			if r := &res.Runs[i]; r.Config == cfg && isLeaderless(r) {
				ll = append(ll, r)
			}
		}
		if len(ll) == 0 {
			continue
		}
		found = true
		for _, r := range ll {
			twin := twinLeaderFollower(res, r)
			fmt.Fprintf(&b, "At %s writes %s had write p50 %s and p99 %s, read p50 %s, %d inversions",
				pct(r.WriteRatio), r.Config, ms(r.Write.P50), ms(r.Write.P99), ms(r.Read.P50), r.Inversions)
			if twin != nil {
				fmt.Fprintf(&b, " (leader-follower %s with the same W and R: write p50 %s, %d inversions)", twin.Config, ms(twin.Write.P50), twin.Inversions)
			}
			b.WriteString(". ")
		}
		inv, linFail, twinInv, twins := 0, 0, 0, 0
		for _, r := range ll {
			inv += r.Inversions
			if r.Linearizable != nil && !*r.Linearizable {
				linFail++
			}
			if tw := twinLeaderFollower(res, r); tw != nil {
				twinInv += tw.Inversions
				twins++
			}
		}
		quorumReads := ll[0].R > 1 && ll[0].R+ll[0].W > ll[0].N
		if ll[0].W < ll[0].N {
			var diffs []float64
			for _, r := range ll {
				if tw := twinLeaderFollower(res, r); tw != nil && r.Write.Count > r.Write.Errors && tw.Write.Count > tw.Write.Errors {
					diffs = append(diffs, r.Write.P50-tw.Write.P50)
				}
			}
			if len(diffs) > 0 {
				slices.Sort(diffs)
				fmt.Fprintf(&b, "With W<N a leaderless coordinator first reads the key's version from N-W+1 replicas, so that a write that begins after another was acknowledged always wins; that query phase put %s writes a median %s above their leader-follower twin's. ",
					cfg, ms(diffs[len(diffs)/2]))
			}
		}
		switch {
		case inv == 0 && linFail == 0 && quorumReads:
			fmt.Fprintf(&b, "%s showed no inversions and no linearizability violation: its quorum reads write a version still in flight back to W replicas before answering, as its leader-follower twin's do. ", cfg)
		case inv == 0 && linFail == 0:
			fmt.Fprintf(&b, "In these runs %s showed no inversions and no linearizability violation, so its write window was not caught by this load. ", cfg)
		case twins == 0 && ll[0].R == 1:
			fmt.Fprintf(&b, "%s lost read order: %d inversions, %d runs not linearizable, because with R=1 a read is served by whichever node it reaches while a write still travels replica to replica. ", cfg, inv, linFail)
		case twins == 0:
			fmt.Fprintf(&b, "%s lost read order: %d inversions, %d runs not linearizable, because with R+W=%d≤N=%d a read's %d replicas need not include any of the %d a write has reached while it still travels replica to replica. ",
				cfg, inv, linFail, ll[0].R+ll[0].W, ll[0].N, ll[0].R, ll[0].W)
		case float64(inv) > 1.5*float64(twinInv):
			fmt.Fprintf(&b, "%s lost read order more often than leader-follower with the same quorums (%d inversions against %d): besides the write window both have, its writes start at different coordinators, so replicas receive them in different orders. ", cfg, inv, twinInv)
		case float64(inv)*1.5 < float64(twinInv):
			fmt.Fprintf(&b, "%s showed fewer inversions than leader-follower with the same quorums (%d against %d) in these runs. ", cfg, inv, twinInv)
		default:
			fmt.Fprintf(&b, "%s showed about as many inversions as leader-follower with the same quorums (%d against %d): with R=1 both serve a read from whichever replica it reaches while a write still travels, so the measured price of going leaderless here is not extra inconsistency but the same window. ", cfg, inv, twinInv)
		}
	}
	if !found {
		return Paragraph{}, false
	}
	b.WriteString("What it trades away by design is a single writer: concurrent writes to a key from different coordinators are ordered by Lamport clock and the last one wins, and in exchange any node coordinates writes, so no single leader carries them all or stops them by failing.")
	return Paragraph{Heading: "What leaderless trades away", Text: b.String()}, true
}

// twinLeaderFollower finds the leader-follower run with the same W, R and
// ratio.
func twinLeaderFollower(res *Results, r *Run) *Run {
	for i := range res.Runs {
		o := &res.Runs[i]
		if !isLeaderless(o) && o.W == r.W && o.R == r.R && math.Abs(o.WriteRatio-r.WriteRatio) < 1e-9 {
			return o
		}
	}
	return nil
}

func suitability(res *Results) (Paragraph, bool) {
	wins := map[string][]string{}
	var order []string
	for _, ratio := range res.Ratios() {
		runs := leaderFollowerRuns(res, ratio)
		if len(runs) == 0 {
			continue
		}
		c := runs[0].Config
		if _, ok := wins[c]; !ok {
			order = append(order, c)
		}
		wins[c] = append(wins[c], pct(ratio))
	}
	if len(order) == 0 {
		return Paragraph{}, false
	}
	var b strings.Builder
	for _, c := range order {
		var sample *Run
		for i := range res.Runs {
			if res.Runs[i].Config == c {
				sample = &res.Runs[i]
				break
			}
		}
		fmt.Fprintf(&b, "%s was cheapest at %s writes. ", c, strings.Join(wins[c], ", "))
		switch {
		case sample.R+sample.W <= sample.N:
			stale, reads, ok := staleTotals(res, c)
			measured := ""
			if ok {
				measured = fmt.Sprintf(" (%s of its reads were stale here)", percent(float64(stale)/float64(reads)))
			}
			fmt.Fprintf(&b, "Its writes wait for %d copies and its reads ask %d, so both are cheap, but R+W≤N: a read can miss an acknowledged write%s. It suits data where a stale read is harmless (caches, counters read approximately, feeds), not data read to decide. ", sample.W, sample.R, measured)
		case sample.W == sample.N && sample.R == 1:
			b.WriteString("Every replica holds an acknowledged write, so any node answers fresh reads at local speed: it suits read-mostly data that must never be read stale (configuration, catalogues, account settings) and can afford slow writes. ")
		case sample.W == 1:
			b.WriteString("Writes are acknowledged after one copy and reads gather every replica: it suits write-heavy or ingest workloads whose reads can pay one parallel peer round trip, but an acknowledged write lives on one node until background replication finishes. ")
		default:
			b.WriteString("Overlapping majorities split the cost between reads and writes and tolerate a slow or dead minority on both paths: it suits mixed workloads that need fresh reads and availability. ")
		}
	}
	var never []string
	for _, cfg := range res.Configs() {
		if r := res.Find(cfg, res.Ratios()[0]); r != nil && !isLeaderless(r) {
			if _, ok := wins[cfg]; !ok {
				never = append(never, cfg)
			}
		}
	}
	if len(never) > 0 {
		fmt.Fprintf(&b, "%s %s never the cheapest leader-follower config at the ratios measured. ", list(never), map[bool]string{true: "was", false: "were"}[len(never) == 1])
	}
	return Paragraph{Heading: "Which application each suits", Text: strings.TrimSpace(b.String())}, true
}

// medianVsFloor describes an op's median beside its floor, or says that
// none succeeded.
func medianVsFloor(st Stats, floor float64) string {
	if st.Count-st.Errors <= 0 {
		return "had no successful operation to measure"
	}
	return fmt.Sprintf("took %s at the median (floor %s)", ms(st.P50), ms(floor))
}

// windowSentences says, per config with inversions, how long after the
// key's latest write was sent they happened, beside the write floor.
func windowSentences(res *Results) string {
	var b strings.Builder
	for _, cfg := range res.Configs() {
		var ages []float64
		floor := 0.0
		for i := range res.Runs {
			if r := &res.Runs[i]; r.Config == cfg {
				ages = append(ages, r.InversionAgesMs...)
				floor = max(floor, r.FloorWriteMs)
			}
		}
		if len(ages) == 0 {
			continue
		}
		slices.Sort(ages)
		fmt.Fprintf(&b, "The inversions of %s came a median %s and at most %s after the key's latest write was sent (its write floor is %s). ",
			cfg, ms(ages[len(ages)/2]), ms(ages[len(ages)-1]), ms(floor))
	}
	return b.String()
}
