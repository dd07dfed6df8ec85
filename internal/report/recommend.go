package report

import (
	"cmp"
	"fmt"
	"slices"
)

// Recommendation is one row of the "if your workload is … choose …"
// table: the config the rule picked from the measured figures, why (the
// figures), and what to avoid.
type Recommendation struct {
	Workload string `json:"workload"`
	// Choose is the config picked; empty when none measured qualifies.
	Choose  string `json:"choose"`
	Because string `json:"because"`
	Avoid   string `json:"avoid,omitempty"`
}

// Recommendations applies one rule per workload to res. A workload whose
// data is missing (no fault runs of its kind, no steady runs) is left out;
// one for which no config qualifies says so.
func Recommendations(res *Results) []Recommendation {
	var out []Recommendation
	for _, rule := range []func(*Results) (Recommendation, bool){
		recReadHeavyFresh,
		recWriteHeavyStale,
		recWriteHeavyFresh,
		recLeaderDeath,
		recAnyFault,
		recNoLoss,
		recLinearizable,
	} {
		if r, ok := rule(res); ok {
			out = append(out, r)
		}
	}
	return out
}

// fresh reports whether cfg's quorums overlap and its steady runs returned
// no stale read.
func fresh(res *Results, cfg string) bool {
	stale, _, ok := staleTotals(res, cfg)
	return ok && stale == 0 && rwOverlap(configRun(res, cfg))
}

// pickRun returns, among the configs accepted by keep, the steady runs at
// ratio that pass ok, by ascending score (ties: config order): the first
// is the pick, the second the runner-up, the last the worst.
func pickRun(res *Results, ratio float64, keep func(cfg string) bool, ok func(*Run) bool, score func(*Run) float64) []*Run {
	var out []*Run
	for _, cfg := range res.Configs() {
		if !keep(cfg) {
			continue
		}
		if r := steadyRun(res, cfg, ratio); r != nil && ok(r) {
			out = append(out, r)
		}
	}
	slices.SortStableFunc(out, func(a, b *Run) int { return cmp.Compare(score(a), score(b)) })
	return out
}

// ends returns the first and last of runs (nil, nil if none).
func ends(runs []*Run) (best, worst *Run) {
	if len(runs) == 0 {
		return nil, nil
	}
	return runs[0], runs[len(runs)-1]
}

// nextBest cites the runner-up's figure: "; next w5r1 1.12 ms".
func nextBest(runs []*Run, figure func(*Run) float64) string {
	if len(runs) < 2 {
		return ""
	}
	return fmt.Sprintf("; next: %s %s", runs[1].Config, ms(figure(runs[1])))
}

func staleNote(res *Results, cfg string) string {
	stale, reads, ok := staleTotals(res, cfg)
	if !ok {
		return ""
	}
	return fmt.Sprintf("%s stale reads (%s of %s)", percent(float64(stale)/float64(reads)), thousands(stale), thousands(reads))
}

// staleAvoid names the configs with the most stale reads (at most two).
func staleAvoid(res *Results) string {
	type s struct {
		cfg string
		f   float64
	}
	var ss []s
	for _, cfg := range res.Configs() {
		if stale, reads, ok := staleTotals(res, cfg); ok && stale > 0 {
			ss = append(ss, s{cfg, float64(stale) / float64(reads)})
		}
	}
	slices.SortStableFunc(ss, func(a, b s) int {
		switch {
		case a.f > b.f:
			return -1
		case a.f < b.f:
			return 1
		}
		return 0
	})
	var parts []string
	for i, x := range ss {
		if i == 2 {
			break
		}
		parts = append(parts, fmt.Sprintf("%s (%s stale)", x.cfg, percent(x.f)))
	}
	return list(parts)
}

func hasReads(r *Run) bool  { return okCount(r.Read) > 0 }
func hasWrites(r *Run) bool { return okCount(r.Write) > 0 }
func hasBoth(r *Run) bool   { return hasReads(r) && hasWrites(r) }
func anyCfg(string) bool    { return true }

func recReadHeavyFresh(res *Results) (Recommendation, bool) {
	rs := steadyRatios(res)
	if len(rs) == 0 {
		return Recommendation{}, false
	}
	lo := rs[0]
	rec := Recommendation{Workload: fmt.Sprintf("read-heavy (%s writes) and every read must see the latest acknowledged write", pct(lo))}
	readP50 := func(r *Run) float64 { return r.Read.P50 }
	runs := pickRun(res, lo, func(c string) bool { return fresh(res, c) }, hasReads, readP50)
	best, worst := ends(runs)
	if best == nil {
		rec.Because = "no config measured returned only fresh reads"
		rec.Avoid = staleAvoid(res)
		return rec, true
	}
	rec.Choose = best.Config
	rec.Because = fmt.Sprintf("reads p50 %s, p99 %s%s; %s; writes p50 %s", ms(best.Read.P50), ms(best.Read.P99), nextBest(runs, readP50), staleNote(res, best.Config), ms(best.Write.P50))
	rec.Avoid = staleAvoid(res)
	if rec.Avoid == "" && worst != nil && worst != best {
		rec.Avoid = fmt.Sprintf("%s (reads p50 %s)", worst.Config, ms(worst.Read.P50))
	}
	return rec, true
}

func recWriteHeavyStale(res *Results) (Recommendation, bool) {
	rs := steadyRatios(res)
	if len(rs) == 0 {
		return Recommendation{}, false
	}
	hi := rs[len(rs)-1]
	rec := Recommendation{Workload: fmt.Sprintf("write-heavy (%s writes) and reads may be stale", pct(hi))}
	runs := pickRun(res, hi, anyCfg, hasWrites, cost)
	best, worst := ends(runs)
	if best == nil {
		return Recommendation{}, false
	}
	rec.Choose = best.Config
	rec.Because = fmt.Sprintf("median op %s (writes p50 %s, reads p50 %s)%s; %s", ms(cost(best)), ms(best.Write.P50), ms(best.Read.P50), nextBest(runs, cost), staleNote(res, best.Config))
	if worst != nil && worst != best {
		rec.Avoid = fmt.Sprintf("%s (median op %s)", worst.Config, ms(cost(worst)))
	}
	return rec, true
}

func recWriteHeavyFresh(res *Results) (Recommendation, bool) {
	rs := steadyRatios(res)
	if len(rs) == 0 {
		return Recommendation{}, false
	}
	hi := rs[len(rs)-1]
	rec := Recommendation{Workload: fmt.Sprintf("write-heavy (%s writes) and every read must see the latest acknowledged write", pct(hi))}
	runs := pickRun(res, hi, func(c string) bool { return fresh(res, c) }, hasWrites, cost)
	best, worst := ends(runs)
	if best == nil {
		rec.Because = "no config measured returned only fresh reads"
		return rec, true
	}
	rec.Choose = best.Config
	rec.Because = fmt.Sprintf("median op %s (writes p50 %s, reads p50 %s)%s; %s", ms(cost(best)), ms(best.Write.P50), ms(best.Read.P50), nextBest(runs, cost), staleNote(res, best.Config))
	if worst != nil && worst != best {
		rec.Avoid = fmt.Sprintf("%s (median op %s)", worst.Config, ms(cost(worst)))
	}
	return rec, true
}

// faultRanked returns the runs of scenario with a window, shortest window
// first.
func faultRanked(res *Results, scenario string) []*Run {
	var out []*Run
	for _, r := range scenarioRuns(res, scenario) {
		if r.WriteUnavailableMs != nil {
			out = append(out, r)
		}
	}
	slices.SortStableFunc(out, func(a, b *Run) int { return cmp.Compare(*a.WriteUnavailableMs, *b.WriteUnavailableMs) })
	return out
}

func lostNote(r *Run) string {
	if !r.FinalCheck {
		return ""
	}
	return fmt.Sprintf("; %d of %s acknowledged writes lost", r.AckedLost, thousands(r.AckedWrites))
}

func recLeaderDeath(res *Results) (Recommendation, bool) {
	runs := faultRanked(res, "kill-leader")
	best, worst := ends(runs)
	if best == nil {
		return Recommendation{}, false
	}
	rec := Recommendation{Workload: "must keep taking writes when the leader (with no leader, the busiest node) dies", Choose: best.Config}
	next := ""
	if len(runs) > 1 {
		next = fmt.Sprintf(" (next: %s %s)", runs[1].Config, windowOf(runs[1]))
	}
	rec.Because = fmt.Sprintf("writes unavailable %s after the kill%s%s", windowOf(best), next, lostNote(best))
	if worst != best {
		rec.Avoid = fmt.Sprintf("%s (%s)", worst.Config, windowOf(worst))
	}
	return rec, true
}

// recAnyFault picks the config whose worst window over every fault
// scenario is shortest; only with more than one scenario (with one it is
// recLeaderDeath's or that scenario's).
func recAnyFault(res *Results) (Recommendation, bool) {
	scs := faultScenarios(res)
	if len(scs) < 2 {
		return Recommendation{}, false
	}
	type w struct {
		cfg   string
		worst float64
		sc    string
	}
	var ws []w
	for _, cfg := range res.Configs() {
		x := w{cfg: cfg, worst: -1}
		complete := true
		for _, sc := range scs {
			var found bool
			for _, r := range scenarioRuns(res, sc) {
				if r.Config == cfg && r.WriteUnavailableMs != nil {
					found = true
					if *r.WriteUnavailableMs > x.worst {
						x.worst, x.sc = *r.WriteUnavailableMs, sc
					}
				}
			}
			complete = complete && found
		}
		if complete {
			ws = append(ws, x)
		}
	}
	if len(ws) == 0 {
		return Recommendation{}, false
	}
	best, worst := ws[0], ws[0]
	for _, x := range ws {
		if x.worst < best.worst {
			best = x
		}
		if x.worst > worst.worst {
			worst = x
		}
	}
	rec := Recommendation{Workload: fmt.Sprintf("must keep taking writes through any one-node fault (%s)", list(scs)), Choose: best.cfg}
	rec.Because = fmt.Sprintf("longest write-unavailability window %s (%s)", dur(best.worst), best.sc)
	if worst.cfg != best.cfg {
		rec.Avoid = fmt.Sprintf("%s (%s, %s)", worst.cfg, dur(worst.worst), worst.sc)
	}
	return rec, true
}

func recNoLoss(res *Results) (Recommendation, bool) {
	ratio, _ := midRatio(res)
	var clean, lost []string
	ds := map[string]durability{}
	for _, cfg := range res.Configs() {
		d := configDurability(res, cfg)
		if d.runs == 0 {
			continue
		}
		ds[cfg] = d
		if d.lost == 0 {
			clean = append(clean, cfg)
		} else {
			lost = append(lost, cfg)
		}
	}
	if len(ds) == 0 || len(faultScenarios(res)) == 0 {
		return Recommendation{}, false
	}
	rec := Recommendation{Workload: "must never lose an acknowledged write, even when a node dies"}
	var avoid []string
	for _, cfg := range lost {
		avoid = append(avoid, fmt.Sprintf("%s (%d lost)", cfg, ds[cfg].lost))
	}
	rec.Avoid = list(avoid)
	if len(clean) == 0 {
		rec.Because = "every config measured lost acknowledged writes"
		return rec, true
	}
	// Among the configs that lost nothing: the fewest writes left on some
	// nodes only, then those that acknowledge a write once a majority
	// holds it (it survives any minority of failures, whatever this run
	// killed), then the cheapest median op at the middle ratio.
	majority := func(cfg string) bool { r := configRun(res, cfg); return 2*r.W > r.N }
	better := func(a, b string) bool {
		da, db := ds[a], ds[b]
		if da.partial != db.partial {
			return da.partial < db.partial
		}
		if majority(a) != majority(b) {
			return majority(a)
		}
		ra, rb := steadyRun(res, a, ratio), steadyRun(res, b, ratio)
		return ra != nil && (rb == nil || cost(ra) < cost(rb))
	}
	best := clean[0]
	for _, cfg := range clean[1:] {
		if better(cfg, best) {
			best = cfg
		}
	}
	d := ds[best]
	rec.Choose = best
	rec.Because = fmt.Sprintf("0 of %s acknowledged writes lost in %d runs", thousands(d.acked), d.runs)
	if r := configRun(res, best); majority(best) {
		rec.Because += fmt.Sprintf("; W=%d: acknowledged once %d of %d nodes hold it", r.W, r.W, r.N)
	}
	if d.partial > 0 {
		rec.Because += fmt.Sprintf(" (%d on some nodes only)", d.partial)
	}
	if r := steadyRun(res, best, ratio); r != nil && hasBoth(r) {
		rec.Because += fmt.Sprintf("; median op %s at %s writes", ms(cost(r)), pct(ratio))
	}
	return rec, true
}

func recLinearizable(res *Results) (Recommendation, bool) {
	ratio, ok := midRatio(res)
	if !ok {
		return Recommendation{}, false
	}
	any := false
	always := func(cfg string) bool {
		checked, failed := linTotals(res, cfg)
		any = any || checked > 0
		return checked > 0 && failed == 0
	}
	runs := pickRun(res, ratio, always, hasBoth, cost)
	best, _ := ends(runs)
	if !any {
		return Recommendation{}, false
	}
	rec := Recommendation{Workload: "needs linearizable reads and writes (e.g. locks, counters, compare-and-set)"}
	var broke []string
	for _, cfg := range res.Configs() {
		if checked, failed := linTotals(res, cfg); failed > 0 {
			broke = append(broke, fmt.Sprintf("%s (%d of %d runs not)", cfg, failed, checked))
		}
	}
	rec.Avoid = list(broke)
	if len(broke) > 2 {
		rec.Avoid = fmt.Sprintf("%s, %s and %d more", broke[0], broke[1], len(broke)-2)
	}
	if best == nil {
		rec.Because = "no config measured was linearizable in every checked run"
		return rec, true
	}
	checked, _ := linTotals(res, best.Config)
	rec.Choose = best.Config
	rec.Because = fmt.Sprintf("linearizable in all %d checked runs; median op %s at %s writes%s", checked, ms(cost(best)), pct(ratio), nextBest(runs, cost))
	return rec, true
}
